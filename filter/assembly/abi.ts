// proxy-wasm ABI 0.2.1 host imports (module "env") used by the meshward filter.
// Signatures follow the spec exactly: Envoy rejects a module whose import types differ.
// Only what the filter calls is declared, so the module imports nothing it does not need.

export const enum LogLevel { Trace = 0, Debug = 1, Info = 2, Warn = 3, Error = 4, Critical = 5 }
export const enum MapType { RequestHeaders = 0, RequestTrailers = 1, ResponseHeaders = 2, ResponseTrailers = 3 }
export const enum BufferType { HttpRequestBody = 0, HttpResponseBody = 1, VmConfiguration = 6, PluginConfiguration = 7 }
export const enum Status { Ok = 0, NotFound = 1, BadArgument = 2, Empty = 7 }
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

@external("env", "proxy_get_buffer_bytes")
export declare function proxy_get_buffer_bytes(bufferType: u32, start: u32, maxSize: u32, retPtrPtr: usize, retSizePtr: usize): u32;

@external("env", "proxy_define_metric")
export declare function proxy_define_metric(metricType: u32, namePtr: usize, nameSize: usize, retIdPtr: usize): u32;

@external("env", "proxy_increment_metric")
export declare function proxy_increment_metric(metricId: u32, offset: i64): u32;
