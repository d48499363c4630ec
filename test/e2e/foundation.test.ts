// Issue #2: the real data path. Real Envoy 1.40 sidecars, real mTLS with SPIFFE certificates
// generated for this run, the meshward Wasm filter in Envoy's V8, and the ext_proc server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import type { DecisionRecord } from '../../extproc/src/engine/engine.ts';

const FRONTEND = 'web/frontend';
const WORKER = 'payments/payment-worker';
const WORKER_ID = 'spiffe://cluster.local/ns/payments/sa/payment-worker';

describe('foundation: filter + ext_proc in real Envoy with SPIFFE mTLS', () => {
  let mesh: LocalMesh;
  const decisions: DecisionRecord[] = [];

  before(async () => {
    mesh = await startLocalMesh({
      callers: [FRONTEND, WORKER],
      server: 'shop/orders',
      inbound: [
        { name: 'closed', failureModeAllow: false },
        { name: 'open', failureModeAllow: true },
      ],
      engine: {
        denyRules: [
          { name: 'worker-no-admin', identity: WORKER_ID, method: 'DELETE', path: '/admin/*' },
          { name: 'worker-no-users', identity: WORKER_ID, path: '/users/*' },
        ],
      },
    });
    mesh.engine.addObserver({ onDecision: (r) => decisions.push(r) });
  });

  after(async () => { await mesh?.stop(); });

  async function send(caller: string, path: string, init: RequestInit = {}, inbound = 'closed'): Promise<{ status: number; body: string; headers: Headers; decision: DecisionRecord | undefined; appSaw: boolean }> {
    const seen = decisions.length;
    const received = mesh.app.received.length;
    const res = await fetch(mesh.urlFor(caller, inbound) + path, init);
    const body = await res.text();
    return { status: res.status, body, headers: res.headers, decision: decisions[seen], appSaw: mesh.app.received.length > received };
  }

  test('a benign request reaches the app and its response returns intact', async () => {
    const payload = JSON.stringify({ item: 'book', qty: 2, note: 'ünïcødé ✓' });
    const r = await send(FRONTEND, '/orders?from=test', { method: 'POST', body: payload, headers: { 'content-type': 'application/json', 'x-trace': 'abc' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-app'), 'meshward-sample', 'app response headers pass through');
    assert.deepEqual(JSON.parse(r.body), { ok: true, method: 'POST', path: '/orders?from=test', echo: payload });
    const appReq = mesh.app.received.at(-1)!;
    assert.equal(appReq.headers['x-trace'], 'abc', 'request headers reach the app');
    assert.equal(appReq.body, payload, 'request body reaches the app byte for byte');
    assert.equal(r.decision?.decision.action, 'allow');
  });

  test('the ext_proc server sees the SPIFFE ID captured by the filter', async () => {
    const r = await send(FRONTEND, '/catalog/items/7');
    assert.equal(r.status, 200);
    const caller = r.decision?.request.caller;
    assert.ok(caller, 'the server decided on the request');
    assert.equal(caller.workload, mesh.spiffeIdOf(FRONTEND));
    assert.equal(caller.identitySource, 'filter', 'identity came through the filter capture, not a fallback');
    assert.equal(caller.mtls, true);
    assert.match(caller.sourceAddress ?? '', /^127\.0\.0\.1:\d+$/);
    assert.equal(r.decision?.request.method, 'GET');
    assert.equal(r.decision?.request.path, '/catalog/items/7');
    const stats = await mesh.serverSidecar.stats('wasmcustom\\.meshward');
    assert.ok((stats.get('wasmcustom.meshward_filter_requests_total') ?? 0) >= 1, 'filter counted the request');
    assert.equal(stats.get('wasmcustom.meshward_filter_capture_errors_total'), 0);
  });

  test('a denied identity gets 403 from Envoy and the app never sees the request', async () => {
    const r = await send(WORKER, '/users/8123');
    assert.equal(r.status, 403);
    assert.equal(r.appSaw, false, 'the app must not receive a denied request');
    assert.equal(r.headers.get('content-type'), 'application/json');
    const body = JSON.parse(r.body) as { error: string; reason: string; rule: string; request_id: string };
    assert.equal(body.error, 'forbidden');
    assert.equal(body.reason, 'identity-denied');
    assert.equal(body.rule, 'worker-no-users');
    assert.equal(body.request_id, r.decision?.request.requestId);
  });

  test('identity x method x path rules deny only the matching operation', async () => {
    assert.equal((await send(WORKER, '/admin/users/1', { method: 'DELETE' })).status, 403);
    const get = await send(WORKER, '/admin/users/1');
    assert.equal(get.status, 200, 'GET on the same path is allowed');
    assert.equal(get.appSaw, true);
    const other = await send(FRONTEND, '/users/8123');
    assert.equal(other.status, 200, 'the rule binds the identity, not the path');
  });

  test('a forged identity header or value is judged by the real mTLS identity', async () => {
    const forged = mesh.spiffeIdOf(FRONTEND);
    const r = await send(WORKER, '/users/8123', {
      headers: {
        'x-meshward-peer': forged,
        'x-forwarded-client-cert': `By=spiffe://cluster.local/ns/shop/sa/orders;URI=${forged}`,
        'x-spiffe-id': forged,
        // Looks like a capture record (header values cannot carry newlines): never parsed as one.
        'x-meshward-capture': `mw1 peer=${forged} mtls=1`,
      },
    });
    assert.equal(r.status, 403, 'the worker is still denied');
    assert.equal(r.decision?.request.caller.workload, WORKER_ID);
    assert.equal(r.decision?.request.caller.identitySource, 'filter');

    const allowed = await send(FRONTEND, '/catalog', { headers: { 'x-meshward-peer': WORKER_ID } });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.decision?.request.caller.workload, forged, 'the frontend is not turned into the worker either');
    const appReq = mesh.app.received.at(-1)!;
    assert.equal(appReq.headers['x-meshward-peer'], undefined, 'meshward-reserved headers are stripped before the app');
  });

  test('a forged capture-like path or query value does not change the identity', async () => {
    const r = await send(FRONTEND, `/catalog?x=${encodeURIComponent('\npeer=' + WORKER_ID + '\n')}`);
    assert.equal(r.status, 200);
    assert.equal(r.decision?.request.caller.workload, mesh.spiffeIdOf(FRONTEND));
    assert.ok(r.decision?.request.path.includes('%0Apeer%3D'), 'path kept exactly as sent');
  });

  describe('ext_proc server down', () => {
    before(async () => { await mesh.stopExtProc(); });
    after(async () => { await mesh.startExtProc(); });

    test('fail-closed listener answers 5xx and the app never sees the request', async () => {
      const r = await send(FRONTEND, '/catalog', {}, 'closed');
      assert.ok(r.status >= 500 && r.status < 600, `expected 5xx, got ${r.status}`);
      assert.equal(r.appSaw, false);
    });

    test('fail-open listener lets the request through to the app', async () => {
      const r = await send(FRONTEND, '/catalog', {}, 'open');
      assert.equal(r.status, 200);
      assert.equal(r.appSaw, true);
      const stats = await mesh.serverSidecar.stats('http\\.open\\.ext_proc\\.failure_mode_allowed');
      assert.ok((stats.get('http.open.ext_proc.failure_mode_allowed') ?? 0) >= 1, 'Envoy counted the skipped decision');
    });
  });

  test('after the server comes back, decisions resume', async () => {
    const r = await send(WORKER, '/users/1');
    assert.equal(r.status, 403);
  });
});
