// Sampling decisions of the filter: policy rules first, then the percentage: a private random draw per
// request (default), or with sampling.consistent a keyed hash of x-request-id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProxyWasmHost, requestHeaders, DEFAULT_PROPERTIES } from '../support/proxy-wasm-host.ts';
import { parseCaptureRecord } from '../../extproc/src/wire/capture-record.ts';

async function filter(sampling: object): Promise<ProxyWasmHost> {
  const host = await ProxyWasmHost.load();
  assert.equal(host.configure({ sampling }), true);
  return host;
}

function sample(host: ProxyWasmHost, requestId: string, method = 'GET', path = '/orders/1', props = DEFAULT_PROPERTIES): { sampled?: boolean; reason?: string } {
  const r = parseCaptureRecord(host.request({ headers: requestHeaders(method, path, [['x-request-id', requestId]]), properties: props }).record);
  return { sampled: r?.sampled, reason: r?.sampleReason };
}

const ids = Array.from({ length: 4000 }, (_, i) => `${i.toString(16)}-${(i * 7919).toString(36)}`);

test('0 % samples nothing and 100 % everything', async () => {
  const none = await filter({ percent: 0 });
  const all = await filter({ percent: 100 });
  for (const id of ids.slice(0, 200)) {
    assert.equal(sample(none, id).sampled, false);
    assert.deepEqual(sample(all, id), { sampled: true, reason: 'percent' });
  }
  assert.equal(all.counter('meshward_filter_sampled_total'), 200);
  assert.equal(none.counter('meshward_filter_sampled_total'), 0);
});

test('default: the percentage is met, and no request id or seed lets a caller choose the answer', async () => {
  // The seed is readable inside any meshed pod (plugin configuration, refreshed tables), and the caller
  // picks its own x-request-id: neither may decide. The same id, sent again and again, is sampled at
  // the percentage's rate, and two VMs with the same seed answer independently.
  const a = await filter({ percent: 25, seed: 'seed-1' });
  const b = await filter({ percent: 25, seed: 'seed-1' });
  const rate = ids.filter((id) => sample(a, id).sampled).length / ids.length;
  assert.ok(Math.abs(rate - 0.25) < 0.034, `sampled rate ${rate}`);
  const sameId = Array.from({ length: 4000 }, () => sample(a, 'chosen-by-the-caller').sampled).filter(Boolean).length / 4000;
  assert.ok(Math.abs(sameId - 0.25) < 0.034, `one request id, sent 4,000 times, sampled at ${sameId}`);
  const agree = ids.slice(0, 2000).filter((id) => sample(a, id).sampled === sample(b, id).sampled).length / 2000;
  // Independent draws at p = 0.25 agree with probability 0.625 (sd 0.011), the hash would agree always.
  assert.ok(Math.abs(agree - 0.625) < 0.06, `two VMs agreed on ${agree} of the ids`);
  const fresh = await filter({ percent: 25 });
  sample(fresh, 'first');
  assert.equal(fresh.hostCalls.get('random_get'), 1, 'the first draw seeds from the host\'s random source');
  sample(fresh, 'second');
  assert.equal(fresh.hostCalls.get('random_get') ?? 0, 0, 'once per VM, not per request');
});

test('consistent: the percentage is met within binomial bounds and decisions are deterministic per request id', async () => {
  const a = await filter({ percent: 25, seed: 'seed-1', consistent: true });
  const b = await filter({ percent: 25, seed: 'seed-1', consistent: true }); // another worker VM, same policy
  const decisions = ids.map((id) => sample(a, id).sampled);
  const rate = decisions.filter(Boolean).length / ids.length;
  // 4000 draws at p = 0.25: sd = 0.0068; 5 sd = 0.034.
  assert.ok(Math.abs(rate - 0.25) < 0.034, `sampled rate ${rate}`);
  assert.deepEqual(ids.map((id) => sample(a, id).sampled), decisions, 'same VM, same answer');
  assert.deepEqual(ids.map((id) => sample(b, id).sampled), decisions, 'another VM with the same seed, same answer');
});

test('consistent: the seed changes which requests are sampled', async () => {
  const a = await filter({ percent: 50, seed: 'seed-1', consistent: true });
  const b = await filter({ percent: 50, seed: 'seed-2', consistent: true });
  const differ = ids.slice(0, 1000).filter((id) => sample(a, id).sampled !== sample(b, id).sampled).length;
  assert.ok(differ > 350 && differ < 650, `${differ} of 1000 decisions differ`);
});

test('suspect identities and writes to flagged operations are always sampled', async () => {
  const host = await filter({
    percent: 0,
    alwaysOperations: ['POST orders.shop /orders/{id}'],
    suspectIdentities: ['spiffe://cluster.local/ns/default/sa/suspect'],
  });
  assert.deepEqual(sample(host, 'r1', 'POST', '/orders/9'), { sampled: true, reason: 'operation' });
  assert.equal(sample(host, 'r1', 'GET', '/orders/9').sampled, false, 'a read of the flagged operation is not forced');
  assert.equal(sample(host, 'r1', 'POST', '/orders/9/items').sampled, false, 'another operation');
  const suspect = { ...DEFAULT_PROPERTIES, 'connection\0uri_san_peer_certificate': 'spiffe://cluster.local/ns/default/sa/suspect' };
  assert.deepEqual(sample(host, 'r1', 'GET', '/anything', suspect), { sampled: true, reason: 'suspect' });
});
