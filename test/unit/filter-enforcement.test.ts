// Fast-path deny table and token buckets: local 403/429 from the filter itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProxyWasmHost, SharedData, requestHeaders, DEFAULT_PROPERTIES } from '../support/proxy-wasm-host.ts';

const ALICE = 'spiffe://cluster.local/ns/default/sa/alice';
const BOB = 'spiffe://cluster.local/ns/default/sa/bob';
const as = (who: string) => ({ ...DEFAULT_PROPERTIES, 'connection\0uri_san_peer_certificate': who });

async function filter(config: object, shared = new SharedData()): Promise<ProxyWasmHost> {
  const host = await ProxyWasmHost.load(undefined, shared);
  assert.equal(host.configure(config), true);
  return host;
}

test('a denied identity gets a local 403 and the stream stops; others pass', async () => {
  const host = await filter({ deny: { identities: [ALICE] } });
  const denied = host.request({ headers: requestHeaders('GET', '/orders/1'), properties: as(ALICE) });
  assert.equal(denied.action, 1, 'Pause: Envoy does not continue the chain (no ext_proc, no upstream)');
  assert.equal(denied.localResponse?.status, 403);
  assert.equal(denied.localResponse?.details, 'meshward_fastpath_deny');
  assert.deepEqual(JSON.parse(denied.localResponse!.body), { error: 'forbidden', reason: 'fastpath_deny' });
  assert.ok(denied.localResponse?.headers.some(([k, v]) => k === 'x-meshward-fastpath' && v === 'deny'));
  const ok = host.request({ headers: requestHeaders('GET', '/orders/1'), properties: as(BOB) });
  assert.equal(ok.action, 0);
  assert.equal(ok.localResponse, undefined);
  assert.equal(host.counter('meshward_filter_local_denies_total'), 1);
});

test('identity x operation denies only that operation; source-IP callers are keyed as ip:<address>', async () => {
  const host = await filter({ deny: { operations: [
    { identity: ALICE, operation: 'DELETE orders.shop /orders/{id}' },
    { identity: 'ip:10.9.9.9', operation: 'GET orders.shop /admin' },
  ] } });
  assert.equal(host.request({ headers: requestHeaders('DELETE', '/orders/5'), properties: as(ALICE) }).localResponse?.status, 403);
  assert.equal(host.request({ headers: requestHeaders('GET', '/orders/5'), properties: as(ALICE) }).localResponse, undefined);
  assert.equal(host.request({ headers: requestHeaders('DELETE', '/orders/5'), properties: as(BOB) }).localResponse, undefined);
  const plain = { 'source\0address': '10.9.9.9:5555' };
  assert.equal(host.request({ headers: requestHeaders('GET', '/admin'), properties: plain }).localResponse?.status, 403);
});

test('an end user (JWT issuer + subject at the workload) can be denied', async () => {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const token = `${b64({ alg: 'RS256' })}.${b64({ sub: 'eve', iss: 'idp' })}.sig`;
  const host = await filter({ deny: { identities: [`user:idp|eve@${ALICE}`] } });
  const withToken = requestHeaders('GET', '/x', [['authorization', `Bearer ${token}`]]);
  assert.equal(host.request({ headers: withToken, properties: as(ALICE) }).localResponse?.status, 403);
  assert.equal(host.request({ headers: requestHeaders('GET', '/x'), properties: as(ALICE) }).localResponse, undefined);
});

test('token bucket: burst passes, then 429 until tokens refill at the configured rate', async () => {
  const host = await filter({ limits: [{ identity: ALICE, operation: 'POST orders.shop /orders', ratePerSecond: 2, burst: 3 }] });
  const post = () => host.request({ headers: requestHeaders('POST', '/orders'), properties: as(ALICE) }).localResponse?.status;
  assert.deepEqual([post(), post(), post()], [undefined, undefined, undefined]);
  assert.equal(post(), 429);
  assert.equal(host.request({ headers: requestHeaders('GET', '/orders'), properties: as(ALICE) }).localResponse, undefined, 'other operation unlimited');
  assert.equal(host.request({ headers: requestHeaders('POST', '/orders'), properties: as(BOB) }).localResponse, undefined, 'other identity unlimited');
  host.nowNanos += 500_000_000n; // 0.5 s at 2/s = one token
  assert.equal(post(), undefined);
  assert.equal(post(), 429);
  host.nowNanos += 60_000_000_000n; // refill caps at burst
  assert.deepEqual([post(), post(), post(), post()], [undefined, undefined, undefined, 429]);
  assert.equal(host.counter('meshward_filter_local_limits_total'), 3);
});

test('buckets live in shared data: two worker VMs share one budget', async () => {
  const shared = new SharedData();
  const config = { limits: [{ identity: ALICE, operation: 'GET orders.shop /x', ratePerSecond: 0.001, burst: 4 }] };
  const w1 = await filter(config, shared);
  const w2 = await filter(config, shared);
  w2.nowNanos = w1.nowNanos;
  const statuses = [w1, w2, w1, w2, w1, w2].map((w) => w.request({ headers: requestHeaders('GET', '/x'), properties: as(ALICE) }).localResponse?.status);
  assert.deepEqual(statuses, [undefined, undefined, undefined, undefined, 429, 429]);
});
