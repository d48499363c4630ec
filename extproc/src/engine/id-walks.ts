// Guessable ID walks: a caller stepping through IDs nobody gave it. An ID is read as a counter in
// three radices (the last run of decimal digits, a trailing hex run, a trailing base-36 run), with the
// rest of the ID (prefix, suffix, width) as the counter's shape; so ORD-000123, inv_2024_0042, 0x1f,
// 7fa3 and plain 104 are all counters and a walk is consecutive values of one shape. Letters-only
// names visited in strictly sorted order are a wordlist walk, a weaker signal that needs more names.

export type Radix = 10 | 16 | 36;

export interface CounterReading {
  /** Radix, prefix, width and suffix: IDs of one shape differ only in the counter. */
  shape: string;
  value: number;
  radix: Radix;
  /** The shape for people, e.g. "ORD-{n:6}" or "{hex:4}". */
  pattern: string;
}

/** Longer counters do not fit a double exactly (and no walk gets that far). */
const MAX_DIGITS: Record<Radix, number> = { 10: 15, 16: 13, 36: 10 };
const RADIX_NAME: Record<Radix, string> = { 10: 'n', 16: 'hex', 36: 'b36' };
const MAX_ID_CHARS = 64;
const NAME = /^[A-Za-z][A-Za-z._-]{1,31}$/;

function reading(id: string, start: number, end: number, radix: Radix, fixedWidth: boolean): CounterReading | undefined {
  const digits = id.slice(start, end);
  if (digits.length === 0 || digits.length > MAX_DIGITS[radix]) return undefined;
  const value = parseInt(digits, radix);
  if (!Number.isSafeInteger(value)) return undefined;
  const prefix = id.slice(0, start);
  const suffix = id.slice(end);
  const width = fixedWidth ? String(digits.length) : '';
  return {
    // Letter case is not part of a counter's shape: 0x00ff and 0x00FF are one ID space.
    shape: `${radix}\u0000${prefix.toLowerCase()}\u0000${width}\u0000${suffix.toLowerCase()}`,
    value,
    radix,
    pattern: `${prefix}{${RADIX_NAME[radix]}${width ? `:${width}` : ''}}${suffix}`,
  };
}

function trailingRun(id: string, chars: RegExp): number {
  let start = id.length;
  while (start > 0 && chars.test(id[start - 1]!)) start--;
  return start;
}

/** The ways an ID can be a counter (none for long or hashed IDs). */
export function counterReadings(id: string): CounterReading[] {
  if (id.length === 0 || id.length > MAX_ID_CHARS) return [];
  const out: CounterReading[] = [];
  // Decimal: the last digit run anywhere; zero padding makes the width part of the shape.
  const decimal = /(\d+)(?!.*\d)/.exec(id);
  if (decimal !== null) {
    const r = reading(id, decimal.index, decimal.index + decimal[1]!.length, 10, decimal[1]!.length > 1 && decimal[1]!.startsWith('0'));
    if (r !== undefined) out.push(r);
  }
  // Hex and base 36: a trailing run, fixed width (such counters are usually padded).
  for (const [radix, chars] of [[16, /[0-9a-f]/i], [36, /[0-9a-z]/i]] as const) {
    const r = reading(id, trailingRun(id, chars), id.length, radix, true);
    if (r !== undefined) out.push(r);
  }
  return out;
}

/** Length of the run of consecutive values through v. */
export function longestRunThrough(values: ReadonlySet<number>, v: number): number {
  let lo = v; while (values.has(lo - 1)) lo--;
  let hi = v; while (values.has(hi + 1)) hi++;
  return hi - lo + 1;
}

/** Recent counter readings of one caller's unexplained IDs, bounded; reports the longest walk. */
export class CounterWalks {
  readonly #readings: CounterReading[] = [];
  readonly #capacity: number;

  constructor(capacity: number) { this.#capacity = capacity; }

  /** Remembers the ID's readings; the reading in the longest run of its shape, with that run. */
  observe(id: string): { reading: CounterReading; run: number } | undefined {
    let best: { reading: CounterReading; run: number } | undefined;
    for (const r of counterReadings(id)) {
      const values = new Set<number>();
      for (const m of this.#readings) if (m.shape === r.shape) values.add(m.value);
      if (!values.has(r.value)) {
        values.add(r.value);
        this.#readings.push(r);
        if (this.#readings.length > this.#capacity) this.#readings.shift();
      }
      const run = longestRunThrough(values, r.value);
      if (best === undefined || run > best.run) best = { reading: r, run };
    }
    return best;
  }
}

export function isName(id: string): boolean {
  return NAME.test(id);
}

/** Per collection, the caller's current run of names in strictly ascending order (bounded). */
export class SortedNameWalks {
  readonly #runs = new Map<string, { last: string; run: number }>();
  readonly #collections: number;

  constructor(collections: number) { this.#collections = collections; }

  /** Extends or restarts the collection's run with this name; the run's length (0: not a name). */
  observe(collection: string, id: string): number {
    if (!isName(id)) return 0;
    const name = id.toLowerCase();
    const previous = this.#runs.get(collection);
    const run = previous !== undefined && name > previous.last ? previous.run + 1 : 1;
    this.#runs.delete(collection);
    this.#runs.set(collection, { last: name, run });
    if (this.#runs.size > this.#collections) this.#runs.delete(this.#runs.keys().next().value!);
    return run;
  }
}
