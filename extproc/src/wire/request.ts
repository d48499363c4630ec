// Envoy ProcessingRequest -> normalized engine input. Thin: no decisions here.
import type { Caller, Headers, RequestEvent, ResponseEvent } from '../engine/event.ts';
import type { HeaderMap, ProcessingRequest, Struct } from './messages.ts';
import { parseCaptureRecord, type CaptureRecord } from './capture-record.ts';

/** Key under which Envoy puts request attributes (the filter's name). */
export const EXT_PROC_ATTRIBUTES_KEY = 'envoy.filters.http.ext_proc';
/** Filter state written by the meshward Wasm filter, requested as an ext_proc attribute. */
export const CAPTURE_ATTRIBUTE = "filter_state['wasm.meshward']";
export const PEER_URI_ATTRIBUTE = 'connection.uri_san_peer_certificate';
export const MTLS_ATTRIBUTE = 'connection.mtls';
export const SOURCE_ADDRESS_ATTRIBUTE = 'source.address';

/** The request_attributes an ext_proc filter must be configured with for meshward. */
export const REQUIRED_REQUEST_ATTRIBUTES = [
  CAPTURE_ATTRIBUTE, PEER_URI_ATTRIBUTE, MTLS_ATTRIBUTE, SOURCE_ADDRESS_ATTRIBUTE,
] as const;

export function headerMapToHeaders(map: HeaderMap | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const h of map?.headers ?? []) {
    if (typeof h.key !== 'string') continue;
    const key = h.key.toLowerCase();
    // Envoy sends values in raw_value; `value` is only a fallback for older senders.
    // (protobufjs hands bytes over as a Buffer already: decoded in place, not copied first.)
    const raw = h.raw_value;
    const value = raw === undefined ? (h.value ?? '') : Buffer.isBuffer(raw) ? raw.toString('utf8') : Buffer.from(raw).toString('utf8');
    const list = out.get(key);
    if (list) list.push(value);
    else out.set(key, [value]);
  }
  return out;
}

export function firstHeader(headers: Headers, name: string): string | undefined {
  return headers.get(name)?.[0];
}

function attributeString(attrs: Struct | undefined, key: string): string | undefined {
  const v = attrs?.fields?.[key];
  if (v === undefined) return undefined;
  if (typeof v.stringValue === 'string') return v.stringValue;
  return undefined;
}

function attributeBool(attrs: Struct | undefined, key: string): boolean | undefined {
  const v = attrs?.fields?.[key];
  return typeof v?.boolValue === 'boolean' ? v.boolValue : undefined;
}

export interface CallerResolution {
  caller: Caller;
  /** The filter's capture record, when it was present and well-formed. */
  record?: CaptureRecord;
  /** Set when the filter's record and Envoy's own attributes disagree (a misconfiguration). */
  conflict?: string;
}

/**
 * Who is calling, from values only Envoy can set: the filter's capture record in filter state and
 * Envoy's connection attributes. Request headers are never consulted, so a client cannot forge it.
 */
export function resolveCaller(request: ProcessingRequest): CallerResolution {
  const attrs = request.attributes?.[EXT_PROC_ATTRIBUTES_KEY];
  const record = parseCaptureRecord(attributeString(attrs, CAPTURE_ATTRIBUTE));
  const peerAttr = attributeString(attrs, PEER_URI_ATTRIBUTE) || undefined;
  const mtlsAttr = attributeBool(attrs, MTLS_ATTRIBUTE);
  const srcAttr = attributeString(attrs, SOURCE_ADDRESS_ATTRIBUTE) || undefined;

  if (record) {
    const caller: Caller = {
      // Outbound: the caller is this sidecar's own workload; inbound: the mTLS peer.
      workload: record.role === 'outbound' ? record.self : record.peer,
      mtls: record.mtls,
      sourceAddress: record.src ?? srcAttr,
      identitySource: 'filter',
      ...definedOnly(record.role === 'outbound'
        ? { workloadName: record.selfWorkloadName, namespace: record.selfNamespace }
        : { workloadName: record.peerWorkloadName, namespace: record.peerNamespace }),
      ...definedOnly({ user: record.user, tokenHash: record.tokenHash, apiKeyHash: record.apiKeyHash }),
    };
    if (record.role === 'inbound' && peerAttr !== undefined && peerAttr !== record.peer) {
      // Both come from Envoy; trust the TLS stack's own attribute and report the mismatch.
      return {
        caller: { ...caller, workload: peerAttr, identitySource: 'envoy-attribute' },
        record,
        conflict: `filter captured ${JSON.stringify(record.peer ?? null)} but connection attribute is ${JSON.stringify(peerAttr)}`,
      };
    }
    return { caller, record };
  }
  if (peerAttr !== undefined || mtlsAttr !== undefined) {
    return {
      caller: { workload: peerAttr, mtls: mtlsAttr ?? false, sourceAddress: srcAttr, identitySource: 'envoy-attribute' },
    };
  }
  return { caller: { mtls: false, sourceAddress: srcAttr, identitySource: 'none' } };
}

/** Copies only the defined properties (the engine's optional fields are absent, never undefined).
 *  A plain loop: this runs several times per request, and entries/filter/fromEntries allocated
 *  three arrays per call (visible in the server's CPU profile). */
function definedOnly<T extends object>(o: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) {
    const v = (o as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = v;
  }
  return out as Partial<T>;
}

/** What the filter derived about the request itself (operation, sampling, direction). */
function filterAnnotations(record: CaptureRecord | undefined): Partial<RequestEvent> {
  if (!record) return {};
  return definedOnly({
    operation: record.operation,
    template: record.template,
    sampled: record.sampled,
    direction: record.role,
    destination: record.role === 'outbound' ? record.dest : undefined,
    sidecarWorkload: record.nodeNamespace === undefined && record.nodeWorkloadName === undefined && record.nodeLabels === undefined
      ? undefined
      : definedOnly({ namespace: record.nodeNamespace, name: record.nodeWorkloadName, labels: record.nodeLabels }),
  });
}

export function toRequestEvent(requestId: string, request: ProcessingRequest, now: number): { event: RequestEvent; conflict?: string; record?: CaptureRecord } {
  const headers = headerMapToHeaders(request.request_headers?.headers);
  const { caller, conflict, record } = resolveCaller(request);
  const event: RequestEvent = {
    requestId,
    time: now,
    caller,
    method: firstHeader(headers, ':method') ?? '',
    authority: firstHeader(headers, ':authority') ?? firstHeader(headers, 'host') ?? '',
    path: firstHeader(headers, ':path') ?? '',
    headers,
    ...filterAnnotations(record),
    ...(request.observability_mode === true ? { observedOnly: true } : {}),
  };
  return { event, ...(conflict !== undefined ? { conflict } : {}), ...(record ? { record } : {}) };
}

export function toResponseEvent(requestId: string, request: ProcessingRequest, now: number): ResponseEvent {
  const headers = headerMapToHeaders(request.response_headers?.headers);
  const status = Number.parseInt(firstHeader(headers, ':status') ?? '', 10);
  return { requestId, time: now, status: Number.isFinite(status) ? status : 0, headers };
}
