// Any bytes under a ConfigMap key named by spec.content.grpc.descriptorSet.configMapRef: the bytes
// read are exactly the file's (binaryData, and data for UTF-8 files), and the loader ends with the
// same outcome as the inline form (methods, or a named problem in its status), never an exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { configMapKeyBytes, type ConfigMapReader } from '../../extproc/src/policy/configmap-reader.ts';
import { DescriptorSetLoader } from '../../extproc/src/policy/descriptor-set-sources.ts';
import { PolicySet } from '../../extproc/src/policy/precedence.ts';
import { methodsFromBase64DescriptorSet } from '../../extproc/src/inspect/grpc.ts';
import type { ApiSecurityPolicy } from '../../extproc/src/policy/types.ts';
import { descriptorSetBase64 } from '../support/descriptor-set.ts';
import { fuzzRuns } from './fuzz-runs.ts';

const bytesArb = fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a));

test('binaryData gives back the bytes exactly; data gives back the bytes of UTF-8 text', () => {
  fc.assert(fc.property(bytesArb, fc.string({ unit: 'grapheme', maxLength: 64 }), (bytes, text) => {
    assert.deepEqual(configMapKeyBytes({ binaryData: { k: bytes.toString('base64') } }, 'ns', 'cm', 'k').bytes, bytes);
    assert.deepEqual(configMapKeyBytes({ data: { k: text } }, 'ns', 'cm', 'k').bytes, Buffer.from(text, 'utf8'));
  }), { numRuns: fuzzRuns(300) });
});

test('random and corrupted descriptor sets from a ConfigMap: methods (as the inline form gives) or an invalid status, never a throw', async () => {
  const valid = Buffer.from(descriptorSetBase64('syntax = "proto3"; package p; message M { int32 a = 1; } service S { rpc Get (M) returns (M); }'), 'base64');
  const mutated = fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })).map(([i, b]) => { const copy = Buffer.from(valid); copy[i] = b; return copy; });
  const ref = { name: 'protos', key: 'set.pb' };
  const set = new PolicySet('meshward', [{ apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name: 'p', namespace: 'ns' }, spec: { content: { grpc: { descriptorSet: { configMapRef: ref } } } } } as ApiSecurityPolicy]);
  await fc.assert(fc.asyncProperty(fc.oneof(bytesArb, mutated), async (bytes) => {
    const reader: ConfigMapReader = { read: () => Promise.reject(new Error('unused')), readBytes: async () => ({ bytes }) };
    const loader = new DescriptorSetLoader(undefined, { configMaps: reader });
    await loader.sync(set);
    let inline: readonly string[] | Error;
    try { inline = methodsFromBase64DescriptorSet(bytes.toString('base64')); } catch (err) { inline = err as Error; }
    const [status] = loader.status();
    if (inline instanceof Error) {
      assert.equal(status!.problem, 'invalid');
      assert.equal(status!.error, inline.message);
      assert.equal(loader.methodsIn('ns')(ref), undefined);
    } else {
      assert.equal(status!.loaded, true);
      // Counts, not names: protobufjs names a nameless service "Service<n>" from a global counter.
      assert.equal(status!.methods, inline.length);
      for (const m of loader.methodsIn('ns')(ref)!) assert.match(m, /^\/[^/]+\/[^/]+$/);
    }
  }), { numRuns: fuzzRuns(200) });
});
