// Issue #7: policy sources. Files: hot reload, last good policy kept when a file turns invalid.
// Kubernetes: the real @kubernetes/client-node informer against a small in-process API server that
// speaks the list/watch/status-patch protocol (no cluster is available here): status conditions,
// last good version kept, watch drops survived, deletions applied.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { startFilePolicySource } from '../../extproc/src/policy/file-source.ts';
import { startKubernetesPolicySource, type KubernetesPolicySource } from '../../extproc/src/policy/kubernetes-source.ts';
import { startPolicyRuntime } from '../../extproc/src/policy/runtime.ts';
import type { PolicyUpdate } from '../../extproc/src/policy/registry.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import { silentLogger } from '../../extproc/src/log.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import { startInventory } from '../../extproc/src/inventory/runtime.ts';
import { PolicyServerWiring } from '../../extproc/src/policy/server-wiring.ts';
import { kubernetesConfigMapReader } from '../../extproc/src/policy/configmap-reader.ts';
import { loadPolicyCrd } from '../../extproc/src/policy/validate.ts';
import { compileStructuralSchema } from '../../extproc/src/policy/structural-schema.ts';
import { FakeApiServer } from '../support/fake-kubernetes-api.ts';

const WORKER = 'spiffe://cluster.local/ns/payments/sa/payment-worker';

function policyDoc(name: string, namespace: string, spec: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> & { metadata: Record<string, unknown> } {
  return { apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name, namespace, ...extra }, spec };
}

const denyWorker = { mode: 'enforce', callGraph: { deny: [{ from: WORKER, paths: ['/users/*'] }] } };

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function request(path: string): RequestEvent {
  return { requestId: 'r', time: 0, caller: { workload: WORKER, mtls: true, identitySource: 'filter' }, method: 'GET', authority: 'orders', path, headers: new Map() };
}

describe('file source', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'meshward-policy-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  test('hot reload applies a new policy; an invalid edit keeps the last good one; a fix applies again', async () => {
    const file = path.join(dir, 'policy.yaml');
    await writeFile(file, YAML.stringify(policyDoc('mesh-default', 'meshward', { mode: 'monitor' })));
    const engine = new Engine({ denyRules: [] });
    const runtime = await startPolicyRuntime({ source: 'file', files: [file], namespace: 'meshward', engine, log: silentLogger });
    try {
      assert.equal(engine.decide(request('/users/1')).action, 'allow');
      assert.equal(runtime.last?.set.effectiveFor({ namespace: 'meshward' }).spec.mode, 'monitor');

      // Replace by rename, as editors and ConfigMap mounts do.
      await writeFile(`${file}.tmp`, YAML.stringify(policyDoc('mesh-default', 'meshward', denyWorker)));
      await rename(`${file}.tmp`, file);
      await until('the deny rule', () => engine.decide(request('/users/1')).action === 'deny');

      await writeFile(file, YAML.stringify(policyDoc('mesh-default', 'meshward', { ...denyWorker, mode: 'blocking' })));
      await until('the error report', () => (runtime.last?.errors.get(file)?.length ?? 0) > 0);
      assert.deepEqual(runtime.last!.errors.get(file)!.map((e) => [e.path, e.reason]), [['spec.mode', 'must be one of: monitor, enforce']]);
      assert.equal(engine.decide(request('/users/1')).action, 'deny', 'the last good policy stays in force');

      await writeFile(file, 'not: [valid');
      await until('the YAML error', () => /not valid YAML/.test(runtime.last?.errors.get(file)?.[0]?.reason ?? ''));
      assert.equal(engine.decide(request('/users/1')).action, 'deny', 'still the last good policy');

      await writeFile(file, YAML.stringify(policyDoc('mesh-default', 'meshward', { mode: 'monitor' })));
      await until('the fixed policy', () => engine.decide(request('/users/1')).action === 'allow' && runtime.last?.errors.size === 0);
    } finally {
      await runtime.stop();
    }
  });

  test('the engine is reconfigured (which restarts detector state) only when its settings change', async () => {
    const a = path.join(dir, 'a.yaml');
    const b = path.join(dir, 'b.yaml');
    await writeFile(a, YAML.stringify(policyDoc('mesh-default', 'meshward', denyWorker)));
    await writeFile(b, YAML.stringify(policyDoc('shop', 'shop', { mode: 'monitor' })));
    const engine = new Engine({ denyRules: [] });
    let reconfigured = 0;
    const original = engine.reconfigure.bind(engine);
    engine.reconfigure = (c) => { reconfigured++; original(c); };
    const runtime = await startPolicyRuntime({ source: 'file', files: [a, b], namespace: 'meshward', engine, log: silentLogger });
    try {
      assert.equal(reconfigured, 1, 'once at start');
      // Another namespace's policy changes: the server's effective (mesh default) settings do not.
      await writeFile(b, YAML.stringify(policyDoc('shop', 'shop', { mode: 'enforce' })));
      await until('the shop change', () => runtime.last?.set.effectiveFor({ namespace: 'shop' }).spec.mode === 'enforce');
      assert.equal(reconfigured, 1);
      await writeFile(a, YAML.stringify(policyDoc('mesh-default', 'meshward', { ...denyWorker, detectors: [{ name: 'bola', thresholds: { foreignThreshold: 9 } }] })));
      await until('the new threshold', () => reconfigured === 2);
    } finally {
      await runtime.stop();
    }
  });

  test('a file that is invalid from the start leaves the built-in default in force, with the error reported', async () => {
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, YAML.stringify(policyDoc('x', 'meshward', { unknownField: 1 })));
    const updates: PolicyUpdate[] = [];
    const source = await startFilePolicySource({ files: [file], meshNamespace: 'meshward', onChange: (u) => updates.push(u) });
    source.close();
    const last = updates.at(-1)!;
    assert.deepEqual(last.set.effectiveFor({ namespace: 'shop' }).spec, { mode: 'monitor', failureMode: 'open' });
    assert.deepEqual(last.errors.get(file)!.map((e) => [e.path, e.reason]), [['spec.unknownField', 'unknown field']]);
  });

  test('a missing file and a 10 MB file are reported, not thrown', async () => {
    const big = path.join(dir, 'big.yaml');
    await writeFile(big, Buffer.alloc(10 * 1024 * 1024, 0x61));
    const updates: PolicyUpdate[] = [];
    const source = await startFilePolicySource({ files: [path.join(dir, 'absent.yaml'), big], meshNamespace: 'meshward', onChange: (u) => updates.push(u) });
    source.close();
    const errors = updates.at(-1)!.errors;
    assert.match(errors.get(path.join(dir, 'absent.yaml'))![0]!.reason, /ENOENT/);
    assert.match(errors.get(big)![0]!.reason, /larger than the 1048576-byte limit/);
  });
});

describe('Kubernetes source (client-node informer against a protocol-level API server)', () => {
  let api: FakeApiServer;
  let source: KubernetesPolicySource;
  const updates: PolicyUpdate[] = [];
  const last = (): PolicyUpdate => updates.at(-1)!;
  const accepted = (key: string): Record<string, unknown> | undefined =>
    ((api.objects.get(key)?.status as { conditions?: Record<string, unknown>[] } | undefined)?.conditions ?? []).find((c) => c.type === 'Accepted');

  before(async () => {
    api = new FakeApiServer();
    await api.start();
    api.put(policyDoc('mesh-default', 'meshward', { mode: 'monitor' }));
    api.put(policyDoc('shop', 'shop', { mode: 'enforce', failureMode: 'closed' }));
    const kubeConfig = api.kubeConfig();
    source = startKubernetesPolicySource({ kubeConfig, meshNamespace: 'meshward', onChange: (u) => updates.push(u), log: silentLogger, resyncMs: 60_000, errorRetryMs: 100 });
    await source.synced;
  });

  after(async () => {
    await source?.stop();
    await api?.close();
  });

  test('the initial list is applied with precedence, and each policy gets an Accepted condition', async () => {
    assert.deepEqual(last().set.effectiveFor({ namespace: 'shop' }).from, ['meshward/mesh-default', 'shop/shop']);
    await until('status writes', () => accepted('shop/shop') !== undefined && accepted('meshward/mesh-default') !== undefined);
    const c = accepted('shop/shop')!;
    assert.equal(c.status, 'True');
    assert.equal(c.reason, 'Accepted');
    assert.equal(c.observedGeneration, 1);
    assert.equal((api.objects.get('shop/shop')!.status as { observedGeneration: number }).observedGeneration, 1);
    assert.match(api.statusPatches[0]!.contentType, /merge-patch\+json/);
  });

  test('an invalid update is rejected in status with the field path; the last good version stays', async () => {
    api.put(policyDoc('shop', 'shop', { mode: 'enforce', failureMode: 'closed', rateLimits: [{ name: 'a', requests: 'many', per: 'minute' }] }));
    await until('Invalid status', () => accepted('shop/shop')?.status === 'False');
    const c = accepted('shop/shop')!;
    assert.equal(c.reason, 'Invalid');
    assert.equal(c.message, 'spec.rateLimits[0].requests: must be of type integer; generation 1 stays in force');
    assert.equal(c.observedGeneration, 2);
    const e = last().set.effectiveFor({ namespace: 'shop' });
    assert.equal(e.spec.failureMode, 'closed', 'the last good version of shop/shop is still in force');
    assert.deepEqual(last().errors.get('shop/shop')!.map((x) => x.path), ['spec.rateLimits[0].requests']);
  });

  test('our own status writes do not loop', async () => {
    const before = api.statusPatches.length;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(api.statusPatches.length, before);
  });

  test('after a dropped watch, changes made meanwhile still arrive', async () => {
    api.dropWatches();
    api.put(policyDoc('web', 'web', { mode: 'enforce' }));
    await until('web policy', () => last().set.effectiveFor({ namespace: 'web' }).spec.mode === 'enforce', 10_000);
    api.put(policyDoc('shop', 'shop', { mode: 'monitor' }));
    await until('fixed shop policy', () => last().set.effectiveFor({ namespace: 'shop' }).spec.mode === 'monitor' && accepted('shop/shop')?.status === 'True');
  });

  test('failed re-lists are retried; the policies in force stay meanwhile', async () => {
    const lists = api.listCalls;
    const before = updates.length;
    api.failLists = 2;
    api.goneWatches = 1;
    api.dropWatches();
    api.put(policyDoc('audit', 'audit', { mode: 'enforce' }));
    await until('audit policy after the retries', () => last().set.effectiveFor({ namespace: 'audit' }).spec.mode === 'enforce', 10_000);
    assert.ok(api.listCalls >= lists + 3, `two failed lists, then a good one (${api.listCalls - lists})`);
    for (const u of updates.slice(before)) assert.ok(u.set.meshDefault(), 'the mesh default never went away');
  });

  test('a second policy with the same selector is reported Conflicting until the first one goes', async () => {
    api.put(policyDoc('a-first', 'dup', { mode: 'enforce' }));
    api.put(policyDoc('b-second', 'dup', { mode: 'monitor' }));
    await until('Conflicting status', () => accepted('dup/b-second')?.reason === 'Conflicting');
    assert.equal(accepted('dup/b-second')!.status, 'False');
    assert.match(String(accepted('dup/b-second')!.message), /^shadowed by dup\/a-first/);
    assert.equal(accepted('dup/a-first')?.status, 'True');
    assert.deepEqual(last().set.effectiveFor({ namespace: 'dup' }).from.at(-1), 'dup/a-first');
    api.delete('dup/a-first');
    await until('b-second accepted', () => accepted('dup/b-second')?.status === 'True');
    assert.deepEqual(last().set.effectiveFor({ namespace: 'dup' }).from.at(-1), 'dup/b-second');
  });

  test('a deleted namespace policy falls back to the mesh default', async () => {
    api.delete('web/web');
    await until('deletion', () => last().set.effectiveFor({ namespace: 'web' }).spec.mode === 'monitor');
    assert.deepEqual(last().set.effectiveFor({ namespace: 'web' }).from, ['meshward/mesh-default']);
  });
});

describe('Kubernetes source resync', () => {
  test('periodic resync re-lists; the policies stay in force across every restart, and deletions missed meanwhile are applied', async () => {
    const api = new FakeApiServer();
    await api.start();
    api.put(policyDoc('mesh-default', 'meshward', { mode: 'enforce' }));
    api.put(policyDoc('old', 'old', { mode: 'enforce' }));
    const kubeConfig = api.kubeConfig();
    const updates: PolicyUpdate[] = [];
    const source = startKubernetesPolicySource({ kubeConfig, meshNamespace: 'meshward', onChange: (u) => updates.push(u), log: silentLogger, resyncMs: 150 });
    try {
      await source.synced;
      assert.equal(updates.at(-1)!.set.effectiveFor({ namespace: 'old' }).from.at(-1), 'old/old');
      // A deletion no watch delivers (as if it happened while disconnected): only a re-list finds it.
      api.objects.delete('old/old');
      const lists = api.listCalls;
      await until('two resyncs', () => api.listCalls >= lists + 2);
      await until('the missed deletion', () => updates.at(-1)!.set.effectiveFor({ namespace: 'old' }).from.at(-1) === 'meshward/mesh-default');
      for (const u of updates) assert.equal(u.set.meshDefault()?.spec.mode, 'enforce', 'never without the mesh default');
    } finally {
      await source.stop();
      await api.close();
    }
  });
});

describe('Kubernetes source watchdog', () => {
  test('an informer stuck on a hung API call is restarted by the watchdog', async () => {
    const api = new FakeApiServer();
    await api.start();
    api.put(policyDoc('mesh-default', 'meshward', { mode: 'enforce' }));
    api.hangLists = 1;
    const kubeConfig = api.kubeConfig();
    const updates: PolicyUpdate[] = [];
    // Resync far away: only the watchdog can get the source out of the hung first list.
    const source = startKubernetesPolicySource({ kubeConfig, meshNamespace: 'meshward', onChange: (u) => updates.push(u), log: silentLogger, resyncMs: 3_600_000, watchdogMs: 300 });
    try {
      await until('the policy after the watchdog restart', () => updates.at(-1)?.set.meshDefault()?.spec.mode === 'enforce', 10_000);
      assert.equal(api.listCalls, 2, 'one hung list, one after the restart');
    } finally {
      await source.stop();
      await api.close();
    }
  });
});

describe('Kubernetes source: specs from ConfigMaps, spec load results in the policy status', () => {
  const spec = (title: string, path = '/orders'): string =>
    `openapi: 3.0.3\ninfo: { title: ${title}, version: '1' }\npaths:\n  ${path}: { get: { responses: { '200': { description: ok } } } }\n`;
  const conditionsOf = (api: FakeApiServer, key: string): Record<string, unknown>[] =>
    (api.objects.get(key)?.status as { conditions?: Record<string, unknown>[] } | undefined)?.conditions ?? [];
  const specsLoaded = (api: FakeApiServer, key: string): Record<string, unknown> | undefined => conditionsOf(api, key).find((c) => c.type === 'SpecsLoaded');

  test('a ConfigMap spec loads, an edit reloads it, a broken edit, a missing key and a missing ConfigMap keep the last good one; status says which and where', async () => {
    const api = new FakeApiServer();
    await api.start();
    api.configMaps.set('shop/orders-openapi', { 'openapi.yaml': spec('v1') });
    api.configMaps.set('shop/unrelated', { 'x.yaml': spec('never read') });
    api.put(policyDoc('mesh-default', 'meshward', { mode: 'monitor' }));
    const ordersSpec = { name: 'orders', host: 'orders.shop', configMapRef: { name: 'orders-openapi', key: 'openapi.yaml' } };
    api.put(policyDoc('shop', 'shop', { mode: 'monitor', apiSpecs: [ordersSpec] }));
    const kubeConfig = api.kubeConfig();
    const engine = new Engine({ denyRules: [] });
    const inventory = await startInventory(engine);
    const wiring = new PolicyServerWiring(silentLogger, { configMapRefreshMs: 0 });
    wiring.useInventory(inventory);
    const source = startKubernetesPolicySource({
      kubeConfig, meshNamespace: 'meshward', log: silentLogger, resyncMs: 60_000, conditions: wiring.conditions,
      onChange: (u) => wiring.onApplied(u, u.set.effectiveFor({ namespace: 'meshward' })),
    });
    const title = (): string | undefined => inventory.inventory.state('orders.shop')?.spec?.title;
    try {
      await wiring.useConfigMaps(kubernetesConfigMapReader(kubeConfig));
      await source.synced;
      await until('the ConfigMap spec', () => title() === 'v1');
      await until('SpecsLoaded True', () => specsLoaded(api, 'shop/shop')?.status === 'True');
      const loaded = specsLoaded(api, 'shop/shop')!;
      assert.equal(loaded.reason, 'Loaded');
      assert.equal(loaded.observedGeneration, 1);
      assert.equal(loaded.message, 'loaded: orders (ConfigMap shop/orders-openapi, key openapi.yaml)');
      assert.equal(conditionsOf(api, 'shop/shop').find((c) => c.type === 'Accepted')?.status, 'True', 'Accepted is kept beside it');
      assert.equal(specsLoaded(api, 'meshward/mesh-default'), undefined, 'no SpecsLoaded without apiSpecs');

      // The ConfigMap is edited: the next check reloads it.
      wiring.watchSpecFiles(20);
      api.configMaps.set('shop/orders-openapi', { 'openapi.yaml': spec('v2', '/orders/{id}') });
      await until('the edited spec', () => title() === 'v2');

      // Broken content: SpecInvalid, naming the spec, the ConfigMap and key, and the place in the spec.
      api.configMaps.set('shop/orders-openapi', { 'openapi.yaml': 'openapi: 3.0.3\ninfo: { title: broken, version: "1" }\npaths: 7\n' });
      await until('SpecInvalid', () => specsLoaded(api, 'shop/shop')?.reason === 'SpecInvalid');
      const invalid = specsLoaded(api, 'shop/shop')!;
      assert.equal(invalid.status, 'False');
      assert.match(String(invalid.message), /^orders \(ConfigMap shop\/orders-openapi, key openapi\.yaml\): spec "ConfigMap shop\/orders-openapi, key openapi\.yaml": at #\/paths/);
      assert.match(String(invalid.message), /service orders\.shop keeps its last good spec/);
      assert.equal(title(), 'v2', 'the last good spec stays in force');
      // What is written is what the CRD's status schema accepts (two conditions, each with its generation).
      const crd = loadPolicyCrd() as { spec: { versions: { schema: { openAPIV3Schema: { properties: { status: unknown } } } }[] } };
      const statusSchema = compileStructuralSchema(crd.spec.versions[0]!.schema.openAPIV3Schema.properties.status);
      assert.deepEqual(statusSchema(api.objects.get('shop/shop')!.status), []);
      assert.deepEqual(conditionsOf(api, 'shop/shop').map((c) => c.type), ['Accepted', 'SpecsLoaded']);

      // The key goes away, then the ConfigMap: SpecUnavailable with a message naming both.
      api.configMaps.set('shop/orders-openapi', { 'other.yaml': spec('v3') });
      await until('missing key', () => /has no key/.test(String(specsLoaded(api, 'shop/shop')?.message)));
      assert.equal(specsLoaded(api, 'shop/shop')!.reason, 'SpecUnavailable');
      assert.match(String(specsLoaded(api, 'shop/shop')!.message), /ConfigMap shop\/orders-openapi has no key "openapi\.yaml" \(it has: other\.yaml\)/);
      api.configMaps.delete('shop/orders-openapi');
      await until('missing ConfigMap', () => /ConfigMap shop\/orders-openapi \(for key "openapi\.yaml"\) not found/.test(String(specsLoaded(api, 'shop/shop')?.message)));
      assert.equal(title(), 'v2', 'still the last good spec');
      const policyStatus = wiring.specStatus()!.find((s) => s.reference === 'shop/shop: orders')!;
      assert.equal(policyStatus.loaded, false);
      assert.equal(policyStatus.problem, 'unavailable');

      // Fixed: loaded again; the policy edited (generation 2): observedGeneration follows.
      api.configMaps.set('shop/orders-openapi', { 'openapi.yaml': spec('v4') });
      await until('the fixed spec', () => title() === 'v4' && specsLoaded(api, 'shop/shop')?.status === 'True');
      api.put(policyDoc('shop', 'shop', { mode: 'enforce', apiSpecs: [ordersSpec] }));
      await until('observedGeneration 2', () => specsLoaded(api, 'shop/shop')?.observedGeneration === 2);

      // Only the referenced ConfigMap was ever requested, and only with GET (the RBAC grants get only).
      assert.ok(api.configMapRequests.length >= 5);
      for (const r of api.configMapRequests) assert.match(r, /^GET \/api\/v1\/namespaces\/shop\/configmaps\/orders-openapi(\?|$)/);

      // The status writes settle: nothing changes, nothing is written.
      wiring.stop();
      const writes = api.statusPatches.length;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(api.statusPatches.length, writes);

      // apiSpecs removed from the policy: the condition goes away, Accepted stays.
      api.put(policyDoc('shop', 'shop', { mode: 'enforce' }));
      await until('SpecsLoaded removed', () => specsLoaded(api, 'shop/shop') === undefined && conditionsOf(api, 'shop/shop').length === 1);
    } finally {
      wiring.stop();
      await source.stop();
      inventory.close();
      await api.close();
    }
  });
});
