// The filter's per-connection cache in real Envoy (issue #3): peer certificate URI SAN, mTLS flag and
// source address are read from Envoy once per downstream connection, found again by `connection.id`
// (which Envoy 1.40 serialises as 8 bytes). The miss counter `meshward_filter_connection_reads_total`
// must equal the connections the inbound listener accepted, not the requests, while every request
// still carries its own caller's identity.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import { rawRequest } from '../support/raw-http.ts';

const CLIENT = 'default/client';
const OTHER = 'default/other';
const READS = 'wasmcustom.meshward_filter_connection_reads_total';
let mesh: LocalMesh;
const events: RequestEvent[] = [];

before(async () => {
  mesh = await startLocalMesh({ callers: [CLIENT, OTHER] });
  mesh.engine.addObserver({ onDecision: (r) => events.push(r.request) });
});
after(async () => { await mesh?.stop(); });

/** The filter's reads and the inbound listener's accepted connections, from the server sidecar's /stats. */
async function counts(): Promise<{ reads: number; connections: number }> {
  const stats = await mesh.serverSidecar.stats('^(wasmcustom\\.meshward_filter_connection_reads_total|http\\.inbound[^.]*\\.downstream_cx_total)$');
  const connections = [...stats].filter(([k]) => k.endsWith('downstream_cx_total')).reduce((a, [, v]) => a + v, 0);
  return { reads: stats.get(READS) ?? 0, connections };
}

test('20 requests from one caller: one read per accepted connection, not per request; identities stay right', async (t) => {
  const before = await counts();
  const seen = events.length;
  for (let i = 0; i < 20; i++) {
    const res = await rawRequest(mesh.urlFor(CLIENT), { path: `/orders/${i}`, headers: [['host', 'orders.shop']] });
    assert.equal(res.status, 200);
  }
  const after = await counts();
  const connections = after.connections - before.connections;
  t.diagnostic(`accepted connections ${connections}, reads ${after.reads - before.reads}`);
  assert.ok(connections >= 1 && connections <= 2, `the client sidecar reused its connection (${connections} accepted)`);
  assert.equal(after.reads - before.reads, connections, 'one read of peer/mTLS/source per connection: the cache hit for every later request');
  const mine = events.slice(seen);
  assert.equal(mine.length, 20);
  for (const e of mine) {
    assert.equal(e.caller.identitySource, 'filter', 'identity from the capture record');
    assert.equal(e.caller.workload, mesh.spiffeIdOf(CLIENT));
    assert.equal(e.caller.mtls, true);
    assert.match(e.caller.sourceAddress ?? '', /^127\.0\.0\.1:\d+$/);
  }
  if (connections === 1) assert.equal(new Set(mine.map((e) => e.caller.sourceAddress)).size, 1, 'one connection, one source address');
});

test('requests alternating between two callers: each caller\'s connection keeps its own identity', async (t) => {
  const before = await counts();
  const seen = events.length;
  for (let i = 0; i < 20; i++) {
    const caller = i % 2 === 0 ? CLIENT : OTHER;
    assert.equal((await rawRequest(mesh.urlFor(caller), { path: `/orders/${i}`, headers: [['host', 'orders.shop']] })).status, 200);
  }
  const after = await counts();
  const connections = after.connections - before.connections;
  t.diagnostic(`accepted connections ${connections}, reads ${after.reads - before.reads}`);
  // The other caller's outbound cluster opens its own connection: at least one is new.
  assert.ok(connections >= 1, `the second caller came on a new connection (${connections} accepted)`);
  assert.equal(after.reads - before.reads, connections, 'reads follow connections');
  assert.ok(after.reads - before.reads <= 4, `${after.reads - before.reads} reads for 20 requests on at most 4 connections`);
  const mine = events.slice(seen);
  assert.equal(mine.length, 20);
  mine.forEach((e, i) => {
    assert.equal(e.caller.identitySource, 'filter', `request ${i}`);
    assert.equal(e.caller.workload, mesh.spiffeIdOf(i % 2 === 0 ? CLIENT : OTHER), `request ${i}`);
    assert.equal(e.caller.mtls, true, `request ${i}`);
  });
  // Each caller's requests came on its own connection(s): a source address never crosses callers.
  const sources = (parity: number) => new Set(mine.filter((_, i) => i % 2 === parity).map((e) => e.caller.sourceAddress));
  const clientSources = sources(0);
  for (const s of sources(1)) assert.ok(s !== undefined && !clientSources.has(s), `source ${s} seen for both callers`);
});
