// Thin, allocation-light helpers over the raw ABI. Host-returned buffers are allocated by the host
// through proxy_on_memory_allocate (heap.alloc); every helper frees them after copying.
import {
  proxy_log, proxy_get_property, proxy_set_property, proxy_get_header_map_value,
  proxy_get_buffer_bytes, proxy_define_metric, proxy_increment_metric, Status, LogLevel, MetricType,
} from "./abi";

// Out-params for host calls: pointer at +0, size at +4 (8 bytes of static data, never reallocated).
const RET: usize = memory.data(16);

/** Bytes owned by the host's allocation; caller must release with freeHostBytes. */
export class HostBytes {
  ptr: usize = 0;
  len: usize = 0;
}

export function log(level: LogLevel, message: string): void {
  const bytes = String.UTF8.encode(message);
  proxy_log(level, changetype<usize>(bytes), <usize>bytes.byteLength);
}

/** Encodes a property path ("a\0b\0c") once; callers keep the result in a global. */
export function propertyPath(segments: string[]): ArrayBuffer {
  return String.UTF8.encode(segments.join("\0"));
}

/** Reads a property into `out`. Returns false when absent. `out` must be released with release(). */
export function getProperty(path: ArrayBuffer, out: HostBytes): bool {
  store<usize>(RET, 0);
  store<usize>(RET + sizeof<usize>(), 0);
  const status = proxy_get_property(changetype<usize>(path), <usize>path.byteLength, RET, RET + sizeof<usize>());
  out.ptr = load<usize>(RET);
  out.len = load<usize>(RET + sizeof<usize>());
  if (status != Status.Ok) { release(out); return false; }
  return true;
}

export function setProperty(path: ArrayBuffer, valuePtr: usize, valueLen: usize): bool {
  return proxy_set_property(changetype<usize>(path), <usize>path.byteLength, valuePtr, valueLen) == Status.Ok;
}

/** First value of a request/response header; false when absent. Release `out` afterwards. */
export function getHeader(mapType: u32, name: ArrayBuffer, out: HostBytes): bool {
  store<usize>(RET, 0);
  store<usize>(RET + sizeof<usize>(), 0);
  const status = proxy_get_header_map_value(mapType, changetype<usize>(name), <usize>name.byteLength, RET, RET + sizeof<usize>());
  out.ptr = load<usize>(RET);
  out.len = load<usize>(RET + sizeof<usize>());
  if (status != Status.Ok) { release(out); return false; }
  return true;
}

/** Reads a whole host buffer (plugin configuration, ...) as a UTF-8 string. */
export function getBufferString(bufferType: u32, size: u32): string {
  if (size == 0) return "";
  store<usize>(RET, 0);
  store<usize>(RET + sizeof<usize>(), 0);
  if (proxy_get_buffer_bytes(bufferType, 0, size, RET, RET + sizeof<usize>()) != Status.Ok) return "";
  const ptr = load<usize>(RET);
  const len = load<usize>(RET + sizeof<usize>());
  const text = String.UTF8.decodeUnsafe(ptr, len);
  if (ptr != 0) heap.free(ptr);
  return text;
}

export function release(bytes: HostBytes): void {
  if (bytes.ptr != 0) heap.free(bytes.ptr);
  bytes.ptr = 0;
  bytes.len = 0;
}

export function defineCounter(name: string): u32 {
  const bytes = String.UTF8.encode(name);
  store<u32>(RET, 0);
  if (proxy_define_metric(MetricType.Counter, changetype<usize>(bytes), <usize>bytes.byteLength, RET) != Status.Ok) return 0xffffffff;
  return load<u32>(RET);
}

export function incrementCounter(id: u32): void {
  if (id != 0xffffffff) proxy_increment_metric(id, 1);
}
