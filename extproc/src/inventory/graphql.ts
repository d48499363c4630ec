// GraphQL for the inventory: the operations a request carries (name, type, root fields; JSON body,
// JSON array batch, or GET ?query=) and the root fields a schema declares (from an introspection
// result), so GraphQL traffic is inventoried per operation and classified against the schema.
import { readFile } from 'node:fs/promises';
import { buildClientSchema, parse, type GraphQLSchema, type IntrospectionQuery, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';
import type { GraphqlOperationRef } from './record.ts';
import { SpecError } from './spec.ts';

const MAX_BODY_BYTES = 256 * 1024;
const MAX_TOKENS = 10_000;
const MAX_BATCH = 32;
const MAX_NAME = 128;

interface GraphqlRequest {
  query: string;
  operationName?: string;
}

function requestsOf(method: string, path: string, body: Buffer | undefined): GraphqlRequest[] {
  if (method === 'GET') {
    const q = path.indexOf('?');
    if (q === -1) return [];
    const params = new URLSearchParams(path.slice(q + 1));
    const query = params.get('query');
    const operationName = params.get('operationName');
    return query ? [{ query, ...(operationName ? { operationName } : {}) }] : [];
  }
  if (!body || body.length === 0 || body.length > MAX_BODY_BYTES) return [];
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return [];
  }
  const items = Array.isArray(json) ? json.slice(0, MAX_BATCH) : [json];
  const out: GraphqlRequest[] = [];
  for (const item of items) {
    if (item === null || typeof item !== 'object') continue;
    const { query, operationName } = item as Record<string, unknown>;
    if (typeof query !== 'string') continue;
    out.push({ query, ...(typeof operationName === 'string' ? { operationName } : {}) });
  }
  return out;
}

function rootFields(selectionSet: SelectionSetNode): string[] {
  const names = new Set<string>();
  for (const s of selectionSet.selections) {
    if (s.kind === 'Field') names.add(s.name.value);
    else if (s.kind === 'InlineFragment') for (const f of rootFields(s.selectionSet)) names.add(f);
  }
  return [...names].sort();
}

/** The GraphQL operations a request carries; [] when it is no (parseable) GraphQL request. */
export function graphqlOperationsOf(method: string, path: string, body: Buffer | undefined): GraphqlOperationRef[] {
  const out: GraphqlOperationRef[] = [];
  for (const req of requestsOf(method, path, body)) {
    let doc;
    try {
      doc = parse(req.query, { maxTokens: MAX_TOKENS, noLocation: true });
    } catch {
      out.push({ type: 'query', name: 'invalid-document', rootFields: [] });
      continue;
    }
    const ops = doc.definitions.filter((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition');
    const chosen = req.operationName ? ops.filter((o) => o.name?.value === req.operationName) : ops.length === 1 ? ops : ops.slice(0, 1);
    for (const op of chosen) {
      const fields = rootFields(op.selectionSet);
      const name = op.name?.value ?? `anonymous(${fields.join(',')})`;
      out.push({ type: op.operation as GraphqlOperationRef['type'], name: name.slice(0, MAX_NAME), rootFields: fields.slice(0, 64) });
    }
  }
  return out;
}

export interface GraphqlRootField {
  type: GraphqlOperationRef['type'];
  name: string;
  deprecated: boolean;
}

/** The root fields a GraphQL schema declares: its "operations" for classification. */
export interface GraphqlSchemaSpec {
  name: string;
  fields: GraphqlRootField[];
}

export function graphqlSpecFromIntrospection(json: unknown, name: string): GraphqlSchemaSpec {
  const data = (json as { data?: unknown } | null)?.data ?? json;
  let schema: GraphQLSchema;
  try {
    schema = buildClientSchema(data as IntrospectionQuery);
  } catch (err) {
    throw new SpecError(name, '#/data/__schema', `not a GraphQL introspection result: ${(err as Error).message}`);
  }
  const fields: GraphqlRootField[] = [];
  for (const [type, root] of [['query', schema.getQueryType()], ['mutation', schema.getMutationType()], ['subscription', schema.getSubscriptionType()]] as const) {
    for (const f of Object.values(root?.getFields() ?? {})) fields.push({ type, name: f.name, deprecated: f.deprecationReason != null });
  }
  return { name, fields };
}

export async function loadGraphqlSpecFile(file: string, maxBytes = 5 * 1024 * 1024): Promise<GraphqlSchemaSpec> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new SpecError(file, '', `cannot read the file (${err.code ?? err.message})`);
  });
  return graphqlSpecFromText(text, file, maxBytes);
}

/** An introspection result given as JSON text (a ConfigMap key, a fetched document). */
export function graphqlSpecFromText(text: string, name: string, maxBytes = 5 * 1024 * 1024): GraphqlSchemaSpec {
  if (Buffer.byteLength(text) > maxBytes) throw new SpecError(name, '', `over the ${maxBytes} byte limit for a schema`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SpecError(name, '', `not JSON: ${(err as Error).message}`);
  }
  return graphqlSpecFromIntrospection(json, name);
}
