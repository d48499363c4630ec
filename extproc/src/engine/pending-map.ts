// Per-request state held from a request until its response, keyed by request id: an lru-cache with
// a cap and a TTL, so requests whose response never comes cannot grow it.
//
// Why not a bare LRUCache: lru-cache empties every one of its arrays (O(max)) whenever its last entry
// is deleted, and at low concurrency that is every response (a 100,000-entry cache then costs
// ~0.5 ms per request). A permanent sentinel entry, kept most recently used so eviction never takes
// it, keeps each delete O(1). Request ids come from the ext_proc server, never from a client, and
// the sentinel's id starts with a NUL no id has.
import { LRUCache } from 'lru-cache';

const SENTINEL_ID = '\u0000pending-sentinel';

export interface PendingMapOptions<V> {
  /** Entries held at most (the oldest is evicted beyond it). */
  max: number;
  ttlMs: number;
  /** The clock TTLs are measured on (default: performance). */
  perf?: { now(): number };
  /** Called for an entry evicted by the cap or the TTL (never for take() or clear()). */
  onEvicted?: (value: V, id: string) => void;
}

export class PendingMap<V extends {}> {
  readonly #cache: LRUCache<string, V>;

  /** `sentinel` is any value of V; it is never returned. */
  constructor(options: PendingMapOptions<V>, sentinel: V) {
    const onEvicted = options.onEvicted;
    this.#cache = new LRUCache<string, V>({
      max: Math.max(1, options.max) + 1,
      ttl: Math.max(1, options.ttlMs),
      ttlResolution: 0,
      ...(options.perf ? { perf: options.perf } : {}),
      ...(onEvicted ? { dispose: (value: V, id: string, reason: LRUCache.DisposeReason) => { if (id !== SENTINEL_ID && (reason === 'evict' || reason === 'expire')) onEvicted(value, id); } } : {}),
    });
    this.#cache.set(SENTINEL_ID, sentinel, { ttl: 0 });
  }

  /** Entries held (the sentinel not counted). */
  get size(): number { return this.#cache.size - 1; }

  set(id: string, value: V): void {
    if (id === SENTINEL_ID) return;
    this.#cache.set(id, value);
    this.#cache.get(SENTINEL_ID); // most recently used: never the one evicted
  }

  get(id: string): V | undefined {
    return id === SENTINEL_ID ? undefined : this.#cache.get(id);
  }

  /** The entry for `id`, removed; undefined when there is none (answered, evicted or expired). */
  take(id: string): V | undefined {
    if (id === SENTINEL_ID) return undefined;
    const value = this.#cache.get(id);
    if (value !== undefined) this.#cache.delete(id);
    return value;
  }

  delete(id: string): void {
    if (id !== SENTINEL_ID) this.#cache.delete(id);
  }

  /** Evicts expired entries now (TTLs are otherwise enforced when an entry is looked up). */
  purgeStale(): void {
    this.#cache.purgeStale();
  }

  /** Removes every entry; onEvicted is not called. */
  clear(): void {
    const sentinel = this.#cache.get(SENTINEL_ID)!;
    this.#cache.clear();
    this.#cache.set(SENTINEL_ID, sentinel, { ttl: 0 });
  }
}
