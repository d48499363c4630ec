// Classification on staged traffic: every state, zombie by deprecation and by version (newer
// version in the spec, or only in traffic), orphans never seen and not seen within the window,
// callers of deprecated versions, GraphQL operations against a schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSchema, introspectionFromSchema } from 'graphql';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import { Inventory } from '../../extproc/src/inventory/inventory.ts';
import { checkSpecDocument } from '../../extproc/src/inventory/spec.ts';
import { graphqlSpecFromIntrospection } from '../../extproc/src/inventory/graphql.ts';
import { inventoryReport } from '../../extproc/src/inventory/report.ts';
import type { ClassifiedOperation } from '../../extproc/src/inventory/classify.ts';

const DAY = 86_400_000;
const NOW = Date.parse('2026-11-20T12:00:00Z');
const SHOP = 'orders.shop.svc.cluster.local';
const FRONTEND = 'spiffe://cluster.local/ns/web/sa/frontend';
const WORKER = 'spiffe://cluster.local/ns/payments/sa/payment-worker';
let seq = 0;

function request(method: string, path: string, opts: { workload?: string; time?: number; authority?: string; body?: unknown; headers?: [string, string][] } = {}): RequestEvent {
  const headers = new Map<string, string[]>();
  for (const [k, v] of opts.headers ?? []) headers.set(k, [v]);
  if (opts.body !== undefined) headers.set('content-type', ['application/json']);
  return {
    requestId: `r${++seq}`, time: opts.time ?? NOW - 1000, method, path, authority: opts.authority ?? SHOP, headers,
    caller: { workload: opts.workload ?? FRONTEND, mtls: true, identitySource: 'filter' },
    ...(opts.body !== undefined ? { body: Buffer.from(JSON.stringify(opts.body)) } : {}),
  };
}

const get = { responses: { '200': { description: 'ok' } } };
const idParam = { parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer' } }] };
const spec = await checkSpecDocument({
  openapi: '3.0.3',
  info: { title: 'orders', version: '2' },
  paths: {
    '/v1/orders/{id}': { get: { ...idParam, ...get } },
    '/v2/orders/{id}': { get: { ...idParam, ...get } },
    '/v2/orders': { post: get },
    '/v2/carts': { get: { deprecated: true, ...get } },
    '/v2/admin/stats': { get },
    '/v2/invoices': { get },
  },
}, 'orders.yaml');

function find(ops: ClassifiedOperation[], method: string, path: string): ClassifiedOperation {
  const found = ops.find((o) => o.method === method && o.path === path);
  assert.ok(found, `${method} ${path} is in the report: ${ops.map((o) => `${o.method} ${o.path}`).join(', ')}`);
  return found;
}

test('every state on staged REST traffic, fed through the engine observer', () => {
  const inventory = new Inventory();
  inventory.setSpec(SHOP, spec);
  const engine = new Engine({ denyRules: [] });
  engine.addObserver(inventory.observer());
  const send = (r: RequestEvent, status = 200): void => {
    engine.decide(r);
    engine.observeResponse(r, { requestId: r.requestId, time: r.time, status, headers: new Map([['content-type', ['application/json']]]) });
  };
  send(request('GET', '/v2/orders/17'));
  send(request('POST', '/v2/orders', { body: { item: 'book', quantity: 2 } }), 201);
  send(request('GET', '/v2/carts'));
  for (let i = 0; i < 3; i++) send(request('GET', `/v1/orders/${i + 5}`, { workload: WORKER }));
  send(request('GET', '/v1/payments/3'));
  send(request('GET', '/v3/payments/4'));
  send(request('GET', '/internal/debug'));
  send(request('GET', '/v2/invoices', { time: NOW - 30 * DAY }));

  const [report] = inventoryReport(inventory, { now: NOW, activeWindowMs: 7 * DAY });
  const ops = report!.operations;
  assert.equal(find(ops, 'GET', '/v2/orders/{id}').state, 'active');
  const post = find(ops, 'POST', '/v2/orders');
  assert.equal(post.state, 'active');
  const carts = find(ops, 'GET', '/v2/carts');
  assert.equal(carts.state, 'zombie');
  assert.match(carts.reason, /deprecated/);
  const v1 = find(ops, 'GET', '/v1/orders/{id}');
  assert.equal(v1.state, 'zombie', 'v1 while v2 serves the same resource');
  assert.match(v1.reason, /\/v2\/orders\/\{id\}/);
  assert.deepEqual(v1.callers, [WORKER], 'traffic to the deprecated version is reported with its callers');
  assert.equal(v1.count, 3);
  const v1payments = find(ops, 'GET', '/v1/payments/{id}');
  assert.equal(v1payments.state, 'zombie', 'a newer version seen only in traffic counts too');
  assert.equal(find(ops, 'GET', '/v3/payments/{id}').state, 'shadow');
  assert.equal(find(ops, 'GET', '/internal/debug').state, 'shadow');
  const stats = find(ops, 'GET', '/v2/admin/stats');
  assert.equal(stats.state, 'orphan');
  assert.equal(stats.count, 0);
  const invoices = find(ops, 'GET', '/v2/invoices');
  assert.equal(invoices.state, 'orphan', 'not seen within the window');
  assert.match(invoices.reason, /window/);
  assert.equal(ops.filter((o) => o.path === '/v2/invoices').length, 1, 'reported once');
  assert.deepEqual(report!.counts, { active: 2, shadow: 2, zombie: 3, orphan: 2 });
});

test('the window decides between active and orphan for the same traffic', () => {
  const inventory = new Inventory();
  inventory.setSpec(SHOP, spec);
  inventory.observeRequest(request('GET', '/v2/orders/17', { time: NOW - 3 * DAY }));
  const state = (windowDays: number): string =>
    find(inventoryReport(inventory, { now: NOW, activeWindowMs: windowDays * DAY })[0]!.operations, 'GET', '/v2/orders/{id}').state;
  assert.equal(state(7), 'active');
  assert.equal(state(1), 'orphan');
});

test('without a spec everything seen is shadow, and version zombies still show', () => {
  const inventory = new Inventory();
  inventory.observeRequest(request('GET', '/v1/orders/1'));
  inventory.observeRequest(request('GET', '/v2/orders/1'));
  inventory.observeRequest(request('GET', '/health'));
  const ops = inventoryReport(inventory, { now: NOW })[0]!.operations;
  assert.equal(find(ops, 'GET', '/v1/orders/{id}').state, 'zombie');
  assert.equal(find(ops, 'GET', '/v2/orders/{id}').state, 'shadow');
  assert.match(find(ops, 'GET', '/health').reason, /no spec/);
});

test('GraphQL operations are inventory entries classified by their root fields', () => {
  const schema = buildSchema(`
    type Query { pastes(limit: Int): [String] oldFeed: [String] @deprecated(reason: "use pastes") }
    type Mutation { login(user: String): String }
  `);
  const gql = graphqlSpecFromIntrospection({ data: introspectionFromSchema(schema) }, 'schema.json');
  const inventory = new Inventory();
  const host = 'api.content.svc.cluster.local';
  inventory.setGraphqlSpec(host, gql);
  const post = (body: unknown): void => inventory.observeRequest(request('POST', '/graphql', { authority: host, body }));
  post({ query: 'query Feed { pastes(limit: 5) }', operationName: 'Feed' });
  post({ query: 'query Legacy { oldFeed }' });
  post({ query: 'mutation { login(user: "a") }' });
  post({ query: '{ secretAdmin }' });
  post([{ query: 'query Feed { pastes }', operationName: 'Feed' }, { query: 'query Feed { pastes }', operationName: 'Feed' }]);
  post({ query: '{ __schema { types { name } } }' });
  const ops = inventoryReport(inventory, { now: NOW })[0]!.operations;
  const byName = new Map(ops.map((o) => [o.graphqlOperation, o]));
  assert.equal(byName.get('query Feed')?.state, 'active');
  assert.equal(byName.get('query Feed')?.count, 3, 'batched operations count one by one');
  assert.equal(byName.get('query Legacy')?.state, 'zombie');
  assert.equal(byName.get('mutation anonymous(login)')?.state, 'active');
  assert.equal(byName.get('query anonymous(secretAdmin)')?.state, 'shadow');
  assert.equal(byName.get('query anonymous(__schema)')?.state, 'active');
  assert.deepEqual(ops.filter((o) => o.state === 'orphan').map((o) => o.graphqlOperation), [], 'every root field was used');
});
