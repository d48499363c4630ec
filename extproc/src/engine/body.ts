// What detectors read from bodies, parsed once per exchange and bounded: JSON (size and depth
// limits, never throws), GraphQL root calls (field names with arguments, counted over aliases and
// batches), query parameters, and scalar values. Bodies are present only when sampled.
import type { Headers } from './event.ts';

/** Bodies larger than this are not parsed (detectors then work from headers only). */
export const MAX_PARSE_BYTES = 1024 * 1024;
/** JSON nesting deeper than this is not walked. */
export const MAX_WALK_DEPTH = 16;
/** Scalars collected from one body at most. */
export const MAX_SCALARS = 256;

const parsedJson = new WeakMap<Buffer, unknown>();
const NOT_JSON = Symbol('not-json');

/** The body as JSON, or undefined (absent, too large, not JSON, or nested beyond what V8 parses). */
export function jsonOf(body: Buffer | undefined): unknown {
  if (body === undefined || body.length === 0 || body.length > MAX_PARSE_BYTES) return undefined;
  const cached = parsedJson.get(body);
  if (cached !== undefined) return cached === NOT_JSON ? undefined : cached;
  let value: unknown = NOT_JSON;
  const first = body[0];
  // Only objects and arrays: a bare string or number body is no structured request.
  if (first === 0x7b || first === 0x5b || first === 0x20 || first === 0x0a || first === 0x0d || first === 0x09) {
    try { value = JSON.parse(body.toString('utf8')); } catch { value = NOT_JSON; }
  }
  parsedJson.set(body, value ?? NOT_JSON);
  return value === NOT_JSON || value === null ? undefined : value;
}

/** Records the JSON view of a body decoded elsewhere (large bodies are decoded off the event loop),
 *  so jsonOf never parses that body on the event loop; undefined records "not JSON". */
export function rememberJson(body: Buffer, value: unknown): void {
  parsedJson.set(body, value === undefined || value === null ? NOT_JSON : value);
}

export function headerValue(headers: Headers, name: string): string | undefined {
  return headers.get(name)?.[0];
}

export interface ScalarField {
  /** Key of the innermost object property (array positions keep the parent's key). */
  key: string;
  /** Dotted path of property names (arrays skipped), e.g. "data.paste.owner.name". */
  path: string;
  value: string;
}

/** Scalars (strings up to 256 chars, finite numbers) in a JSON value, bounded in depth and count. */
export function scalarFields(value: unknown, limit = MAX_SCALARS): ScalarField[] {
  const out: ScalarField[] = [];
  const walk = (v: unknown, key: string, path: string, depth: number): void => {
    if (out.length >= limit || depth > MAX_WALK_DEPTH) return;
    if (typeof v === 'string') { if (v.length > 0 && v.length <= 256) out.push({ key, path, value: v }); return; }
    if (typeof v === 'number') { if (Number.isFinite(v)) out.push({ key, path, value: String(v) }); return; }
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) { for (const item of v) { if (out.length >= limit) return; walk(item, key, path, depth + 1); } return; }
    for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
      if (out.length >= limit) return;
      walk(item, k, path === '' ? k : `${path}.${k}`, depth + 1);
    }
  };
  walk(value, '', '', 0);
  return out;
}

/** Query parameters of a path (first 64), decoded; undecodable values are kept raw. */
export function queryParams(path: string): [string, string][] {
  const q = path.indexOf('?');
  if (q === -1) return [];
  const out: [string, string][] = [];
  for (const pair of path.slice(q + 1, q + 1 + 8192).split('&')) {
    if (out.length >= 64) break;
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const k = eq === -1 ? pair : pair.slice(0, eq);
    const v = eq === -1 ? '' : pair.slice(eq + 1);
    const dec = (s: string): string => { try { return decodeURIComponent(s.replace(/\+/g, ' ')); } catch { return s; } };
    out.push([dec(k), dec(v)]);
  }
  return out;
}

export interface GraphqlRequest {
  /** Root-level calls: field name -> how many times it is called (aliases and batch entries add up). */
  calls: Map<string, number>;
  /** Operation type of each document: query, mutation, subscription. */
  mutation: boolean;
  /** Variables objects of every document in the batch. */
  variables: Record<string, unknown>[];
  /** Documents in the request (a JSON array batch has several). */
  documents: number;
  /** The query texts (bounded), for argument extraction. */
  queries: string[];
}

const MAX_QUERY_CHARS = 64 * 1024;
const MAX_BATCH = 1000;
// A name followed by "(" is a field call with arguments, unless it names an operation or fragment.
// The lookbehinds make every match start at a word start, keeping the scan linear on long names.
const CALL = /(\b(?:query|mutation|subscription|fragment)\s+)?(@?)(?<![_0-9A-Za-z])([_A-Za-z][_0-9A-Za-z]*)\s*\(/g;

function graphqlQueries(request: { path: string; body?: Buffer; headers: Headers }): { query: string; variables: unknown }[] {
  const out: { query: string; variables: unknown }[] = [];
  const json = jsonOf(request.body);
  const take = (doc: unknown): void => {
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return;
    const q = (doc as Record<string, unknown>).query;
    if (typeof q === 'string') out.push({ query: q.slice(0, MAX_QUERY_CHARS), variables: (doc as Record<string, unknown>).variables });
  };
  if (Array.isArray(json)) for (const d of json.slice(0, MAX_BATCH)) take(d);
  else if (json !== undefined) take(json);
  else if (request.body !== undefined && request.body.length <= MAX_PARSE_BYTES && /x-www-form-urlencoded/i.test(headerValue(request.headers, 'content-type') ?? '')) {
    for (const [k, v] of queryParams(`?${request.body.toString('utf8')}`)) if (k === 'query') out.push({ query: v.slice(0, MAX_QUERY_CHARS), variables: undefined });
  }
  for (const [k, v] of queryParams(request.path)) if (k === 'query') out.push({ query: v.slice(0, MAX_QUERY_CHARS), variables: undefined });
  return out;
}

const parsedGraphql = new WeakMap<object, GraphqlRequest | null>();

/** GraphQL view of a request (JSON body with "query", JSON array batch, form or GET query), or undefined. */
export function graphqlOf(request: { path: string; body?: Buffer; headers: Headers }): GraphqlRequest | undefined {
  const cached = parsedGraphql.get(request);
  if (cached !== undefined) return cached ?? undefined;
  const docs = graphqlQueries(request);
  let result: GraphqlRequest | null = null;
  if (docs.length > 0) {
    const calls = new Map<string, number>();
    let mutation = false;
    const variables: Record<string, unknown>[] = [];
    for (const { query, variables: vars } of docs) {
      if (/^\s*mutation\b/.test(query)) mutation = true;
      if (vars !== null && typeof vars === 'object' && !Array.isArray(vars)) variables.push(vars as Record<string, unknown>);
      const strippedStrings = query.replace(/"(?:[^"\\]|\\.)*"/g, '""');
      for (const m of strippedStrings.matchAll(CALL)) {
        if (m[1] !== undefined || m[2] === '@') continue;
        const name = m[3]!;
        calls.set(name, (calls.get(name) ?? 0) + 1);
      }
    }
    result = { calls, mutation, variables, documents: docs.length, queries: docs.map((d) => d.query) };
  }
  parsedGraphql.set(request, result);
  return result ?? undefined;
}

/** Literal arguments in GraphQL text: name -> values, e.g. paste(id: 5) gives id -> ["5"]. */
export function graphqlLiteralArgs(queries: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  const ARG = /(?<![_0-9A-Za-z])([_A-Za-z][_0-9A-Za-z]*)\s*:\s*("(?:[^"\\]|\\.){0,256}"|-?\d{1,40})/g;
  for (const q of queries) {
    for (const m of q.matchAll(ARG)) {
      if (out.length >= MAX_SCALARS) return out;
      const raw = m[2]!;
      out.push([m[1]!, raw.startsWith('"') ? raw.slice(1, -1) : raw]);
    }
  }
  return out;
}
