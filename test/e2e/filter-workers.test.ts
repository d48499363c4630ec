// Two Envoy worker threads = two Wasm VMs: token buckets and refreshed configuration are shared
// through proxy-wasm shared data, so the limit is not multiplied by the worker count and only one
// VM fetches the configuration per interval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import { AdminRouter } from '../../extproc/src/admin/server.ts';
import { buildFilterTables } from '../../extproc/src/filter-config/build.ts';
import { FILTER_CONFIG_CLUSTER } from '../../extproc/src/local/envoy-config.ts';
import { rawRequest } from '../support/raw-http.ts';

const CLIENT = 'default/client';
const TOKEN = 'workers-admin-token-0123456789';
const PATH = '/test/tables';

/** Connections each server-sidecar worker accepted on the inbound listener. */
async function connectionsPerWorker(mesh: LocalMesh): Promise<number[]> {
  const stats = await mesh.serverSidecar.stats('^listener\\.127\\.0\\.0\\.1_\\d+\\.worker_\\d+\\.downstream_cx_total$');
  return [...stats.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, v]) => v);
}

/** Many concurrent requests: the client sidecar opens one upstream connection per in-flight request,
 *  and the kernel spreads those connections over the server sidecar's workers. */
async function burst(mesh: LocalMesh, n: number, path: string): Promise<number[]> {
  const all = await Promise.all(Array.from({ length: n }, () =>
    rawRequest(mesh.urlFor(CLIENT), { path, headers: [['host', 'orders.shop']] }).then((r) => r.status)));
  return all;
}

test('two workers share one token bucket and one configuration fetch per interval', async () => {
  let hits = 0;
  let served = JSON.stringify(buildFilterTables({}));
  const router = new AdminRouter();
  router.register({ method: 'GET', path: PATH, handle: () => { hits++; return { status: 200, body: served, contentType: 'application/json' }; } });
  const mesh = await startLocalMesh({
    callers: [CLIENT],
    serverConcurrency: 2,
    admin: { router, token: TOKEN },
    pluginConfig: {
      limits: [{ identity: 'spiffe://cluster.local/ns/default/sa/client', operation: 'GET orders.shop /limited', ratePerSecond: 0.001, burst: 5 }],
      refresh: { cluster: FILTER_CONFIG_CLUSTER, path: PATH, token: TOKEN, intervalMs: 200 },
    },
  });
  try {
    // Refresh replaces the tables with the served (empty) ones; put the limit there too.
    served = JSON.stringify(buildFilterTables({ limits: [{ identity: mesh.spiffeIdOf(CLIENT), operation: 'GET orders.shop /limited', ratePerSecond: 0.001, burst: 5 }] }));
    await new Promise((r) => setTimeout(r, 600));

    const statuses = await burst(mesh, 40, '/limited');
    const workers = await connectionsPerWorker(mesh);
    assert.equal(workers.length, 2, 'two workers');
    assert.ok(workers.every((n) => n > 0), `both workers served requests (${workers.join(', ')})`);
    assert.equal(statuses.filter((s) => s === 200).length, 5, 'one shared burst of 5, not 5 per worker');
    assert.equal(statuses.filter((s) => s === 429).length, 35);

    // One fetch per interval for the whole Envoy, whichever VMs tick.
    const before = hits;
    await new Promise((r) => setTimeout(r, 2000));
    const fetched = hits - before;
    assert.ok(fetched >= 1 && fetched <= 13, `${fetched} fetches in 2 s at a 200 ms interval`);

    // A refreshed deny reaches every worker's VM.
    served = JSON.stringify(buildFilterTables({ denyIdentities: [mesh.spiffeIdOf(CLIENT)] }));
    await new Promise((r) => setTimeout(r, 1500));
    const denied = await burst(mesh, 30, '/anything');
    assert.deepEqual([...new Set(denied)], [403]);
  } finally {
    await mesh.stop();
  }
});
