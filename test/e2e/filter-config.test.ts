// Filter configuration in real Envoy: periodic refresh from the meshward admin server over the
// sidecar's meshward_config cluster (bearer token), invalid documents refused with the last good one
// kept, invalid plugin configuration refused at start; and the outbound role.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalMesh } from '../../extproc/src/local/mesh.ts';
import { AdminRouter } from '../../extproc/src/admin/server.ts';
import { FILTER_CONFIG_PATH, FilterConfigStore, registerFilterConfigRoute } from '../../extproc/src/filter-config/route.ts';
import { buildFilterTables } from '../../extproc/src/filter-config/build.ts';
import { FILTER_CONFIG_CLUSTER } from '../../extproc/src/local/envoy-config.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import { rawRequest } from '../support/raw-http.ts';
import { waitFor } from '../support/wait-for.ts';

const TOKEN = 'e2e-admin-token-0123456789';
const CLIENT = 'default/client';
const TEST_PATH = '/test/filter-config';

test('refresh: the filter fetches tables with its bearer token; a bad document is refused and the last good stays', async () => {
  const router = new AdminRouter();
  const store = new FilterConfigStore(buildFilterTables({}));
  registerFilterConfigRoute(router, store);
  // A route serving arbitrary text, to hand the filter documents the store would never accept.
  let served = JSON.stringify(buildFilterTables({}));
  router.register({ method: 'GET', path: TEST_PATH, handle: () => ({ status: 200, body: served, contentType: 'application/json' }) });
  const mesh = await startLocalMesh({
    callers: [CLIENT],
    admin: { router, token: TOKEN },
    pluginConfig: { refresh: { cluster: FILTER_CONFIG_CLUSTER, path: TEST_PATH, token: TOKEN, intervalMs: 200 } },
  });
  try {
    const status = async (): Promise<number> => (await rawRequest(mesh.urlFor(CLIENT), { path: '/orders/1', headers: [['host', 'orders.shop']] })).status;
    assert.equal(await status(), 200);

    const denyClient = buildFilterTables({ denyIdentities: [mesh.spiffeIdOf(CLIENT)] });
    served = JSON.stringify(denyClient);
    await waitFor('the deny table to arrive', async () => (await status()) === 403);
    const streams = mesh.extProcCounters()!.streamsStarted;
    assert.equal(await status(), 403);
    assert.equal(mesh.extProcCounters()!.streamsStarted, streams, 'denied locally');

    served = '{"deny":{"identities":[42]}}';
    await waitFor('the refusal log line', async () =>
      (await mesh.serverSidecar.logTail(100)).includes(`meshward filter: refreshed configuration refused (deny.identities[0]: must be string, got number); keeping version "${denyClient.version}"`));
    assert.equal(await status(), 403, 'last good configuration still enforced');
    const stats = await mesh.serverSidecar.stats('^wasmcustom\\.meshward_filter_config');
    assert.ok(stats.get('wasmcustom.meshward_filter_config_rejected_total')! >= 1);

    served = JSON.stringify(buildFilterTables({}));
    await waitFor('the empty tables to arrive', async () => (await status()) === 200);

    // The real route: bearer-protected, serves the store's document.
    const admin = `http://127.0.0.1:${mesh.adminPort}`;
    assert.equal((await fetch(`${admin}${FILTER_CONFIG_PATH}`)).status, 401);
    assert.equal((await fetch(`${admin}${FILTER_CONFIG_PATH}`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status, 401);
    const ok = await fetch(`${admin}${FILTER_CONFIG_PATH}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), store.current);
    assert.equal((await fetch(`${admin}/healthz`)).status, 200);
  } finally {
    await mesh.stop();
  }
});

test('invalid plugin configuration is refused: Envoy does not start the listener with it, and says why', async () => {
  await assert.rejects(
    startLocalMesh({ callers: [CLIENT], pluginConfig: { deny: { identities: 'spiffe://x' } } }),
    (err: Error) => {
      assert.match(err.message, /meshward filter: invalid configuration refused: deny\.identities: must be array, got string/);
      return true;
    },
  );
});

test('outbound role: own workload identity and destination reach ext_proc; fast-path deny on the outbound side', async () => {
  const mesh = await startLocalMesh({
    callers: [CLIENT],
    outboundFilter: { pluginConfig: { role: 'outbound', deny: { operations: [{ identity: 'spiffe://cluster.local/ns/default/sa/client', operation: 'DELETE orders.shop /orders/{id}' }] } } },
  });
  try {
    const events: RequestEvent[] = [];
    mesh.engine.addObserver({ onDecision: (r) => events.push(r.request) });
    const res = await rawRequest(mesh.urlFor(CLIENT), { path: '/orders/5', headers: [['host', 'orders.shop']] });
    assert.equal(res.status, 200);
    const outbound = events.find((e) => e.direction === 'outbound');
    const inbound = events.find((e) => e.direction === 'inbound');
    assert.ok(outbound && inbound, 'both sidecars reported the call');
    // Own identity from the Envoy node metadata (NAMESPACE, SERVICE_ACCOUNT): the same SPIFFE ID the
    // server sidecar sees in the client certificate.
    assert.equal(outbound.caller.workload, mesh.spiffeIdOf(CLIENT));
    assert.deepEqual([outbound.caller.namespace, outbound.caller.workloadName], ['default', 'client']);
    assert.equal(outbound.destination, 'orders.shop');
    assert.equal(outbound.operation, 'GET orders.shop /orders/{id}');
    assert.equal(inbound.caller.workload, mesh.spiffeIdOf(CLIENT));

    const before = mesh.extProcCounters()!.streamsStarted;
    const denied = await rawRequest(mesh.urlFor(CLIENT), { method: 'DELETE', path: '/orders/5', headers: [['host', 'orders.shop']] });
    assert.equal(denied.status, 403);
    assert.equal(denied.headers['x-meshward-fastpath'], 'deny');
    assert.equal(mesh.extProcCounters()!.streamsStarted, before, 'neither sidecar opened an ext_proc stream');
    const self = await mesh.clientSidecar.stats('^wasmcustom\\.meshward_filter_local_denies_total$');
    assert.equal(self.get('wasmcustom.meshward_filter_local_denies_total'), 1);
  } finally {
    await mesh.stop();
  }
});
