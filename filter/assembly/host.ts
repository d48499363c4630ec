// Thin, allocation-light helpers over the raw ABI. Host-returned buffers are allocated by the host
// through proxy_on_memory_allocate (heap.alloc); every helper frees them after copying.
import {
  proxy_log, proxy_get_property, proxy_set_property, proxy_get_header_map_value,
  proxy_get_buffer_bytes, proxy_define_metric, proxy_increment_metric, proxy_record_metric, proxy_get_metric, proxy_send_local_response,
  proxy_http_call, proxy_get_shared_data, proxy_set_shared_data, clock_time_get, random_get, Status, LogLevel, MetricType,
} from "./abi";
import { ByteBuffer } from "./bytes";

// Out-params for host calls: pointer at +0, size at +4, CAS at +8 (static data, never reallocated).
const RET: usize = memory.data(24);

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

/** Reads a whole host buffer (plugin configuration, HTTP call response body) into `out`. */
export function getBuffer(bufferType: u32, size: u32, out: HostBytes): bool {
  out.ptr = 0;
  out.len = 0;
  if (size == 0) return true;
  store<usize>(RET, 0);
  store<usize>(RET + sizeof<usize>(), 0);
  if (proxy_get_buffer_bytes(bufferType, 0, size, RET, RET + sizeof<usize>()) != Status.Ok) return false;
  out.ptr = load<usize>(RET);
  out.len = load<usize>(RET + sizeof<usize>());
  return true;
}

/** Shared data (process-wide, across worker VMs) into `out`; returns the CAS token, 0 when absent. */
export function getSharedData(key: ArrayBuffer, out: HostBytes): u32 {
  return getSharedDataAt(changetype<usize>(key), <usize>key.byteLength, out);
}

/** getSharedData with the key in raw memory (a key built in a static buffer, no allocation). */
export function getSharedDataAt(keyPtr: usize, keyLen: usize, out: HostBytes): u32 {
  store<usize>(RET, 0);
  store<usize>(RET + sizeof<usize>(), 0);
  store<u32>(RET + 2 * sizeof<usize>(), 0);
  const status = proxy_get_shared_data(keyPtr, keyLen, RET, RET + sizeof<usize>(), RET + 2 * sizeof<usize>());
  out.ptr = load<usize>(RET);
  out.len = load<usize>(RET + sizeof<usize>());
  if (status != Status.Ok) { release(out); return 0; }
  const cas = load<u32>(RET + 2 * sizeof<usize>());
  return cas == 0 ? 1 : cas;
}

/** Writes shared data; `cas` 0 writes unconditionally. False on a CAS mismatch or error. */
export function setSharedData(key: ArrayBuffer, valuePtr: usize, valueLen: usize, cas: u32): bool {
  return setSharedDataAt(changetype<usize>(key), <usize>key.byteLength, valuePtr, valueLen, cas);
}

export function setSharedDataAt(keyPtr: usize, keyLen: usize, valuePtr: usize, valueLen: usize, cas: u32): bool {
  return proxy_set_shared_data(keyPtr, keyLen, valuePtr, valueLen, cas) == Status.Ok;
}

/** Serializes header pairs in the proxy-wasm map format into `out`. */
export function serializePairs(keys: ArrayBuffer[], values: ArrayBuffer[], out: ByteBuffer): void {
  out.reset();
  const n = keys.length;
  out.ensure(4 + 8 * <usize>n);
  store<u32>(out.ptr, <u32>n);
  out.len = 4;
  for (let i = 0; i < n; i++) {
    store<u32>(out.ptr + out.len, <u32>keys[i].byteLength);
    store<u32>(out.ptr + out.len + 4, <u32>values[i].byteLength);
    out.len += 8;
  }
  for (let i = 0; i < n; i++) {
    out.appendBuffer(keys[i]);
    out.push(0);
    out.appendBuffer(values[i]);
    out.push(0);
  }
}

export function sendLocalResponse(status: u32, details: ArrayBuffer, body: ArrayBuffer, headerPairs: ByteBuffer): bool {
  return proxy_send_local_response(status, changetype<usize>(details), <usize>details.byteLength,
    changetype<usize>(body), <usize>body.byteLength, headerPairs.ptr, headerPairs.len, -1) == Status.Ok;
}

/** Starts an HTTP call to an Envoy cluster; returns the token, or 0 when the host refused. */
export function httpCall(cluster: ArrayBuffer, headerPairs: ByteBuffer, timeoutMs: u32): u32 {
  store<u32>(RET, 0);
  const status = proxy_http_call(changetype<usize>(cluster), <usize>cluster.byteLength, headerPairs.ptr, headerPairs.len,
    0, 0, 0, 0, timeoutMs, RET);
  if (status != Status.Ok) return 0;
  const token = load<u32>(RET);
  return token == 0 ? 0xffffffff : token;
}

/** 64 random bits from the host's CSPRNG (WASI random_get); 0 when the host has none. */
export function randomU64(): u64 {
  store<u64>(RET, 0);
  if (random_get(RET, 8) != 0) return 0;
  return load<u64>(RET);
}

/** Wall-clock nanoseconds (WASI realtime clock), 0 when unavailable. */
export function nowNanos(): i64 {
  store<u64>(RET, 0);
  if (clock_time_get(0, 1000, RET) != 0) return 0;
  return load<i64>(RET);
}

export function release(bytes: HostBytes): void {
  if (bytes.ptr != 0) heap.free(bytes.ptr);
  bytes.ptr = 0;
  bytes.len = 0;
}

function defineMetric(type: MetricType, name: string): u32 {
  const bytes = String.UTF8.encode(name);
  store<u32>(RET, 0);
  if (proxy_define_metric(type, changetype<usize>(bytes), <usize>bytes.byteLength, RET) != Status.Ok) return 0xffffffff;
  return load<u32>(RET);
}

export function defineCounter(name: string): u32 { return defineMetric(MetricType.Counter, name); }
export function defineGauge(name: string): u32 { return defineMetric(MetricType.Gauge, name); }

export function recordGauge(id: u32, value: u64): void {
  if (id != 0xffffffff) proxy_record_metric(id, value);
}

/** A metric's current value (as every VM of this Envoy sees it); 0 when unknown. */
export function metricValue(id: u32): u64 {
  store<u64>(RET, 0);
  if (id == 0xffffffff || proxy_get_metric(id, RET) != Status.Ok) return 0;
  return load<u64>(RET);
}

export function incrementCounter(id: u32): void {
  if (id != 0xffffffff) proxy_increment_metric(id, 1);
}
