// Discovery from traffic: what one request and response add to an entry (protocol, auth type,
// direction, parameters with inferred types, status codes, content types, callers), and bounded
// behaviour on bad or excessive input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import { Inventory } from '../../extproc/src/inventory/inventory.ts';
import { MAX_CALLERS } from '../../extproc/src/inventory/record.ts';

let seq = 0;
function req(method: string, path: string, headers: Record<string, string> = {}, body?: string, workload: string | undefined = 'spiffe://cluster.local/ns/web/sa/frontend'): RequestEvent {
  return {
    requestId: `d${++seq}`, time: 1_000 + seq, method, path, authority: 'shop.store.svc.cluster.local:8080',
    headers: new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), [v]])),
    caller: workload ? { workload, mtls: true, identitySource: 'filter' } : { mtls: false, sourceAddress: '10.0.0.9:5555', identitySource: 'none' },
    ...(body !== undefined ? { body: Buffer.from(body) } : {}),
  };
}

function only(inv: Inventory, method: string, template: string) {
  const found = inv.operations().filter((o) => o.method === method && o.template === template);
  assert.equal(found.length, 1, `${method} ${template} in ${inv.operations().map((o) => `${o.method} ${o.template}`).join(', ')}`);
  return found[0]!;
}

test('REST entry: service, parameters with inferred types, auth, direction, statuses, content types', () => {
  const inv = new Inventory();
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln';
  const r1 = req('POST', '/orders/42/items?dryRun=true&limit=5', { authorization: `Bearer ${jwt}`, 'content-type': 'application/json', 'x-tenant': 'acme', 'user-agent': 'x' },
    JSON.stringify({ sku: 'A-1', quantity: 2, price: 9.5, email: 'a@b.io', tags: ['x'], meta: { at: '2024-05-01T10:00:00Z' } }));
  inv.observeRequest(r1);
  inv.observeResponse(r1, { requestId: r1.requestId, time: r1.time, status: 201, headers: new Map([['content-type', ['application/json; charset=utf-8']]]), body: Buffer.from('{"id":"0f8fad5b-d9cb-469f-a165-70867728950e"}') });
  const r2 = req('POST', '/orders/43/items', { 'x-api-key': 'secret-key', 'x-forwarded-for': '203.0.113.9' });
  inv.observeRequest(r2);
  inv.observeResponse(r2, { requestId: r2.requestId, time: r2.time, status: 400, headers: new Map() });
  inv.observeRequest(req('POST', '/orders/44/items', { authorization: 'Basic dTpw', cookie: 'session=1' }, undefined, ''));

  assert.deepEqual(inv.services(), ['shop.store.svc.cluster.local'], 'authority without port');
  const op = only(inv, 'POST', '/orders/{id}/items');
  assert.equal(op.count, 3);
  assert.equal(op.protocol, 'rest');
  assert.deepEqual(op.pathParams, { '2': { type: 'integer' } });
  assert.deepEqual(op.query, { dryRun: { type: 'boolean' }, limit: { type: 'integer' } });
  assert.deepEqual(op.headers, ['x-tenant'], 'API headers only (not transport ones, not credentials), names only');
  assert.deepEqual(op.authTypes, ['api-key', 'basic', 'cookie', 'jwt', 'mtls']);
  assert.deepEqual([op.eastWest, op.northSouth], [1, 2]);
  assert.deepEqual(op.statuses, { '201': 1, '400': 1 });
  assert.deepEqual(op.requestContentTypes, ['application/json']);
  assert.deepEqual(op.responseContentTypes, ['application/json']);
  const body = op.requestBody!;
  assert.deepEqual(body.properties!.quantity, { type: 'integer' });
  assert.deepEqual(body.properties!.price, { type: 'number' });
  assert.deepEqual(body.properties!.email, { type: 'string', format: 'email' });
  assert.deepEqual(body.properties!.tags, { type: 'array', items: { type: 'string' } });
  assert.deepEqual(body.properties!.meta, { type: 'object', properties: { at: { type: 'string', format: 'date-time' } } });
  assert.deepEqual(op.responses['201'], { type: 'object', properties: { id: { type: 'string', format: 'uuid' } } });
  assert.equal(Object.keys(op.callers).length, 3);
  const text = JSON.stringify(inv.operations());
  for (const secret of [jwt, 'secret-key', 'dTpw', 'session=1', 'acme']) assert.ok(!text.includes(secret), `${secret} is never stored`);
});

test('gRPC, WebSocket and GraphQL over GET are told apart', () => {
  const inv = new Inventory();
  inv.observeRequest(req('POST', '/shop.v1.Orders/GetOrder', { 'content-type': 'application/grpc+proto' }));
  inv.observeRequest(req('GET', '/ws/chat', { upgrade: 'websocket', connection: 'Upgrade' }));
  inv.observeRequest(req('GET', `/graphql?query=${encodeURIComponent('query Q { me { id } }')}`));
  assert.equal(only(inv, 'POST', '/shop.v1.Orders/GetOrder').protocol, 'grpc');
  assert.equal(only(inv, 'GET', '/ws/chat').protocol, 'websocket');
  const gql = only(inv, 'GET', '/graphql');
  assert.equal(gql.protocol, 'graphql');
  assert.deepEqual(gql.graphql, { type: 'query', name: 'Q', rootFields: ['me'] });
});

test('bad bodies are recorded without schemas and without crashing', () => {
  const inv = new Inventory();
  const bodies = ['{not json', '[1,2', '"just a string"', 'x'.repeat(300 * 1024), '{"a":'.repeat(5000), '\u0000\u0001'];
  for (const b of bodies) inv.observeRequest(req('POST', '/upload', { 'content-type': 'application/json' }, b));
  for (const b of ['{"query": "{ unterminated"}', '{"query": 42}', '[]', `{"query": "${'{a'.repeat(20000)}"}`]) inv.observeRequest(req('POST', '/graphql', { 'content-type': 'application/json' }, b));
  assert.equal(only(inv, 'POST', '/upload').count, bodies.length);
  const gql = inv.operations().filter((o) => o.template === '/graphql');
  assert.equal(gql.reduce((n, o) => n + o.count, 0), 4);
  assert.ok(gql.every((o) => o.protocol === 'graphql'));
});

test('bounded: callers per entry, entries per service, services', () => {
  const inv = new Inventory({ maxServices: 2, maxOperationsPerService: 50 });
  for (let i = 0; i < MAX_CALLERS + 50; i++) inv.observeRequest(req('GET', '/me', {}, undefined, `spiffe://cluster.local/ns/n/sa/w${i}`));
  assert.equal(Object.keys(only(inv, 'GET', '/me').callers).length, MAX_CALLERS);
  assert.equal(only(inv, 'GET', '/me').count, MAX_CALLERS + 50);
  // Distinct static-looking paths: folded under learned templates when the cap is reached.
  for (let i = 0; i < 500; i++) inv.observeRequest(req('GET', `/files/report-${String.fromCharCode(97 + (i % 26))}${i}x`));
  assert.ok(inv.state('shop.store.svc.cluster.local')!.records.size <= 50);
  assert.equal(inv.operations().filter((o) => o.template.startsWith('/files/')).reduce((n, o) => n + o.count, 0) + inv.stats().dropped, 500);
  for (const host of ['a.svc', 'b.svc', 'c.svc']) inv.observeRequest({ ...req('GET', '/'), authority: host });
  assert.equal(inv.services().length, 2);
  assert.ok(inv.stats().dropped >= 2);
});
