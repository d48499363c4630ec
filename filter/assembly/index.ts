// meshward filter: proxy-wasm ABI 0.2.1 entry points.
// Hot path only: capture who is calling and what, and hand it to the ext_proc server through
// filter state. Never fails a request: every host call is checked and a missing value is skipped.
import { Action, LogLevel, MapType, BufferType } from "./abi";
import {
  HostBytes, log, propertyPath, getProperty, setProperty, getHeader, getBufferString,
  release, defineCounter, incrementCounter,
} from "./host";
import * as record from "./record";

// --- ABI markers and memory -------------------------------------------------------------------

export function proxy_abi_version_0_2_1(): void {}

/** The host allocates every buffer it returns through this; the filter frees them with heap.free. */
export function proxy_on_memory_allocate(size: usize): usize {
  return heap.alloc(size);
}

/** Replaces AssemblyScript's default `env.abort` import (which Envoy does not provide). */
export function onAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  log(LogLevel.Critical, "meshward filter abort: " + (message !== null ? message : "") + " at " +
    (fileName !== null ? fileName : "?") + ":" + line.toString() + ":" + column.toString());
  unreachable();
}

// --- Constants encoded once (no per-request UTF-16 -> UTF-8 work) ------------------------------

// Pure computation at module start (runs in _initialize, where no host call happens).
const PATH_PEER_URI = propertyPath(["connection", "uri_san_peer_certificate"]);
const PATH_MTLS = propertyPath(["connection", "mtls"]);
const PATH_SOURCE = propertyPath(["source", "address"]);
const PROPERTY_RECORD = String.UTF8.encode("meshward");
const HEADER_METHOD = String.UTF8.encode(":method");
const HEADER_PATH = String.UTF8.encode(":path");
const HEADER_AUTHORITY = String.UTF8.encode(":authority");

let counterRequests: u32 = 0xffffffff;
let counterCaptureErrors: u32 = 0xffffffff;

const scratch = new HostBytes();

// --- Lifecycle ----------------------------------------------------------------------------------

export function proxy_on_context_create(contextId: u32, parentContextId: u32): void {}

export function proxy_on_vm_start(rootContextId: u32, vmConfigurationSize: u32): u32 {
  return 1;
}

export function proxy_on_configure(rootContextId: u32, pluginConfigurationSize: u32): u32 {
  // Configuration is read here (never at top level: host calls are not allowed during _initialize).
  const config = getBufferString(BufferType.PluginConfiguration, pluginConfigurationSize);
  counterRequests = defineCounter("meshward_filter_requests_total");
  counterCaptureErrors = defineCounter("meshward_filter_capture_errors_total");
  log(LogLevel.Info, "meshward filter configured (" + config.length.toString() + " bytes of configuration)");
  return 1;
}

// --- Request path -------------------------------------------------------------------------------

function appendProperty(key: string, path: ArrayBuffer): void {
  if (getProperty(path, scratch)) {
    record.fieldBytes(key, scratch.ptr, scratch.len);
    release(scratch);
  }
}

function appendHeader(key: string, name: ArrayBuffer): void {
  if (getHeader(MapType.RequestHeaders, name, scratch)) {
    record.fieldBytes(key, scratch.ptr, scratch.len);
    release(scratch);
  }
}

export function proxy_on_request_headers(contextId: u32, numHeaders: u32, endOfStream: u32): u32 {
  incrementCounter(counterRequests);
  record.begin();
  appendProperty("peer", PATH_PEER_URI);
  if (getProperty(PATH_MTLS, scratch)) {
    record.fieldAscii("mtls", scratch.len > 0 && load<u8>(scratch.ptr) != 0 ? "1" : "0");
    release(scratch);
  } else {
    record.fieldAscii("mtls", "0");
  }
  appendProperty("src", PATH_SOURCE);
  appendHeader("method", HEADER_METHOD);
  appendHeader("authority", HEADER_AUTHORITY);
  appendHeader("path", HEADER_PATH);
  if (!setProperty(PROPERTY_RECORD, record.recordPtr(), record.recordLen())) {
    incrementCounter(counterCaptureErrors);
    log(LogLevel.Warn, "meshward filter: could not write capture record to filter state");
  }
  return Action.Continue;
}

export function proxy_on_done(contextId: u32): u32 {
  return 1;
}

export function proxy_on_delete(contextId: u32): void {}
