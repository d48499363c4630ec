// GraphQL request analysis with the reference parser (graphql-js): where the query came from
// (JSON, batch, application/graphql, form, GET), then depth, aliases, cost, directives and
// introspection of each operation. parse() stops at maxTokens, so a 10,000-alias or 1,000-deep
// query costs at most that many tokens; depth and cost walks are iterative-bounded by the
// document the parser accepted.
import {
  Kind, parse, validate, specifiedRules, buildClientSchema, GraphQLError,
  type DocumentNode, type FieldNode, type FragmentDefinitionNode, type GraphQLSchema, type IntrospectionQuery, type SelectionSetNode, type ValueNode,
} from 'graphql';
import type { RequestEvent } from '../engine/event.ts';
import type { DecodedBody } from './body.ts';
import { queryParams } from './values.ts';

export interface GraphqlLimits {
  maxTokens: number;
  maxDepth: number;
  maxAliases: number;
  maxBatch: number;
  maxCost: number;
  maxDirectives: number;
  /** Repeats of one response key in one selection set (clients never need them: they merge). */
  maxDuplicateFields: number;
  /** Whether __schema / __type queries are allowed (policy). */
  allowIntrospection: boolean;
}

/** Defaults follow graphql-armor's published defaults (depth 6, aliases 15, cost 5000, directives 50). */
export const DEFAULT_GRAPHQL_LIMITS: Readonly<GraphqlLimits> = Object.freeze({
  maxTokens: 10_000, maxDepth: 6, maxAliases: 15, maxBatch: 10, maxCost: 5000, maxDirectives: 50, maxDuplicateFields: 5, allowIntrospection: false,
});

export type GraphqlTransport = 'json' | 'json-batch' | 'graphql-body' | 'form' | 'get';

export interface GraphqlOperationText { query: string; variables: Record<string, unknown> }

export type GraphqlExtraction =
  | { kind: 'none' }
  | { kind: 'malformed'; transport: GraphqlTransport; detail: string }
  | { kind: 'operations'; transport: GraphqlTransport; operations: GraphqlOperationText[]; batchSize: number };

/** Path segments that mark a GraphQL endpoint; GET/form queries are only read there. */
export function isGraphqlPath(path: string): boolean {
  const q = path.indexOf('?');
  const p = (q === -1 ? path : path.slice(0, q)).toLowerCase();
  return p.endsWith('/graphql') || p.endsWith('/graphql/') || p.endsWith('/gql') || p.endsWith('/graphiql');
}

function variablesOf(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function operationOf(item: unknown): GraphqlOperationText | string {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return 'batch entry is not an object';
  const q = (item as { query?: unknown }).query;
  if (typeof q !== 'string') return q === undefined ? 'request has no "query" string' : 'the "query" member is not a string';
  return { query: q, variables: variablesOf((item as { variables?: unknown }).variables) };
}

/** Finds the GraphQL operation(s) an HTTP request carries; 'none' when it is not a GraphQL request. */
export function extractGraphql(request: RequestEvent, body: DecodedBody, maxBatchParsed = 1000): GraphqlExtraction {
  const atEndpoint = isGraphqlPath(request.path);
  const c = body.content;
  if (request.method === 'GET' && atEndpoint) {
    const query = queryParams(request.path, 100).find(([k]) => k === 'query')?.[1];
    if (query === undefined) return { kind: 'none' };
    let variables: Record<string, unknown> = {};
    const rawVars = queryParams(request.path, 100).find(([k]) => k === 'variables')?.[1];
    if (rawVars !== undefined && rawVars.length < 65536) { try { variables = variablesOf(JSON.parse(rawVars)); } catch { /* ignored: analysed without variables */ } }
    return { kind: 'operations', transport: 'get', operations: [{ query, variables }], batchSize: 1 };
  }
  if (body.mediaType === 'application/graphql' && body.text !== '') {
    return { kind: 'operations', transport: 'graphql-body', operations: [{ query: body.text, variables: {} }], batchSize: 1 };
  }
  if (c.kind === 'form' && atEndpoint) {
    const query = c.fields.find(([k]) => k === 'query')?.[1];
    return query === undefined ? { kind: 'none' } : { kind: 'operations', transport: 'form', operations: [{ query, variables: {} }], batchSize: 1 };
  }
  if (c.kind === 'json') {
    if (Array.isArray(c.value)) {
      if (!atEndpoint && !c.value.some((v) => typeof (v as { query?: unknown } | null)?.query === 'string')) return { kind: 'none' };
      if (c.value.length === 0) return { kind: 'malformed', transport: 'json-batch', detail: 'empty batch' };
      const operations: GraphqlOperationText[] = [];
      for (const item of c.value.slice(0, maxBatchParsed)) {
        const op = operationOf(item);
        if (typeof op === 'string') return { kind: 'malformed', transport: 'json-batch', detail: op };
        operations.push(op);
      }
      return { kind: 'operations', transport: 'json-batch', operations, batchSize: c.value.length };
    }
    const hasQueryMember = c.value !== null && typeof c.value === 'object' && 'query' in c.value;
    if (!atEndpoint && !(hasQueryMember && typeof (c.value as { query: unknown }).query === 'string')) return { kind: 'none' };
    const op = operationOf(c.value);
    if (typeof op === 'string') return { kind: 'malformed', transport: 'json', detail: op };
    return { kind: 'operations', transport: 'json', operations: [op], batchSize: 1 };
  }
  // An unparseable body is reported by the body detector, whatever the endpoint.
  return { kind: 'none' };
}

export interface GraphqlMetrics {
  operationType: 'query' | 'mutation' | 'subscription' | 'mixed';
  depth: number;
  aliases: number;
  rootFields: number;
  directives: number;
  /** Most repeats of one response key within a selection set. */
  duplicateFields: number;
  /** Estimated work: every field costs 1, times the page size of the lists around it. */
  cost: number;
  introspection: boolean;
}

export type GraphqlAnalysis = { ok: true; metrics: GraphqlMetrics; document: DocumentNode } | { ok: false; reason: 'too-many-tokens' | 'syntax-error'; detail: string };

/** Arguments that conventionally size a list; their numeric value multiplies the cost below. */
const PAGE_SIZE_ARGS = new Set(['first', 'last', 'limit', 'pagesize', 'page_size', 'perpage', 'per_page', 'top', 'take', 'count', 'size']);
const COST_CEILING = 1e12;

function numericArg(value: ValueNode, variables: Record<string, unknown>): number | undefined {
  if (value.kind === Kind.INT) return Number(value.value);
  if (value.kind === Kind.VARIABLE) {
    const v = variables[value.name.value];
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  }
  return undefined;
}

function listFactor(field: FieldNode, variables: Record<string, unknown>): number {
  for (const arg of field.arguments ?? []) {
    if (!PAGE_SIZE_ARGS.has(arg.name.value.toLowerCase())) continue;
    const n = numericArg(arg.value, variables);
    if (n !== undefined && n > 1) return Math.min(n, 1e6);
  }
  return 1;
}

/** A service's schema from an introspection result ({"data": {"__schema": ...}} or {"__schema": ...}), as policy supplies it. */
export function schemaFromIntrospection(result: unknown): GraphQLSchema {
  const r = result as { data?: IntrospectionQuery } & Partial<IntrospectionQuery>;
  const introspection = r.data ?? (r as IntrospectionQuery);
  if (introspection === null || typeof introspection !== 'object' || !('__schema' in introspection)) throw new Error('not a GraphQL introspection result (no __schema)');
  return buildClientSchema(introspection);
}

/** Field suggestions would hand the schema to whoever probes: validation messages are cut before them. */
function withoutSuggestion(message: string): string {
  const i = message.indexOf(' Did you mean');
  return (i === -1 ? message : message.slice(0, i)).slice(0, 200);
}

/** Schema violations of a parsed (token-capped) query: unknown fields, wrong argument types... at most 10. */
export function schemaViolations(schema: GraphQLSchema, document: DocumentNode): string[] {
  return validate(schema, document, specifiedRules, { maxErrors: 10 }).map((e) => withoutSuggestion(e.message));
}

export function analyzeGraphql(query: string, variables: Record<string, unknown>, maxTokens: number): GraphqlAnalysis {
  let doc: DocumentNode;
  try {
    doc = parse(query, { maxTokens, noLocation: true });
  } catch (err) {
    const message = err instanceof GraphQLError ? err.message : String(err);
    if (message.includes('tokens. Parsing aborted')) return { ok: false, reason: 'too-many-tokens', detail: `query has more than ${maxTokens} tokens` };
    return { ok: false, reason: 'syntax-error', detail: message.slice(0, 160) };
  }
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of doc.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);

  let depth = 0, aliases = 0, directives = 0, cost = 0, rootFields = 0, duplicateFields = 0, introspection = false;
  const types = new Set<string>();
  // Work list of (selection set, depth, cost multiplier, fragments on this path); fragment
  // spreads are followed once per path, so cyclic fragments cannot loop, and at most maxTokens
  // selection sets are expanded in all, so fragment fan-out bombs stop there (and count as cost).
  type Path = { name: string; parent: Path | undefined } | undefined;
  const onPath = (path: Path, name: string): boolean => { for (let p = path; p; p = p.parent) if (p.name === name) return true; return false; };
  type Item = { set: SelectionSetNode; depth: number; multiplier: number; via: Path };
  const work: Item[] = [];
  for (const d of doc.definitions) {
    if (d.kind !== Kind.OPERATION_DEFINITION) continue;
    types.add(d.operation);
    directives += d.directives?.length ?? 0;
    work.push({ set: d.selectionSet, depth: 1, multiplier: 1, via: undefined });
  }
  let visited = 0;
  while (work.length > 0 && visited++ < maxTokens) {
    const { set, depth: level, multiplier, via } = work.pop()!;
    const keys = new Map<string, number>();
    for (const sel of set.selections) {
      directives += sel.directives?.length ?? 0;
      if (sel.kind === Kind.FIELD) {
        if (level === 1) rootFields++;
        if (sel.alias) aliases++;
        const name = sel.name.value;
        const key = sel.alias?.value ?? name;
        const repeats = (keys.get(key) ?? 0) + 1;
        keys.set(key, repeats);
        duplicateFields = Math.max(duplicateFields, repeats - 1);
        if (name === '__schema' || name === '__type') introspection = true;
        cost = Math.min(COST_CEILING, cost + multiplier);
        depth = Math.max(depth, level);
        if (sel.selectionSet) work.push({ set: sel.selectionSet, depth: level + 1, multiplier: Math.min(COST_CEILING, multiplier * listFactor(sel, variables)), via });
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        work.push({ set: sel.selectionSet, depth: level, multiplier, via });
      } else {
        const f = fragments.get(sel.name.value);
        if (f && !onPath(via, f.name.value)) work.push({ set: f.selectionSet, depth: level, multiplier, via: { name: f.name.value, parent: via } });
      }
    }
  }
  if (work.length > 0) cost = COST_CEILING; // expansion cut short: more work than any limit allows
  const operationType = types.size === 1 ? ([...types][0] as GraphqlMetrics['operationType']) : types.size === 0 ? 'query' : 'mixed';
  return { ok: true, metrics: { operationType, depth, aliases, rootFields, directives, duplicateFields, cost, introspection }, document: doc };
}

/** Error messages of a GraphQL response that suggest field names ("Did you mean ...?"). */
export function suggestionLeaks(responseJson: unknown): number {
  const errors = (responseJson as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors)) return 0;
  return errors.slice(0, 100).filter((e) => typeof (e as { message?: unknown })?.message === 'string' && (e as { message: string }).message.includes('Did you mean')).length;
}

/** A GraphQL IDE (GraphiQL, Playground, Altair, Voyager) served as HTML. */
export function isGraphqlIde(mediaType: string, text: string): boolean {
  if (mediaType !== 'text/html') return false;
  const head = text.slice(0, 65536).toLowerCase();
  return head.includes('graphiql') || head.includes('graphql playground') || head.includes('graphql-playground') || head.includes('altair') || head.includes('graphql-voyager');
}
