// Route templating on raw path bytes, mirroring the baseline rules of extproc/src/engine/operation.ts
// exactly (per segment, first match wins: digits -> {id}, UUID -> {uuid}, 16+ hex with a digit ->
// {hex}, email -> {email}, date/date-time -> {date}, 20+ base64-like chars with digit, upper and lower
// -> {token}), plus an exact template table pushed by the server. One pass over the bytes into a
// reused buffer: cost is linear in the path length, no allocation per request once grown.
import { ByteBuffer } from "./bytes";

export const out = new ByteBuffer();

const PH_ID = String.UTF8.encode("{id}");
const PH_UUID = String.UTF8.encode("{uuid}");
const PH_HEX = String.UTF8.encode("{hex}");
const PH_EMAIL = String.UTF8.encode("{email}");
const PH_DATE = String.UTF8.encode("{date}");
const PH_TOKEN = String.UTF8.encode("{token}");

function isDigit(c: u32): bool { return c >= 0x30 && c <= 0x39; }
function isUpper(c: u32): bool { return c >= 0x41 && c <= 0x5a; }
function isLower(c: u32): bool { return c >= 0x61 && c <= 0x7a; }
function isHex(c: u32): bool { return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46); }
/** JS regex \s over ASCII (segments are raw bytes; non-ASCII spaces do not occur in valid paths). */
function isSpace(c: u32): bool { return c == 0x20 || (c >= 0x09 && c <= 0x0d); }

/** The placeholder a segment becomes, or null to keep it verbatim. */
function placeholder(p: usize, n: usize): ArrayBuffer | null {
  if (n == 0) return null;
  let digits: u32 = 0, upper: u32 = 0, lower: u32 = 0, hex: u32 = 0, tokenChars: u32 = 0;
  for (let i: usize = 0; i < n; i++) {
    const c = <u32>load<u8>(p + i);
    if (isDigit(c)) digits++;
    else if (isUpper(c)) upper++;
    else if (isLower(c)) lower++;
    if (isHex(c)) hex++;
    if (isDigit(c) || isUpper(c) || isLower(c) || c == 0x2b || c == 0x3d || c == 0x5f || c == 0x2d) tokenChars++;
  }
  const len = <u32>n;
  if (digits == len) return PH_ID;
  if (n == 36 && isUuid(p)) return PH_UUID;
  if (hex == len && n >= 16 && digits > 0) return PH_HEX;
  if (isEmail(p, n)) return PH_EMAIL;
  if (isDate(p, n)) return PH_DATE;
  if (tokenChars == len && n >= 20 && digits > 0 && upper > 0 && lower > 0) return PH_TOKEN;
  return null;
}

function isUuid(p: usize): bool {
  for (let i: usize = 0; i < 36; i++) {
    const c = <u32>load<u8>(p + i);
    if (i == 8 || i == 13 || i == 18 || i == 23) { if (c != 0x2d) return false; }
    else if (!isHex(c)) return false;
  }
  return true;
}

/** /^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$/ */
function isEmail(p: usize, n: usize): bool {
  let at: isize = -1;
  let lastDot: isize = -1;
  for (let i: usize = 0; i < n; i++) {
    const c = <u32>load<u8>(p + i);
    if (isSpace(c)) return false;
    if (c == 0x40) { if (at >= 0) return false; at = <isize>i; }
    else if (c == 0x2e) lastDot = <isize>i;
  }
  if (at < 1 || lastDot < at + 2) return false;
  const tld = <isize>n - lastDot - 1;
  if (tld < 2) return false;
  for (let i = lastDot + 1; i < <isize>n; i++) {
    const c = <u32>load<u8>(p + <usize>i);
    if (!isUpper(c) && !isLower(c)) return false;
  }
  return true;
}

function digitsAt(p: usize, n: usize, from: usize, count: usize): bool {
  if (from + count > n) return false;
  for (let i: usize = 0; i < count; i++) if (!isDigit(<u32>load<u8>(p + from + i))) return false;
  return true;
}

function byteAt(p: usize, n: usize, i: usize): u32 { return i < n ? <u32>load<u8>(p + i) : 0xffffffff; }

/** /^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?)?$/ */
function isDate(p: usize, n: usize): bool {
  if (n < 10 || !digitsAt(p, n, 0, 4) || byteAt(p, n, 4) != 0x2d || !digitsAt(p, n, 5, 2) ||
    byteAt(p, n, 7) != 0x2d || !digitsAt(p, n, 8, 2)) return false;
  if (n == 10) return true;
  const t = byteAt(p, n, 10);
  if (t != 0x54 && t != 0x74 && t != 0x20) return false;
  if (!digitsAt(p, n, 11, 2) || byteAt(p, n, 13) != 0x3a || !digitsAt(p, n, 14, 2)) return false;
  let i: usize = 16;
  if (byteAt(p, n, i) == 0x3a) {
    if (!digitsAt(p, n, i + 1, 2)) return false;
    i += 3;
    if (byteAt(p, n, i) == 0x2e) {
      i++;
      const start = i;
      while (i < n && isDigit(<u32>load<u8>(p + i))) i++;
      if (i == start) return false;
    }
  }
  if (i == n) return true;
  const z = byteAt(p, n, i);
  if (z == 0x5a || z == 0x7a) return i + 1 == n;
  if (z != 0x2b && z != 0x2d) return false;
  if (!digitsAt(p, n, i + 1, 2)) return false;
  i += 3;
  if (byteAt(p, n, i) == 0x3a) i++;
  return digitsAt(p, n, i, 2) && i + 2 == n;
}

/** Length of the path part (before '?'). */
export function pathLength(p: usize, n: usize): usize {
  for (let i: usize = 0; i < n; i++) if (load<u8>(p + i) == 0x3f) return i;
  return n;
}

/** Writes the heuristic template of the path [p, p+n) (query excluded) into `out`. */
export function templateInto(p: usize, n: usize): void {
  out.reset();
  const len = pathLength(p, n);
  let start: usize = 0;
  for (let i: usize = 0; i <= len; i++) {
    if (i == len || load<u8>(p + i) == 0x2f) {
      const ph = placeholder(p + start, i - start);
      if (ph !== null) out.append(changetype<usize>(ph), <usize>ph.byteLength);
      else out.append(p + start, i - start);
      if (i < len) out.push(0x2f);
      start = i + 1;
    }
  }
}

// --- Exact template table ----------------------------------------------------------------------

/** One server-pushed template, e.g. "/users/{userId}/orders": literal segments must match exactly. */
export class TemplateEntry {
  method: ArrayBuffer | null = null; // null: any method
  template: ArrayBuffer = new ArrayBuffer(0);
  segments: ArrayBuffer[] = []; // literal bytes, or null-like empty marker for a parameter
  isParam: bool[] = [];
}

export function makeEntry(method: string, template: string): TemplateEntry {
  const e = new TemplateEntry();
  if (method.length > 0) e.method = String.UTF8.encode(method);
  e.template = String.UTF8.encode(template);
  const parts = template.split("/");
  for (let i = 0; i < parts.length; i++) {
    const s = parts[i];
    const param = s.length >= 2 && s.charCodeAt(0) == 0x7b && s.charCodeAt(s.length - 1) == 0x7d;
    e.isParam.push(param);
    e.segments.push(param ? new ArrayBuffer(0) : String.UTF8.encode(s));
  }
  return e;
}

function bytesEqual(a: usize, an: usize, b: ArrayBuffer): bool {
  if (an != <usize>b.byteLength) return false;
  return memory.compare(a, changetype<usize>(b), an) == 0;
}

/** True when the path [p, p+len) (no query) matches the entry segment by segment. */
function matches(e: TemplateEntry, p: usize, len: usize): bool {
  const count = e.segments.length;
  let seg = 0;
  let start: usize = 0;
  for (let i: usize = 0; i <= len; i++) {
    if (i == len || load<u8>(p + i) == 0x2f) {
      if (seg >= count) return false;
      const n = i - start;
      if (unchecked(e.isParam[seg])) { if (n == 0) return false; }
      else if (!bytesEqual(p + start, n, unchecked(e.segments[seg]))) return false;
      seg++;
      start = i + 1;
    }
  }
  return seg == count;
}

/** Server-pushed templates bucketed by segment count, so a lookup only compares entries that can match. */
export class TemplateTable {
  buckets: Map<i32, TemplateEntry[]> = new Map<i32, TemplateEntry[]>();
  size: i32 = 0;

  /** Entries keep their order within a bucket (the server sends the most specific first). */
  add(e: TemplateEntry): void {
    const n = e.segments.length;
    if (!this.buckets.has(n)) this.buckets.set(n, []);
    this.buckets.get(n).push(e);
    this.size++;
  }
}

function segmentCount(p: usize, len: usize): i32 {
  let n = 1;
  for (let i: usize = 0; i < len; i++) if (load<u8>(p + i) == 0x2f) n++;
  return n;
}

/** Writes the first matching table entry's template into `out`; false when none matches. */
export function lookupInto(table: TemplateTable, methodPtr: usize, methodLen: usize, p: usize, n: usize): bool {
  if (table.size == 0) return false;
  const len = pathLength(p, n);
  const count = segmentCount(p, len);
  if (!table.buckets.has(count)) return false;
  const bucket = table.buckets.get(count);
  for (let i = 0; i < bucket.length; i++) {
    const e = unchecked(bucket[i]);
    const m = e.method;
    if (m !== null && !bytesEqual(methodPtr, methodLen, m)) continue;
    if (matches(e, p, len)) {
      out.reset();
      out.append(changetype<usize>(e.template), <usize>e.template.byteLength);
      return true;
    }
  }
  return false;
}
