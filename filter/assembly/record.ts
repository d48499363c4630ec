// The capture record the filter hands to the ext_proc server through Envoy filter state
// (`wasm.meshward`). Filter state cannot be written by a client, unlike any header, which is why
// identity travels here. Format (parsed by extproc/src/wire/capture-record.ts):
//   "mw1\n" then one "key=value\n" line per field; value bytes %, controls (CR, LF, ...) and every
//   byte >= 0x7f are percent-encoded: the record is pure ASCII and a value can never start a new field.
// The writer reuses one growing buffer: no allocation per request once it has grown.
// A value longer than MAX_VALUE_BYTES is cut there and its key listed in a final "trunc=" line, so
// the record stays bounded (the server then ignores derived fields it cannot trust).

/** Longest value kept, in raw bytes (the record is at most ~3x this per field). */
export const MAX_VALUE_BYTES: usize = 4096;
let truncated = "";

let buf: usize = 0;
let cap: usize = 0;
let len: usize = 0;

const HEX = "0123456789ABCDEF";

function ensure(extra: usize): void {
  if (len + extra <= cap) return;
  let next = cap == 0 ? <usize>512 : cap * 2;
  while (next < len + extra) next *= 2;
  buf = buf == 0 ? heap.alloc(next) : heap.realloc(buf, next);
  cap = next;
}

export function begin(): void {
  len = 0;
  ensure(4);
  store<u8>(buf, 0x6d); store<u8>(buf + 1, 0x77); store<u8>(buf + 2, 0x31); store<u8>(buf + 3, 0x0a); // "mw1\n"
  len = 4;
  truncated = "";
}

function putKey(key: string): void {
  const n = <usize>key.length;
  ensure(n + 1);
  for (let i: usize = 0; i < n; i++) store<u8>(buf + len + i, <u8>key.charCodeAt(<i32>i)); // keys are ASCII
  len += n;
  store<u8>(buf + len, 0x3d); // '='
  len += 1;
}

/** Appends key=value where value is raw bytes from the host. */
export function fieldBytes(key: string, ptr: usize, n: usize): void {
  if (n > MAX_VALUE_BYTES) {
    n = MAX_VALUE_BYTES;
    truncated = truncated.length == 0 ? key : truncated + "," + key;
  }
  putKey(key);
  ensure(n * 3 + 1);
  for (let i: usize = 0; i < n; i++) {
    const b = load<u8>(ptr + i);
    if (b < 0x20 || b == 0x25 || b >= 0x7f) {
      store<u8>(buf + len, 0x25);
      store<u8>(buf + len + 1, <u8>HEX.charCodeAt(b >> 4));
      store<u8>(buf + len + 2, <u8>HEX.charCodeAt(b & 15));
      len += 3;
    } else {
      store<u8>(buf + len, b);
      len += 1;
    }
  }
  store<u8>(buf + len, 0x0a);
  len += 1;
}

/** Appends key=value for a short ASCII value (flags, numbers). */
export function fieldAscii(key: string, value: string): void {
  putKey(key);
  const n = <usize>value.length;
  ensure(n + 1);
  for (let i: usize = 0; i < n; i++) store<u8>(buf + len + i, <u8>value.charCodeAt(<i32>i));
  len += n;
  store<u8>(buf + len, 0x0a);
  len += 1;
}

/** Appends key=value for a string (UTF-8 encoded, escaped like raw bytes). Skips empty values. */
export function fieldString(key: string, value: string): void {
  if (value.length == 0) return;
  const bytes = String.UTF8.encode(value);
  fieldBytes(key, changetype<usize>(bytes), <usize>bytes.byteLength);
}

/** Closes the record: lists truncated keys, if any. */
export function finish(): void {
  if (truncated.length > 0) fieldAscii("trunc", truncated);
}

export function recordPtr(): usize { return buf; }
export function recordLen(): usize { return len; }
