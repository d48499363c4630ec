// Large bodies through the real stack (issue #6): Envoy hands ext_proc a ~1 MB sampled body, the
// server decodes it off the event loop (inspect/body-pool.ts) and answers the body message when the
// decode is done, still one answer per message and in order; the decision is the same as for a
// small body (mass assignment denied, a clean body passes).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { createContentDetectors } from '../../extproc/src/engine/detectors/content.ts';
import { createContentContext } from '../../extproc/src/inspect/settings.ts';
import { OFF_THREAD_BODY_BYTES } from '../../extproc/src/inspect/body.ts';
import { closeBodyPool } from '../../extproc/src/inspect/body-pool.ts';
import type { OpenApiOperation } from '../../extproc/src/inspect/contract.ts';
import { rawRequest, type RawResponse } from '../support/raw-http.ts';

const HOST = 'orders.shop';
const CLIENT = 'web/frontend';
const item = { type: 'object', properties: { sku: { type: 'string' }, qty: { type: 'integer' }, note: { type: 'string' } }, additionalProperties: false };
const importOp: OpenApiOperation = {
  operationId: 'importOrders',
  requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['items'], additionalProperties: false, properties: { customer: { type: 'string' }, items: { type: 'array', items: item } } } } } },
};

let mesh: LocalMesh;
const findings: Finding[] = [];

before(async () => {
  const content = createContentContext({}, (ex) => (ex.template === '/orders/import' ? { operation: importOp, pathParams: {} } : undefined));
  mesh = await startLocalMesh({
    callers: [CLIENT],
    pluginConfig: { version: 'e2e-large', sampling: { percent: 100, seed: 'large' } },
    engine: { denyRules: [], mode: 'enforce', detectors: (c) => createContentDetectors(c, content) },
  });
  mesh.engine.addObserver({ onFinding: (f) => findings.push(f) });
});

after(async () => { await mesh?.stop(); await closeBodyPool(); });

function orders(bytes: number, extra: Record<string, unknown> = {}): string {
  const items = Array.from({ length: Math.ceil(bytes / 120) }, (_, k) => ({ sku: `SKU-${k}`, qty: 1 + (k % 3), note: 'n'.repeat(80) }));
  return JSON.stringify({ customer: 'c-1', ...extra, items });
}

function post(body: string): Promise<RawResponse> {
  return rawRequest(mesh.urlFor(CLIENT), { method: 'POST', path: '/orders/import', headers: [['host', HOST], ['content-type', 'application/json']], body });
}

test('a ~1 MB request body is inspected off the event loop: mass assignment denied, a clean body passes whole', async (t) => {
  const clean = orders(900 * 1024);
  const attack = orders(900 * 1024, { isAdmin: true });
  assert.ok(clean.length > OFF_THREAD_BODY_BYTES * 8);
  await Promise.all([post(attack), post(clean)]); // warm-up (JIT, connections), not measured
  findings.length = 0;
  mesh.app.received.length = 0;
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const [denied, passed] = await Promise.all([post(attack), post(clean)]);
  delay.disable();
  // Informational only: this process also runs the upstream app and the HTTP client.
  t.diagnostic(`event loop of this process (ext_proc server, app, client) while Envoy sent two ~1 MB bodies: max ${(delay.max / 1e6).toFixed(1)} ms`);

  assert.equal(denied.status, 403);
  assert.equal(JSON.parse(denied.body).reason, 'API3:2023-BrokenObjectPropertyLevelAuthorization');
  assert.ok(!mesh.app.received.some((r) => r.body.includes('isAdmin')), 'the app never saw the attack');
  const contract = findings.find((f) => f.detector === 'content-contract');
  assert.deepEqual(contract?.evidence.properties, ['/isAdmin']);

  assert.equal(passed.status, 200);
  assert.ok(mesh.app.received.some((r) => r.body.length === clean.length), 'the clean body reached the app whole');
  assert.equal(findings.filter((f) => f.detector === 'content-body').length, 0, 'a large body is no malformed body');
});
