// meshward filter: proxy-wasm ABI 0.2.1 entry points.
// Hot path only: capture who is calling and what (identity, JWT peek, route template, operation id),
// decide sampling, enforce the fast-path deny table and token buckets, and hand the capture record to
// the ext_proc server through filter state. Never fails a request: every host call is checked, a
// missing value is skipped, and bad input is bounded (see record.ts, jwt.ts, template.ts).
import { Action, LogLevel, MapType, BufferType } from "./abi";
import {
  HostBytes, log, propertyPath, getProperty, setProperty, getHeader, getBuffer, release, defineCounter,
  defineGauge, recordGauge, metricValue, incrementCounter, getSharedData, setSharedData, getSharedDataAt, setSharedDataAt, serializePairs, sendLocalResponse, httpCall, nowNanos, randomU64,
} from "./host";
import { proxy_set_tick_period_milliseconds } from "./abi";
import { ByteBuffer, fnv1a, startsWithIgnoreCase } from "./bytes";
import { EnforcedEntry, FilterConfig, LimitRule, ROLE_OUTBOUND, configError, pairKey, parseConfig } from "./config";
import { JwtPeek, MAX_TOKEN_BYTES, peek } from "./jwt";
import { sha256Hex, DIGEST_HEX } from "./sha256";
import * as record from "./record";
import * as template from "./template";
import * as headers from "./headers";

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
const PATH_CONNECTION_ID = propertyPath(["connection", "id"]);
const PATH_PEER_WORKLOAD = propertyPath(["filter_state", "downstream_peer", "workload"]);
const PATH_PEER_NAMESPACE = propertyPath(["filter_state", "downstream_peer", "namespace"]);
const PATH_NODE_ID = propertyPath(["xds", "node", "id"]);
const PATH_NODE_NAMESPACE = propertyPath(["xds", "node", "metadata", "NAMESPACE"]);
const PATH_NODE_SERVICE_ACCOUNT = propertyPath(["xds", "node", "metadata", "SERVICE_ACCOUNT"]);
const PATH_NODE_WORKLOAD = propertyPath(["xds", "node", "metadata", "WORKLOAD_NAME"]);
const PATH_NODE_LABELS = propertyPath(["xds", "node", "metadata", "LABELS"]);
const PATH_NODE_ISTIO_VERSION = propertyPath(["xds", "node", "metadata", "ISTIO_VERSION"]);
const PROPERTY_RECORD = String.UTF8.encode("meshward");
// Filter state wasm.meshward_fastpath = "1" marks a local reply from this filter, so the ext_proc
// filter (wrapped in a matcher on it) skips the reply instead of opening a stream for it.
const PROPERTY_FASTPATH = String.UTF8.encode("meshward_fastpath");
const FASTPATH_MARK: usize = memory.data<u8>([0x31]);
const HEADER_STATUS = String.UTF8.encode(":status");

const DENY_DETAILS = String.UTF8.encode("meshward_fastpath_deny");
const DENY_BODY = String.UTF8.encode("{\"error\":\"forbidden\",\"reason\":\"fastpath_deny\"}");
const LIMIT_DETAILS = String.UTF8.encode("meshward_fastpath_limit");
const LIMIT_BODY = String.UTF8.encode("{\"error\":\"too_many_requests\",\"reason\":\"fastpath_limit\"}");
const CONTENT_TYPE = String.UTF8.encode("content-type");
const JSON_TYPE = String.UTF8.encode("application/json");
const FASTPATH_HEADER = String.UTF8.encode("x-meshward-fastpath");
const DENY_PAIRS = new ByteBuffer();
const LIMIT_PAIRS = new ByteBuffer();
serializePairs([CONTENT_TYPE, FASTPATH_HEADER], [JSON_TYPE, String.UTF8.encode("deny")], DENY_PAIRS);
serializePairs([CONTENT_TYPE, FASTPATH_HEADER], [JSON_TYPE, String.UTF8.encode("limit")], LIMIT_PAIRS);

/** Largest refreshed configuration accepted, in bytes. */
const MAX_CONFIG_BYTES: u32 = 4 * 1024 * 1024;
const FNV_OFFSET: u32 = 0x811c9dc5;
const NO_METRIC: u32 = 0xffffffff;

// Counters: fixed names, never a path or identity in a name (bounded cardinality).
let counterRequests = NO_METRIC;
let counterSampled = NO_METRIC;
let counterDenied = NO_METRIC;
let counterLimited = NO_METRIC;
let counterCaptureErrors = NO_METRIC;
let counterLocalReplyErrors = NO_METRIC;
let counterJwtMalformed = NO_METRIC;
let counterConfigApplied = NO_METRIC;
let counterConfigRejected = NO_METRIC;
let counterRefreshFailed = NO_METRIC;
/** Times the per-connection values were read from the host (a cache miss: a new connection, or a host without connection ids). */
let counterConnectionReads = NO_METRIC;
/** Wasm linear memory in bytes: the largest any VM of this Envoy reported, and this VM's own under
 *  a small index (Envoy keeps one value per name, and every worker runs its own VM). VMs number
 *  themselves through shared data; a reloaded VM takes the next index modulo MAX_VM_GAUGES, so the
 *  names stay bounded (a dead VM's gauge keeps its last value until its index is reused). */
let gaugeMemoryMax = NO_METRIC;
let gaugeMemoryOwn = NO_METRIC;
const MAX_VM_GAUGES: u32 = 16;
const VM_SEQUENCE_KEY = String.UTF8.encode("meshward.vm_sequence");
const SEQUENCE_SLOT: usize = memory.data(4);
/** Requests between two memory reports besides the tick: cheap (one host call), and it keeps the
 *  gauge current on a VM whose ticks are sparse. */
const MEMORY_REPORT_EVERY: u32 = 4096;
let requestsSinceMemoryReport: u32 = 0;
/** Tick period when no refresh sets a shorter one: the memory gauge still updates. */
const DEFAULT_TICK_MS: u32 = 1000;

let config = new FilterConfig();
let configured = false;

// Per-request scratch, reused. Request headers are views into one host buffer (headers.ts).
const method = headers.method;
const authority = headers.authority;
const path = headers.path;
const scratch = new HostBytes();
const operation = new ByteBuffer();
const jwtPeek = new JwtPeek();
/** Transport-level caller key (workload / ip), built only when a table needs it; and the end-user
 *  key when a JWT names a subject. Peer and source bytes are kept in reused buffers until then. */
let identity = "";
let identityReady = false;
let userKey = "";
const peerBytes = new ByteBuffer();
const sourceBytes = new ByteBuffer();
let peerFound = false;
let sourceFound = false;
let mtls = false;
/** Per-connection values remembered for a downstream connection (see readConnection). */
class ConnectionValues {
  id: u64 = 0;
  used: bool = false;
  peer: ByteBuffer = new ByteBuffer();
  peerFound: bool = false;
  source: ByteBuffer = new ByteBuffer();
  sourceFound: bool = false;
  mtls: bool = false;
}
/** Direct-mapped by connection id: requests from many peers' connections interleave on a busy
 *  sidecar, so one remembered connection would miss on nearly every switch. */
const CONNECTION_SLOTS = 64;
const connectionSlots = new StaticArray<ConnectionValues>(CONNECTION_SLOTS);
for (let i = 0; i < CONNECTION_SLOTS; i++) connectionSlots[i] = new ConnectionValues();
let connectionIdAvailable = true;
let currentConnectionId: u64 = 0;
/** Own identity from Envoy's node (outbound), computed once per VM. */
let nodeIdentity: string | null = null;
/** The sidecar's own workload from Envoy's node metadata (namespace, name, labels "k=v,k=v"):
 *  the called workload inbound, the caller outbound. Read once per VM: node metadata never changes. */
let nodeWorkloadRead = false;
const nodeNamespace = new ByteBuffer();
const nodeWorkload = new ByteBuffer();
/** Istio node metadata SERVICE_ACCOUNT: the server binds it to the ext_proc client certificate. */
const nodeServiceAccount = new ByteBuffer();
const nodeLabels = new ByteBuffer();
/** Istio's peer-metadata filter (the only writer of filter state downstream_peer) runs only in an
 *  Istio proxy, whose node metadata carries ISTIO_VERSION; elsewhere the two lookups always miss and
 *  cost two host calls per request, so they are skipped. */
let istioProxy = false;

// --- Lifecycle ----------------------------------------------------------------------------------

export function proxy_on_context_create(contextId: u32, parentContextId: u32): void {}

export function proxy_on_vm_start(rootContextId: u32, vmConfigurationSize: u32): u32 {
  return 1;
}

function defineCounters(): void {
  if (counterRequests != NO_METRIC) return;
  counterRequests = defineCounter("meshward_filter_requests_total");
  counterSampled = defineCounter("meshward_filter_sampled_total");
  counterDenied = defineCounter("meshward_filter_local_denies_total");
  counterLimited = defineCounter("meshward_filter_local_limits_total");
  counterCaptureErrors = defineCounter("meshward_filter_capture_errors_total");
  counterLocalReplyErrors = defineCounter("meshward_filter_local_reply_errors_total");
  counterJwtMalformed = defineCounter("meshward_filter_jwt_malformed_total");
  counterConfigApplied = defineCounter("meshward_filter_config_applied_total");
  counterConfigRejected = defineCounter("meshward_filter_config_rejected_total");
  counterConnectionReads = defineCounter("meshward_filter_connection_reads_total");
  counterRefreshFailed = defineCounter("meshward_filter_config_refresh_failed_total");
  gaugeMemoryMax = defineGauge("meshward_filter_wasm_memory_bytes");
  gaugeMemoryOwn = defineGauge("meshward_filter_vm" + claimVmIndex().toString() + "_wasm_memory_bytes");
}

function claimVmIndex(): u32 {
  for (let attempt = 0; attempt < 8; attempt++) {
    const cas = getSharedData(VM_SEQUENCE_KEY, scratch);
    let next: u32 = 0;
    if (cas != 0 && scratch.len == 4) next = load<u32>(scratch.ptr);
    release(scratch);
    store<u32>(SEQUENCE_SLOT, next + 1);
    if (setSharedData(VM_SEQUENCE_KEY, SEQUENCE_SLOT, 4, cas)) return next % MAX_VM_GAUGES;
  }
  return MAX_VM_GAUGES - 1; // persistent contention: share the last name rather than fail
}

function reportMemory(): void {
  requestsSinceMemoryReport = 0;
  const bytes = <u64>memory.size() << 16;
  recordGauge(gaugeMemoryOwn, bytes);
  // Racing VMs may briefly record the smaller value; the larger VM corrects it on its next report.
  if (bytes > metricValue(gaugeMemoryMax)) recordGauge(gaugeMemoryMax, bytes);
}

export function proxy_on_configure(rootContextId: u32, pluginConfigurationSize: u32): u32 {
  // Configuration is read here (never at top level: host calls are not allowed during _initialize).
  defineCounters();
  if (!getBuffer(BufferType.PluginConfiguration, pluginConfigurationSize, scratch)) {
    log(LogLevel.Error, "meshward filter: invalid configuration refused: plugin configuration unreadable");
    incrementCounter(counterConfigRejected);
    return configured ? 1 : 0;
  }
  const next = parseConfig(scratch.ptr, scratch.len, true, null);
  release(scratch);
  if (next === null) {
    // Refusing (false) makes Envoy reject this configuration and keep the one in force.
    log(LogLevel.Error, "meshward filter: invalid configuration refused: " + configError);
    incrementCounter(counterConfigRejected);
    return 0;
  }
  config = next;
  configured = true;
  nodeIdentity = null; // the trust domain may have changed
  incrementCounter(counterConfigApplied);
  const refresh = next.refresh;
  if (refresh !== null) {
    // The server answers with the tables of this sidecar's own namespace (and labels) policy.
    const refreshPath = refresh.path + workloadQuery(refresh.path);
    sharedConfigKey = String.UTF8.encode("meshward.config." + refresh.cluster + refreshPath);
    sharedFetchKey = String.UTF8.encode("meshward.fetch." + refresh.cluster + refreshPath);
    refreshCluster = String.UTF8.encode(refresh.cluster);
    serializePairs(
      [String.UTF8.encode(":method"), String.UTF8.encode(":path"), String.UTF8.encode(":authority"), String.UTF8.encode("authorization")],
      [String.UTF8.encode("GET"), String.UTF8.encode(refreshPath), String.UTF8.encode(refresh.authority), String.UTF8.encode("Bearer " + refresh.token)],
      refreshHeaders);
    proxy_set_tick_period_milliseconds(refresh.intervalMs < DEFAULT_TICK_MS ? refresh.intervalMs : DEFAULT_TICK_MS);
  } else {
    proxy_set_tick_period_milliseconds(DEFAULT_TICK_MS);
  }
  reportMemory();
  log(LogLevel.Info, "meshward filter configured (" + (next.role == ROLE_OUTBOUND ? "outbound" : "inbound") +
    ", version \"" + next.version + "\")");
  return 1;
}

// --- Configuration refresh: one worker fetches per interval, every VM adopts via shared data ------

let sharedConfigKey = new ArrayBuffer(0);
let sharedFetchKey = new ArrayBuffer(0);
let refreshCluster = new ArrayBuffer(0);
const refreshHeaders = new ByteBuffer();
let adoptedCas: u32 = 0;
let callInFlight: u32 = 0;
const NANOS_SLOT: usize = memory.data(8);

/** Parses and applies a refreshed document; logs and keeps the configuration in force when invalid. */
function applyRefreshed(ptr: usize, len: usize, origin: string): bool {
  const next = parseConfig(ptr, len, false, config);
  if (next === null) {
    log(LogLevel.Error, "meshward filter: " + origin + " configuration refused (" + configError +
      "); keeping version \"" + config.version + "\"");
    incrementCounter(counterConfigRejected);
    return false;
  }
  const changed = next.version != config.version;
  config = next;
  incrementCounter(counterConfigApplied);
  if (changed) log(LogLevel.Info, "meshward filter: configuration version \"" + next.version + "\" applied");
  return true;
}

export function proxy_on_tick(rootContextId: u32): void {
  reportMemory();
  const refresh = config.refresh;
  if (refresh === null) return;
  // Adopt what another VM fetched.
  const cas = getSharedData(sharedConfigKey, scratch);
  if (cas != 0 && cas != adoptedCas) {
    adoptedCas = cas;
    applyRefreshed(scratch.ptr, scratch.len, "shared");
  }
  release(scratch);
  if (callInFlight != 0) return;
  // Claim this interval's fetch with a CAS on the shared timestamp: exactly one VM wins.
  const now = nowNanos();
  const fetchCas = getSharedData(sharedFetchKey, scratch);
  let last: i64 = 0;
  if (fetchCas != 0 && scratch.len == 8) last = load<i64>(scratch.ptr);
  release(scratch);
  if (fetchCas != 0 && now - last < <i64>refresh.intervalMs * 1000000) return;
  store<i64>(NANOS_SLOT, now);
  if (!setSharedData(sharedFetchKey, NANOS_SLOT, 8, fetchCas == 0 ? 0 : fetchCas)) return;
  callInFlight = httpCall(refreshCluster, refreshHeaders, refresh.timeoutMs);
  if (callInFlight == 0) {
    incrementCounter(counterRefreshFailed);
    log(LogLevel.Warn, "meshward filter: configuration refresh call to cluster \"" + refresh.cluster + "\" could not start");
  }
}

function statusIs200(): bool {
  if (!getHeader(MapType.HttpCallResponseHeaders, HEADER_STATUS, scratch)) return false;
  const ok = scratch.len == 3 && load<u8>(scratch.ptr) == 0x32 && load<u8>(scratch.ptr + 1) == 0x30 && load<u8>(scratch.ptr + 2) == 0x30;
  release(scratch);
  return ok;
}

export function proxy_on_http_call_response(contextId: u32, token: u32, numHeaders: u32, bodySize: u32, numTrailers: u32): void {
  callInFlight = 0;
  if (numHeaders == 0 || !statusIs200()) {
    incrementCounter(counterRefreshFailed);
    log(LogLevel.Warn, "meshward filter: configuration refresh failed (no 200 response); keeping version \"" + config.version + "\"");
    return;
  }
  if (bodySize > MAX_CONFIG_BYTES) {
    incrementCounter(counterConfigRejected);
    log(LogLevel.Error, "meshward filter: refreshed configuration refused (larger than 4 MiB); keeping version \"" + config.version + "\"");
    return;
  }
  if (!getBuffer(BufferType.HttpCallResponseBody, bodySize, scratch)) {
    incrementCounter(counterRefreshFailed);
    return;
  }
  if (applyRefreshed(scratch.ptr, scratch.len, "refreshed")) {
    setSharedData(sharedConfigKey, scratch.ptr, scratch.len, 0);
    release(scratch);
    // Remember our own write's CAS so the next tick does not parse the same document again.
    adoptedCas = getSharedData(sharedConfigKey, scratch);
  }
  release(scratch);
}

// --- Request path -------------------------------------------------------------------------------

function appendProperty(key: string, p: ArrayBuffer): void {
  if (getProperty(p, scratch)) {
    record.fieldBytes(key, scratch.ptr, scratch.len);
    release(scratch);
  }
}

const MAX_KEY_PART = 256;

/** Mirrors workloadKeyOf in extproc/src/engine/exchange.ts: workload, else "ip:<address>", else anonymous. */
function workloadKey(workload: string, sourceAddress: string): string {
  if (workload.length > 0) return workload.substring(0, MAX_KEY_PART);
  if (sourceAddress.length > 0) {
    let end = sourceAddress.length;
    let i = end - 1;
    while (i >= 0 && sourceAddress.charCodeAt(i) >= 0x30 && sourceAddress.charCodeAt(i) <= 0x39) i--;
    if (i >= 0 && i < end - 1 && sourceAddress.charCodeAt(i) == 0x3a) end = i;
    let start = 0;
    if (end >= 2 && sourceAddress.charCodeAt(0) == 0x5b && sourceAddress.charCodeAt(end - 1) == 0x5d) { start = 1; end--; }
    return "ip:" + sourceAddress.substring(start, end).substring(0, MAX_KEY_PART);
  }
  return "anonymous";
}

function hostString(b: HostBytes): string {
  return b.len == 0 ? "" : String.UTF8.decodeUnsafe(b.ptr, b.len);
}

/** Copies a property into `into`; false when absent (present-but-empty is true). */
function copyProperty(p: ArrayBuffer, into: ByteBuffer): bool {
  into.reset();
  if (!getProperty(p, scratch)) return false;
  into.append(scratch.ptr, scratch.len);
  release(scratch);
  return true;
}

function callerIdentity(): string {
  if (!identityReady) {
    identity = workloadKey(peerBytes.toString(), sourceBytes.toString());
    identityReady = true;
  }
  return identity;
}

/** Downstream connection id (8 bytes, unique per Envoy process), false when the host has none. */
function readConnectionId(): bool {
  if (!getProperty(PATH_CONNECTION_ID, scratch)) return false;
  const ok = scratch.len == 8;
  if (ok) currentConnectionId = load<u64>(scratch.ptr);
  release(scratch);
  return ok;
}

/** Reads peer certificate URI SAN, mTLS flag and source address: 3 host calls, or 1 (the connection
 *  id) for a further request on a connection they were read for (one of the last CONNECTION_SLOTS,
 *  direct-mapped). Connection ids are unique per Envoy process and a connection lives on one worker
 *  (one VM), so remembered values are reused only for the very connection they came from; a host
 *  without connection ids is read every time. */
function readConnection(): void {
  let slot: ConnectionValues | null = null;
  if (connectionIdAvailable) {
    connectionIdAvailable = readConnectionId();
    if (connectionIdAvailable) {
      slot = connectionSlots[<i32>(currentConnectionId % <u64>CONNECTION_SLOTS)];
      // Ids are never reused within an Envoy process: a slot holding this id holds this connection.
      if (slot.used && slot.id == currentConnectionId) {
        peerFound = slot.peerFound;
        peerBytes.reset();
        peerBytes.append(slot.peer.ptr, slot.peer.len);
        sourceFound = slot.sourceFound;
        sourceBytes.reset();
        sourceBytes.append(slot.source.ptr, slot.source.len);
        mtls = slot.mtls;
        return;
      }
    }
  }
  incrementCounter(counterConnectionReads);
  peerFound = copyProperty(PATH_PEER_URI, peerBytes);
  mtls = false;
  if (getProperty(PATH_MTLS, scratch)) {
    mtls = scratch.len > 0 && load<u8>(scratch.ptr) != 0;
    release(scratch);
  }
  sourceFound = copyProperty(PATH_SOURCE, sourceBytes);
  if (slot !== null) {
    slot.id = currentConnectionId;
    slot.used = true;
    slot.peerFound = peerFound;
    slot.peer.reset();
    slot.peer.append(peerBytes.ptr, peerBytes.len);
    slot.sourceFound = sourceFound;
    slot.source.reset();
    slot.source.append(sourceBytes.ptr, sourceBytes.len);
    slot.mtls = mtls;
  }
}

function captureInbound(): void {
  readConnection();
  if (peerFound) record.fieldBytes("peer", peerBytes.ptr, peerBytes.len);
  record.fieldAscii("mtls", mtls ? "1" : "0");
  if (sourceFound) record.fieldBytes("src", sourceBytes.ptr, sourceBytes.len);
  if (istioProxy) {
    appendProperty("peer.workload", PATH_PEER_WORKLOAD);
    appendProperty("peer.namespace", PATH_PEER_NAMESPACE);
  }
}

/** Own identity (outbound): configured, else spiffe://<trust domain>/ns/<NAMESPACE>/sa/<SERVICE_ACCOUNT>
 *  from Envoy's node metadata (as Istio sets it), else the node id. Read once per VM: it never changes. */
function ownIdentity(c: FilterConfig): string {
  if (c.self.length > 0) return c.self;
  if (nodeIdentity === null) {
    let ns = "";
    let sa = "";
    if (getProperty(PATH_NODE_NAMESPACE, scratch)) { ns = hostString(scratch); release(scratch); }
    if (getProperty(PATH_NODE_SERVICE_ACCOUNT, scratch)) { sa = hostString(scratch); release(scratch); }
    if (ns.length > 0 && sa.length > 0) nodeIdentity = "spiffe://" + c.trustDomain + "/ns/" + ns + "/sa/" + sa;
    else if (getProperty(PATH_NODE_ID, scratch)) { nodeIdentity = hostString(scratch); release(scratch); }
    else nodeIdentity = "";
  }
  return nodeIdentity!;
}

function readNodeProperty(p: ArrayBuffer, into: ByteBuffer): void {
  if (getProperty(p, scratch)) { into.append(scratch.ptr, scratch.len); release(scratch); }
}

/** LABELS arrive as a proxy-wasm pairs map (u32 count, count x (u32 key length, u32 value length),
 *  then each key and value NUL-terminated); kept as "k=v,k=v" (Kubernetes labels hold neither ',' nor '=').
 *  A map that does not parse leaves no labels. */
function readNodeLabels(): void {
  if (!getProperty(PATH_NODE_LABELS, scratch)) return;
  const base = scratch.ptr;
  const n = scratch.len;
  if (n >= 4) {
    const count = <usize>load<u32>(base);
    let data: usize = 4 + count * 8;
    if (count <= 1024 && data <= n) {
      for (let i: usize = 0; i < count; i++) {
        const kl = <usize>load<u32>(base + 4 + i * 8);
        const vl = <usize>load<u32>(base + 8 + i * 8);
        if (kl > n || vl > n || data + kl + vl + 2 > n) { nodeLabels.reset(); break; }
        if (nodeLabels.len > 0) nodeLabels.push(0x2c);
        nodeLabels.append(base + data, kl);
        nodeLabels.push(0x3d);
        nodeLabels.append(base + data + kl + 1, vl);
        data += kl + vl + 2;
      }
    }
  }
  release(scratch);
}

function readNodeWorkload(): void {
  if (nodeWorkloadRead) return;
  // Empty first: a read at configure that found no namespace is repeated on the first request.
  nodeNamespace.reset(); nodeWorkload.reset(); nodeServiceAccount.reset(); nodeLabels.reset();
  readNodeProperty(PATH_NODE_NAMESPACE, nodeNamespace);
  readNodeProperty(PATH_NODE_WORKLOAD, nodeWorkload);
  readNodeProperty(PATH_NODE_SERVICE_ACCOUNT, nodeServiceAccount);
  readNodeLabels();
  istioProxy = false;
  if (getProperty(PATH_NODE_ISTIO_VERSION, scratch)) { istioProxy = scratch.len > 0; release(scratch); }
  nodeWorkloadRead = true;
}

/** Longest label list sent in the refresh query; longer ones are left out (the namespace still is). */
const MAX_QUERY_LABELS_BYTES: usize = 2048;

/** Percent-encodes everything but RFC 3986 unreserved characters (configure time only). */
function queryValue(p: usize, n: usize): string {
  const out = new ByteBuffer();
  for (let i: usize = 0; i < n; i++) {
    const b = load<u8>(p + i);
    const unreserved = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b == 0x2d || b == 0x2e || b == 0x5f || b == 0x7e;
    if (unreserved) out.push(b);
    else { out.push(0x25); out.push(<u8>HEX_DIGITS.charCodeAt(b >> 4)); out.push(<u8>HEX_DIGITS.charCodeAt(b & 15)); }
  }
  const s = out.toString();
  heap.free(out.ptr);
  return s;
}
const HEX_DIGITS = "0123456789ABCDEF";

/** "?namespace=NS&labels=k%3Dv%2Ck%3Dv" from the node metadata ("&..." when `path` has a query);
 *  empty without a namespace (the server then serves the mesh default's tables). */
function workloadQuery(path: string): string {
  readNodeWorkload();
  if (nodeNamespace.len == 0) {
    // Read again on the first request: nothing is lost if the host only has it there.
    nodeWorkloadRead = false;
    return "";
  }
  let q = (path.includes("?") ? "&" : "?") + "namespace=" + queryValue(nodeNamespace.ptr, nodeNamespace.len);
  if (nodeLabels.len > 0 && nodeLabels.len <= MAX_QUERY_LABELS_BYTES) q += "&labels=" + queryValue(nodeLabels.ptr, nodeLabels.len);
  return q;
}

function captureNodeWorkload(): void {
  readNodeWorkload();
  if (nodeNamespace.len > 0) record.fieldBytes("node.namespace", nodeNamespace.ptr, nodeNamespace.len);
  if (nodeWorkload.len > 0) record.fieldBytes("node.workload", nodeWorkload.ptr, nodeWorkload.len);
  if (nodeServiceAccount.len > 0) record.fieldBytes("node.sa", nodeServiceAccount.ptr, nodeServiceAccount.len);
  if (nodeLabels.len > 0) record.fieldBytes("node.labels", nodeLabels.ptr, nodeLabels.len);
}

function captureOutbound(): void {
  record.fieldAscii("role", "outbound");
  const self = ownIdentity(config);
  record.fieldString("self", self);
  appendProperty("self.namespace", PATH_NODE_NAMESPACE);
  appendProperty("self.workload", PATH_NODE_WORKLOAD);
  record.fieldBytes("dest", authority.ptr, authority.len);
  identity = self.length > 0 ? self : "anonymous";
  identityReady = true;
}

/** Authorization: Bearer -> JWT peek and token hash; x-api-key -> hash. Raw secrets never leave. */
function captureCredentials(nowSeconds: i64): void {
  const authorization = headers.authorization;
  if (authorization.found) {
    if (startsWithIgnoreCase(authorization.ptr, authorization.len, "bearer ")) {
      let p = authorization.ptr + 7;
      let n = authorization.len - 7;
      while (n > 0 && load<u8>(p) == 0x20) { p++; n--; }
      while (n > 0 && load<u8>(p + n - 1) == 0x20) n--;
      peek(p, n, nowSeconds, jwtPeek);
      record.fieldString("jwt.alg", jwtPeek.alg);
      record.fieldString("jwt.sub", jwtPeek.sub);
      record.fieldString("jwt.iss", jwtPeek.iss);
      record.fieldString("jwt.aud", jwtPeek.aud);
      record.fieldString("jwt.scope", jwtPeek.scope);
      record.fieldString("jwt.exp", jwtPeek.exp);
      record.fieldString("jwt.nbf", jwtPeek.nbf);
      record.fieldString("jwt.flags", jwtPeek.flagNames());
      // Mirrors callerKeyOf in extproc/src/engine/exchange.ts.
      if (jwtPeek.sub.length > 0 && config.needsIdentity()) {
        userKey = "user:" + jwtPeek.iss.substring(0, MAX_KEY_PART) + "|" + jwtPeek.sub.substring(0, MAX_KEY_PART) + "@" + callerIdentity();
      }
      if (jwtPeek.flags & 1) incrementCounter(counterJwtMalformed);
      if (n <= MAX_TOKEN_BYTES) {
        sha256Hex(p, n);
        record.fieldBytes("token.hash", DIGEST_HEX, 64);
      }
    }
  }
  const apiKey = headers.apiKey;
  if (apiKey.found && apiKey.len <= MAX_TOKEN_BYTES) {
    sha256Hex(apiKey.ptr, apiKey.len);
    record.fieldBytes("apikey", DIGEST_HEX, 64);
  }
}

function isWrite(): bool {
  // GET, HEAD, OPTIONS, TRACE are reads; everything else may change state.
  const p = method.ptr;
  const n = method.len;
  if (n == 3 && load<u8>(p) == 0x47 && load<u8>(p + 1) == 0x45 && load<u8>(p + 2) == 0x54) return false;
  if (n == 4 && load<u8>(p) == 0x48 && load<u8>(p + 1) == 0x45) return false;
  if (n == 7 && load<u8>(p) == 0x4f && load<u8>(p + 1) == 0x50) return false;
  if (n == 5 && load<u8>(p) == 0x54 && load<u8>(p + 1) == 0x52) return false;
  return true;
}

/** True when the table names this caller's workload key or end-user key. */
function hasIdentity(table: Set<string>): bool {
  return table.has(callerIdentity()) || (userKey.length > 0 && table.has(userKey));
}

/** The limit rule for this caller x operation (end-user rule first, it is more specific). */
function limitFor(limits: Map<string, LimitRule>, op: string): LimitRule | null {
  if (userKey.length > 0) {
    const k = pairKey(userKey, op);
    if (limits.has(k)) return limits.get(k);
  }
  const k = pairKey(callerIdentity(), op);
  return limits.has(k) ? limits.get(k) : null;
}

// The percentage draw: splitmix64, seeded once per VM from the host's CSPRNG. Neither the request
// (its x-request-id included) nor the configuration decides it, so a caller who can read the plugin
// configuration or the refreshed tables (any meshed pod can) still cannot aim for "unsampled".
let drawState: u64 = 0;
let drawSeeded = false;

function privateDraw(): u32 {
  if (!drawSeeded) {
    const r = randomU64();
    if (r == 0) log(LogLevel.Warn, "meshward filter: the host has no random source; the sampling draw is seeded from the clock");
    drawState = r ^ <u64>nowNanos();
    drawSeeded = true;
  }
  drawState += 0x9e3779b97f4a7c15;
  let z = drawState;
  z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >>> 27)) * 0x94d049bb133111eb;
  return <u32>((z ^ (z >>> 31)) >>> 32);
}

/** Sampling: policy rules first, then the percentage: a private draw, or with sampling.consistent a
 *  keyed hash of x-request-id (every hop answers alike; whoever knows the seed can choose ids). */
function decideSampling(op: string): string {
  const c = config;
  if (c.suspectIdentities.size > 0 && hasIdentity(c.suspectIdentities)) return "suspect";
  if (c.alwaysOperations.size > 0 && isWrite() && c.alwaysOperations.has(op)) return "operation";
  const bp = c.samplePercentBasisPoints;
  if (bp == 0) return "";
  if (bp >= 10000) return "percent";
  if (!c.consistentSampling) return privateDraw() % 10000 < bp ? "percent" : "";
  let h = fnv1a(FNV_OFFSET, changetype<usize>(c.seed), <usize>c.seed.byteLength);
  if (headers.requestId.found) {
    h = fnv1a(h, headers.requestId.ptr, headers.requestId.len);
  } else {
    h ^= <u32>(nowNanos() & 0xffffffff);
  }
  // Final avalanche so neighbouring request ids spread evenly.
  h ^= h >>> 16; h *= 0x7feb352d; h ^= h >>> 15; h *= 0x846ca68b; h ^= h >>> 16;
  return h % 10000 < bp ? "percent" : "";
}

function liveEntry(table: Map<string, EnforcedEntry>, key: string, nowNs: i64): EnforcedEntry | null {
  if (!table.has(key)) return null;
  const e = table.get(key);
  return nowNs < e.expiresAtNanos ? e : null;
}

/** An unexpired enforced entry for this caller (end user first, then workload), whole or for `op`. */
function enforcedFor(c: FilterConfig, op: string, nowNs: i64): EnforcedEntry | null {
  let e: EnforcedEntry | null = null;
  if (c.enforcedIdentities.size > 0) {
    if (userKey.length > 0) e = liveEntry(c.enforcedIdentities, userKey, nowNs);
    if (e === null) e = liveEntry(c.enforcedIdentities, callerIdentity(), nowNs);
  }
  if (e === null && c.enforcedPairs.size > 0) {
    if (userKey.length > 0) e = liveEntry(c.enforcedPairs, pairKey(userKey, op), nowNs);
    if (e === null) e = liveEntry(c.enforcedPairs, pairKey(callerIdentity(), op), nowNs);
  }
  return e;
}

// Token buckets live in shared data (shared by every worker VM), which proxy-wasm 0.2.1 cannot
// delete from. So there are BUCKET_SLOTS fixed keys per role, "meshward.bucket.<role>.<slot>"; a
// bucket takes the first of BUCKET_PROBES slots from hash(role, identity x operation) that holds it,
// else the first free or idle one (refilled to burst: overwriting it loses nothing), else evicts the
// least recently used of them (that bucket restarts full: a collision can let one burst through
// again, never refuse a request it should not). Each slot stores the full 64-bit key hash.
const BUCKET_SLOTS: u32 = 8192;
const BUCKET_PROBES: u32 = 4;
/** Slot value: tokens f64, last update ns i64, key hash u64, full-again-at ns i64. */
const SLOT_BYTES: usize = 32;
const BUCKET_SLOT: usize = memory.data(32);
const SLOT_KEY: usize = memory.data(40);
const SLOT_PREFIX_IN = String.UTF8.encode("meshward.bucket.in.");
const SLOT_PREFIX_OUT = String.UTF8.encode("meshward.bucket.out.");
let slotKeyLen: usize = 0;

/** Writes "meshward.bucket.<role>.<slot>" into SLOT_KEY. */
function slotKey(slot: u32): void {
  const prefix = config.role == ROLE_OUTBOUND ? SLOT_PREFIX_OUT : SLOT_PREFIX_IN;
  const n = <usize>prefix.byteLength;
  memory.copy(SLOT_KEY, changetype<usize>(prefix), n);
  let digits: usize = 1;
  for (let v = slot; v >= 10; v /= 10) digits++;
  let v = slot;
  for (let i = digits; i > 0; i--) { store<u8>(SLOT_KEY + n + i - 1, <u8>(0x30 + v % 10)); v /= 10; }
  slotKeyLen = n + digits;
}

/** Takes one token from the rule's shared bucket; true when the request may pass. Contention fails open. */
function takeToken(rule: LimitRule): bool {
  const now = nowNanos();
  const base = <u32>(rule.keyHash % <u64>BUCKET_SLOTS);
  for (let attempt = 0; attempt < 4; attempt++) {
    let chosen: u32 = 0xffffffff;
    let chosenCas: u32 = 0;
    let own = false;
    let tokens = rule.burst;
    let last = now;
    let victim: u32 = base;
    let victimCas: u32 = 0;
    let victimLast: i64 = i64.MAX_VALUE;
    for (let i: u32 = 0; i < BUCKET_PROBES; i++) {
      const slot = (base + i) % BUCKET_SLOTS;
      slotKey(slot);
      const cas = getSharedDataAt(SLOT_KEY, slotKeyLen, scratch);
      const valid = cas != 0 && scratch.len == SLOT_BYTES;
      if (valid && load<u64>(scratch.ptr + 16) == rule.keyHash) {
        chosen = slot; chosenCas = cas; own = true;
        tokens = load<f64>(scratch.ptr);
        last = load<i64>(scratch.ptr + 8);
        release(scratch);
        break;
      }
      if (chosen == 0xffffffff && (!valid || now >= load<i64>(scratch.ptr + 24))) {
        chosen = slot; chosenCas = cas; // free or idle; keep looking for our own bucket further on
      } else if (valid && load<i64>(scratch.ptr + 8) < victimLast) {
        victim = slot; victimCas = cas; victimLast = load<i64>(scratch.ptr + 8);
      }
      release(scratch);
    }
    if (chosen == 0xffffffff) { chosen = victim; chosenCas = victimCas; }
    if (!own) { tokens = rule.burst; last = now; }
    const elapsed = now > last ? <f64>(now - last) / 1e9 : 0.0;
    tokens = Math.min(rule.burst, tokens + elapsed * rule.ratePerSecond);
    const allowed = tokens >= 1.0;
    if (allowed) tokens -= 1.0;
    store<f64>(BUCKET_SLOT, tokens);
    store<i64>(BUCKET_SLOT + 8, now);
    store<u64>(BUCKET_SLOT + 16, rule.keyHash);
    store<i64>(BUCKET_SLOT + 24, now + <i64>((rule.burst - tokens) / rule.ratePerSecond * 1e9));
    slotKey(chosen);
    if (setSharedDataAt(SLOT_KEY, slotKeyLen, BUCKET_SLOT, SLOT_BYTES, chosenCas)) return allowed;
  }
  return true;
}

function localReply(status: u32, details: ArrayBuffer, body: ArrayBuffer, pairs: ByteBuffer, counter: u32): u32 {
  incrementCounter(counter);
  setProperty(PROPERTY_FASTPATH, FASTPATH_MARK, 1);
  if (!sendLocalResponse(status, details, body, pairs)) {
    incrementCounter(counterLocalReplyErrors);
    return Action.Continue;
  }
  return Action.Pause;
}

export function proxy_on_request_headers(contextId: u32, numHeaders: u32, endOfStream: u32): u32 {
  incrementCounter(counterRequests);
  if (++requestsSinceMemoryReport >= MEMORY_REPORT_EVERY) reportMemory();
  const c = config;
  const nowNs = nowNanos();
  userKey = "";
  identityReady = false;
  record.begin();
  headers.readRequestHeaders();
  readNodeWorkload(); // once per VM; captureInbound needs istioProxy

  if (c.role == ROLE_OUTBOUND) captureOutbound(); else captureInbound();
  captureNodeWorkload();
  record.fieldBytes("method", method.ptr, method.len);
  record.fieldBytes("authority", authority.ptr, authority.len);
  record.fieldBytes("path", path.ptr, path.len);

  // Operation id = "METHOD authority template", as the engine's toExchange builds it.
  if (!template.lookupInto(c.templates, method.ptr, method.len, path.ptr, path.len)) template.templateInto(path.ptr, path.len);
  record.fieldBytes("template", template.out.ptr, template.out.len);
  operation.reset();
  operation.append(method.ptr, method.len);
  operation.push(0x20);
  operation.append(authority.ptr, authority.len);
  operation.push(0x20);
  operation.append(template.out.ptr, template.out.len);
  record.fieldBytes("op", operation.ptr, operation.len);

  captureCredentials(nowNs / 1000000000);

  // Strings for table lookups only when some table needs them.
  const needOp = c.hasEnforcement() || c.alwaysOperations.size > 0;
  const op = needOp ? operation.toString() : "";
  const reason = decideSampling(op);
  record.fieldAscii("sampled", reason.length > 0 ? "1" : "0");
  if (reason.length > 0) {
    record.fieldAscii("sample.reason", reason);
    incrementCounter(counterSampled);
  }
  if (c.version.length > 0) record.fieldString("cfg", c.version);
  record.finish();
  if (!setProperty(PROPERTY_RECORD, record.recordPtr(), record.recordLen())) {
    incrementCounter(counterCaptureErrors);
    log(LogLevel.Warn, "meshward filter: could not write capture record to filter state");
  }

  let action: u32 = Action.Continue;
  const enforced = c.hasEnforcement() ? enforcedFor(c, op, nowNs) : null;
  if (enforced !== null) {
    action = enforced.status == 429
      ? localReply(429, LIMIT_DETAILS, enforced.body, LIMIT_PAIRS, counterLimited)
      : localReply(403, DENY_DETAILS, enforced.body, DENY_PAIRS, counterDenied);
  } else if (c.hasEnforcement()) {
    const denied = (c.denyIdentities.size > 0 && hasIdentity(c.denyIdentities)) ||
      (c.denyPairs.size > 0 && (c.denyPairs.has(pairKey(callerIdentity(), op)) || (userKey.length > 0 && c.denyPairs.has(pairKey(userKey, op)))));
    if (denied) {
      action = localReply(403, DENY_DETAILS, DENY_BODY, DENY_PAIRS, counterDenied);
    } else if (c.limits.size > 0) {
      const rule = limitFor(c.limits, op);
      if (rule !== null && !takeToken(rule)) action = localReply(429, LIMIT_DETAILS, LIMIT_BODY, LIMIT_PAIRS, counterLimited);
    }
  }
  headers.release();
  return action;
}

export function proxy_on_done(contextId: u32): u32 {
  return 1;
}

export function proxy_on_delete(contextId: u32): void {}
