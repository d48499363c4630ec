// Bounded state for detectors. Every map is an lru-cache with a hard cap on entries and bytes and a
// TTL, measured on the engine's event clock (the time of the latest request), so a replayed capture
// ages state exactly as live traffic did and a cardinality attack only evicts, never grows memory.
import { LRUCache } from 'lru-cache';
import type { StateCaps } from './policy-settings.ts';

/** Event time: the latest request time the engine has seen (never goes backwards). */
export class EventClock {
  #now = 0;
  now(): number { return this.#now; }
  advance(time: number): void { if (Number.isFinite(time) && time > this.#now) this.#now = time; }
}

export interface BoundedMapOptions {
  caps: StateCaps;
  ttlMs: number;
  /** Rough size in bytes of one entry (key + value); defaults to a small constant. */
  sizeOf?: (key: string, value: unknown) => number;
}

const DEFAULT_ENTRY_BYTES = 256;

/** An lru-cache keyed by string with the caps, TTL and clock every detector uses. */
export function boundedMap<V extends {}>(clock: EventClock, options: BoundedMapOptions): LRUCache<string, V> {
  const sizeOf = options.sizeOf;
  return new LRUCache<string, V>({
    max: Math.max(1, options.caps.maxEntries),
    maxSize: Math.max(1, options.caps.maxBytes),
    sizeCalculation: (value, key) => Math.max(1, sizeOf ? sizeOf(key, value) : DEFAULT_ENTRY_BYTES + key.length * 2),
    ttl: Math.max(1, options.ttlMs),
    ttlResolution: 0,
    updateAgeOnGet: false,
    perf: clock,
  });
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
}

/** Exponentially weighted mean and variance of per-window counts (one baseline per key). */
export class WindowBaseline {
  readonly #windowMs: number;
  #windowStart = -Infinity;
  #current = 0;
  #excluded = false;
  readonly #stats: Ewma;
  readonly #sliding: WindowCount;

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
}

/** Per-service learning: judgements about "new" behaviour wait until the service has been
 *  observed for the learning period and volume. */
export class LearningTracker {
  readonly #firstSeen: LRUCache<string, { first: number; requests: number }>;
  readonly #minDurationMs: number;
  readonly #minRequests: number;

  constructor(clock: EventClock, caps: StateCaps, minDurationMs: number, minRequests: number) {
    this.#firstSeen = boundedMap(clock, { caps: { maxEntries: Math.min(caps.maxEntries, 10_000), maxBytes: caps.maxBytes }, ttlMs: 7 * 24 * 3600_000 });
    this.#minDurationMs = minDurationMs;
    this.#minRequests = minRequests;
  }

  /** Counts a request to the service and says whether its baseline is learned. */
  observe(service: string, time: number): boolean {
    let s = this.#firstSeen.get(service);
    if (s === undefined) { s = { first: time, requests: 0 }; this.#firstSeen.set(service, s); }
    s.requests++;
    return this.learned(service, time);
  }

  learned(service: string, time: number): boolean {
    const s = this.#firstSeen.get(service);
    return s !== undefined && s.requests > this.#minRequests && time - s.first >= this.#minDurationMs;
  }
}
