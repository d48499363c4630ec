// OpenAPI 3.0 / 3.1 loading: text or file -> a checked, dereferenced document and its operation
// list. @apidevtools/swagger-parser does validation and $ref resolution; this module adds what it
// does not: a size cap, a YAML alias cap, refusal of external $refs (no network or file access from
// a spec), detection of pure $ref loops, and errors that name the spec and the place.
import { readFile, stat } from 'node:fs/promises';
import SwaggerParser from '@apidevtools/swagger-parser';
import { parse as parseYaml, YAMLParseError } from 'yaml';

export const DEFAULT_MAX_SPEC_BYTES = 5 * 1024 * 1024;
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
const MAX_WALK_NODES = 2_000_000;

export type JsonObject = Record<string, unknown>;

/** A spec that cannot be used; `place` is a JSON pointer ("#/paths/~1users/get") or "line L, column C". */
export class SpecError extends Error {
  readonly spec: string;
  readonly place: string;
  constructor(spec: string, place: string, problem: string) {
    super(`spec "${spec}": ${place ? `at ${place}: ` : ''}${problem}`);
    this.name = 'SpecError';
    this.spec = spec;
    this.place = place;
  }
}

export interface SpecOperation {
  method: string;
  /** The path key as written in the spec, e.g. "/users/v1/{username}". */
  path: string;
  operationId?: string;
  deprecated: boolean;
  /** The dereferenced operation object (request body, responses, parameters as in the spec). */
  operation: JsonObject;
  /** Path-item and operation parameters merged (operation wins on name+in), dereferenced. */
  parameters: JsonObject[];
}

export interface ApiSpec {
  /** The name errors and reports use: the file path, or the name given with the text. */
  name: string;
  openapi: string;
  title: string;
  version: string;
  /** Path prefixes from `servers` (variables replaced by their defaults); [""] when none. */
  basePaths: string[];
  operations: SpecOperation[];
  /** The dereferenced document. Recursive schemas keep their internal "#/..." $ref. */
  document: JsonObject;
}

export interface LoadSpecOptions {
  maxBytes?: number;
}

export async function loadSpecFile(file: string, options: LoadSpecOptions = {}): Promise<ApiSpec> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_SPEC_BYTES;
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (err) {
    throw new SpecError(file, '', `cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (size > maxBytes) throw tooLarge(file, size, maxBytes);
  return parseSpec(await readFile(file, 'utf8'), file, options);
}

/** Loads a spec over HTTP(S) with a byte cap and a timeout. */
export async function loadSpecUrl(url: string, options: LoadSpecOptions & { timeoutMs?: number } = {}): Promise<ApiSpec> {
  const fetched = await fetchSpecText(url, options);
  if (!fetched.modified) throw new SpecError(url, '', 'answered 304 Not Modified to an unconditional request');
  return parseSpec(fetched.text, url, options);
}

export const DEFAULT_SPEC_FETCH_TIMEOUT_MS = 10_000;

/** Validators from an earlier fetch, sent back so an unchanged spec costs a 304 and no parse. */
export interface SpecValidators {
  etag?: string;
  lastModified?: string;
}

export type SpecFetch = ({ modified: true; text: string } & SpecValidators) | { modified: false };

/** Fetches a spec's text with a timeout (covering the body too) and a byte cap checked while
 *  streaming; with `previous`, a conditional request (If-None-Match / If-Modified-Since). */
export async function fetchSpecText(url: string, options: LoadSpecOptions & { timeoutMs?: number; previous?: SpecValidators; name?: string } = {}): Promise<SpecFetch> {
  const name = options.name ?? url;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_SPEC_BYTES;
  const timeoutMs = options.timeoutMs ?? DEFAULT_SPEC_FETCH_TIMEOUT_MS;
  const headers: Record<string, string> = {};
  if (options.previous?.etag) headers['if-none-match'] = options.previous.etag;
  if (options.previous?.lastModified) headers['if-modified-since'] = options.previous.lastModified;
  const failed = (err: unknown): SpecError => new SpecError(name, '', (err as Error).name === 'TimeoutError'
    ? `no complete answer within ${timeoutMs} ms`
    : `cannot fetch: ${(err as Error).message}${(err as { cause?: Error }).cause ? ` (${(err as { cause: Error }).cause.message})` : ''}`);
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow', headers });
  } catch (err) {
    throw failed(err);
  }
  if (res.status === 304 && options.previous) {
    await res.body?.cancel();
    return { modified: false };
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new SpecError(name, '', `fetch answered HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > maxBytes) {
    await res.body?.cancel();
    throw tooLarge(name, declared, maxBytes);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body ?? []) {
      total += (chunk as Uint8Array).byteLength;
      // Leaving the loop cancels the body, so an endless answer stops here.
      if (total > maxBytes) break;
      chunks.push(Buffer.from(chunk as Uint8Array));
    }
  } catch (err) {
    throw failed(err);
  }
  if (total > maxBytes) throw tooLarge(name, total, maxBytes);
  const etag = res.headers.get('etag');
  const lastModified = res.headers.get('last-modified');
  return { modified: true, text: Buffer.concat(chunks).toString('utf8'), ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}) };
}

function tooLarge(name: string, size: number, max: number): SpecError {
  return new SpecError(name, '', `${(size / 1048576).toFixed(1)} MiB is over the ${(max / 1048576).toFixed(1)} MiB limit for a spec`);
}

/** Parses and checks a spec given as YAML or JSON text. */
export async function parseSpec(text: string, name: string, options: LoadSpecOptions = {}): Promise<ApiSpec> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_SPEC_BYTES;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) throw tooLarge(name, bytes, maxBytes);
  let doc: unknown;
  try {
    // YAML is a superset of JSON; the alias cap bounds "billion laughs" expansion.
    doc = parseYaml(text, { maxAliasCount: 100, uniqueKeys: false });
  } catch (err) {
    if (err instanceof YAMLParseError && err.linePos) {
      throw new SpecError(name, `line ${err.linePos[0].line}, column ${err.linePos[0].col}`, `not valid YAML or JSON: ${err.message.split('\n')[0]}`);
    }
    throw new SpecError(name, '', `not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  return checkSpecDocument(doc, name);
}

/** Checks an already parsed document (validates, dereferences, extracts operations). */
export async function checkSpecDocument(doc: unknown, name: string): Promise<ApiSpec> {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new SpecError(name, '#', 'a spec must be a YAML or JSON object');
  const root = doc as JsonObject;
  if ('swagger' in root) throw new SpecError(name, '#/swagger', `Swagger ${String(root.swagger)} is not supported; convert it to OpenAPI 3.0 or 3.1`);
  const version = typeof root.openapi === 'string' ? root.openapi : '';
  if (!/^3\.[01]\.\d+$/.test(version)) throw new SpecError(name, '#/openapi', `OpenAPI version ${JSON.stringify(root.openapi ?? null)} is not supported; use 3.0.x or 3.1.x`);
  checkRefs(root, name);
  let document: JsonObject;
  try {
    document = await SwaggerParser.validate(structuredClone(root) as never, {
      resolve: { external: false, file: false, http: false },
      dereference: { circular: 'ignore' },
    } as never) as unknown as JsonObject;
  } catch (err) {
    throw fromParserError(err, name);
  }
  return {
    name,
    openapi: version,
    title: String((document.info as JsonObject | undefined)?.title ?? ''),
    version: String((document.info as JsonObject | undefined)?.version ?? ''),
    basePaths: basePathsOf(document),
    operations: operationsOf(document),
    document,
  };
}

function fromParserError(err: unknown, name: string): SpecError {
  const e = err as Error & { details?: { instancePath?: string; message?: string }[]; path?: string[] };
  if (Array.isArray(e.details) && e.details.length > 0) {
    const first = e.details[0]!;
    const more = e.details.length > 1 ? ` (and ${e.details.length - 1} more problems)` : '';
    return new SpecError(name, `#${first.instancePath ?? ''}`, `${first.message ?? 'invalid'}${more}`);
  }
  const place = Array.isArray(e.path) ? `#/${e.path.map(pointerToken).join('/')}` : '';
  return new SpecError(name, place, e.message.split('\n').filter(Boolean).join('; '));
}

function pointerToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Refuses external $refs and $ref chains that only point at each other (no schema at the end). */
function checkRefs(root: JsonObject, name: string): void {
  const refs: { place: string; ref: string }[] = [];
  const stack: [unknown, string][] = [[root, '#']];
  let visited = 0;
  while (stack.length > 0) {
    const [node, place] = stack.pop()!;
    if (++visited > MAX_WALK_NODES) throw new SpecError(name, place, `more than ${MAX_WALK_NODES} nodes`);
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      node.forEach((v, i) => stack.push([v, `${place}/${i}`]));
      continue;
    }
    const obj = node as JsonObject;
    if (typeof obj.$ref === 'string') {
      if (!obj.$ref.startsWith('#')) throw new SpecError(name, `${place}/$ref`, `external $ref "${obj.$ref}" is not supported; bundle the spec into one file`);
      refs.push({ place, ref: obj.$ref });
    }
    for (const [k, v] of Object.entries(obj)) stack.push([v, `${place}/${pointerToken(k)}`]);
  }
  for (const { place, ref } of refs) {
    const seen = new Set<string>([place]);
    let target = ref;
    for (;;) {
      if (seen.has(target)) throw new SpecError(name, `${place}/$ref`, `$ref "${ref}" is a reference loop (${[...seen, target].join(' -> ')}) that never reaches a schema`);
      seen.add(target);
      const node = resolvePointer(root, target);
      if (node === null || typeof node !== 'object' || typeof (node as JsonObject).$ref !== 'string') break;
      target = (node as JsonObject).$ref as string;
    }
  }
}

function resolvePointer(root: JsonObject, ref: string): unknown {
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as JsonObject)[safeDecode(raw).replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node;
}

/** decodeURIComponent that leaves malformed escapes as they are. */
export function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function basePathsOf(document: JsonObject): string[] {
  const servers = Array.isArray(document.servers) ? (document.servers as JsonObject[]) : [];
  const paths = new Set<string>();
  for (const server of servers) {
    let url = String(server.url ?? '');
    const vars = (server.variables ?? {}) as Record<string, JsonObject>;
    url = url.replace(/\{([^}]+)\}/g, (_, v: string) => String(vars[v]?.default ?? ''));
    let pathname: string;
    try {
      pathname = new URL(url, 'http://base.invalid').pathname;
    } catch {
      continue;
    }
    paths.add(pathname.replace(/\/+$/, ''));
  }
  if (paths.size === 0) paths.add('');
  // Longest first, so "/api/v2" is tried before "/api".
  return [...paths].sort((a, b) => b.length - a.length);
}

function operationsOf(document: JsonObject): SpecOperation[] {
  const out: SpecOperation[] = [];
  for (const [path, rawItem] of Object.entries((document.paths ?? {}) as Record<string, unknown>)) {
    if (rawItem === null || typeof rawItem !== 'object') continue;
    const item = rawItem as JsonObject;
    const shared = Array.isArray(item.parameters) ? (item.parameters as JsonObject[]) : [];
    for (const method of HTTP_METHODS) {
      const op = item[method];
      if (op === null || typeof op !== 'object') continue;
      const operation = op as JsonObject;
      const own = Array.isArray(operation.parameters) ? (operation.parameters as JsonObject[]) : [];
      const byKey = new Map<string, JsonObject>();
      for (const p of [...shared, ...own]) byKey.set(`${String(p.in)}:${String(p.name)}`, p);
      out.push({
        method: method.toUpperCase(),
        path,
        ...(typeof operation.operationId === 'string' ? { operationId: operation.operationId } : {}),
        deprecated: operation.deprecated === true,
        operation,
        parameters: [...byKey.values()],
      });
    }
  }
  return out;
}
