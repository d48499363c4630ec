// Export: the discovered API of a service as an OpenAPI 3.1 document with inferred schemas.
// Observation details (counts, first/last seen, auth types, direction, GraphQL operations) go into
// "x-meshward" extensions; caller identities are left out of the document (they are inventory data,
// not API description).
import type { OperationRecord } from './record.ts';
import type { InferredSchema } from './schema-infer.ts';
import { isParameter, splitPath } from './templating.ts';

type Json = Record<string, unknown>;

const AUTH_SCHEMES: Record<string, Json> = {
  jwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
  bearer: { type: 'http', scheme: 'bearer' },
  basic: { type: 'http', scheme: 'basic' },
  'api-key': { type: 'apiKey', in: 'header', name: 'x-api-key' },
  cookie: { type: 'apiKey', in: 'cookie', name: 'session' },
  mtls: { type: 'mutualTLS' },
};

/** Template with unique parameter names ("/a/{id}/b/{id}" -> "/a/{id}/b/{id2}") and the names by segment index. */
function namedTemplate(template: string): { path: string; names: Map<number, string> } {
  const names = new Map<number, string>();
  const used = new Set<string>();
  const segments = splitPath(template).map((s, i) => {
    if (!isParameter(s)) return s;
    const base = s.slice(1, -1).replace(/[^A-Za-z0-9_.-]/g, '') || 'param';
    let name = base;
    for (let n = 2; used.has(name); n++) name = `${base}${n}`;
    used.add(name);
    names.set(i, name);
    return `{${name}}`;
  });
  return { path: segments.join('/') || '/', names };
}

function content(types: string[], schema: InferredSchema | undefined): Json | undefined {
  const list = types.length > 0 ? types : schema ? ['application/json'] : [];
  if (list.length === 0) return undefined;
  return Object.fromEntries(list.map((t) => [t, t.includes('json') && schema ? { schema } : {}]));
}

function operationOf(records: OperationRecord[], names: Map<number, string>): Json {
  const first = records[0]!;
  const parameters: Json[] = [];
  for (const [i, name] of names) {
    const schemas = records.map((r) => r.pathParams[String(i)]).filter((s): s is InferredSchema => s !== undefined);
    parameters.push({ name, in: 'path', required: true, schema: schemas[0] ?? { type: 'string' } });
  }
  const query = new Map<string, InferredSchema>();
  const headers = new Set<string>();
  for (const r of records) {
    for (const [k, s] of Object.entries(r.query)) if (!query.has(k)) query.set(k, s);
    for (const h of r.headers) headers.add(h);
  }
  for (const [name, schema] of [...query].sort(([a], [b]) => a.localeCompare(b))) parameters.push({ name, in: 'query', schema });
  for (const name of [...headers].sort()) parameters.push({ name, in: 'header', schema: { type: 'string' } });
  const statuses = new Map<string, number>();
  for (const r of records) for (const [s, n] of Object.entries(r.statuses)) statuses.set(s, (statuses.get(s) ?? 0) + n);
  const responses: Json = {};
  for (const s of [...statuses.keys()].sort()) {
    const schema = records.map((r) => r.responses[s]).find((x) => x !== undefined);
    const c = content(first.responseContentTypes, schema);
    responses[s] = { description: `observed ${statuses.get(s)} time(s)`, ...(c ? { content: c } : {}) };
  }
  if (Object.keys(responses).length === 0) responses.default = { description: 'no response observed' };
  const op: Json = {
    summary: `observed ${records.reduce((n, r) => n + r.count, 0)} request(s)`,
    ...(parameters.length > 0 ? { parameters } : {}),
    responses,
    'x-meshward': {
      protocol: first.protocol,
      count: records.reduce((n, r) => n + r.count, 0),
      firstSeen: new Date(Math.min(...records.map((r) => r.firstSeen))).toISOString(),
      lastSeen: new Date(Math.max(...records.map((r) => r.lastSeen))).toISOString(),
      authTypes: [...new Set(records.flatMap((r) => r.authTypes))].sort(),
      eastWest: records.reduce((n, r) => n + r.eastWest, 0),
      northSouth: records.reduce((n, r) => n + r.northSouth, 0),
      ...(first.specPath ? { specPath: first.specPath } : {}),
      ...(records.some((r) => r.graphql) ? { graphqlOperations: records.filter((r) => r.graphql).map((r) => `${r.graphql!.type} ${r.graphql!.name}`).sort() } : {}),
    },
  };
  const bodySchema = records.map((r) => r.requestBody).find((x) => x !== undefined);
  const reqTypes = [...new Set(records.flatMap((r) => r.requestContentTypes))];
  const body = content(reqTypes, bodySchema);
  if (body) op.requestBody = { content: body };
  const security = [...new Set(records.flatMap((r) => r.authTypes))].filter((a) => a in AUTH_SCHEMES);
  if (security.length > 0) op.security = security.map((a) => ({ [a]: [] }));
  return op;
}

export function exportOpenApi(service: string, records: OperationRecord[]): Json {
  const byPath = new Map<string, { names: Map<number, string>; methods: Map<string, OperationRecord[]> }>();
  for (const r of records.filter((x) => x.service === service)) {
    const { path, names } = namedTemplate(r.template);
    const entry = byPath.get(path) ?? { names, methods: new Map() };
    entry.methods.set(r.method, [...(entry.methods.get(r.method) ?? []), r]);
    byPath.set(path, entry);
  }
  const paths: Json = {};
  const schemes = new Set<string>();
  for (const [path, { names, methods }] of [...byPath].sort(([a], [b]) => a.localeCompare(b))) {
    const item: Json = {};
    for (const [method, recs] of [...methods].sort(([a], [b]) => a.localeCompare(b))) {
      const lower = method.toLowerCase();
      if (!['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'].includes(lower)) continue;
      item[lower] = operationOf(recs, names);
      for (const r of recs) for (const a of r.authTypes) if (a in AUTH_SCHEMES) schemes.add(a);
    }
    if (Object.keys(item).length > 0) paths[path] = item;
  }
  return {
    openapi: '3.1.0',
    info: { title: `${service} (discovered by meshward)`, version: new Date().toISOString().slice(0, 10) },
    servers: [{ url: `http://${service}` }],
    paths,
    ...(schemes.size > 0 ? { components: { securitySchemes: Object.fromEntries([...schemes].sort().map((s) => [s, AUTH_SCHEMES[s]])) } } : {}),
  };
}
