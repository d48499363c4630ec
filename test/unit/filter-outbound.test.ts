// Outbound role: the caller is the sidecar's own workload (configured, else from Envoy's node).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProxyWasmHost, requestHeaders } from '../support/proxy-wasm-host.ts';
import { parseCaptureRecord } from '../../extproc/src/wire/capture-record.ts';

const NODE = {
  'xds\0node\0id': 'sidecar~10.0.0.5~web-1.shop~shop.svc.cluster.local',
  'xds\0node\0metadata\0NAMESPACE': 'shop',
  'xds\0node\0metadata\0SERVICE_ACCOUNT': 'web',
  'xds\0node\0metadata\0WORKLOAD_NAME': 'web-v2',
};

async function outbound(config: object, properties: Record<string, string>): Promise<ReturnType<typeof parseCaptureRecord>> {
  const host = await ProxyWasmHost.load();
  assert.equal(host.configure({ role: 'outbound', ...config }), true);
  return parseCaptureRecord(host.request({ headers: requestHeaders('GET', '/api/1', [], 'payments.shop:8080'), properties }).record);
}

test('own SPIFFE ID from node metadata, with the configured trust domain', async () => {
  const r = await outbound({ trustDomain: 'prod.example' }, NODE);
  assert.deepEqual([r?.role, r?.self, r?.selfNamespace, r?.selfWorkloadName, r?.dest], ['outbound', 'spiffe://prod.example/ns/shop/sa/web', 'shop', 'web-v2', 'payments.shop:8080']);
  assert.equal(r?.peer, undefined, 'no peer certificate on the outbound side');
  assert.equal(r?.operation, 'GET payments.shop:8080 /api/{id}');
});

test('configured self wins; without metadata the node id is used', async () => {
  assert.equal((await outbound({ self: 'spiffe://x/ns/a/sa/b' }, NODE))?.self, 'spiffe://x/ns/a/sa/b');
  assert.equal((await outbound({}, { 'xds\0node\0id': NODE['xds\0node\0id'] }))?.self, NODE['xds\0node\0id']);
  assert.equal((await outbound({}, {}))?.self, undefined);
});

test('outbound deny is keyed by the own identity', async () => {
  const host = await ProxyWasmHost.load();
  assert.equal(host.configure({ role: 'outbound', deny: { operations: [{ identity: 'spiffe://cluster.local/ns/shop/sa/web', operation: 'GET payments.shop:8080 /admin' }] } }), true);
  assert.equal(host.request({ headers: requestHeaders('GET', '/admin', [], 'payments.shop:8080'), properties: NODE }).localResponse?.status, 403);
  assert.equal(host.request({ headers: requestHeaders('GET', '/other', [], 'payments.shop:8080'), properties: NODE }).localResponse, undefined);
});
