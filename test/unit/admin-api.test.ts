// Issue #8: the admin HTTP API: health and readiness without a token, findings (a bounded ring),
// effective policy and the report with one; and the findings buffer's bounds and filters.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { AdminRouter, startAdminServer, type RunningAdminServer } from '../../extproc/src/admin/server.ts';
import { FindingsBuffer } from '../../extproc/src/admin/findings-buffer.ts';
import { BlockedLog, registerCoreRoutes } from '../../extproc/src/admin/core-routes.ts';
import { startInventory, type InventoryRuntime } from '../../extproc/src/inventory/runtime.ts';
import { registerInventoryRoutes } from '../../extproc/src/inventory/admin-routes.ts';
import { parseReport } from '../../extproc/src/report/report-data.ts';
import { silentLogger } from '../../extproc/src/log.ts';

const TOKEN = 'admin-api-test-token-0123456789';
const WORKER = 'spiffe://cluster.local/ns/payments/sa/payment-worker';
let seq = 0;

function request(path: string, workload = WORKER): RequestEvent {
  return {
    requestId: `r${seq++}`, time: Date.now(), caller: { workload, mtls: true, identitySource: 'filter' },
    method: 'GET', authority: 'orders.shop.svc.cluster.local', path, headers: new Map([['x-request-id', [`x${seq}`]]]),
  };
}

describe('admin HTTP API', () => {
  let engine: Engine;
  let admin: RunningAdminServer;
  let inventory: InventoryRuntime;
  const findings = new FindingsBuffer(50);
  const blocked = new BlockedLog();
  const router = new AdminRouter();

  before(async () => {
    engine = new Engine({ denyRules: [{ name: 'no-admin-for-worker', identity: WORKER, method: 'GET', path: '/admin/*' }], mode: 'enforce' });
    findings.attach(engine);
    blocked.attach(engine);
    inventory = await startInventory(engine);
    registerCoreRoutes(router, { engine, findings, blocked, mode: () => 'enforce', policy: () => ({ source: 'test' }), inventory: inventory.inventory });
    registerInventoryRoutes(router, inventory.inventory, inventory.specs);
    admin = await startAdminServer(router, { host: '127.0.0.1', port: 0, token: TOKEN }, silentLogger);
  });
  after(async () => { inventory?.close(); await admin?.close(); });

  const get = async (path: string, token: string | null = TOKEN): Promise<{ status: number; body: any }> => {
    const res = await fetch(`http://127.0.0.1:${admin.port}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    const text = await res.text();
    let body: unknown = text;
    try { body = JSON.parse(text); } catch { /* plain text */ }
    return { status: res.status, body };
  };

  test('health and readiness need no token; everything else does', async () => {
    assert.equal((await get('/healthz', null)).status, 200);
    assert.equal((await get('/readyz', null)).status, 200);
    router.setReady(false);
    assert.equal((await get('/readyz', null)).status, 503);
    router.setReady(true);
    for (const path of ['/findings', '/policy', '/report', '/inventory']) {
      assert.equal((await get(path, null)).status, 401, `${path} without a token`);
      assert.equal((await get(path, 'wrong-token-wrong-token')).status, 401, `${path} with a wrong token`);
      assert.equal((await get(path)).status, 200, `${path} with the token`);
    }
  });

  test('GET /posture lists standing misconfiguration per operation (token required)', async () => {
    const trace: RequestEvent = { ...request('/orders/1'), method: 'TRACE' };
    engine.decide(trace);
    engine.observeResponse(trace, { requestId: trace.requestId, time: trace.time, status: 200, headers: new Map([['server', ['nginx/1.18.0']]]) });
    assert.equal((await get('/posture', null)).status, 401);
    const res = await get('/posture');
    assert.equal(res.status, 200);
    const rows = res.body.posture as { detector: string; operation: string; items: { issue: string }[] }[];
    const row = rows.find((r) => r.detector === 'content-misconfig' && r.operation.startsWith('TRACE orders.shop.svc.cluster.local'));
    assert.ok(row, JSON.stringify(rows).slice(0, 400));
    assert.ok(row.items.some((i) => i.issue === 'trace-enabled') && row.items.some((i) => i.issue === 'version-banner:server'), JSON.stringify(row.items));
  });

  test('findings from the engine, newest first, filtered, and what enforce mode blocked', async () => {
    engine.decide(request('/orders?orderId=1&orderId=2'));
    engine.decide(request('/orders/7'));
    engine.decide(request('/admin/users'));
    const all = await get('/findings');
    assert.equal(all.status, 200);
    assert.ok(all.body.totals.total >= 1);
    const bola = await get('/findings?category=API1:2023-BOLA&limit=5');
    assert.ok(bola.body.findings.length >= 1);
    assert.ok(bola.body.findings.every((f: Finding) => f.category === 'API1:2023-BOLA'));
    assert.match(bola.body.findings[0].summary, /parameter pollution/);
    assert.equal((await get('/findings?limit=0')).status, 400);
    assert.equal((await get('/findings?severity=urgent')).status, 400);

    const report = parseReport((await get('/report')).body, 'GET /report');
    assert.equal(report.source, 'serve');
    assert.ok(report.blocked.some((b) => b.rule === 'no-admin-for-worker' && b.status === 403), 'the static deny rule block is reported');
    assert.ok(report.blocked.some((b) => b.rule === 'bola'), 'the finding that enforce mode turned into a 403 is reported');
    assert.ok(report.inventory.some((s) => s.service === 'orders.shop.svc.cluster.local'), 'inventory included');
    const policy = await get('/policy');
    assert.equal(policy.body.mode, 'enforce');
    assert.deepEqual(policy.body.policy, { source: 'test' });
    assert.ok(policy.body.detectors.includes('bola'));
  });
});

describe('findings buffer', () => {
  const finding = (i: number, category: Finding['category'] = 'API1:2023-BOLA'): Finding => ({
    category, detector: 'bola', severity: i % 2 === 0 ? 'high' : 'low', caller: `c${i}`, operation: 'GET h /x', requestId: String(i), time: i, summary: `f${i}`, evidence: {}, enforcement: 'none',
  });

  test('holds at most its capacity, newest first, while totals count everything', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 200 }), (capacity, n) => {
      const b = new FindingsBuffer(capacity);
      for (let i = 0; i < n; i++) b.add(finding(i));
      const held = b.recent();
      assert.equal(held.length, Math.min(n, capacity));
      assert.deepEqual(held.map((f) => f.time), Array.from({ length: held.length }, (_, k) => n - 1 - k));
      assert.equal(b.totals.total, n);
      assert.equal((b.totals.bySeverity.high ?? 0) + (b.totals.bySeverity.low ?? 0), n);
    }));
  });

  test('filters and refuses a bad capacity', () => {
    const b = new FindingsBuffer(10);
    b.add(finding(1, 'API7:2023-SSRF'));
    b.add(finding(2));
    assert.deepEqual(b.recent({ category: 'API7:2023-SSRF' }).map((f) => f.time), [1]);
    assert.deepEqual(b.recent({ severity: 'high' }).map((f) => f.time), [2]);
    assert.equal(b.recent({ limit: 1 }).length, 1);
    assert.throws(() => new FindingsBuffer(0), /positive integer/);
  });
});
