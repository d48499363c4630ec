// A small, bounded JSON reader over raw bytes (plugin configuration, JWT payloads).
// AssemblyScript has no exceptions (a throw is a trap), so every error path returns null and
// leaves a reason in `lastError`; input size is bounded by callers and nesting by MAX_DEPTH.

export const enum Kind { Null = 0, Bool = 1, Number = 2, String = 3, Array = 4, Object = 5 }

const MAX_DEPTH = 32;

export class JValue {
  kind: Kind = Kind.Null;
  num: f64 = 0;
  bool: bool = false;
  str: string = "";
  items: JValue[] | null = null;
  keys: string[] | null = null;

  /** Member of an object, or null (also when this is not an object). Last duplicate wins, as in JSON.parse. */
  get(key: string): JValue | null {
    const keys = this.keys;
    const items = this.items;
    if (this.kind != Kind.Object || keys === null || items === null) return null;
    for (let i = keys.length - 1; i >= 0; i--) if (keys[i] == key) return items[i];
    return null;
  }
}

export let lastError: string = "";

let src: usize = 0;
let end: usize = 0;
let pos: usize = 0;
let scratch: usize = 0;
let scratchCap: usize = 0;

function fail(reason: string): JValue | null {
  if (lastError.length == 0) lastError = reason + " at byte " + (<u32>(pos - src)).toString();
  return null;
}

function skipWs(): void {
  while (pos < end) {
    const c = load<u8>(pos);
    if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) return;
    pos++;
  }
}

/** Parses exactly one JSON value spanning [ptr, ptr+len). Null on any error (see lastError). */
export function parse(ptr: usize, len: usize): JValue | null {
  src = ptr;
  pos = ptr;
  end = ptr + len;
  lastError = "";
  const v = value(0);
  if (v === null) return null;
  skipWs();
  if (pos != end) return fail("trailing data");
  return v;
}

export function parseString(text: string): JValue | null {
  const bytes = String.UTF8.encode(text);
  return parse(changetype<usize>(bytes), <usize>bytes.byteLength);
}

function value(depth: i32): JValue | null {
  if (depth > MAX_DEPTH) return fail("nesting deeper than 32");
  skipWs();
  if (pos >= end) return fail("unexpected end");
  const c = load<u8>(pos);
  if (c == 0x7b) return collection(depth, true);
  if (c == 0x5b) return collection(depth, false);
  if (c == 0x22) {
    const s = readString();
    if (s === null) return null;
    const v = new JValue();
    v.kind = Kind.String;
    v.str = s;
    return v;
  }
  if (c == 0x74) return literal("true", Kind.Bool, true);
  if (c == 0x66) return literal("false", Kind.Bool, false);
  if (c == 0x6e) return literal("null", Kind.Null, false);
  if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return number();
  return fail("unexpected character");
}

function literal(word: string, kind: Kind, b: bool): JValue | null {
  const n = <usize>word.length;
  if (pos + n > end) return fail("unexpected end");
  for (let i: usize = 0; i < n; i++) {
    if (<i32>load<u8>(pos + i) != word.charCodeAt(<i32>i)) return fail("invalid literal");
  }
  pos += n;
  const v = new JValue();
  v.kind = kind;
  v.bool = b;
  return v;
}

function number(): JValue | null {
  const start = pos;
  if (load<u8>(pos) == 0x2d) pos++;
  let digits = 0;
  while (pos < end) {
    const c = load<u8>(pos);
    if ((c >= 0x30 && c <= 0x39) || c == 0x2e || c == 0x65 || c == 0x45 || c == 0x2b || c == 0x2d) { pos++; digits++; } else break;
  }
  if (digits == 0 || digits > 64) return fail("invalid number");
  const text = String.UTF8.decodeUnsafe(start, pos - start);
  const n = parseFloat(text);
  if (isNaN(n)) return fail("invalid number");
  const v = new JValue();
  v.kind = Kind.Number;
  v.num = n;
  return v;
}

function hexValue(c: u32): i32 {
  if (c >= 0x30 && c <= 0x39) return <i32>(c - 0x30);
  if (c >= 0x61 && c <= 0x66) return <i32>(c - 0x61 + 10);
  if (c >= 0x41 && c <= 0x46) return <i32>(c - 0x41 + 10);
  return -1;
}

function ensureScratch(n: usize): void {
  if (n <= scratchCap) return;
  let next = scratchCap == 0 ? <usize>256 : scratchCap;
  while (next < n) next *= 2;
  scratch = scratch == 0 ? heap.alloc(next) : heap.realloc(scratch, next);
  scratchCap = next;
}

function readString(): string | null {
  pos++; // opening quote
  const start = pos;
  // Fast path: no escapes, decode in place.
  while (pos < end) {
    const c = load<u8>(pos);
    if (c == 0x22) { const s = String.UTF8.decodeUnsafe(start, pos - start); pos++; return s; }
    if (c == 0x5c) break;
    if (c < 0x20) { fail("control character in string"); return null; }
    pos++;
  }
  // Slow path: copy with escapes resolved into scratch (UTF-8), then decode once.
  ensureScratch(end - start);
  let n: usize = pos - start;
  memory.copy(scratch, start, n);
  while (pos < end) {
    const c = load<u8>(pos);
    if (c == 0x22) { pos++; return String.UTF8.decodeUnsafe(scratch, n); }
    if (c < 0x20) { fail("control character in string"); return null; }
    if (c != 0x5c) { store<u8>(scratch + n, c); n++; pos++; continue; }
    if (pos + 1 >= end) break;
    const e = load<u8>(pos + 1);
    pos += 2;
    let out: i32 = -1;
    if (e == 0x22 || e == 0x5c || e == 0x2f) out = e;
    else if (e == 0x62) out = 8;
    else if (e == 0x66) out = 12;
    else if (e == 0x6e) out = 10;
    else if (e == 0x72) out = 13;
    else if (e == 0x74) out = 9;
    else if (e == 0x75) {
      if (pos + 4 > end) break;
      let cp: i32 = 0;
      for (let i: usize = 0; i < 4; i++) {
        const h = hexValue(load<u8>(pos + i));
        if (h < 0) { fail("invalid \\u escape"); return null; }
        cp = (cp << 4) | h;
      }
      pos += 4;
      // \uXXXX is at most 3 UTF-8 bytes, never more than the 6 escape bytes it replaces.
      if (cp < 0x80) { store<u8>(scratch + n, <u8>cp); n++; }
      else if (cp < 0x800) { store<u8>(scratch + n, <u8>(0xc0 | (cp >> 6))); store<u8>(scratch + n + 1, <u8>(0x80 | (cp & 63))); n += 2; }
      else {
        store<u8>(scratch + n, <u8>(0xe0 | (cp >> 12)));
        store<u8>(scratch + n + 1, <u8>(0x80 | ((cp >> 6) & 63)));
        store<u8>(scratch + n + 2, <u8>(0x80 | (cp & 63)));
        n += 3;
      }
      continue;
    }
    if (out < 0) { fail("invalid escape"); return null; }
    store<u8>(scratch + n, <u8>out);
    n++;
  }
  fail("unterminated string");
  return null;
}

/** Array or object (keyed): one loop; an object reads `"key":` before each value. */
function collection(depth: i32, keyed: bool): JValue | null {
  const close: u8 = keyed ? 0x7d : 0x5d;
  pos++;
  const keys: string[] | null = keyed ? new Array<string>() : null;
  const items = new Array<JValue>();
  skipWs();
  if (pos < end && load<u8>(pos) == close) { pos++; return container(keyed ? Kind.Object : Kind.Array, items, keys); }
  while (true) {
    if (keys !== null) {
      skipWs();
      if (pos >= end || load<u8>(pos) != 0x22) return fail("expected object key");
      const k = readString();
      if (k === null) return null;
      skipWs();
      if (pos >= end || load<u8>(pos) != 0x3a) return fail("expected :");
      pos++;
      keys.push(k);
    }
    const v = value(depth + 1);
    if (v === null) return null;
    items.push(v);
    skipWs();
    if (pos >= end) return fail(keyed ? "unterminated object" : "unterminated array");
    const c = load<u8>(pos);
    pos++;
    if (c == close) return container(keyed ? Kind.Object : Kind.Array, items, keys);
    if (c != 0x2c) return fail(keyed ? "expected , or }" : "expected , or ]");
  }
  return null;
}

function container(kind: Kind, items: JValue[], keys: string[] | null): JValue {
  const v = new JValue();
  v.kind = kind;
  v.items = items;
  v.keys = keys;
  return v;
}
