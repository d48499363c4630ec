// GraphQL analysis (issue #6): introspection, depth, aliases, batches, cost, directives, duplicate
// fields, CSRF transports, suggestion leaks, IDE pages; 10,000 aliases and depth 1,000 cost bounded
// work. Outside corpus: the queries graphql-cop sends (fixture names the source).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { analyzeGraphql, extractGraphql, isGraphqlIde, suggestionLeaks, DEFAULT_GRAPHQL_LIMITS } from '../../extproc/src/inspect/graphql.ts';
import { decodeBody } from '../../extproc/src/inspect/body.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import { toExchange } from '../../extproc/src/engine/exchange.ts';
import { createContentContext } from '../../extproc/src/inspect/settings.ts';
import { ContentGraphqlDetector } from '../../extproc/src/engine/detectors/content-graphql.ts';

const fixture = JSON.parse(readFileSync(new URL('./fixtures/graphql-cop-payloads.json', import.meta.url), 'utf8')) as {
  source: string; payloads: { test: string; transport: 'json' | 'batch' | 'get'; batch?: number; query: string; expect: string[] }[];
};

function request(method: string, path: string, body?: string, contentType = 'application/json'): RequestEvent {
  return {
    requestId: 'r1', time: 1, caller: { mtls: true, workload: 'spiffe://cluster.local/ns/a/sa/b', identitySource: 'filter' },
    method, authority: 'api.svc', path, headers: new Map(body !== undefined ? [['content-type', [contentType]]] : []),
    ...(body !== undefined ? { body: Buffer.from(body) } : {}),
  };
}

function checks(req: RequestEvent): string[] {
  const detector = new ContentGraphqlDetector(createContentContext());
  const findings = detector.onRequest(toExchange(req)) ?? [];
  return findings.flatMap((f) => ((f.evidence.violations as { check: string }[] | undefined) ?? []).map((v) => v.check)).sort();
}

const metrics = (q: string, vars: Record<string, unknown> = {}) => {
  const a = analyzeGraphql(q, vars, DEFAULT_GRAPHQL_LIMITS.maxTokens);
  assert.ok(a.ok, a.ok ? '' : a.detail);
  return a.metrics;
};

test('metrics: depth counts nested selections through fragments; aliases; root fields', () => {
  const m = metrics('query Q { a: user(id: 1) { ...F } b: user(id: 2) { id } } fragment F on User { id posts { title } }');
  assert.equal(m.depth, 3);
  assert.equal(m.aliases, 2);
  assert.equal(m.rootFields, 2);
  assert.equal(m.introspection, false);
  assert.equal(m.operationType, 'query');
});

test('introspection is __schema or __type, not __typename', () => {
  assert.equal(metrics('{ __schema { types { name } } }').introspection, true);
  assert.equal(metrics('{ __type(name: "User") { name } }').introspection, true);
  assert.equal(metrics('{ __typename user { id __typename } }').introspection, false);
});

test('cost multiplies by page-size arguments, from literals and variables', () => {
  assert.equal(metrics('{ pastes(limit: 10) { id title } }').cost, 1 + 10 * 2);
  assert.equal(metrics('query($n: Int) { users(first: $n) { friends(first: 10) { id } } }', { n: 100 }).cost, 1 + 100 + 100 * 10);
});

test('the benign shapes of a typical client stay within the default limits', () => {
  for (const q of [
    'query GetPaste($id: Int) { paste(id: $id) { id title content owner { name } } }',
    'query { a: paste(id: 1) { id } b: paste(id: 2) { id } c: paste(id: 3) { id } }',
    'query Feed { pastes(public: true, limit: 50) { id title content } }',
    'mutation Create($t: String) { createPaste(title: $t, content: "x", public: true) { paste { id } } }',
  ]) assert.deepEqual(checks(request('POST', '/graphql', JSON.stringify({ query: q, variables: { id: 1 } }))), [], q);
});

test('introspection where policy forbids it, and allowed when policy allows it', () => {
  const req = request('POST', '/graphql', JSON.stringify({ query: '{ __schema { types { name } } }' }));
  assert.deepEqual(checks(req), ['introspection']);
  const allowing = new ContentGraphqlDetector(createContentContext({ graphql: { ...DEFAULT_GRAPHQL_LIMITS, allowIntrospection: true } }));
  assert.deepEqual(allowing.onRequest(toExchange(req)), []);
});

test('batches over the limit; an empty batch or a non-string query is malformed (API8)', () => {
  const batch = JSON.stringify(Array.from({ length: 11 }, () => ({ query: '{ a }' })));
  assert.deepEqual(checks(request('POST', '/graphql', batch)), ['batch']);
  const d = new ContentGraphqlDetector(createContentContext());
  for (const body of ['[]', '{"query": 1}']) {
    const f = d.onRequest(toExchange(request('POST', '/graphql', body))) ?? [];
    assert.equal(f[0]?.category, 'API8:2023-SecurityMisconfiguration');
  }
});

test('syntax errors are API8 findings; REST bodies without a GraphQL query are ignored', () => {
  const d = new ContentGraphqlDetector(createContentContext());
  assert.match(d.onRequest(toExchange(request('POST', '/graphql', '{"query":"{ pastes { id "}')))?.[0]?.summary ?? '', /does not parse/);
  assert.equal(d.onRequest(toExchange(request('POST', '/users', '{"name":"x"}'))), undefined);
  assert.equal(d.onRequest(toExchange(request('GET', '/search?query=shoes'))), undefined, 'a "query" parameter off a GraphQL path is not GraphQL');
});

test('10,000 aliases and depth 1,000 are stopped by the token cap with a clear reason', () => {
  const aliases = `{ ${Array.from({ length: 10_000 }, (_, i) => `a${i}: f`).join(' ')} }`;
  const a = analyzeGraphql(aliases, {}, DEFAULT_GRAPHQL_LIMITS.maxTokens);
  assert.equal(a.ok ? '' : a.reason, 'too-many-tokens');
  const deep = `${'{ a '.repeat(1000)}${'}'.repeat(1000)}`;
  const b = analyzeGraphql(deep, {}, 100_000);
  assert.ok(b.ok);
  assert.equal(b.metrics.depth, 1000);
  assert.deepEqual(checks(request('POST', '/graphql', JSON.stringify({ query: aliases }))), ['tokens']);
  assert.deepEqual(checks(request('POST', '/graphql', JSON.stringify({ query: deep }))), ['depth']);
});

test('exponential fragment fan-out stops at the expansion cap and counts as over the cost limit', () => {
  const frags = Array.from({ length: 30 }, (_, i) => `fragment F${i} on Q { ${i < 29 ? `...F${i + 1} ...F${i + 1}` : 'x'} }`).join(' ');
  const query = `{ ...F0 } ${frags}`;
  const a = analyzeGraphql(query, {}, DEFAULT_GRAPHQL_LIMITS.maxTokens);
  assert.ok(a.ok && a.metrics.cost > DEFAULT_GRAPHQL_LIMITS.maxCost);
  assert.deepEqual(checks(request('POST', '/graphql', JSON.stringify({ query }))), ['cost']);
});

test('transports: GET and form queries are found; mutations over them are CSRF-able', () => {
  assert.equal(extractGraphql(request('GET', '/graphql?query=%7B%20a%20%7D'), decodeBody(undefined, new Map())).kind, 'operations');
  const form = request('POST', '/graphql', 'query=mutation%20%7B%20deleteAll%20%7D', 'application/x-www-form-urlencoded');
  assert.deepEqual(checks(form), ['csrf-transport']);
  assert.equal(extractGraphql(request('POST', '/graphql', '{ a }', 'application/graphql'), decodeBody(Buffer.from('{ a }'), new Map([['content-type', ['application/graphql']]]))).kind, 'operations');
});

test('responses: suggestion leaks and IDE pages', () => {
  assert.equal(suggestionLeaks({ errors: [{ message: 'Cannot query field "pastez" on type "Query". Did you mean "pastes"?' }] }), 1);
  assert.equal(suggestionLeaks({ errors: [{ message: 'Cannot query field "x" on type "Query".' }] }), 0);
  assert.equal(isGraphqlIde('text/html', '<html><script src="graphiql.min.js"></script>'), true);
  assert.equal(isGraphqlIde('application/json', 'graphiql'), false);
});

test(`outside corpus: graphql-cop's queries get the expected verdicts (${fixture.payloads.length} checks)`, () => {
  assert.match(fixture.source, /graphql-cop/);
  for (const p of fixture.payloads) {
    const req = p.transport === 'get'
      ? request('GET', `/graphql?query=${encodeURIComponent(p.query)}`)
      : request('POST', '/graphql', JSON.stringify(p.transport === 'batch' ? Array.from({ length: p.batch ?? 1 }, () => ({ query: p.query })) : { query: p.query }));
    assert.deepEqual(checks(req), [...p.expect].sort(), p.test);
  }
});

test('with a schema from policy, queries that violate it are API8 findings, and suggestions never leak into evidence', async () => {
  const { buildSchema, introspectionFromSchema } = await import('graphql');
  const { schemaFromIntrospection } = await import('../../extproc/src/inspect/graphql.ts');
  const schema = schemaFromIntrospection({ data: introspectionFromSchema(buildSchema('type Query { paste(id: Int!): Paste pastes: [Paste] } type Paste { id: ID title: String }')) });
  const d = new ContentGraphqlDetector(createContentContext({ graphqlSchemas: [{ authority: 'api.svc', schema }] }));
  assert.deepEqual(d.onRequest(toExchange(request('POST', '/graphql', JSON.stringify({ query: '{ paste(id: 1) { id title } }' })))), []);
  const unknown = d.onRequest(toExchange(request('POST', '/graphql', JSON.stringify({ query: '{ pastes { id titel } }' })))) ?? [];
  assert.equal(unknown[0]?.category, 'API8:2023-SecurityMisconfiguration');
  assert.match(unknown[0]!.summary, /Cannot query field "titel" on type "Paste"\./);
  assert.ok(!JSON.stringify(unknown).includes('Did you mean'));
  const wrongType = d.onRequest(toExchange(request('POST', '/graphql', JSON.stringify({ query: '{ paste(id: "x") { id } }' })))) ?? [];
  assert.equal(wrongType.length, 1);
  const other = new ContentGraphqlDetector(createContentContext({ graphqlSchemas: [{ authority: 'elsewhere.svc', schema }] }));
  assert.deepEqual(other.onRequest(toExchange(request('POST', '/graphql', JSON.stringify({ query: '{ nosuch }' })))), [], 'a schema applies only to its service');
  assert.throws(() => schemaFromIntrospection({ data: {} }), /no __schema/);
});
