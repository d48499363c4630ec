// Bounded state for detectors. Every map is an lru-cache with a hard cap on entries and bytes and a
// TTL, measured on the engine's event clock (the time of the latest request), so a replayed capture
// ages state exactly as live traffic did and a cardinality attack only evicts, never grows memory.
import { LRUCache } from 'lru-cache';
import type { StateCaps } from './policy-settings.ts';
import type { PersistOptions, StateRegistry } from './state-snapshot.ts';

/** Event time: the latest request time the engine has seen (never goes backwards). */
export class EventClock {
  #now = 0;
  now(): number { return this.#now; }
  advance(time: number): void { if (Number.isFinite(time) && time > this.#now) this.#now = time; }
}

export interface BoundedMapOptions<V = unknown> {
  caps: StateCaps;
  ttlMs: number;
  /** Rough size in bytes of one entry (key + value); defaults to a small constant. */
  sizeOf?: (key: string, value: unknown) => number;
  /** Long-term state: saved and restored across restarts under this stable name (state-snapshot.ts). */
  persist?: PersistOptions<V>;
}

const DEFAULT_ENTRY_BYTES = 256;

/** An lru-cache keyed by string with the caps, TTL and clock every detector uses. */
export function boundedMap<V extends {}>(clock: EventClock, options: BoundedMapOptions<V>): LRUCache<string, V> {
  const sizeOf = options.sizeOf;
  const map = new LRUCache<string, V>({
    max: Math.max(1, options.caps.maxEntries),
    maxSize: Math.max(1, options.caps.maxBytes),
    sizeCalculation: (value, key) => Math.max(1, sizeOf ? sizeOf(key, value) : DEFAULT_ENTRY_BYTES + key.length * 2),
    ttl: Math.max(1, options.ttlMs),
    ttlResolution: 0,
    updateAgeOnGet: false,
    perf: clock,
  });
  const persist = options.persist;
  persist?.registry?.register(persist.name, map, persist.codec, persist.keys);
  return map;
}

/** Moves an entry restored under its saved key (SavedKeys: a keyed hash) to its in-memory key,
 *  keeping its remaining TTL; the entry, or undefined when there is none. */
export function reclaimSaved<V extends {}>(map: LRUCache<string, V>, saved: string, key: string): V | undefined {
  const value = map.get(saved);
  if (value === undefined) return undefined;
  const ttl = map.getRemainingTTL(saved);
  map.delete(saved);
  map.set(key, value, ttl > 0 && Number.isFinite(ttl) ? { ttl } : {});
  return value;
}

/** Parsing for fromJSON: a number (infinite only where allowed), else a clear error. */
function numberField(o: Record<string, unknown> | unknown[], name: string, allowInfinite = false): number {
  const v = (o as Record<string, unknown>)[name];
  if (typeof v !== 'number' || Number.isNaN(v) || (!allowInfinite && !Number.isFinite(v))) throw new Error(`${name} is not a number`);
  return v;
}

function recordOf(json: unknown, what: string): Record<string, unknown> {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${what}: not an object`);
  return json as Record<string, unknown>;
}

/** Events per key in a sliding window, in a fixed number of buckets (constant memory per key). */
export class WindowCount {
  static readonly BUCKETS = 12;
  readonly #width: number;
  // Plain arrays: small typed arrays get off-heap backing stores, far dearer to allocate per key.
  readonly #starts: number[] = new Array<number>(WindowCount.BUCKETS).fill(-Infinity);
  readonly #counts: number[] = new Array<number>(WindowCount.BUCKETS).fill(0);

  constructor(windowMs: number) {
    this.#width = Math.max(1, windowMs / WindowCount.BUCKETS);
  }

  add(time: number, n = 1): number {
    const start = Math.floor(time / this.#width) * this.#width;
    const i = Math.floor(time / this.#width) % WindowCount.BUCKETS;
    if (this.#starts[i] !== start) { this.#starts[i] = start; this.#counts[i] = 0; }
    this.#counts[i]! += n;
    return this.total(time);
  }

  total(time: number): number {
    const oldest = time - this.#width * WindowCount.BUCKETS;
    let sum = 0;
    for (let i = 0; i < WindowCount.BUCKETS; i++) if (this.#starts[i]! > oldest) sum += this.#counts[i]!;
    return sum;
  }

  toJSON(): { windowMs: number; starts: number[]; counts: number[] } {
    return { windowMs: this.#width * WindowCount.BUCKETS, starts: [...this.#starts], counts: [...this.#counts] };
  }

  static fromJSON(json: unknown): WindowCount {
    const o = recordOf(json, 'WindowCount');
    const w = new WindowCount(numberField(o, 'windowMs'));
    const { starts, counts } = o;
    if (!Array.isArray(starts) || !Array.isArray(counts) || starts.length !== WindowCount.BUCKETS || counts.length !== WindowCount.BUCKETS) throw new Error('WindowCount: wrong bucket count');
    for (let i = 0; i < WindowCount.BUCKETS; i++) {
      w.#starts[i] = numberField(starts, String(i), true);
      w.#counts[i] = numberField(counts, String(i));
    }
    return w;
  }
}

/** Distinct values seen per key in a sliding window, at most `cap` of them (oldest dropped first). */
export class WindowDistinct {
  readonly #windowMs: number;
  readonly #cap: number;
  readonly #lastSeen = new Map<string, number>();

  constructor(windowMs: number, cap = 256) {
    this.#windowMs = windowMs;
    this.#cap = cap;
  }

  /** Records the value and returns how many distinct values the window holds. */
  add(value: string, time: number): number {
    this.#lastSeen.delete(value);
    this.#lastSeen.set(value, time);
    this.#prune(time);
    return this.#lastSeen.size;
  }

  has(value: string): boolean { return this.#lastSeen.has(value); }

  size(time: number): number { this.#prune(time); return this.#lastSeen.size; }

  values(): IterableIterator<string> { return this.#lastSeen.keys(); }

  toJSON(): { windowMs: number; cap: number; lastSeen: [string, number][] } {
    return { windowMs: this.#windowMs, cap: this.#cap, lastSeen: [...this.#lastSeen] };
  }

  static fromJSON(json: unknown): WindowDistinct {
    const o = recordOf(json, 'WindowDistinct');
    const d = new WindowDistinct(numberField(o, 'windowMs'), numberField(o, 'cap'));
    if (!Array.isArray(o.lastSeen)) throw new Error('WindowDistinct: lastSeen is not a list');
    for (const pair of o.lastSeen as unknown[]) {
      if (!Array.isArray(pair) || typeof pair[0] !== 'string') throw new Error('WindowDistinct: malformed value');
      d.#lastSeen.set(pair[0], numberField(pair, '1'));
    }
    return d;
  }

  #prune(time: number): void {
    for (const [v, t] of this.#lastSeen) {
      if (this.#lastSeen.size <= this.#cap && t > time - this.#windowMs) break;
      this.#lastSeen.delete(v);
    }
  }
}

/** Exponentially weighted mean and variance of a series of samples. */
export class Ewma {
  readonly #alpha: number;
  #mean = 0;
  #variance = 0;
  #samples = 0;

  constructor(alpha = 0.2) { this.#alpha = alpha; }

  add(x: number): void {
    if (this.#samples === 0) { this.#mean = x; this.#variance = 0; }
    else {
      const diff = x - this.#mean;
      this.#mean += this.#alpha * diff;
      this.#variance = (1 - this.#alpha) * (this.#variance + this.#alpha * diff * diff);
    }
    this.#samples++;
  }

  get samples(): number { return this.#samples; }
  get mean(): number { return this.#mean; }
  get stddev(): number { return Math.sqrt(this.#variance); }

  toJSON(): { alpha: number; mean: number; variance: number; samples: number } {
    return { alpha: this.#alpha, mean: this.#mean, variance: this.#variance, samples: this.#samples };
  }

  static fromJSON(json: unknown): Ewma {
    const o = recordOf(json, 'Ewma');
    const e = new Ewma(numberField(o, 'alpha'));
    e.#mean = numberField(o, 'mean');
    e.#variance = numberField(o, 'variance');
    e.#samples = numberField(o, 'samples');
    return e;
  }
}

/** Exponentially weighted mean and variance of per-window counts (one baseline per key). */
export class WindowBaseline {
  readonly #windowMs: number;
  #windowStart = -Infinity;
  #current = 0;
  #excluded = false;
  // Not readonly: fromJSON replaces them with the restored ones.
  #stats: Ewma;
  #sliding: WindowCount;

  constructor(windowMs: number, alpha = 0.2) {
    this.#windowMs = windowMs;
    this.#stats = new Ewma(alpha);
    this.#sliding = new WindowCount(windowMs);
  }

  /** Counts events; closes elapsed tumbling windows into the baseline (an idle window counts as
   *  zero, up to a few) and returns the count over the sliding window ending now, so a burst that
   *  straddles a window boundary is still seen whole. */
  add(time: number, n = 1): number {
    const start = Math.floor(time / this.#windowMs) * this.#windowMs;
    if (start !== this.#windowStart) {
      if (this.#windowStart !== -Infinity) {
        if (!this.#excluded) this.#fold(this.#current);
        const idle = Math.min(8, Math.max(0, (start - this.#windowStart) / this.#windowMs - 1));
        for (let i = 0; i < idle; i++) this.#fold(0);
      }
      this.#windowStart = start;
      this.#current = 0;
      this.#excluded = false;
    }
    this.#current += n;
    return this.#sliding.add(time, n);
  }

  /** Keeps the current window out of the baseline: an attack must not teach the baseline that
   *  attacks are normal. */
  excludeCurrentWindow(): void { this.#excluded = true; }

  get windows(): number { return this.#stats.samples; }
  get mean(): number { return this.#stats.mean; }
  get stddev(): number { return this.#stats.stddev; }

  #fold(count: number): void {
    this.#stats.add(count);
  }

  toJSON(): { windowMs: number; windowStart: number; current: number; excluded: boolean; stats: Ewma; sliding: WindowCount } {
    return { windowMs: this.#windowMs, windowStart: this.#windowStart, current: this.#current, excluded: this.#excluded, stats: this.#stats, sliding: this.#sliding };
  }

  /** Takes toJSON()'s shape with `stats` and `sliding` already revived (or as their own JSON). */
  static fromJSON(json: unknown): WindowBaseline {
    const o = recordOf(json, 'WindowBaseline');
    const b = new WindowBaseline(numberField(o, 'windowMs'));
    b.#windowStart = numberField(o, 'windowStart', true);
    b.#current = numberField(o, 'current');
    if (typeof o.excluded !== 'boolean') throw new Error('excluded is not a boolean');
    b.#excluded = o.excluded;
    b.#stats = o.stats instanceof Ewma ? o.stats : Ewma.fromJSON(o.stats);
    b.#sliding = o.sliding instanceof WindowCount ? o.sliding : WindowCount.fromJSON(o.sliding);
    return b;
  }
}

/** How long and how much a service has been observed (the learning period's evidence). */
export interface ServiceHistory { first: number; requests: number }

/** Whether a service's history covers a learning period. */
export function historyCovers(history: ServiceHistory | undefined, time: number, period: { minDurationMs: number; minRequests: number }): boolean {
  return history !== undefined && history.requests > period.minRequests && time - history.first >= period.minDurationMs;
}

/** Per-service learning: when each service was first seen and how many requests it has answered,
 *  observed once per request. Judgements about "new" behaviour wait until this covers the learning
 *  period of the detector making them (each detector and policy profile may have its own). */
export class LearningTracker {
  readonly #firstSeen: LRUCache<string, ServiceHistory>;
  readonly #ttlMs = 7 * 24 * 3600_000;

  constructor(clock: EventClock, caps: StateCaps, registry?: StateRegistry) {
    this.#firstSeen = boundedMap(clock, { caps: { maxEntries: Math.min(caps.maxEntries, 10_000), maxBytes: caps.maxBytes }, ttlMs: this.#ttlMs, persist: { registry, name: 'learning.first-seen' } });
  }

  /** Counts a request to the service; its history including this request (a copy). */
  observe(service: string, time: number): ServiceHistory {
    let s = this.#firstSeen.get(service);
    if (s === undefined) { s = { first: time, requests: 0 }; this.#firstSeen.set(service, s); }
    // A service in use stays known: without the refresh it would start learning again every TTL.
    else if (this.#firstSeen.getRemainingTTL(service) < this.#ttlMs / 2) this.#firstSeen.set(service, s);
    s.requests++;
    return { first: s.first, requests: s.requests };
  }

  history(service: string): ServiceHistory | undefined {
    const s = this.#firstSeen.get(service);
    return s === undefined ? undefined : { first: s.first, requests: s.requests };
  }
}
