// The demo's WebSocket and third-party pieces without Envoy: the orders app's live-updates socket
// (101 with a valid token, 401 without), the payments app consuming its FX-rates supplier, and the
// supplier's answers against its published spec (clean ones pass every content detector, the
// compromised ones are API10 for their payload and their schema violation).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startDemoApps, type DemoApps } from '../../extproc/src/demo/apps.ts';
import { DemoClient } from '../../extproc/src/demo/client.ts';
import { FX_RATES_HOST, FX_RATES_SPEC, startFxSupplier, type FxSupplier } from '../../extproc/src/demo/supplier.ts';
import { SPEC_DIR } from '../../extproc/src/demo/scenario.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { createContentDetectors } from '../../extproc/src/engine/detectors/content.ts';
import { createContentContext } from '../../extproc/src/inspect/settings.ts';
import { specOperationResolver } from '../../extproc/src/inspect/spec-resolver.ts';
import { loadSpecFile } from '../../extproc/src/inventory/spec.ts';

let apps: DemoApps | undefined;
let supplier: FxSupplier | undefined;
const abort = new AbortController();
const closing: (() => Promise<void>)[] = [];
after(async () => { abort.abort(); for (const c of closing) await c(); });

async function start(): Promise<{ apps: DemoApps; supplier: FxSupplier; client: DemoClient }> {
  if (!apps) { apps = await startDemoApps(['alice']); closing.push(apps.close); }
  if (!supplier) { supplier = await startFxSupplier(); closing.push(supplier.close); }
  const ports: Record<string, number> = { users: apps.users.port, orders: apps.orders.port, payments: apps.payments.port };
  // Straight to the apps (no sidecars): what the apps themselves do.
  const client = new DemoClient((_caller, service) => `http://127.0.0.1:${ports[service]}`, new Map(), abort.signal);
  return { apps, supplier, client };
}

test('the live-updates socket opens only for a signed-in user', async () => {
  const { apps, client } = await start();
  const login = await client.send('benign', { caller: 'x', service: 'users', method: 'POST', path: '/login', body: { username: 'alice', password: apps.passwords.get('alice') } });
  const token = (login.json as { token: string }).token;
  assert.equal((await client.upgrade('benign', { caller: 'x', service: 'orders', path: '/v2/live', token })).status, 101);
  assert.equal((await client.upgrade('benign', { caller: 'x', service: 'orders', path: '/v2/live' })).status, 401);
  assert.equal((await client.upgrade('benign', { caller: 'x', service: 'orders', path: '/v2/nothing-here', token })).status, 404);
  assert.deepEqual(apps.liveUpgrades, { accepted: 1, unauthenticated: 1 });
  assert.deepEqual(client.sent.map((s) => s.status), [200, 101, 401, 404], 'upgrades are recorded like requests');
  client.close();
});

test('payments settles at the supplier rate and stores whatever the supplier answers', async () => {
  const { apps, supplier, client } = await start();
  apps.useFxRates(`http://127.0.0.1:${supplier.port}`, FX_RATES_HOST);
  const charge = (currency: string) => client.send('x', { caller: 'x', service: 'payments', method: 'POST', path: '/charges', body: { orderId: 1, amount: 10, currency } });
  const eur = await charge('EUR');
  assert.equal(eur.status, 201);
  assert.ok(Math.abs((eur.json as { amountUsd: number }).amountUsd - 10.8) < 1e-9);
  supplier.compromise('GBP');
  const gbp = await charge('GBP');
  assert.equal(gbp.status, 201, 'a naive app parses the poisoned rate and keeps the quote');
  assert.match(JSON.stringify(gbp.json), /<script>/);
  assert.equal((await charge('EUR')).status, 201);
  assert.deepEqual(apps.consumedQuotes.map((q) => [q.currency, q.body.includes('<script>')]), [['EUR', false], ['GBP', true], ['EUR', false]]);
  assert.equal((await charge('XXX')).status, 502, 'an unsupported currency is refused, not guessed');
  client.close();
});

test('the supplier spec: clean quotes pass every content detector, compromised ones are API10 twice over', async () => {
  const supplier = await startFxSupplier();
  closing.push(supplier.close);
  const spec = await loadSpecFile(path.join(SPEC_DIR, FX_RATES_SPEC));
  const content = createContentContext({}, specOperationResolver([{ authority: FX_RATES_HOST, spec }]));
  const engine = new Engine({ denyRules: [], mode: 'enforce', detectors: (c) => createContentDetectors(c, content) });
  const findings: Finding[] = [];
  engine.addObserver({ onFinding: (f) => findings.push(f), onDetectorError: (d, e) => { throw new Error(`${d} threw: ${String(e)}`); } });
  let n = 0;
  const consume = async (currency: string): Promise<Finding[]> => {
    const p = `/v1/rates?base=${currency}&quote=USD`;
    const res = await fetch(`http://127.0.0.1:${supplier.port}${p}`);
    const before = findings.length;
    const request = {
      requestId: `q${++n}`, time: 1_000_000 + n, method: 'GET', authority: FX_RATES_HOST, path: p, headers: new Map<string, string[]>(),
      caller: { workload: 'spiffe://cluster.local/ns/payments/sa/payments', mtls: false, identitySource: 'filter' as const }, direction: 'outbound' as const,
    };
    assert.equal(engine.decide(request).action, 'allow');
    engine.observeResponse(request, {
      requestId: request.requestId, time: request.time, status: res.status,
      headers: new Map([['content-type', [res.headers.get('content-type') ?? '']]]), body: Buffer.from(await res.arrayBuffer()),
    });
    return findings.slice(before);
  };
  for (const c of ['EUR', 'GBP', 'CHF']) assert.deepEqual(await consume(c), [], `clean ${c} quote`);
  supplier.compromise('GBP');
  const poisoned = (await consume('GBP')).filter((f) => f.detector === 'content-unsafe-consumption');
  assert.ok(poisoned.every((f) => f.category === 'API10:2023-UnsafeConsumption' && f.enforcement === 'deny'), JSON.stringify(poisoned.map((f) => f.summary)));
  assert.ok(poisoned.some((f) => /injection payloads \(.*script/.test(f.summary)), 'the script payload');
  assert.ok(poisoned.some((f) => /violates its declared schema: .*\/rate/.test(f.summary)), 'the rate that is not a number');
  assert.deepEqual(await consume('EUR'), [], 'other currencies stay clean');
});
