// A token bucket on the engine's event clock, with the filter's semantics (filter/assembly
// takeToken): it starts full, refills continuously at `ratePerMs` up to `capacity`, and each
// request takes one token; no token = over the limit.
export class TokenBucket {
  readonly #capacity: number;
  readonly #ratePerMs: number;
  #tokens: number;
  #last: number;

  constructor(capacity: number, ratePerMs: number, now: number) {
    this.#capacity = capacity;
    this.#ratePerMs = ratePerMs;
    this.#tokens = capacity;
    this.#last = now;
  }

  /** Takes a token; false when the bucket is empty (the request is over the limit). */
  take(now: number): boolean {
    if (now > this.#last) {
      this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#last) * this.#ratePerMs);
      this.#last = now;
    }
    // Tolerance for refill arithmetic (1/3937 * 3937 is 0.9999999999999999, not 1).
    if (this.#tokens < 1 - 1e-9) return false;
    this.#tokens = Math.max(0, this.#tokens - 1);
    return true;
  }

  /** Whole tokens left, for evidence. */
  get tokens(): number { return Math.floor(this.#tokens); }
}
