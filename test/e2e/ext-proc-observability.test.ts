// ext_proc in Envoy's observability mode ("send and go", chart value extProc.observabilityMode), in
// real Envoy: requests never wait for meshward, so a hung server delays nothing; with fail-open no
// server fault fails a request (fail-closed still fails those whose stream errs or cannot open: Envoy
// applies failure_mode_allow in this mode too); meshward still sees every request and response;
// an enforce-mode finding cannot stop the request Envoy did not wait for (the finding says so), but
// it reaches the filter's deny table, which refuses the caller from its next request on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalMesh } from '../../extproc/src/local/mesh.ts';
import { FILTER_CONFIG_PATH } from '../../extproc/src/filter-config/route.ts';
import { EnforcedDenies, enforcementRecorder } from '../../extproc/src/filter-config/enforced.ts';
import { FILTER_CONFIG_CLUSTER } from '../../extproc/src/local/envoy-config.ts';
import type { Detector } from '../../extproc/src/engine/detector.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { PolicySet } from '../../extproc/src/policy/precedence.ts';
import { rawRequest } from '../support/raw-http.ts';
import { waitFor } from '../support/wait-for.ts';
import { servedTables } from '../support/served-tables.ts';
import { startFaultyExtProc, type Fault } from '../support/faulty-ext-proc.ts';

const TOKEN = 'e2e-admin-token-0123456789';
const CLIENT = 'default/client';
const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';
const REFRESH = { refresh: { cluster: FILTER_CONFIG_CLUSTER, path: FILTER_CONFIG_PATH, token: TOKEN, intervalMs: 200 } };

/** Flags requests that carry x-test-attack (an enforceable BOLA finding), nothing else. */
const markerDetector: Detector = {
  name: 'marker',
  onRequest(x) {
    if (!x.request.headers.has('x-test-attack')) return [];
    const f: Finding = {
      category: 'API1:2023-BOLA', detector: 'marker', severity: 'high', caller: x.callerKey, operation: x.operation,
      requestId: x.request.requestId, time: x.request.time, summary: 'test', evidence: {}, enforcement: 'deny',
    };
    return [f];
  },
};

test('observability mode: an enforced finding does not hold the request, the filter refuses the caller from the next one', async () => {
  const enforced = new EnforcedDenies({ ttlMs: 60_000 });
  const mesh = await startLocalMesh({
    callers: [CLIENT], server: 'shop/orders', inbound: [{ name: 'inbound', failureModeAllow: false, observabilityMode: true }],
    engine: { denyRules: [], mode: 'enforce', detectors: () => [markerDetector] },
    admin: { router: servedTables(new PolicySet('meshward', []), enforced), token: TOKEN }, pluginConfig: REFRESH, serverNodeMetadata: { NAMESPACE: 'shop', WORKLOAD_NAME: 'orders' },
  });
  mesh.engine.addObserver(enforcementRecorder(enforced));
  const findings: Finding[] = [];
  const responses: number[] = [];
  mesh.engine.addObserver({ onFinding: (f) => findings.push(f), onResponse: (_req, res) => responses.push(res.status) });
  try {
    const send = (path: string, extra: [string, string][] = []) => rawRequest(mesh.urlFor(CLIENT), { path, headers: [['host', 'orders.shop'], ...extra] });
    assert.equal((await send('/orders/1')).status, 200);
    const appBefore = mesh.app.received.length;
    const attack = await send('/orders/2', [['x-test-attack', '1']]);
    assert.equal(attack.status, 200, 'Envoy did not wait for the verdict');
    assert.equal(mesh.app.received.length, appBefore + 1, 'the app got the request');
    await waitFor('the finding', async () => findings.length === 1);
    assert.match(String(findings[0]!.evidence.enforcementDeferred), /observability mode: this request was not stopped/);
    await waitFor('the server to see the responses too', async () => responses.length >= 2);
    // The server ends each stream after the response headers instead of leaving Envoy to hold it
    // for deferred_close_timeout (5 s): one open stream per request would pile up under load.
    await waitFor('the server to end the streams', async () => mesh.extProcCounters()!.streamsActive === 0, 2500);

    const entry = enforced.entriesFor('shop')[0];
    assert.deepEqual([entry?.identity, entry?.operation], [CLIENT_ID, 'GET orders.shop /orders/{id}']);
    await waitFor('the entry to reach the filter', async () => (await send('/orders/3')).headers['x-meshward-fastpath'] === 'deny');
    const local = await send('/orders/4');
    assert.equal(local.status, 403);
    assert.equal(JSON.parse(local.body).reason, 'API1:2023-BOLA');
    assert.equal((await send('/orders')).status, 200, 'another operation of the caller still passes');
  } finally {
    await mesh.stop();
  }
});

test('observability mode: with fail-open no server fault fails or delays a request; fail-closed still fails requests whose stream errs', async () => {
  const mesh = await startLocalMesh({
    callers: [CLIENT], messageTimeoutSeconds: 3,
    inbound: [{ name: 'closed', failureModeAllow: false, observabilityMode: true }, { name: 'open', failureModeAllow: true, observabilityMode: true }],
  });
  await mesh.stopExtProc();
  try {
    const get = async (listener: string): Promise<{ status: number; ms: number }> => {
      const started = performance.now();
      const res = await fetch(mesh.urlFor(CLIENT, listener) + '/orders/1');
      await res.arrayBuffer();
      return { status: res.status, ms: performance.now() - started };
    };
    const faults: (Fault | 'down')[] = ['slower-than-timeout', 'clean-close', 'wrong-message-kind', 'grpc-error', 'killed-in-request-phase', 'down'];
    const outcome: Record<string, { open: number[]; closed: number[]; slowest: number }> = {};
    for (const fault of faults) {
      const results: Record<'open' | 'closed', { status: number; ms: number }[]> = { open: [], closed: [] };
      for (const listener of ['open', 'closed'] as const) {
        const faulty = fault === 'down' ? undefined : await startFaultyExtProc(mesh.extProcPort, fault);
        for (let i = 0; i < 3; i++) results[listener].push(await get(listener));
        faulty?.close();
        if (faulty) assert.ok(faulty.streams >= 1, `${fault}: the requests reached the server`);
      }
      outcome[fault] = { open: results.open.map((r) => r.status), closed: results.closed.map((r) => r.status), slowest: Math.max(...[...results.open, ...results.closed].map((r) => r.ms)) };
    }
    console.log(`# observability-mode failure outcomes: ${JSON.stringify(outcome)}`);
    for (const fault of faults) {
      const o = outcome[fault]!;
      assert.deepEqual(o.open, [200, 200, 200], `${fault}, fail-open: ${JSON.stringify(o)}`);
      // Nothing waits for meshward: a server that never answers cannot hold a request for the 3 s
      // message_timeout (in the default synchronous mode each would wait, then get 504).
      assert.ok(o.slowest < 3000, `${fault}: no request waited for the message timeout: ${JSON.stringify(o)}`);
    }
    // Envoy still applies failure_mode_allow to a stream that errs while its request is in flight.
    assert.deepEqual(outcome['slower-than-timeout']!.closed, [200, 200, 200]);
    assert.deepEqual(outcome['clean-close']!.closed, [200, 200, 200]);
    assert.ok(outcome['grpc-error']!.closed.includes(500), 'fail-closed: an erring stream fails its request');
    assert.ok(outcome['killed-in-request-phase']!.closed.includes(500), 'fail-closed: a dying server fails requests in flight');
    assert.deepEqual(outcome.down!.closed, [500, 500, 500], 'fail-closed: no server, no request');
  } finally {
    await mesh.stop();
  }
});
