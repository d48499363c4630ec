// proxy-wasm ABI 0.2.1 host imports (module "env") used by the meshward filter.
// Signatures follow the spec exactly: Envoy rejects a module whose import types differ.
// Only what the filter calls is declared, so the module imports nothing it does not need.

export const enum LogLevel { Trace = 0, Debug = 1, Info = 2, Warn = 3, Error = 4, Critical = 5 }
export const enum MapType { RequestHeaders = 0, RequestTrailers = 1, ResponseHeaders = 2, ResponseTrailers = 3, HttpCallResponseHeaders = 6 }
export const enum BufferType { HttpRequestBody = 0, HttpResponseBody = 1, HttpCallResponseBody = 4, VmConfiguration = 6, PluginConfiguration = 7 }
export const enum Status { Ok = 0, NotFound = 1, BadArgument = 2, Empty = 7, CasMismatch = 8 }
export const enum Action { Continue = 0, Pause = 1 }
export const enum MetricType { Counter = 0, Gauge = 1, Histogram = 2 }

@external("env", "proxy_log")
export declare function proxy_log(level: u32, messagePtr: usize, messageSize: usize): u32;

@external("env", "proxy_get_property")
export declare function proxy_get_property(pathPtr: usize, pathSize: usize, retPtrPtr: usize, retSizePtr: usize): u32;

@external("env", "proxy_set_property")
export declare function proxy_set_property(pathPtr: usize, pathSize: usize, valuePtr: usize, valueSize: usize): u32;

@external("env", "proxy_get_header_map_value")
export declare function proxy_get_header_map_value(mapType: u32, keyPtr: usize, keySize: usize, retPtrPtr: usize, retSizePtr: usize): u32;

@external("env", "proxy_get_header_map_pairs")
export declare function proxy_get_header_map_pairs(mapType: u32, retPtrPtr: usize, retSizePtr: usize): u32;

@external("env", "proxy_get_buffer_bytes")
export declare function proxy_get_buffer_bytes(bufferType: u32, start: u32, maxSize: u32, retPtrPtr: usize, retSizePtr: usize): u32;

@external("env", "proxy_define_metric")
export declare function proxy_define_metric(metricType: u32, namePtr: usize, nameSize: usize, retIdPtr: usize): u32;

@external("env", "proxy_increment_metric")
export declare function proxy_increment_metric(metricId: u32, offset: i64): u32;

@external("env", "proxy_record_metric")
export declare function proxy_record_metric(metricId: u32, value: u64): u32;

@external("env", "proxy_get_metric")
export declare function proxy_get_metric(metricId: u32, retValuePtr: usize): u32;

@external("env", "proxy_send_local_response")
export declare function proxy_send_local_response(statusCode: u32, detailsPtr: usize, detailsSize: usize, bodyPtr: usize, bodySize: usize,
  headerPairsPtr: usize, headerPairsSize: usize, grpcStatus: i32): u32;

@external("env", "proxy_set_tick_period_milliseconds")
export declare function proxy_set_tick_period_milliseconds(periodMs: u32): u32;

@external("env", "proxy_http_call")
export declare function proxy_http_call(upstreamPtr: usize, upstreamSize: usize, headerPairsPtr: usize, headerPairsSize: usize,
  bodyPtr: usize, bodySize: usize, trailerPairsPtr: usize, trailerPairsSize: usize, timeoutMs: u32, retTokenPtr: usize): u32;

@external("env", "proxy_get_shared_data")
export declare function proxy_get_shared_data(keyPtr: usize, keySize: usize, retValuePtrPtr: usize, retValueSizePtr: usize, retCasPtr: usize): u32;

@external("env", "proxy_set_shared_data")
export declare function proxy_set_shared_data(keyPtr: usize, keySize: usize, valuePtr: usize, valueSize: usize, cas: u32): u32;

// WASI clock (Envoy provides it; proxy-wasm 0.2.1 has no time call of its own). Clock 0 = realtime.
@external("wasi_snapshot_preview1", "clock_time_get")
export declare function clock_time_get(clockId: u32, precision: u64, retTimePtr: usize): u32;

// WASI's CSPRNG (Envoy fills it from its own random generator): the sampling draw's seed.
@external("wasi_snapshot_preview1", "random_get")
export declare function random_get(bufPtr: usize, bufLen: usize): u32;
