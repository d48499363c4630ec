// The client-controlled values of a request, flattened for scanners: query parameters, body fields
// (JSON leaves, form and multipart fields) and header values, each with where it came from.
import type { RequestEvent } from '../engine/event.ts';
import type { DecodedBody } from './body.ts';
import { pathToPointer, walkJsonStrings } from './json.ts';

export interface RequestValue {
  location: 'query' | 'body' | 'header' | 'path';
  /** Parameter, header or field name; for JSON bodies the JSON pointer. */
  name: string;
  /** Nearest property or parameter name (for key-based hints such as "url" or "callback"). */
  key: string;
  value: string;
}

/** The host of an :authority, lower-case, without port or IPv6 brackets ("[::1]:80" -> "::1"). */
export function authorityHost(authority: string): string {
  const a = authority.toLowerCase();
  if (a.startsWith('[')) return a.slice(1, a.indexOf(']'));
  const colon = a.lastIndexOf(':');
  return colon === -1 ? a : a.slice(0, colon);
}

export function queryParams(path: string, maxFields: number): [string, string][] {
  const q = path.indexOf('?');
  if (q === -1) return [];
  const out: [string, string][] = [];
  for (const pair of new URLSearchParams(path.slice(q + 1))) {
    if (out.length >= maxFields) break;
    out.push(pair);
  }
  return out;
}

export function bodyValues(body: DecodedBody, maxNodes: number): RequestValue[] {
  const out: RequestValue[] = [];
  const c = body.content;
  if (c.kind === 'json') {
    for (const v of walkJsonStrings(c.value, maxNodes)) out.push({ location: 'body', name: pathToPointer(v.path), key: v.key ?? '', value: v.value });
  } else if (c.kind === 'form' || c.kind === 'multipart') {
    for (const [k, v] of c.fields) out.push({ location: 'body', name: k, key: k, value: v });
  }
  return out;
}

/** Headers that carry the caller's own addresses or protocol plumbing, never a target to fetch. */
const NON_TARGET_HEADERS = new Set([
  ':authority', ':path', ':method', ':scheme', 'host', 'origin', 'referer', 'user-agent', 'accept', 'accept-encoding',
  'accept-language', 'content-type', 'content-length', 'authorization', 'cookie', 'x-forwarded-for', 'x-forwarded-proto',
  'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'x-request-id', 'x-envoy-expected-rq-timeout-ms', 'forwarded', 'via',
  'traceparent', 'tracestate', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-forwarded-client-cert',
]);

export function requestValues(request: RequestEvent, body: DecodedBody | undefined, maxNodes: number): RequestValue[] {
  const out: RequestValue[] = queryParams(request.path, maxNodes).map(([k, v]) => ({ location: 'query', name: k, key: k, value: v }));
  if (body) out.push(...bodyValues(body, maxNodes));
  for (const [name, values] of request.headers) {
    if (NON_TARGET_HEADERS.has(name) || name.startsWith('x-envoy-') || name.startsWith('x-meshward-')) continue;
    for (const v of values) out.push({ location: 'header', name, key: name, value: v });
  }
  return out;
}
