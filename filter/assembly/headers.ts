// The request headers the filter reads, taken from ONE proxy_get_header_map_pairs call instead of one
// proxy_get_header_map_value call per name (each host call crosses into V8 and copies through
// proxy_on_memory_allocate). The serialized map stays in its host buffer; each wanted header is a
// (ptr, len) view into it, so nothing is allocated per header. Envoy's codecs lowercase header names,
// so names compare byte-for-byte; the first occurrence wins, as proxy_get_header_map_value returns.
// Map format: u32 count, count x (u32 name length, u32 value length), then each name and value
// NUL-terminated. A map whose lengths overrun the buffer yields no headers (bounded, never a trap).
import { proxy_get_header_map_pairs, MapType, Status } from "./abi";

const RET: usize = memory.data(16);

export class HeaderView {
  ptr: usize = 0;
  len: usize = 0;
  found: bool = false;
}

export const method = new HeaderView();
export const authority = new HeaderView();
export const path = new HeaderView();
export const authorization = new HeaderView();
export const apiKey = new HeaderView();
export const requestId = new HeaderView();

let mapPtr: usize = 0;

function clear(v: HeaderView): void { v.ptr = 0; v.len = 0; v.found = false; }

function nameIs(p: usize, n: usize, name: string): bool {
  if (n != <usize>name.length) return false;
  for (let i: usize = 0; i < n; i++) if (load<u8>(p + i) != <u8>name.charCodeAt(<i32>i)) return false;
  return true;
}

function take(v: HeaderView, p: usize, n: usize): void {
  if (v.found) return;
  v.ptr = p; v.len = n; v.found = true;
}

/** Reads the request header map once; false when the host returned none (views are then empty). */
export function readRequestHeaders(): bool {
  release();
  store<usize>(RET, 0);
  store<usize>(RET + sizeof<usize>(), 0);
  const status = proxy_get_header_map_pairs(MapType.RequestHeaders, RET, RET + sizeof<usize>());
  mapPtr = load<usize>(RET);
  const size = load<usize>(RET + sizeof<usize>());
  if (status != Status.Ok || mapPtr == 0 || size < 4) { release(); return false; }
  const count = <usize>load<u32>(mapPtr);
  // Each entry needs 8 size bytes and 2 NULs, so a count beyond size/10 cannot be honest.
  if (count > size / 10) { release(); return false; }
  let data: usize = 4 + count * 8;
  for (let i: usize = 0; i < count; i++) {
    const kl = <usize>load<u32>(mapPtr + 4 + i * 8);
    const vl = <usize>load<u32>(mapPtr + 8 + i * 8);
    if (kl > size || vl > size || data + kl + vl + 2 > size) { release(); return false; }
    const k = mapPtr + data;
    const v = k + kl + 1;
    data += kl + vl + 2;
    if (kl == 0) continue;
    const first = load<u8>(k);
    // Dispatch on the first byte: most headers are compared against nothing.
    if (first == 0x3a) { // ':'
      if (nameIs(k, kl, ":method")) take(method, v, vl);
      else if (nameIs(k, kl, ":path")) take(path, v, vl);
      else if (nameIs(k, kl, ":authority")) take(authority, v, vl);
    } else if (first == 0x61) { // 'a'
      if (nameIs(k, kl, "authorization")) take(authorization, v, vl);
    } else if (first == 0x78) { // 'x'
      if (nameIs(k, kl, "x-api-key")) take(apiKey, v, vl);
      else if (nameIs(k, kl, "x-request-id")) take(requestId, v, vl);
    }
  }
  return true;
}

function clearAll(): void {
  clear(method); clear(authority); clear(path); clear(authorization); clear(apiKey); clear(requestId);
}

/** Frees the host buffer the views point into; every view is empty afterwards. */
export function release(): void {
  if (mapPtr != 0) heap.free(mapPtr);
  mapPtr = 0;
  clearAll();
}
