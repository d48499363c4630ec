// Request -> spec operation matching: which OpenAPI operation a concrete request is, and the values
// of its path parameters. Used by the inventory (classification) and by content inspection, which
// needs the operation's request and response schemas.
//
// Rules: the path (query removed) is tried under each `servers` base path, longest first; a spec
// path matches when every segment matches, concrete segments before templated ones (OpenAPI 3:
// "concrete paths are matched before their templated counterparts"), compared left to right.
// Path parameters may be a whole segment or part of one ("{name}.json", "v{version}"); styles
// simple (default), label (".value") and matrix (";name=value") are understood. One trailing slash
// is ignored when the exact path has no match.
import { safeDecode, type ApiSpec, type JsonObject, type SpecOperation } from './spec.ts';

export interface SpecPathMatch {
  /** The spec path key, e.g. "/users/v1/{username}". */
  path: string;
  /** The servers base path the request was matched under ("" when none). */
  basePath: string;
  /** Decoded path parameter values by name. */
  pathParams: Record<string, string>;
  /** Every operation (method) the spec declares at this path. */
  operations: SpecOperation[];
}

export interface SpecMatch extends SpecPathMatch {
  operation: SpecOperation;
}

interface CompiledSegment {
  literal?: string;
  regex?: RegExp;
  names: string[];
  styles: string[];
}

interface CompiledPath {
  path: string;
  segments: CompiledSegment[];
  operations: SpecOperation[];
}

interface CompiledSpec {
  basePaths: string[];
  byLength: Map<number, CompiledPath[]>;
}

const compiled = new WeakMap<ApiSpec, CompiledSpec>();

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function compileSegment(segment: string, styleOf: (name: string) => string): CompiledSegment {
  if (!segment.includes('{')) return { literal: segment, names: [], styles: [] };
  const names: string[] = [];
  const styles: string[] = [];
  let pattern = '';
  let last = 0;
  for (const m of segment.matchAll(/\{([^{}]+)\}/g)) {
    pattern += escapeRegex(segment.slice(last, m.index));
    const name = m[1]!;
    names.push(name);
    styles.push(styleOf(name));
    pattern += '([^/]+?)';
    last = m.index + m[0].length;
  }
  pattern += escapeRegex(segment.slice(last));
  return { regex: new RegExp(`^${pattern}$`), names, styles };
}

function compile(spec: ApiSpec): CompiledSpec {
  const cached = compiled.get(spec);
  if (cached) return cached;
  const byPath = new Map<string, SpecOperation[]>();
  for (const op of spec.operations) {
    const list = byPath.get(op.path) ?? [];
    list.push(op);
    byPath.set(op.path, list);
  }
  const byLength = new Map<number, CompiledPath[]>();
  for (const [path, operations] of byPath) {
    const styleOf = (name: string): string => {
      for (const op of operations) {
        const p = op.parameters.find((x: JsonObject) => x.in === 'path' && x.name === name);
        if (p && typeof p.style === 'string') return p.style;
      }
      return 'simple';
    };
    const segments = path.split('/').map((s) => compileSegment(s, styleOf));
    const list = byLength.get(segments.length) ?? [];
    list.push({ path, segments, operations });
    byLength.set(segments.length, list);
  }
  const result = { basePaths: spec.basePaths, byLength };
  compiled.set(spec, result);
  return result;
}

function paramValue(raw: string, style: string, name: string): string | undefined {
  if (style === 'label') return raw.startsWith('.') ? safeDecode(raw.slice(1)) : undefined;
  if (style === 'matrix') return raw.startsWith(`;${name}=`) ? safeDecode(raw.slice(name.length + 2)) : undefined;
  return safeDecode(raw);
}

/** Matches the segments; returns the parameters and a rank (lower = more concrete), or undefined. */
function matchPath(entry: CompiledPath, segments: string[]): { params: Record<string, string>; rank: number[] } | undefined {
  const params: Record<string, string> = {};
  const rank: number[] = [];
  for (let i = 0; i < segments.length; i++) {
    const want = entry.segments[i]!;
    const got = segments[i]!;
    if (want.literal !== undefined) {
      if (want.literal !== got) return undefined;
      rank.push(0);
      continue;
    }
    const m = want.regex!.exec(got);
    if (!m || got.length === 0) return undefined;
    for (let j = 0; j < want.names.length; j++) {
      const value = paramValue(m[j + 1]!, want.styles[j]!, want.names[j]!);
      if (value === undefined || value.length === 0) return undefined;
      params[want.names[j]!] = value;
    }
    // A segment with literal text around its parameter is more concrete than a bare "{x}".
    rank.push(want.names.length === 1 && want.regex!.source === '^([^/]+?)$' ? 2 : 1);
  }
  return { params, rank };
}

function better(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}

function findPath(c: CompiledSpec, rest: string): { entry: CompiledPath; params: Record<string, string> } | undefined {
  const segments = rest.split('/');
  let best: { entry: CompiledPath; params: Record<string, string>; rank: number[] } | undefined;
  for (const entry of c.byLength.get(segments.length) ?? []) {
    const m = matchPath(entry, segments);
    if (m && (!best || better(m.rank, best.rank))) best = { entry, ...m };
  }
  return best;
}

/** The spec path a concrete request path (query allowed, ignored) belongs to, with its parameters. */
export function matchSpecPath(spec: ApiSpec, requestPath: string): SpecPathMatch | undefined {
  const c = compile(spec);
  const q = requestPath.indexOf('?');
  const path = q === -1 ? requestPath : requestPath.slice(0, q);
  for (const basePath of c.basePaths) {
    if (basePath !== '' && path !== basePath && !path.startsWith(`${basePath}/`)) continue;
    const rest = path.slice(basePath.length) || '/';
    const candidates = rest.length > 1 && rest.endsWith('/') ? [rest, rest.slice(0, -1)] : [rest];
    for (const candidate of candidates) {
      const found = findPath(c, candidate);
      if (found) return { path: found.entry.path, basePath, pathParams: found.params, operations: found.entry.operations };
    }
  }
  return undefined;
}

/** The spec operation a request is (method + path), or undefined when the spec does not declare it. */
export function matchSpecOperation(spec: ApiSpec, method: string, requestPath: string): SpecMatch | undefined {
  const m = matchSpecPath(spec, requestPath);
  if (!m) return undefined;
  const operation = m.operations.find((op) => op.method === method.toUpperCase());
  return operation ? { ...m, operation } : undefined;
}
