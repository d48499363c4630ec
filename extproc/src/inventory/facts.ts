// What one request or response tells the inventory, apart from its route: service, protocol, auth
// type, direction, parameter names and inferred types. Header values are read, never kept.
import type { Headers, RequestEvent } from '../engine/event.ts';
import { inferJson, inferText, type InferredSchema } from './schema-infer.ts';
import type { Protocol } from './record.ts';

export const MAX_JSON_BYTES = 256 * 1024;
const MAX_QUERY_PARAMS = 32;

/** Headers every HTTP client or proxy sends: not part of an API's contract. */
const TRANSPORT_HEADERS = new Set([
  'accept', 'accept-encoding', 'accept-language', 'authorization', 'cache-control', 'connection', 'content-length',
  'content-type', 'cookie', 'host', 'origin', 'pragma', 'referer', 'te', 'transfer-encoding', 'upgrade', 'user-agent',
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-request-id', 'x-envoy-attempt-count',
  'x-envoy-external-address', 'x-envoy-expected-rq-timeout-ms', 'x-envoy-internal', 'x-envoy-decorator-operation',
  'x-envoy-peer-metadata', 'x-envoy-peer-metadata-id', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled',
  'traceparent', 'tracestate', 'x-forwarded-client-cert', 'sec-websocket-key', 'sec-websocket-version',
  'sec-websocket-extensions', 'sec-websocket-protocol', 'grpc-timeout', 'grpc-accept-encoding', 'grpc-encoding', 'if-none-match',
  'if-modified-since', 'dnt', 'sec-fetch-site', 'sec-fetch-mode', 'sec-fetch-dest', 'sec-ch-ua', 'sec-ch-ua-mobile', 'sec-ch-ua-platform',
]);
const API_KEY_HEADERS = new Set(['x-api-key', 'api-key', 'apikey', 'x-auth-token']);

export function header(headers: Headers, name: string): string | undefined {
  return headers.get(name)?.[0];
}

/** The service a request is for: the authority without port, lower-case. */
export function serviceOf(authority: string): string {
  return authority.toLowerCase().replace(/:\d+$/, '') || 'unknown';
}

/** "ns" of "name.ns.svc.cluster.local" / "name.ns" style hosts; undefined for other hosts. */
export function namespaceOf(service: string): string | undefined {
  const parts = service.split('.');
  if (parts.length >= 3 && parts[2] === 'svc') return parts[1];
  return undefined;
}

export function contentTypeOf(headers: Headers): string | undefined {
  const ct = header(headers, 'content-type');
  return ct ? ct.split(';')[0]!.trim().toLowerCase().slice(0, 100) : undefined;
}

export function protocolOf(request: RequestEvent): Protocol {
  if (header(request.headers, 'upgrade')?.toLowerCase() === 'websocket') return 'websocket';
  if (contentTypeOf(request.headers)?.startsWith('application/grpc')) return 'grpc';
  return 'rest';
}

export function looksLikeGraphql(request: RequestEvent): boolean {
  const q = request.path.indexOf('?');
  const path = q === -1 ? request.path : request.path.slice(0, q);
  return /\/graphql\/?$/i.test(path) || contentTypeOf(request.headers) === 'application/graphql';
}

function isJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

export function authTypesOf(request: RequestEvent): string[] {
  const out: string[] = [];
  const auth = header(request.headers, 'authorization');
  if (auth) {
    const [scheme = '', token = ''] = auth.trim().split(/\s+/, 2);
    const s = scheme.toLowerCase();
    out.push(s === 'bearer' ? (isJwt(token) ? 'jwt' : 'bearer') : s === 'basic' ? 'basic' : s.slice(0, 20) || 'authorization');
  }
  for (const name of request.headers.keys()) if (API_KEY_HEADERS.has(name)) { out.push('api-key'); break; }
  if (request.headers.has('cookie')) out.push('cookie');
  if (request.caller.mtls && request.caller.workload) out.push('mtls');
  return out.length > 0 ? out : ['none'];
}

/**
 * East-west: a workload in the mesh called the service itself (mTLS workload identity and no
 * forwarding header). North-south: the request came from outside, relayed by a gateway or a
 * front-end (X-Forwarded-For / X-Envoy-External-Address), or from a caller without workload identity.
 */
export function isNorthSouth(request: RequestEvent): boolean {
  if (!request.caller.workload) return true;
  return request.headers.has('x-forwarded-for') || request.headers.has('x-envoy-external-address');
}

export function queryParamsOf(path: string): Record<string, InferredSchema> {
  const q = path.indexOf('?');
  const out: Record<string, InferredSchema> = {};
  if (q === -1) return out;
  let n = 0;
  for (const [k, v] of new URLSearchParams(path.slice(q + 1))) {
    if (++n > MAX_QUERY_PARAMS) break;
    out[k.slice(0, 100)] = inferText(v);
  }
  return out;
}

export function apiHeadersOf(headers: Headers): string[] {
  // Credentials headers show up as auth types instead.
  return [...headers.keys()].filter((h) => !TRANSPORT_HEADERS.has(h) && !API_KEY_HEADERS.has(h) && !h.startsWith(':')).map((h) => h.slice(0, 100));
}

/** Inferred schema of a JSON body; undefined when absent, too large, or not JSON. */
export function jsonBodySchema(headers: Headers, body: Buffer | undefined): InferredSchema | undefined {
  if (!body || body.length === 0 || body.length > MAX_JSON_BYTES) return undefined;
  const ct = contentTypeOf(headers);
  if (ct !== undefined && !ct.includes('json')) return undefined;
  try {
    return inferJson(JSON.parse(body.toString('utf8')));
  } catch {
    return undefined;
  }
}
