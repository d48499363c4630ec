// Server-wide budget for body bytes held in memory for inspection. Each stream's body is capped
// (maxMessageBytes), but thousands of held streams times that cap exceed the container's memory
// limit; this bounds the sum, request and response bodies alike. A body that does not fit is not
// inspected (the policy's spec.content.overload decides whether its request or response passes).
// Knows nothing of gRPC or the engine.

/** Bytes of one kept body, returned to the budget when nothing holds it any more (a request body:
 *  its stream ended; a response body: answered, or its stream ended first). */
export interface BodyLease {
  readonly bytes: number;
  /** Idempotent. */
  release(): void;
}

/** At most one "bodies over budget" log line per this interval. */
export const REPORT_INTERVAL_MS = 10_000;

export class BodyBudget {
  readonly maxBytes: number;
  #held = 0;
  #leases = 0;
  #overBudget = 0;
  #reportedAt = -Infinity;
  #reportedCount = 0;

  constructor(maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new Error('meshward: body budget must be an integer >= 1 byte');
    this.maxBytes = maxBytes;
  }

  /** Body bytes held right now. */
  get held(): number { return this.#held; }
  /** Leases not yet released. */
  get leases(): number { return this.#leases; }
  /** Bodies left uninspected since start because they did not fit. */
  get overBudget(): number { return this.#overBudget; }

  /** Bodies over budget since the last report, when one is due (at most one per REPORT_INTERVAL_MS, so
   *  an overload writes one log line, not one per request); else undefined. */
  reportDue(now: number): number | undefined {
    if (this.#overBudget === this.#reportedCount || now - this.#reportedAt < REPORT_INTERVAL_MS) return undefined;
    const count = this.#overBudget - this.#reportedCount;
    this.#reportedAt = now;
    this.#reportedCount = this.#overBudget;
    return count;
  }

  /** A lease for `bytes`, or undefined (counted) when they would take the held total past the budget. */
  reserve(bytes: number): BodyLease | undefined {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new Error(`meshward: body size must be a non-negative integer, got ${bytes}`);
    if (this.#held + bytes > this.maxBytes) {
      this.#overBudget++;
      return undefined;
    }
    this.#held += bytes;
    this.#leases++;
    let released = false;
    return {
      bytes,
      release: () => {
        if (released) return;
        released = true;
        this.#held -= bytes;
        this.#leases--;
      },
    };
  }
}

/** Budget default, split against the chart's 1536Mi limit: V8 heap 768 MiB (--max-old-space-size,
 *  half the limit), kept bodies 256 MiB, the same again for bodies still in flight as received gRPC
 *  frames, and 256 MiB for decode workers, native buffers and code. */
export const DEFAULT_MAX_BUFFERED_BODY_MIB = 256;
