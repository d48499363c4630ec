// Parameter pollution: one object reference given twice with different values (path vs query,
// header or body, or a repeated query key or header). The server may authorise one copy and act on
// the other, which is how a caller slips another's ID past an ownership check. Names match after
// normalisation (userId, user_id, user-id, X-User-Id all name "userid"); a path parameter is named
// by the spec's template when it names it, else by the collection before it, singularised
// (/users/{} -> userid), and a bare "id" names the object the path ends with.
import type { Exchange } from './exchange.ts';
import { pathOnly } from './exchange.ts';
import { graphqlOf, jsonOf, queryParams } from './body.ts';
import { BASELINE_PLACEHOLDERS } from './operation.ts';
import { decodeSafe, normalizeId, VERSION } from './objects.ts';

export interface IdReference {
  where: 'path' | 'query' | 'header' | 'body';
  /** The name as sent (query key, header, body field) or the path template segment. */
  name: string;
  value: string;
}

export interface Pollution {
  /** The normalised field both references name. */
  field: string;
  first: IdReference;
  second: IdReference;
}

const ID_FIELD = /(id|uuid|guid)$/;
/** Cheap first test (id, uuid and guid all end so): most names are not ID names at all. */
const mayNameId = (name: string): boolean => /[iI][dD]$/.test(name);
const ID_SUFFIXES = ['id', 'uuid', 'guid'] as const;
/** Per-request or secret headers whose names end in "id": tracing, sessions, keys. They name no
 *  object, and a session ID must never reach evidence. */
const NOT_OBJECT_HEADER = /request|trace|span|parent|correlation|session|token|auth|key|secret|b3|envoy|amzn|idempotency|nonce|message|client/;
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const MAX_REFERENCES = 64;

/** "X-User-Id", "user_id", "userId", "user-id" -> "userid". */
export function canonicalName(name: string): string {
  return name.toLowerCase().replace(/^x-/, '').replace(/[-_.\s]/g, '');
}

/** English plural to singular for collection names: users -> user, categories -> category,
 *  addresses -> address, boxes -> box; anything else unchanged. */
export function singular(word: string): string {
  const w = word.toLowerCase();
  if (/[^aeiou]ies$/.test(w)) return `${w.slice(0, -3)}y`;
  if (/(ss|x|z|ch|sh)es$/.test(w)) return w.slice(0, -2);
  if (/[^su]s$/.test(w)) return w.slice(0, -1);
  return w;
}

/** Two values name the same object: case-insensitively, and numbers regardless of leading zeros. */
function sameValue(a: string, b: string): boolean {
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return a.replace(/^0+(?=\d)/, '') === b.replace(/^0+(?=\d)/, '');
  return a.toLowerCase() === b.toLowerCase();
}

interface PathParameter { reference: IdReference; names: Set<string> }

/** ID parameters of the path with the names they go by. The template is the engine's learned
 *  resource ("{}" per ID) else the route template; the spec's parameter names come from the route
 *  template when it has as many segments. */
function pathParameters(exchange: Exchange): PathParameter[] {
  const segments = pathOnly(exchange.request.path).split('/', 64);
  const learned = exchange.resource?.split(' ', 3)[2]?.split('/', 64);
  const route = exchange.template.split('/', 64);
  const template = learned !== undefined && learned.length === segments.length ? learned : route;
  const named = route.length === segments.length ? route : undefined;
  const out: PathParameter[] = [];
  for (let i = 0; i < segments.length; i++) {
    if (!/^\{.*\}$/.test(template[i] ?? '')) continue;
    const names = new Set<string>();
    const specName = named?.[i];
    if (specName !== undefined && /^\{\w+\}$/.test(specName) && !(BASELINE_PLACEHOLDERS as readonly string[]).includes(specName)) {
      const n = canonicalName(specName.slice(1, -1));
      if (n !== 'id') names.add(n);
    }
    let j = i - 1;
    while (j > 0 && VERSION.test(segments[j]!)) j--;
    const collection = j > 0 && !/^\{.*\}$/.test(template[j] ?? '') ? canonicalName(singular(segments[j]!)) : '';
    if (collection !== '') for (const suffix of ID_SUFFIXES) names.add(`${collection}${suffix}`);
    if (i === segments.length - 1) names.add('id');
    out.push({ reference: { where: 'path', name: template[i]!, value: normalizeId(decodeSafe(segments[i]!)) }, names });
  }
  return out;
}

/** ID references outside the path: id-named query keys, headers and top-level JSON body fields. A
 *  header that repeats the caller's own identity (a gateway's X-User-Id) propagates who calls, not
 *  which object: access to the path's object is the ownership checks' to judge. */
function namedReferences(exchange: Exchange): IdReference[] {
  const { request } = exchange;
  const self = new Set((exchange.userNames ?? []).map((n) => n.toLowerCase()));
  const out: IdReference[] = [];
  for (const [name, value] of queryParams(request.path)) {
    if (value !== '' && mayNameId(name) && ID_FIELD.test(canonicalName(name))) out.push({ where: 'query', name, value: normalizeId(value) });
  }
  for (const [name, values] of request.headers) {
    if (!mayNameId(name)) continue;
    const n = canonicalName(name);
    if (!ID_FIELD.test(n) || NOT_OBJECT_HEADER.test(n)) continue;
    for (const value of values.slice(0, 4)) if (value !== '' && !self.has(value.toLowerCase())) out.push({ where: 'header', name, value: normalizeId(value) });
  }
  if (WRITE_METHODS.has(request.method) && graphqlOf(request) === undefined) {
    const body = jsonOf(request.body);
    if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
      for (const [name, value] of Object.entries(body as Record<string, unknown>).slice(0, MAX_REFERENCES)) {
        if ((typeof value === 'string' && value !== '') || (typeof value === 'number' && Number.isFinite(value))) {
          if (mayNameId(name) && ID_FIELD.test(canonicalName(name))) out.push({ where: 'body', name, value: normalizeId(String(value)) });
        }
      }
    }
  }
  return out.slice(0, MAX_REFERENCES);
}

/** The first object reference the request gives twice with different values, or undefined. */
export function findPollution(exchange: Exchange): Pollution | undefined {
  const named = namedReferences(exchange).map((reference) => ({ reference, field: canonicalName(reference.name) }));
  if (named.length === 0) return undefined;
  for (const p of pathParameters(exchange)) {
    for (const { reference, field } of named) {
      if (p.names.has(field) && !sameValue(p.reference.value, reference.value)) return { field, first: p.reference, second: reference };
    }
  }
  for (let i = 0; i < named.length; i++) {
    for (let j = i + 1; j < named.length; j++) {
      const a = named[i]!;
      const b = named[j]!;
      if (a.field === b.field && !sameValue(a.reference.value, b.reference.value)) return { field: a.field, first: a.reference, second: b.reference };
    }
  }
  return undefined;
}
