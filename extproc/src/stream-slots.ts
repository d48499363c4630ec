// Admission of ext_proc streams: a server-wide cap on streams held at once, a reserve that keeps one
// busy connection (sidecar) from starving the others, and reaping of streams idle past a deadline so
// abandoned ones cannot pin the cap. Knows nothing of gRPC: the server maps it onto calls.

export interface StreamSlotLimits {
  /** Streams held at once, server-wide; a stream beyond it is refused. */
  maxStreams: number;
  /** A held stream that receives nothing for this long is reaped (0: never). */
  idleMs: number;
}

/** Share of the cap kept for connections holding few streams (the last 10 % of slots). */
export const RESERVE_FRACTION = 0.1;
/** How many light connections the reserve is sized for: a connection holding fewer than
 *  reserve / this many streams may use it. */
const RESERVE_CONNECTIONS = 64;

export interface StreamSlot {
  /** The stream received a message: it is not idle. */
  touch(): void;
  /** The stream closed; idempotent. */
  release(): void;
}

interface HeldSlot extends StreamSlot {
  readonly connection: string;
  lastActive: number;
  readonly onIdle: () => void;
}

export class StreamSlots {
  readonly #limits: StreamSlotLimits;
  readonly #now: () => number;
  readonly #reserve: number;
  readonly #lightBelow: number;
  readonly #held = new Set<HeldSlot>();
  readonly #perConnection = new Map<string, number>();
  #refused = 0;
  #reaped = 0;

  constructor(limits: StreamSlotLimits, now: () => number = Date.now) {
    if (!Number.isInteger(limits.maxStreams) || limits.maxStreams < 1) throw new Error('meshward: maxStreams must be an integer >= 1');
    if (!Number.isFinite(limits.idleMs) || limits.idleMs < 0) throw new Error('meshward: idleMs must be >= 0');
    this.#limits = limits;
    this.#now = now;
    this.#reserve = Math.floor(limits.maxStreams * RESERVE_FRACTION);
    this.#lightBelow = Math.max(1, Math.ceil(this.#reserve / RESERVE_CONNECTIONS));
  }

  get held(): number { return this.#held.size; }
  /** Streams refused since start (over the cap). */
  get refused(): number { return this.#refused; }
  /** Streams reaped since start (idle past the deadline). */
  get reaped(): number { return this.#reaped; }
  /** Connections currently holding at least one stream. */
  get connections(): number { return this.#perConnection.size; }

  /** A slot for a new stream on `connection`, or undefined when it must be refused. `onIdle` runs
   *  (once) if the reaper finds the stream idle; it must end the stream, which releases the slot. */
  acquire(connection: string, onIdle: () => void): StreamSlot | undefined {
    const total = this.#held.size;
    const mine = this.#perConnection.get(connection) ?? 0;
    // The last `reserve` slots go only to connections holding few streams: a flood through busy
    // connections stops short of the cap, so every other sidecar still gets its requests in.
    const limit = mine < this.#lightBelow ? this.#limits.maxStreams : this.#limits.maxStreams - this.#reserve;
    if (total >= limit) {
      this.#refused++;
      return undefined;
    }
    this.#perConnection.set(connection, mine + 1);
    let released = false;
    const slot: HeldSlot = {
      connection,
      lastActive: this.#now(),
      onIdle,
      touch: () => { slot.lastActive = this.#now(); },
      release: () => {
        if (released) return;
        released = true;
        this.#held.delete(slot);
        const left = (this.#perConnection.get(connection) ?? 1) - 1;
        if (left <= 0) this.#perConnection.delete(connection);
        else this.#perConnection.set(connection, left);
      },
    };
    this.#held.add(slot);
    return slot;
  }

  /** Calls onIdle of every stream idle past the deadline; returns how many. Run periodically. */
  reapIdle(): number {
    if (this.#limits.idleMs === 0) return 0;
    const cutoff = this.#now() - this.#limits.idleMs;
    const idle = [...this.#held].filter((s) => s.lastActive <= cutoff);
    for (const slot of idle) {
      this.#reaped++;
      slot.release();
      slot.onIdle();
    }
    return idle.length;
  }
}
