// Policy, inventory and specs wired into the filter tables, the contracts and the per-request mode
// (the pieces `meshward serve` composes; test/e2e/policy-wiring.test.ts runs them in real Envoy).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { ProxyWasmHost, propertyPairs, requestHeaders } from '../support/proxy-wasm-host.ts';
import { parseCaptureRecord } from '../../extproc/src/wire/capture-record.ts';
import { FilterConfigStore } from '../../extproc/src/filter-config/route.ts';
import { buildFilterTables } from '../../extproc/src/filter-config/build.ts';
import { FilterTablesPublisher, inventoryTemplates, mergeFilterTables } from '../../extproc/src/filter-config/publisher.ts';
import { Inventory } from '../../extproc/src/inventory/inventory.ts';
import { SpecRegistry } from '../../extproc/src/inventory/spec-registry.ts';
import { PolicySet } from '../../extproc/src/policy/precedence.ts';
import { WorkloadPolicies } from '../../extproc/src/policy/workload-policy.ts';
import { PolicySpecLoader, specSourceOf } from '../../extproc/src/policy/spec-sources.ts';
import type { ApiSecurityPolicy, PolicySpec } from '../../extproc/src/policy/types.ts';
import { toExchange } from '../../extproc/src/engine/exchange.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { RequestEvent, SidecarWorkload } from '../../extproc/src/engine/event.ts';

const policy = (namespace: string, name: string, spec: PolicySpec): ApiSecurityPolicy =>
  ({ apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name, namespace }, spec }) as ApiSecurityPolicy;

const pairs = propertyPairs;

const request = (sidecarWorkload?: SidecarWorkload): RequestEvent => ({
  requestId: 'r', time: 0, caller: { mtls: true, identitySource: 'filter' }, method: 'GET', authority: 'orders.shop', path: '/orders/1', headers: new Map(),
  ...(sidecarWorkload ? { sidecarWorkload } : {}),
});

test('filter: the sidecar workload (node metadata NAMESPACE, WORKLOAD_NAME, LABELS) goes into the record', async () => {
  const host = await ProxyWasmHost.load();
  assert.equal(host.configure({}), true);
  const r = parseCaptureRecord(host.request({ headers: requestHeaders('GET', '/orders/1'), properties: {
    'connection\0uri_san_peer_certificate': 'spiffe://cluster.local/ns/default/sa/client',
    'xds\0node\0metadata\0NAMESPACE': 'shop',
    'xds\0node\0metadata\0WORKLOAD_NAME': 'orders-v2',
    'xds\0node\0metadata\0LABELS': pairs({ app: 'orders', 'app.kubernetes.io/version': 'v2', __proto__x: 'y' }),
  } }).record);
  assert.deepEqual([r?.nodeNamespace, r?.nodeWorkloadName, r?.nodeLabels], ['shop', 'orders-v2', { app: 'orders', 'app.kubernetes.io/version': 'v2', __proto__x: 'y' }]);
  assert.equal(r?.peer, 'spiffe://cluster.local/ns/default/sa/client', 'inbound capture unchanged');
});

test('filter: without node metadata, or with a malformed LABELS map, no workload keys and no failure', async () => {
  const none = await ProxyWasmHost.load();
  assert.equal(none.configure({}), true);
  const r = parseCaptureRecord(none.request({ headers: requestHeaders('GET', '/x') }).record);
  assert.deepEqual([r?.nodeNamespace, r?.nodeWorkloadName, r?.nodeLabels], [undefined, undefined, undefined]);
  for (const bad of [Buffer.from([1]), Buffer.from([255, 255, 255, 255]), Buffer.concat([pairs({ a: 'b' }).subarray(0, 14)]), Buffer.from([1, 0, 0, 0, 200, 0, 0, 0, 1, 0, 0, 0, 97, 0, 98, 0])]) {
    const host = await ProxyWasmHost.load();
    assert.equal(host.configure({}), true);
    const out = host.request({ headers: requestHeaders('GET', '/x'), properties: { 'xds\0node\0metadata\0NAMESPACE': 'lab', 'xds\0node\0metadata\0LABELS': bad } });
    const rec = parseCaptureRecord(out.record);
    assert.equal(rec?.nodeNamespace, 'lab');
    assert.equal(rec?.nodeLabels, undefined, `labels from ${bad.toString('hex')}`);
  }
});

test('capture record: node labels parse to own properties only; a "__proto__" label is data', () => {
  const r = parseCaptureRecord('mw1\nnode.namespace=shop\nnode.labels=__proto__=x,app=a,bad,=v\n');
  assert.deepEqual(Object.entries(r?.nodeLabels ?? {}), [['__proto__', 'x'], ['app', 'a']]);
  assert.equal(Object.getPrototypeOf(r?.nodeLabels), Object.prototype);
  assert.equal(parseCaptureRecord('mw1\nnode.labels=app=a\ntrunc=node.labels\n')?.nodeLabels, undefined, 'truncated labels are not trusted');
});

test('per-request mode: the workload namespace policy, its selector, else the mesh default', () => {
  const workloads = new WorkloadPolicies();
  const modeOf = (w?: SidecarWorkload) => workloads.modeFor(toExchange(request(w)));
  assert.equal(modeOf({ namespace: 'shop' }), undefined, 'no policies yet: the engine default');
  workloads.update(new PolicySet('meshward', [
    policy('meshward', 'mesh-default', { mode: 'monitor' }),
    policy('shop', 'shop', { mode: 'enforce' }),
    policy('lab', 'strict', { mode: 'enforce', selector: { matchLabels: { app: 'strict' } } }),
  ]));
  assert.equal(modeOf({ namespace: 'shop' }), 'enforce');
  assert.equal(modeOf({ namespace: 'lab', labels: { app: 'web' } }), 'monitor');
  assert.equal(modeOf({ namespace: 'lab', labels: { app: 'strict', tier: 'x' } }), 'enforce');
  assert.equal(modeOf({ namespace: 'other' }), 'monitor');
  assert.equal(modeOf(undefined), undefined, 'no workload on the request: the engine default (mesh default)');
  assert.equal(modeOf({ name: 'x' }), undefined);
  workloads.update(new PolicySet('meshward', [policy('shop', 'shop', { mode: 'monitor' })]));
  assert.equal(modeOf({ namespace: 'shop' }), 'monitor', 'a change replaces cached answers');
});

test('per-request mode agrees with PolicySet.effectiveFor for any labels (cache keyed by content, not order)', () => {
  const set = new PolicySet('meshward', [
    policy('lab', 'a', { mode: 'enforce', selector: { matchLabels: { app: 'x' } } }),
    policy('lab', 'b', { mode: 'monitor', selector: { matchLabels: { app: 'x', tier: 'y' } } }),
  ]);
  const workloads = new WorkloadPolicies();
  workloads.update(set);
  fc.assert(fc.property(fc.dictionary(fc.constantFrom('app', 'tier', 'z'), fc.constantFrom('x', 'y')), (labels) => {
    const reversed = Object.fromEntries(Object.entries(labels).reverse());
    const expected = set.effectiveFor({ namespace: 'lab', labels }).spec.mode === 'enforce' ? 'enforce' : 'monitor';
    assert.equal(workloads.modeFor(toExchange(request({ namespace: 'lab', labels }))), expected);
    assert.equal(workloads.modeFor(toExchange(request({ namespace: 'lab', labels: reversed }))), expected);
  }));
});

test('filter tables: the operator file is served as written until policy or templates add something', () => {
  const base = buildFilterTables({ denyIdentities: ['spiffe://cluster.local/ns/a/sa/file'], sampling: { percent: 5, seed: 'secret-seed' } });
  const store = new FilterConfigStore(base);
  const publisher = new FilterTablesPublisher(store);
  assert.equal(publisher.setPolicy({}), false);
  assert.equal(store.current, base);
  assert.equal(publisher.setPolicy({ denyIdentities: ['spiffe://cluster.local/ns/b/sa/policy'], sampling: { percent: 25 } }), true);
  assert.deepEqual(store.current.deny?.identities, ['spiffe://cluster.local/ns/a/sa/file', 'spiffe://cluster.local/ns/b/sa/policy']);
  assert.deepEqual([store.current.sampling?.percent, store.current.sampling?.seed], [25, 'secret-seed'], 'policy rate, file seed');
  const version = store.current.version;
  assert.equal(publisher.setPolicy({ denyIdentities: ['spiffe://cluster.local/ns/b/sa/policy'], sampling: { percent: 25 } }), false, 'unchanged: not republished');
  assert.equal(store.current.version, version);
  // A template the schema refuses: the last good tables stay.
  assert.equal(publisher.setTemplates([{ template: 'no-leading-slash' }]), false);
  assert.equal(store.current.version, version);
  assert.equal(publisher.setPolicy({}), false, 'still refused while the bad template is there');
  assert.equal(publisher.setTemplates([]), true);
  assert.equal(store.current, base, 'back to the file as written');
});

test('filter tables: merged documents are deterministic and valid for any policy order', () => {
  fc.assert(fc.property(fc.array(fc.constantFrom('spiffe://c/ns/a/sa/x', 'spiffe://c/ns/b/sa/y', 'spiffe://c/ns/c/sa/z'), { maxLength: 6 }), (ids) => {
    const a = mergeFilterTables({}, { denyIdentities: ids }, [{ template: '/users/{user}' }, { method: 'GET', template: '/users/me' }]);
    const b = mergeFilterTables({}, { denyIdentities: [...ids].reverse() }, [{ method: 'GET', template: '/users/me' }, { template: '/users/{user}' }]);
    assert.deepEqual(a, b);
    assert.deepEqual(a.deny?.identities, [...new Set(ids)].sort());
  }));
});

test('inventory templates: spec paths per method under each server base path, then learned tables, bounded', async () => {
  const inventory = new Inventory();
  const specs = new SpecRegistry(inventory);
  const loaded = await specs.load('orders.shop', { kind: 'openapi-text', name: 'orders.yaml', text: `openapi: 3.0.3
info: { title: o, version: '1' }
servers: [{ url: /api }]
paths:
  /orders/{orderId}: { get: { responses: { '200': { description: ok } } }, delete: { responses: { '204': { description: ok } } } }
` });
  assert.equal(loaded.ok, true);
  assert.deepEqual(inventoryTemplates(inventory), [{ method: 'GET', template: '/api/orders/{orderId}' }, { method: 'DELETE', template: '/api/orders/{orderId}' }]);
  assert.equal(inventoryTemplates(inventory, 1).length, 1);
});

test('policy apiSpecs: loaded into the registry; a bad one is reported and the last good one stays; ConfigMaps are reported', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meshward-specs-'));
  try {
    const good = path.join(dir, 'good.yaml');
    const bad = path.join(dir, 'bad.yaml');
    await writeFile(good, `openapi: 3.0.3\ninfo: { title: o, version: '1' }\npaths:\n  /orders: { get: { responses: { '200': { description: ok } } } }\n`);
    await writeFile(bad, 'openapi: 3.0.3\npaths: 7\n');
    const inventory = new Inventory();
    let loads = 0;
    const loader = new PolicySpecLoader(new SpecRegistry(inventory), () => { loads++; });
    const withSpec = (file: string) => new PolicySet('meshward', [policy('shop', 'shop', { apiSpecs: [{ name: 'orders', host: 'orders.shop', file }, { name: 'cm', host: 'cm.shop', configMapRef: { name: 'x', key: 'y' } }] })]);
    await loader.sync(withSpec(good));
    assert.equal(loads, 1);
    assert.equal(inventory.state('orders.shop')?.spec?.name, good);
    assert.deepEqual(loader.status().map((s) => [s.reference, s.loaded]), [['shop/shop: cm', false], ['shop/shop: orders', true]]);
    assert.match(loader.status()[0]!.error!, /ConfigMap/);
    await loader.sync(withSpec(good));
    assert.equal(loads, 1, 'an unchanged reference is not reloaded');
    await loader.sync(withSpec(bad));
    assert.equal(inventory.state('orders.shop')?.spec?.name, good, 'last good spec stays');
    const status = loader.status().find((s) => s.service === 'orders.shop')!;
    assert.equal(status.loaded, false);
    assert.match(status.error!, /bad\.yaml/);
    // The file is fixed in place (a ConfigMap mount updated): the next check loads it.
    await writeFile(bad, `openapi: 3.0.3\ninfo: { title: fixed, version: '2' }\npaths:\n  /orders/{id}: { get: { responses: { '200': { description: ok } } } }\n`);
    await loader.recheck();
    assert.equal(loads, 2);
    assert.equal(inventory.state('orders.shop')?.spec?.title, 'fixed');
    assert.equal(loader.status().find((s) => s.service === 'orders.shop')?.loaded, true);
    await loader.recheck();
    assert.equal(loads, 2, 'an unchanged file is not reloaded');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  assert.deepEqual(specSourceOf({ name: 'g', format: 'graphql', file: '/s.json' }), { kind: 'graphql-introspection-file', file: '/s.json' });
  assert.deepEqual(specSourceOf({ name: 'u', url: 'https://x/s.yaml' }), { kind: 'openapi-url', url: 'https://x/s.yaml' });
});

test('per-request rules and detector settings: a namespace policy that differs from the mesh default gets its own', () => {
  const workloads = new WorkloadPolicies([{ name: 'static', identity: 'spiffe://c/ns/x/sa/banned' }]);
  workloads.update(new PolicySet('meshward', [
    policy('meshward', 'mesh-default', { mode: 'monitor' }),
    policy('shop', 'shop', {
      mode: 'enforce',
      callGraph: { deny: [{ from: 'spiffe://c/ns/default/sa/client', paths: ['/admin/*'] }] },
      rateLimits: [{ name: 'tight', path: '/orders/*', requests: 1, per: 'minute' }],
    }),
    policy('lab', 'lab', { mode: 'enforce' }),
  ]));
  assert.equal(workloads.profileFor(request({ namespace: 'lab' })), undefined, 'same rules and settings as the mesh default: the engine\'s own');
  assert.ok(workloads.profileFor(request({ namespace: 'shop' })));
  const engine = new Engine({ denyRules: [{ name: 'static', identity: 'spiffe://c/ns/x/sa/banned' }], modeFor: workloads.modeFor, profileFor: workloads.profileFor });
  let n = 0;
  const call = (namespace: string, workload: string, p: string): string => {
    const d = engine.decide({ ...request({ namespace }), requestId: `r${n++}`, time: 1_000 + n, path: p, caller: { workload, mtls: true, identitySource: 'filter' } });
    return d.action === 'allow' ? 'allow' : `${d.status} ${d.reason}`;
  };
  assert.equal(call('shop', 'spiffe://c/ns/default/sa/client', '/admin/users'), '403 identity-denied');
  assert.equal(call('lab', 'spiffe://c/ns/default/sa/client', '/admin/users'), 'allow');
  assert.equal(call('shop', 'spiffe://c/ns/x/sa/banned', '/orders/1'), '403 identity-denied', 'static rules stay in every profile');
  assert.equal(call('lab', 'spiffe://c/ns/x/sa/banned', '/orders/1'), '403 identity-denied');
  assert.deepEqual([call('shop', 'spiffe://c/ns/default/sa/other', '/orders/1'), call('shop', 'spiffe://c/ns/default/sa/other', '/orders/2')], ['allow', '429 API4:2023-UnrestrictedResourceConsumption']);
  assert.deepEqual([call('lab', 'spiffe://c/ns/default/sa/other', '/orders/1'), call('lab', 'spiffe://c/ns/default/sa/other', '/orders/2')], ['allow', 'allow'], 'lab has no such limit');
});
