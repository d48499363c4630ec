// spec.content.grpc.descriptorSet (issue #6): a binary FileDescriptorSet in the policy (base64) is
// the service's method list; calls to other methods are content-grpc findings, reflection stays its
// own check, and a bad descriptor set is a policy error naming the field. The descriptor set is
// built here from .proto text (protobufjs), never a committed blob.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { descriptorSetBase64 } from '../support/descriptor-set.ts';
import { MAX_DESCRIPTOR_SET_BYTES, methodsFromBase64DescriptorSet } from '../../extproc/src/inspect/grpc.ts';
import { validatePolicyObject } from '../../extproc/src/policy/validate.ts';
import { contentSettingsFor } from '../../extproc/src/policy/content-mapping.ts';
import { createContentContext, mergeContentSettings, defaultContentSettings } from '../../extproc/src/inspect/settings.ts';
import { ContentGrpcDetector } from '../../extproc/src/engine/detectors/content-grpc.ts';
import { toExchange } from '../../extproc/src/engine/exchange.ts';
import type { ContentPolicy } from '../../extproc/src/policy/types.ts';

const SHOP = descriptorSetBase64(`syntax = "proto3"; package shop.v1;
  message Req { int32 id = 1; } message Res { string name = 1; }
  service Orders { rpc Get (Req) returns (Res); rpc List (Req) returns (stream Res); }
  service Admin { rpc Purge (Req) returns (Res); }`);

const errorsOf = (content: ContentPolicy) => validatePolicyObject({ apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name: 'p', namespace: 'shop' }, spec: { content } }).errors;

function grpcCall(detector: ContentGrpcDetector, path: string) {
  return detector.onRequest(toExchange({
    requestId: path, time: 1, caller: { workload: 'spiffe://td/ns/shop/sa/web', mtls: true, identitySource: 'filter' },
    method: 'POST', authority: 'orders.shop', path, headers: new Map([['content-type', ['application/grpc']]]),
  })) ?? [];
}

test('every method of every service in the set, as request paths', () => {
  assert.deepEqual(methodsFromBase64DescriptorSet(SHOP), ['/shop.v1.Admin/Purge', '/shop.v1.Orders/Get', '/shop.v1.Orders/List']);
  // line-wrapped base64 (as `base64` prints it) is the same set
  assert.deepEqual(methodsFromBase64DescriptorSet(SHOP.replace(/(.{60})/g, '$1\n')), methodsFromBase64DescriptorSet(SHOP));
});

test('a policy descriptor set makes other methods findings; declared ones and listed knownMethods pass; reflection stays its own check', () => {
  const content: ContentPolicy = { grpc: { descriptorSet: { base64: SHOP }, knownMethods: ['shop.v1.Legacy/Ping'] } };
  assert.deepEqual(errorsOf(content), []);
  const settings = mergeContentSettings(defaultContentSettings(), contentSettingsFor(content));
  const detector = new ContentGrpcDetector(createContentContext(settings));
  for (const ok of ['/shop.v1.Orders/Get', '/shop.v1.Admin/Purge', '/shop.v1.Legacy/Ping']) assert.deepEqual(grpcCall(detector, ok), [], ok);
  const unknown = grpcCall(detector, '/shop.v1.Orders/Delete');
  assert.equal(unknown.length, 1);
  assert.equal(unknown[0]!.severity, 'high');
  assert.match(unknown[0]!.summary, /\/shop\.v1\.Orders\/Delete is not in the service's descriptor set/);
  assert.equal(unknown[0]!.evidence.knownMethods, 4);
  const reflection = grpcCall(detector, '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo');
  assert.equal(reflection.length, 1);
  assert.match(reflection[0]!.summary, /server reflection/);
});

test('bad descriptor sets are policy errors at spec.content.grpc.descriptorSet.base64, saying what is wrong', () => {
  const reasonFor = (base64: string) => {
    const errors = errorsOf({ grpc: { descriptorSet: { base64 } } });
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.equal(errors[0]!.path, 'spec.content.grpc.descriptorSet.base64');
    return errors[0]!.reason;
  };
  assert.match(reasonFor('not base64!'), /not base64/);
  assert.match(reasonFor(Buffer.from('definitely not a protobuf message').toString('base64')), /not a serialized FileDescriptorSet/);
  assert.match(reasonFor(descriptorSetBase64('syntax = "proto3"; package p; message OnlyAMessage { int32 a = 1; }')), /declares no service methods/);
  assert.match(reasonFor(Buffer.alloc(MAX_DESCRIPTOR_SET_BYTES + 1).toString('base64')), /exceeds the 4194304-byte cap/);
});
