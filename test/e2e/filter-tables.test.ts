// The filter's tables in real Envoy: its Wasm memory gauge in /stats, per-namespace tables (a
// sidecar asks for its own namespace's, from its node metadata), and enforced findings turned into
// temporary deny entries the filter applies locally until they expire.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalMesh } from '../../extproc/src/local/mesh.ts';
import { FILTER_CONFIG_PATH } from '../../extproc/src/filter-config/route.ts';
import { EnforcedDenies, enforcementRecorder } from '../../extproc/src/filter-config/enforced.ts';
import { FILTER_CONFIG_CLUSTER } from '../../extproc/src/local/envoy-config.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { Detector } from '../../extproc/src/engine/detector.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { PolicySet } from '../../extproc/src/policy/precedence.ts';
import { engineSettingsFor } from '../../extproc/src/policy/engine-mapping.ts';
import type { ApiSecurityPolicy, PolicySpec } from '../../extproc/src/policy/types.ts';
import { rawRequest } from '../support/raw-http.ts';
import { waitFor } from '../support/wait-for.ts';
import { servedTables } from '../support/served-tables.ts';

const TOKEN = 'e2e-admin-token-0123456789';
// The plugin configuration carries the filter token, which opens the refresh route and nothing else.
const FILTER_TOKEN = 'e2e-filter-token-9876543210';
const CLIENT = 'default/client';
const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';
const REFRESH = { refresh: { cluster: FILTER_CONFIG_CLUSTER, path: FILTER_CONFIG_PATH, token: FILTER_TOKEN, intervalMs: 200 } };
const policy = (namespace: string, name: string, spec: PolicySpec): ApiSecurityPolicy =>
  ({ apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name, namespace }, spec }) as ApiSecurityPolicy;

test('Wasm memory gauges: each VM\'s linear memory and the largest of them, in /stats', async () => {
  const mesh = await startLocalMesh({ callers: [CLIENT], serverConcurrency: 2 });
  try {
    for (let i = 0; i < 5; i++) assert.equal((await rawRequest(mesh.urlFor(CLIENT), { path: `/orders/${i}`, headers: [['host', 'orders.shop']] })).status, 200);
    const text = await (await fetch(`http://127.0.0.1:${mesh.serverSidecar.adminPort}/stats?filter=wasm_memory`)).text();
    const line = /^wasmcustom\.meshward_filter_wasm_memory_bytes: (\d+)$/m.exec(text);
    assert.ok(line, `the gauge is in /stats as wasmcustom.meshward_filter_wasm_memory_bytes:\n${text}`);
    const largest = Number(line[1]);
    const perVm = [...text.matchAll(/^wasmcustom\.meshward_filter_vm(\d+)_wasm_memory_bytes: (\d+)$/gm)].map((m) => Number(m[2]));
    assert.ok(perVm.length >= 2, `one gauge per VM (2 workers):\n${text}`);
    for (const bytes of [largest, ...perVm]) {
      assert.ok(bytes > 0 && bytes % 65536 === 0, `${bytes} bytes: positive, whole 64 KiB pages`);
      assert.ok(bytes < 64 * 1024 * 1024, 'a sane size for this filter (< 64 MiB)');
    }
    assert.equal(largest, Math.max(...perVm), 'the unnamed gauge is the largest VM\'s');
    const prom = await (await fetch(`http://127.0.0.1:${mesh.serverSidecar.adminPort}/stats/prometheus`)).text();
    assert.match(prom, /^# TYPE meshward_filter_wasm_memory_bytes gauge$/m, 'a gauge, not a counter');
  } finally {
    await mesh.stop();
  }
});

test('per-namespace tables: the namespace policy denying an identity reaches only that namespace\'s sidecar', async () => {
  const set = new PolicySet('meshward', [
    policy('meshward', 'default', { mode: 'monitor' }),
    policy('payments', 'payments', { mode: 'enforce', callGraph: { deny: [{ from: CLIENT_ID }] } }),
  ]);
  const router = servedTables(set);
  const engine = new Engine({ denyRules: [] });
  const payments = await startLocalMesh({ callers: [CLIENT], server: 'payments/ledger', engine, admin: { router, token: TOKEN, filterToken: FILTER_TOKEN }, pluginConfig: REFRESH,
    serverNodeMetadata: { NAMESPACE: 'payments', WORKLOAD_NAME: 'ledger', LABELS: { app: 'ledger' } } });
  const shop = await startLocalMesh({ callers: [CLIENT], server: 'shop/orders', engine, admin: { router, token: TOKEN, filterToken: FILTER_TOKEN }, pluginConfig: REFRESH,
    serverNodeMetadata: { NAMESPACE: 'shop', WORKLOAD_NAME: 'orders' } });
  try {
    const get = (mesh: typeof shop) => rawRequest(mesh.urlFor(CLIENT), { path: '/orders/1', headers: [['host', 'orders.shop']] });
    await waitFor('the payments sidecar to deny the client locally', async () => (await get(payments)).status === 403);
    const streams = payments.extProcCounters()!.streamsStarted;
    const denied = await get(payments);
    assert.equal(denied.status, 403);
    assert.equal(denied.headers['x-meshward-fastpath'], 'deny');
    assert.equal(payments.extProcCounters()!.streamsStarted, streams, 'refused by the filter: no ext_proc stream');
    // The shop sidecar has refreshed too (same interval), and its tables do not deny the client.
    await waitFor('the shop sidecar to apply a refreshed table', async () =>
      ((await shop.serverSidecar.stats('^wasmcustom\\.meshward_filter_config_applied_total$')).get('wasmcustom.meshward_filter_config_applied_total') ?? 0) >= 2);
    assert.equal((await get(shop)).status, 200);
    const shopDenies = await shop.serverSidecar.stats('^wasmcustom\\.meshward_filter_local_denies_total$');
    assert.equal(shopDenies.get('wasmcustom.meshward_filter_local_denies_total') ?? 0, 0);
    const log = await payments.serverSidecar.logTail(400);
    assert.doesNotMatch(log, /configuration refresh failed/);
    // The token the sidecars carry (readable in their config dump) opens nothing but the refresh.
    const withFilterToken = (path: string) => fetch(`http://127.0.0.1:${payments.adminPort}${path}`, { headers: { authorization: `Bearer ${FILTER_TOKEN}` } });
    assert.equal((await withFilterToken(FILTER_CONFIG_PATH)).status, 200);
    for (const path of ['/findings', '/inventory', '/policy', '/no-such-route']) assert.equal((await withFilterToken(path)).status, 403, path);
  } finally {
    await payments.stop();
    await shop.stop();
  }
});

/** Flags requests carrying x-test-attack (BOLA, deny) or x-test-flood (rate limit): stands in for a
 *  detector that has learned a baseline, so the test is about what enforcement does next. */
const markerDetector: Detector = {
  name: 'marker',
  onRequest: (x) => {
    const kind = x.request.headers.get('x-test-attack') ? 'deny' : x.request.headers.get('x-test-flood') ? 'rate-limit' : undefined;
    if (kind === undefined) return [];
    const f: Finding = {
      category: kind === 'deny' ? 'API1:2023-BOLA' : 'API4:2023-UnrestrictedResourceConsumption', detector: 'marker', severity: 'high',
      caller: x.callerKey, operation: x.operation, requestId: x.request.requestId, time: x.request.time, summary: 'test', evidence: {}, enforcement: kind,
    };
    return [f];
  },
};

test('an enforced finding becomes a deny entry: the next requests are refused by the filter until it expires', async () => {
  const enforced = new EnforcedDenies({ ttlMs: 4000 });
  const router = servedTables(new PolicySet('meshward', []), enforced);
  const mesh = await startLocalMesh({ callers: [CLIENT], server: 'shop/orders', engine: { denyRules: [], mode: 'enforce', detectors: () => [markerDetector] },
    admin: { router, token: TOKEN, filterToken: FILTER_TOKEN }, pluginConfig: REFRESH, serverNodeMetadata: { NAMESPACE: 'shop', WORKLOAD_NAME: 'orders' } });
  mesh.engine.addObserver(enforcementRecorder(enforced));
  try {
    const send = (path: string, extra: [string, string][] = []) => rawRequest(mesh.urlFor(CLIENT), { path, headers: [['host', 'orders.shop'], ...extra] });
    assert.equal((await send('/orders/1')).status, 200);
    const attack = await send('/orders/2', [['x-test-attack', '1']]);
    assert.equal(attack.status, 403, 'ext_proc enforced the finding');
    assert.equal(attack.headers['x-meshward-fastpath'], undefined);
    assert.equal(JSON.parse(attack.body).reason, 'API1:2023-BOLA');
    const entry = enforced.entriesFor('shop')[0];
    assert.deepEqual([entry?.identity, entry?.operation], [CLIENT_ID, 'GET orders.shop /orders/{id}']);

    await waitFor('the entry to reach the filter', async () => (await send('/orders/3')).headers['x-meshward-fastpath'] === 'deny');
    const streams = mesh.extProcCounters()!.streamsStarted;
    const local = await send('/orders/4');
    assert.equal(local.status, 403);
    assert.deepEqual(JSON.parse(local.body), { error: 'forbidden', reason: 'API1:2023-BOLA', rule: 'marker' }, 'same reason as ext_proc gave');
    assert.equal(mesh.extProcCounters()!.streamsStarted, streams, 'ext_proc saw no stream for it');
    const denies = await mesh.serverSidecar.stats('^wasmcustom\\.meshward_filter_local_denies_total$');
    assert.ok(denies.get('wasmcustom.meshward_filter_local_denies_total')! >= 2);
    assert.equal((await send('/orders', [['x-other', '1']])).status, 200, 'another operation of the same caller still passes');

    // Rate-limit enforcement: 429 locally for that operation.
    assert.equal((await send('/orders', [['x-test-flood', '1']])).status, 429);
    await waitFor('the 429 entry to reach the filter', async () => (await send('/orders')).headers['x-meshward-fastpath'] === 'limit');
    const limited = await send('/orders');
    assert.equal(limited.status, 429);
    assert.equal(JSON.parse(limited.body).reason, 'API4:2023-UnrestrictedResourceConsumption');

    // Expiry: the entry ends (the filter checks expiresAtMs itself; the server drops it too).
    await waitFor('the entry to expire', async () => (await send('/orders/5')).status === 200, 8000);
    assert.equal(enforced.entriesFor('shop').some((e) => e.operation === 'GET orders.shop /orders/{id}'), false);
  } finally {
    await mesh.stop();
  }
});

test('a real policy rate limit enforced by ext_proc is then applied by the filter itself (429, same reason)', async () => {
  const enforced = new EnforcedDenies();
  const router = servedTables(new PolicySet('meshward', []), enforced);
  const spec: PolicySpec = { mode: 'enforce', rateLimits: [{ name: 'orders-tight', path: '/orders/*', requests: 2, per: 'minute' }] };
  const mesh = await startLocalMesh({ callers: [CLIENT], server: 'shop/orders', engine: engineSettingsFor(spec).engine,
    admin: { router, token: TOKEN, filterToken: FILTER_TOKEN }, pluginConfig: REFRESH, serverNodeMetadata: { NAMESPACE: 'shop', WORKLOAD_NAME: 'orders' } });
  mesh.engine.addObserver(enforcementRecorder(enforced));
  try {
    const order = () => rawRequest(mesh.urlFor(CLIENT), { path: '/orders/7', headers: [['host', 'orders.shop']] });
    const first = [(await order()).status, (await order()).status];
    const third = await order();
    assert.deepEqual([...first, third.status], [200, 200, 429]);
    assert.equal(third.headers['x-meshward-fastpath'], undefined, 'the third was refused by ext_proc (resource-consumption)');
    const reason = JSON.parse(third.body).reason as string;
    await waitFor('the entry to reach the filter', async () => (await order()).headers['x-meshward-fastpath'] === 'limit');
    const streams = mesh.extProcCounters()!.streamsStarted;
    const local = await order();
    assert.equal(local.status, 429);
    assert.equal(JSON.parse(local.body).reason, reason);
    assert.equal(mesh.extProcCounters()!.streamsStarted, streams, 'no ext_proc stream');
    const limits = await mesh.serverSidecar.stats('^wasmcustom\\.meshward_filter_local_limits_total$');
    assert.ok(limits.get('wasmcustom.meshward_filter_local_limits_total')! >= 2);
  } finally {
    await mesh.stop();
  }
});
