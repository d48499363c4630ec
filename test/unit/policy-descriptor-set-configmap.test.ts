// Issue #6: spec.content.grpc.descriptorSet.configMapRef. The descriptor set file sits in a
// ConfigMap's binaryData (kubectl create configmap --from-file); the server reads it with `get`, as it
// reads apiSpecs' ConfigMaps, and its methods become the policy's known gRPC methods. Composed as
// `meshward serve` composes it (startPolicyRuntime with the Kubernetes source + PolicyServerWiring),
// against the in-process Kubernetes API server; descriptor sets are built from .proto text.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FakeApiServer } from '../support/fake-kubernetes-api.ts';
import { descriptorSetBase64 } from '../support/descriptor-set.ts';
import { waitFor } from '../support/wait-for.ts';
import { startPolicyRuntime } from '../../extproc/src/policy/runtime.ts';
import { PolicyServerWiring } from '../../extproc/src/policy/server-wiring.ts';
import { configMapKeyBytes, ConfigMapReadError, type ConfigMapReader } from '../../extproc/src/policy/configmap-reader.ts';
import { DescriptorSetLoader } from '../../extproc/src/policy/descriptor-set-sources.ts';
import { PolicySet } from '../../extproc/src/policy/precedence.ts';
import { contentSettingsFor } from '../../extproc/src/policy/content-mapping.ts';
import { validatePolicyObject } from '../../extproc/src/policy/validate.ts';
import { MAX_DESCRIPTOR_SET_BYTES } from '../../extproc/src/inspect/grpc.ts';
import type { ApiSecurityPolicy, ContentPolicy } from '../../extproc/src/policy/types.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { silentLogger } from '../../extproc/src/log.ts';

const SHOP = Buffer.from(descriptorSetBase64(`syntax = "proto3"; package shop.v1;
  message Req { int32 id = 1; } message Res { string name = 1; }
  service Orders { rpc Get (Req) returns (Res); rpc List (Req) returns (stream Res); }
  service Admin { rpc Purge (Req) returns (Res); }`), 'base64');

const policyDoc = (name: string, namespace: string, spec: Record<string, unknown>) =>
  ({ apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name, namespace }, spec });

const errorsOf = (content: Record<string, unknown>) => validatePolicyObject(policyDoc('p', 'shop', { content })).errors;


describe('descriptorSet.configMapRef in the policy', () => {
  test('exactly one of base64 and configMapRef; the error names the field', () => {
    const ref = { name: 'orders-protos', key: 'orders.pb' };
    assert.deepEqual(errorsOf({ grpc: { descriptorSet: { configMapRef: ref } } }), []);
    assert.deepEqual(errorsOf({ grpc: { descriptorSet: { base64: SHOP.toString('base64'), configMapRef: ref } } }).map((e) => [e.path, e.reason]),
      [['spec.content.grpc.descriptorSet', 'exactly one of base64, configMapRef is required (got base64, configMapRef)']]);
    assert.deepEqual(errorsOf({ grpc: { descriptorSet: {} } }).map((e) => [e.path, e.reason]),
      [['spec.content.grpc.descriptorSet', 'exactly one of base64, configMapRef is required (got none)']]);
    // The CRD schema: both fields of the reference, nothing else.
    assert.deepEqual(errorsOf({ grpc: { descriptorSet: { configMapRef: { name: 'orders-protos' } } } }).map((e) => e.path), ['spec.content.grpc.descriptorSet.configMapRef.key']);
    assert.deepEqual(errorsOf({ grpc: { descriptorSet: { configMapRef: { ...ref, namespace: 'other' } } } }).map((e) => [e.path, e.reason]),
      [['spec.content.grpc.descriptorSet.configMapRef.namespace', 'unknown field']]);
  });

  test('a descriptor set not read (yet) adds no methods: the check runs on knownMethods alone, or not at all', () => {
    const content: ContentPolicy = { grpc: { descriptorSet: { configMapRef: { name: 'p', key: 'k' } }, knownMethods: ['shop.v1.Legacy/Ping'] } };
    assert.deepEqual(contentSettingsFor(content).grpc?.knownMethods, ['/shop.v1.Legacy/Ping']);
    assert.deepEqual(contentSettingsFor(content, (ref) => (ref.name === 'p' && ref.key === 'k' ? ['/shop.v1.Orders/Get'] : undefined)).grpc?.knownMethods,
      ['/shop.v1.Legacy/Ping', '/shop.v1.Orders/Get']);
    assert.equal(contentSettingsFor({ grpc: { descriptorSet: { configMapRef: { name: 'p', key: 'k' } } } }).grpc?.knownMethods, undefined, 'no list: the unknown-method check is off');
  });
});

describe('configMapKeyBytes', () => {
  test('binaryData is the file\'s bytes, never decoded as text; data is the bytes of its UTF-8 text', () => {
    const bytes = Buffer.from([0x0a, 0xff, 0x00, 0xc3, 0x28, 0x80]); // invalid UTF-8 on purpose
    const read = configMapKeyBytes({ binaryData: { 'set.pb': bytes.toString('base64') }, metadata: { resourceVersion: '4' } }, 'shop', 'cm', 'set.pb');
    assert.deepEqual([...read.bytes], [...bytes]);
    assert.equal(read.resourceVersion, '4');
    assert.deepEqual([...configMapKeyBytes({ data: { 'set.pb': '\n\u0003é' } }, 'shop', 'cm', 'set.pb').bytes], [0x0a, 0x03, 0xc3, 0xa9]);
    assert.throws(() => configMapKeyBytes({ data: { a: '' }, binaryData: { b: '' } }, 'shop', 'cm', 'set.pb'), /^ConfigMapReadError: ConfigMap shop\/cm has no key "set\.pb" \(it has: a, b\)$/);
  });
});

describe('DescriptorSetLoader', () => {
  const ref = { name: 'orders-protos', key: 'orders.pb' };
  const set = new PolicySet('meshward', [policyDoc('shop', 'shop', { content: { grpc: { descriptorSet: { configMapRef: ref } } } }) as ApiSecurityPolicy]);
  /** An in-memory reader over "namespace/name" -> key -> bytes, counting reads. */
  const memoryReader = (store: Map<string, Record<string, Buffer>>) => {
    const reads: string[] = [];
    const reader: ConfigMapReader = {
      read: () => Promise.reject(new Error('text is not read for descriptor sets')),
      readBytes: async (namespace, name, key) => {
        reads.push(`${namespace}/${name}/${key}`);
        const bytes = store.get(`${namespace}/${name}`)?.[key];
        if (bytes === undefined) throw new ConfigMapReadError(`ConfigMap ${namespace}/${name} (for key "${key}") not found`);
        return { bytes };
      },
    };
    return { reader, reads };
  };

  test('without a Kubernetes source: unavailable, saying why; no methods', async () => {
    const loader = new DescriptorSetLoader();
    await loader.sync(set);
    assert.deepEqual(loader.status(), [{ policy: 'shop/shop', place: 'ConfigMap shop/orders-protos, key orders.pb', loaded: false, problem: 'unavailable',
      error: 'not available: ConfigMaps are read only with --policy-source kubernetes (with files, use descriptorSet.base64)' }]);
    assert.equal(loader.methodsIn('shop')(ref), undefined);
  });

  test('listeners hear changes of the method lists only: an unchanged ConfigMap on a resync is no change (the policy is not applied again)', async () => {
    const store = new Map([['shop/orders-protos', { 'orders.pb': SHOP }]]);
    const { reader, reads } = memoryReader(store);
    const loader = new DescriptorSetLoader(undefined, { configMaps: reader, configMapRefreshMs: 0 });
    let changes = 0;
    loader.onChange(() => changes++);
    await loader.sync(set);
    assert.deepEqual(loader.methodsIn('shop')(ref), ['/shop.v1.Admin/Purge', '/shop.v1.Orders/Get', '/shop.v1.Orders/List']);
    assert.equal(loader.methodsIn('other')(ref), undefined, 'another namespace has its own ConfigMaps');
    await loader.recheck();
    await loader.sync(set);
    assert.equal(reads.length, 3, 'read on every due sync');
    assert.equal(changes, 1);
    store.delete('shop/orders-protos');
    await loader.recheck();
    assert.equal(changes, 2, 'lost: a change');
    assert.equal(loader.methodsIn('shop')(ref), undefined);
    await loader.recheck();
    assert.equal(changes, 2);
    // The policy no longer names it: forgotten, and not read again.
    store.set('shop/orders-protos', { 'orders.pb': SHOP });
    await loader.recheck();
    assert.equal(changes, 3);
    await loader.sync(new PolicySet('meshward', []));
    assert.equal(changes, 4);
    assert.deepEqual(loader.status(), []);
    const before = reads.length;
    await loader.recheck();
    assert.equal(reads.length, before);
  });

  test('a transient read failure (network, API server 5xx) keeps the methods last read; not found drops them', async () => {
    const store = new Map([['shop/orders-protos', { 'orders.pb': SHOP }]]);
    const { reader } = memoryReader(store);
    let outage = false;
    const flaky: ConfigMapReader = { ...reader, readBytes: (...a) => (outage ? Promise.reject(new ConfigMapReadError('cannot read ConfigMap shop/orders-protos: HTTP 503', false)) : reader.readBytes(...a)) };
    const loader = new DescriptorSetLoader(undefined, { configMaps: flaky, configMapRefreshMs: 0 });
    let changes = 0;
    loader.onChange(() => changes++);
    await loader.sync(set);
    const methods = loader.methodsIn('shop')(ref);
    assert.equal(methods?.length, 3);
    outage = true;
    await loader.recheck();
    assert.deepEqual(loader.methodsIn('shop')(ref), methods, 'a 503 does not weaken the method check');
    assert.equal(changes, 1);
    assert.match(loader.status()[0]!.error ?? '', /HTTP 503 \(kept the descriptor set last read\)/);
    assert.equal(loader.status()[0]!.loaded, true);
    outage = false;
    store.delete('shop/orders-protos');
    await loader.recheck();
    assert.equal(loader.methodsIn('shop')(ref), undefined, 'not found: the ConfigMap is gone, its methods go');
    assert.equal(changes, 2);
  });

  test('the refresh interval spaces the reads', async () => {
    let now = 0;
    const { reader, reads } = memoryReader(new Map([['shop/orders-protos', { 'orders.pb': SHOP }]]));
    const loader = new DescriptorSetLoader(undefined, { configMaps: reader, configMapRefreshMs: 30_000, now: () => now });
    await loader.sync(set);
    now = 29_999;
    await loader.recheck();
    assert.equal(reads.length, 1);
    now = 30_000;
    await loader.recheck();
    assert.equal(reads.length, 2);
  });
});

describe('descriptor sets from ConfigMaps in the server (Kubernetes source)', () => {
  test('binaryData: unknown methods flagged, known not; a missing key, bytes that are no descriptor set, an oversize set and a missing ConfigMap are conditions and fall back; fixed: back in force', async () => {
    const api = new FakeApiServer();
    await api.start();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'meshward-descriptor-cm-'));
    const kubeconfig = path.join(dir, 'kubeconfig');
    await writeFile(kubeconfig, api.kubeConfig().exportConfig());
    const previousKubeconfig = process.env.KUBECONFIG;
    process.env.KUBECONFIG = kubeconfig;
    api.binaryConfigMaps.set('shop/orders-protos', { 'orders.pb': SHOP });
    // Same name in another namespace: never read for the shop policy.
    api.binaryConfigMaps.set('meshward/orders-protos', { 'orders.pb': Buffer.from('not this one') });
    api.put(policyDoc('mesh-default', 'meshward', { mode: 'monitor' }));
    api.put(policyDoc('shop', 'shop', { mode: 'monitor', content: { grpc: { descriptorSet: { configMapRef: { name: 'orders-protos', key: 'orders.pb' } } } } }));

    const wiring = new PolicyServerWiring(silentLogger, { configMapRefreshMs: 0 });
    const engine = new Engine({ denyRules: [], detectors: wiring.detectors });
    const findings: Finding[] = [];
    engine.addObserver({ onFinding: (f) => findings.push(f) });
    let n = 0;
    /** content-grpc findings of one gRPC call into the shop namespace. */
    const grpcFindings = (method: string): Finding[] => {
      const before = findings.length;
      engine.decide({
        requestId: `r${n++}`, time: 1_000_000 + n, caller: { workload: 'spiffe://td/ns/web/sa/web', mtls: true, identitySource: 'filter' },
        method: 'POST', authority: 'orders.shop', path: method, headers: new Map([['content-type', ['application/grpc']]]), sidecarWorkload: { namespace: 'shop' },
      });
      return findings.slice(before).filter((f) => f.detector === 'content-grpc');
    };
    const flagged = (): boolean => grpcFindings('/shop.v1.Orders/Delete').length === 1;
    const condition = (): Record<string, unknown> | undefined =>
      ((api.objects.get('shop/shop')?.status as { conditions?: Record<string, unknown>[] } | undefined)?.conditions ?? []).find((c) => c.type === 'DescriptorSetLoaded');

    const runtime = await startPolicyRuntime({
      source: 'kubernetes', namespace: 'meshward', engine, log: silentLogger, detectors: wiring.detectors, onApplied: wiring.onApplied,
      conditions: wiring.conditions, descriptorSets: wiring.descriptorSets,
    });
    try {
      assert.ok(runtime.configMaps, 'the Kubernetes source gives a ConfigMap reader');
      await wiring.useConfigMaps(runtime.configMaps);
      wiring.watchSpecFiles(20);

      await waitFor('the descriptor set in force', flagged);
      const [finding] = grpcFindings('/shop.v1.Orders/Delete');
      assert.equal(finding!.severity, 'high');
      assert.match(finding!.summary, /\/shop\.v1\.Orders\/Delete is not in the service's descriptor set/);
      assert.equal(finding!.evidence.knownMethods, 3);
      for (const known of ['/shop.v1.Orders/Get', '/shop.v1.Orders/List', '/shop.v1.Admin/Purge']) assert.deepEqual(grpcFindings(known), [], known);
      await waitFor('DescriptorSetLoaded True', () => condition()?.status === 'True');
      assert.equal(condition()!.message, 'ConfigMap shop/orders-protos, key orders.pb: 3 methods');
      assert.ok(api.configMapRequests.every((r) => r.startsWith('GET /api/v1/namespaces/shop/configmaps/orders-protos')), 'get of the named ConfigMap in the policy namespace only');

      const fallsBack = async (what: string, reason: string, message: RegExp): Promise<void> => {
        await waitFor(what, () => condition()?.reason === reason && message.test(String(condition()?.message)));
        assert.equal(condition()!.status, 'False');
        assert.match(String(condition()!.message), /^ConfigMap shop\/orders-protos, key orders\.pb: .*; the gRPC method check runs without it$/);
        await waitFor(`${what}: no descriptor methods`, () => !flagged());
        assert.deepEqual(grpcFindings('/shop.v1.Orders/Get'), []);
      };
      api.binaryConfigMaps.set('shop/orders-protos', { 'other.pb': SHOP });
      await fallsBack('missing key', 'DescriptorSetUnavailable', /has no key "orders\.pb" \(it has: other\.pb\)/);

      api.binaryConfigMaps.set('shop/orders-protos', { 'orders.pb': SHOP });
      await waitFor('the key back', flagged);
      api.binaryConfigMaps.set('shop/orders-protos', { 'orders.pb': Buffer.from('definitely not a protobuf message') });
      await fallsBack('not a descriptor set', 'DescriptorSetInvalid', /not a serialized FileDescriptorSet/);

      api.binaryConfigMaps.set('shop/orders-protos', { 'orders.pb': SHOP });
      await waitFor('a good set again', flagged);
      api.binaryConfigMaps.set('shop/orders-protos', { 'orders.pb': Buffer.concat([SHOP, Buffer.alloc(MAX_DESCRIPTOR_SET_BYTES + 1 - SHOP.length)]) });
      await fallsBack('over the cap', 'DescriptorSetInvalid', new RegExp(`descriptor set of ${MAX_DESCRIPTOR_SET_BYTES + 1} bytes exceeds the ${MAX_DESCRIPTOR_SET_BYTES}-byte cap`));

      api.binaryConfigMaps.delete('shop/orders-protos');
      await fallsBack('missing ConfigMap', 'DescriptorSetUnavailable', /ConfigMap shop\/orders-protos \(for key "orders\.pb"\) not found/);

      api.binaryConfigMaps.set('shop/orders-protos', { 'orders.pb': SHOP });
      await waitFor('fixed', () => flagged() && condition()?.status === 'True');
    } finally {
      wiring.stop();
      await runtime.stop();
      await api.close();
      if (previousKubeconfig === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = previousKubeconfig;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
