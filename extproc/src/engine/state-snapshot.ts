// Snapshots of the detectors' long-term learned state, so a restarted server keeps its baselines
// (call graph, who calls what, ownership, rates, learned contracts) instead of opening a new
// learning window. Maps opt in at creation (boundedMap's `persist`) under a stable name; the
// registry saves each entry with its remaining TTL on the event clock, plus the clock itself, and
// loads them back in recency order. Storage is someone else's job (inventory/detector-state-table.ts):
// this module turns state into rows and rows into state.
import type { LRUCache } from 'lru-cache';
import type { EventClock } from './state.ts';
import { Ewma, WindowBaseline, WindowCount, WindowDistinct } from './state.ts';
import { sha256Hex } from './jwt.ts';
import { KeyedHash } from './keyed-hash.ts';
import { performance } from 'node:perf_hooks';
import { setImmediate } from 'node:timers';

/** Format of a snapshot row. A row of another version is skipped (the map starts empty). A map
 *  whose value shape changes gets a new name (e.g. `bfla.callers.v2`) so old rows are ignored. */
export const STATE_FORMAT_VERSION = 1;
/** The row holding the event clock; restored first so TTLs keep their meaning. */
export const CLOCK_ROW = '@clock';

/** Value <-> JSON for one map's values. decode throws on anything it does not recognise. */
export interface StateCodec<V> {
  encode(value: V): unknown;
  decode(json: unknown): V;
}

/** For maps whose keys must not be saved as they are (raw values that can be secrets): keys are
 *  saved as `saved(key)` (e.g. a keyed hash) and restored entries keep the saved key. */
export interface SavedKeys {
  saved(key: string): string;
  /** Told how many entries a restore loaded (under saved keys). */
  restored?(count: number): void;
}

export interface PersistOptions<V> {
  /** Absent (a detector built outside an engine): the map is not persisted. */
  registry: StateRegistry | undefined;
  name: string;
  /** Default: STRUCTURED_CODEC (plain data, Map, Set and the state.ts window classes). */
  codec?: StateCodec<V>;
  /** Default: keys saved as they are. */
  keys?: SavedKeys;
}

/** One persisted map (or the clock): `state` is JSON text. */
export interface StateRow {
  name: string;
  version: number;
  state: string;
}

export interface SkippedRow {
  name: string;
  reason: string;
}

type Entry = { codec: StateCodec<unknown>; map: LRUCache<string, {}>; keys: SavedKeys | undefined };
/** A saved entry: key, encoded value, remaining TTL on the event clock (ms), size. */
type StoredEntry = [string, unknown, number, number];

interface Shared {
  clock: EventClock;
  live: Map<string, Entry>;
  /** Restored rows no map has claimed yet (a per-namespace profile not yet seen since the restart);
   *  claimed on registration and carried into every snapshot until then. */
  pending: Map<string, { parsed: unknown; savedClock: number }>;
  onSkipped: ((row: SkippedRow) => void) | undefined;
  ids: KeyedHash;
}

/** The engine's persisted maps, by name. Scopes (one per policy profile) share it with a prefix. */
export class StateRegistry {
  // Not readonly: scope() rebinds a fresh view to this registry's tables.
  #shared: Shared;
  #prefix = '';

  constructor(clock: EventClock) {
    this.#shared = { clock, live: new Map(), pending: new Map(), onSkipped: undefined, ids: new KeyedHash() };
  }

  /** Keyed hashing for values persisted maps compare but must never hold raw (object IDs). Its key
   *  is random per process until the server gives the installation's (useKey), before traffic. */
  get ids(): KeyedHash { return this.#shared.ids; }

  /** Where rows that cannot be restored or saved are reported (e.g. a log line). */
  set onSkipped(listener: ((row: SkippedRow) => void) | undefined) { this.#shared.onSkipped = listener; }

  /** A view whose names get a prefix derived from `key` (a policy profile's settings). */
  scope(key: string): StateRegistry {
    const view = new StateRegistry(this.#shared.clock);
    view.#shared = this.#shared;
    view.#prefix = `${this.#prefix}profile:${sha256Hex(key, 16)}/`;
    return view;
  }

  /** Registers a map under `name` (replacing an earlier map of that name) and loads a restored row
   *  for it, if one is waiting. */
  register<V extends {}>(name: string, map: LRUCache<string, V>, codec: StateCodec<V> | undefined, keys?: SavedKeys): void {
    const full = this.#prefix + name;
    const tables = this.#shared;
    const entry: Entry = { codec: (codec ?? STRUCTURED_CODEC) as StateCodec<unknown>, map: map as unknown as LRUCache<string, {}>, keys };
    tables.live.set(full, entry);
    const waiting = tables.pending.get(full);
    if (waiting === undefined) return;
    tables.pending.delete(full);
    try {
      loadEntries(entry, waiting.parsed, waiting.savedClock);
    } catch (err) {
      map.clear();
      tables.onSkipped?.({ name: full, reason: `unreadable state (${(err as Error).message}); the map starts empty` });
    }
  }

  /** Forgets every registered map (the detectors are being rebuilt and register their new maps);
   *  restored rows not yet claimed stay. */
  forgetMaps(): void { this.#shared.live.clear(); }

  /** Forgets the maps of a scope (its detector set was dropped); their state is not saved again. */
  dropScope(key: string): void {
    const prefix = this.scope(key).#prefix;
    const tables = this.#shared;
    for (const name of [...tables.live.keys()]) if (name.startsWith(prefix)) tables.live.delete(name);
  }

  /** Every registered map and the clock as rows (plus restored rows not yet claimed). A map that
   *  cannot be encoded is reported and left out, never thrown. Synchronous: for shutdown and tests. */
  snapshot(): StateRow[] {
    const rows: StateRow[] = [];
    for (const _ of this.#build(rows)) { /* run to the end */ }
    return rows;
  }

  /** The same rows, built in slices of about `sliceMs` of work with the event loop free in between:
   *  with every map full (50,000 entries each) a snapshot costs seconds of CPU, which must not
   *  stall the requests waiting for decisions. */
  async snapshotAsync(sliceMs = 4): Promise<StateRow[]> {
    const rows: StateRow[] = [];
    let sliceStart = performance.now();
    for (const _ of this.#build(rows)) {
      if (performance.now() - sliceStart < sliceMs) continue;
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
    return rows;
  }

  /** Appends the rows to `out`, pausing (yield) after each entry. Maps may change between entries:
   *  each entry is read whole, and TTLs are counted from the clock at the start. */
  *#build(out: StateRow[]): Generator<void> {
    const tables = this.#shared;
    const clock = tables.clock.now();
    out.push({ name: CLOCK_ROW, version: STATE_FORMAT_VERSION, state: JSON.stringify(clock) });
    for (const [name, { codec, map, keys }] of [...tables.live]) {
      try {
        // Not lru-cache's dump(): it is quadratic in the entries (15 s for 50,000) and converts
        // ages to wall-clock time. Remaining TTLs on the event clock make downtime age entries
        // once, when live traffic moves the clock on. Least recently used first, as load order.
        const parts: string[] = [];
        for (const key of [...map.rkeys()]) {
          const value = map.peek(key); // peek: saving must not change recency
          const ttl = map.getRemainingTTL(key) + (tables.clock.now() - clock);
          if (value !== undefined && ttl > 0) parts.push(JSON.stringify([keys ? keys.saved(key) : key, codec.encode(value), ttl, map.info(key)?.size ?? 0] satisfies StoredEntry));
          yield;
        }
        out.push({ name, version: STATE_FORMAT_VERSION, state: `[${parts.join(',')}]` });
      } catch (err) {
        tables.onSkipped?.({ name, reason: `not saved (${(err as Error).message})` });
      }
    }
    // Unclaimed rows are saved again with their TTLs shortened by the time since they were saved;
    // once every entry has expired the row is dropped.
    for (const [name, { parsed, savedClock }] of [...tables.pending]) {
      if (!Array.isArray(parsed)) continue; // claiming it would fail: not worth keeping
      const elapsed = clock - savedClock;
      const entries = (parsed as unknown[]).filter((e) => Array.isArray(e) && typeof e[2] === 'number' && e[2] > elapsed)
        .map((e) => { const copy = [...(e as unknown[])]; copy[2] = (copy[2] as number) - elapsed; return copy; });
      if (entries.length === 0) { tables.pending.delete(name); continue; }
      out.push({ name, version: STATE_FORMAT_VERSION, state: JSON.stringify(entries) });
    }
  }

  /** Restores rows (clock first). Rows of another version or with corrupt JSON are skipped and
   *  reported; maps not registered yet keep their row until they are. */
  restore(rows: readonly StateRow[]): { restored: number; skipped: SkippedRow[] } {
    const tables = this.#shared;
    const skipped: SkippedRow[] = [];
    const skip = (row: SkippedRow): void => { skipped.push(row); tables.onSkipped?.(row); };
    const usable: { row: StateRow; parsed: unknown }[] = [];
    for (const row of rows) {
      if (row.version !== STATE_FORMAT_VERSION) { skip({ name: row.name, reason: `format version ${row.version}, this server reads ${STATE_FORMAT_VERSION}; the map starts empty` }); continue; }
      try {
        usable.push({ row, parsed: JSON.parse(row.state) as unknown });
      } catch (err) {
        skip({ name: row.name, reason: `corrupt JSON (${(err as Error).message}); the map starts empty` });
      }
    }
    let restored = 0;
    // TTLs are remaining times on the saved clock: without it no entry's age is known.
    const clockRow = usable.find((u) => u.row.name === CLOCK_ROW);
    const time = clockRow?.parsed;
    if (typeof time !== 'number' || !Number.isFinite(time) || time <= 0) {
      for (const { row } of usable) skip({ name: row.name, reason: row.name === CLOCK_ROW ? 'not a time; nothing restored' : 'no saved clock to age it by; the map starts empty' });
      return { restored, skipped };
    }
    tables.clock.advance(time);
    restored++;
    for (const { row, parsed } of usable) {
      if (row.name === CLOCK_ROW) continue;
      const entry = tables.live.get(row.name);
      if (entry === undefined) { tables.pending.set(row.name, { parsed, savedClock: time }); restored++; continue; }
      try {
        loadEntries(entry, parsed, time);
        restored++;
      } catch (err) {
        entry.map.clear();
        skip({ name: row.name, reason: `unreadable state (${(err as Error).message}); the map starts empty` });
      }
    }
    return { restored, skipped };
  }
}

/** Decodes every entry first (a bad one leaves the map untouched), then sets them in saved order,
 *  their remaining TTLs counted from `savedClock`, the event time of the snapshot. */
function loadEntries(entry: Entry, parsed: unknown, savedClock: number): void {
  if (!Array.isArray(parsed)) throw new Error('not a list of entries');
  const decoded: { key: string; value: {}; ttl: number; size: number }[] = [];
  for (const item of parsed as unknown[]) {
    if (!Array.isArray(item) || item.length !== 4) throw new Error('malformed entry');
    const [key, value, ttl, size] = item as unknown[];
    if (typeof key !== 'string' || !isNumber(ttl) || ttl <= 0 || !isNumber(size) || size < 0) throw new Error('malformed entry');
    const v = entry.codec.decode(value);
    if (v === undefined || v === null) throw new Error('empty value');
    decoded.push({ key, value: v, ttl, size });
  }
  entry.map.clear();
  for (const d of decoded) entry.map.set(d.key, d.value, { ttl: d.ttl, start: savedClock, ...(d.size > 0 ? { size: d.size } : {}) });
  entry.keys?.restored?.(decoded.length);
}

function isNumber(v: unknown): v is number { return typeof v === 'number' && Number.isFinite(v); }

/** Classes a persisted value may hold; each has toJSON() and a static fromJSON(). */
const CLASSES = { WindowBaseline, Ewma, WindowCount, WindowDistinct } as const;
type ClassName = keyof typeof CLASSES;
const MAX_DEPTH = 32;

/** JSON for detector values: every non-primitive is a one-key tagged object, so no value (user
 *  strings included) is ever mistaken for a tag. Unknown classes and tags throw. */
export const STRUCTURED_CODEC: StateCodec<unknown> = {
  encode: (value) => encodeValue(value, 0),
  decode: (json) => decodeValue(json, 0),
};

function encodeValue(v: unknown, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new Error('value nested too deeply');
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (v === undefined) return { u: 0 };
  if (typeof v === 'number') return Number.isFinite(v) && !Object.is(v, -0) ? v : { n: Object.is(v, -0) ? '-0' : String(v) };
  if (typeof v !== 'object') throw new Error(`cannot persist a ${typeof v}`);
  if (Array.isArray(v)) return { a: v.map((x) => encodeValue(x, depth + 1)) };
  if (v instanceof Map) return { m: [...v].map(([k, x]) => [encodeValue(k, depth + 1), encodeValue(x, depth + 1)]) };
  if (v instanceof Set) return { s: [...v].map((x) => encodeValue(x, depth + 1)) };
  for (const name of Object.keys(CLASSES) as ClassName[]) {
    if (v instanceof CLASSES[name]) return { c: name, v: encodeValue((v as { toJSON(): unknown }).toJSON(), depth + 1) };
  }
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) throw new Error(`cannot persist a ${(v as object).constructor?.name ?? 'class instance'}`);
  return { o: Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encodeValue(x, depth + 1)])) };
}

function decodeValue(j: unknown, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new Error('value nested too deeply');
  if (j === null || typeof j === 'string' || typeof j === 'boolean' || typeof j === 'number') return j;
  if (typeof j !== 'object' || Array.isArray(j)) throw new Error('untagged value');
  const t = j as Record<string, unknown>;
  const keys = Object.keys(t);
  const tag = keys[0];
  if (tag === 'c' && keys.length === 2 && typeof t.c === 'string' && Object.hasOwn(CLASSES, t.c)) {
    return CLASSES[t.c as ClassName].fromJSON(decodeValue(t.v, depth + 1));
  }
  if (keys.length !== 1) throw new Error('malformed tagged value');
  const body = t[tag!];
  switch (tag) {
    case 'u': return undefined;
    case 'n':
      if (body === 'Infinity') return Infinity;
      if (body === '-Infinity') return -Infinity;
      if (body === 'NaN') return NaN;
      if (body === '-0') return -0;
      break;
    case 'a': if (Array.isArray(body)) return body.map((x) => decodeValue(x, depth + 1)); break;
    case 's': if (Array.isArray(body)) return new Set(body.map((x) => decodeValue(x, depth + 1))); break;
    case 'm':
      if (Array.isArray(body)) {
        return new Map(body.map((pair) => {
          if (!Array.isArray(pair) || pair.length !== 2) throw new Error('malformed map entry');
          return [decodeValue(pair[0], depth + 1), decodeValue(pair[1], depth + 1)];
        }));
      }
      break;
    case 'o':
      if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
        return Object.fromEntries(Object.entries(body).map(([k, x]) => [k, decodeValue(x, depth + 1)]));
      }
      break;
  }
  throw new Error(`unknown tag ${JSON.stringify(tag)}`);
}
