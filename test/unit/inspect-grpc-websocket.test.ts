// gRPC and WebSocket recognition (issue #6): method paths, reflection services, the method set of a
// descriptor set from policy, WebSocket upgrades over HTTP/1.1 and HTTP/2, and their credentials.
import { test } from 'node:test';
import assert from 'node:assert/strict';
// protobufjs is the parser under @grpc/proto-loader; here it only serializes a test descriptor set.
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { grpcMethod, isGrpcRequest, isReflectionService, methodsFromDescriptorSet } from '../../extproc/src/inspect/grpc.ts';
import { isWebSocketUpgrade, upgradeCredentials } from '../../extproc/src/inspect/websocket.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';

const req = (method: string, path: string, headers: Record<string, string>, workload?: string): RequestEvent => ({
  requestId: 'r', time: 0, caller: { mtls: workload !== undefined, ...(workload ? { workload } : {}), identitySource: 'filter' },
  method, authority: 'svc', path, headers: new Map(Object.entries(headers).map(([k, v]) => [k, [v]])),
});

test('gRPC method paths', () => {
  assert.deepEqual(grpcMethod('/shop.v1.Orders/Get'), { service: 'shop.v1.Orders', method: 'Get' });
  assert.equal(grpcMethod('/shop.v1.Orders'), undefined);
  assert.equal(grpcMethod('/a/b/c'), undefined);
  assert.equal(grpcMethod('//Get'), undefined);
  assert.ok(isReflectionService('grpc.reflection.v1.ServerReflection'));
  assert.ok(isReflectionService('grpc.reflection.v1alpha.ServerReflection'));
  assert.ok(!isReflectionService('shop.Orders'));
  assert.ok(isGrpcRequest(req('POST', '/a.B/C', { 'content-type': 'application/grpc+proto' })));
  assert.ok(isGrpcRequest(req('POST', '/a.B/C', { 'content-type': 'application/grpc-web-text' })));
  assert.ok(!isGrpcRequest(req('POST', '/a.B/C', { 'content-type': 'application/json' })));
});

test('the method set of a serialized FileDescriptorSet', () => {
  const root = protobuf.parse('syntax = "proto3"; package shop; message Req { int32 id = 1; } message Res { string name = 1; } service Orders { rpc Get (Req) returns (Res); rpc Delete (Req) returns (Res); }').root;
  const set = (root as unknown as { toDescriptor(syntax: string): unknown }).toDescriptor('proto3');
  const bytes = (descriptor as unknown as { FileDescriptorSet: { encode(m: unknown): { finish(): Uint8Array } } }).FileDescriptorSet.encode(set).finish();
  assert.deepEqual([...methodsFromDescriptorSet(Buffer.from(bytes))].sort(), ['/shop.Orders/Delete', '/shop.Orders/Get']);
  assert.throws(() => methodsFromDescriptorSet(Buffer.from('not a descriptor set')));
});

test('WebSocket upgrades over HTTP/1.1 and HTTP/2 extended CONNECT', () => {
  assert.ok(isWebSocketUpgrade(req('GET', '/ws', { upgrade: 'websocket' })));
  assert.ok(isWebSocketUpgrade(req('GET', '/ws', { upgrade: 'foo, WebSocket' })));
  assert.ok(isWebSocketUpgrade(req('CONNECT', '/ws', { ':protocol': 'websocket' })));
  assert.ok(!isWebSocketUpgrade(req('GET', '/ws', { upgrade: 'h2c' })));
  assert.ok(!isWebSocketUpgrade(req('GET', '/ws', {})));
});

test('upgrade credentials', () => {
  assert.deepEqual(upgradeCredentials(req('GET', '/ws', {})), []);
  assert.deepEqual(upgradeCredentials(req('GET', '/ws?access_token=x', { cookie: 's=1' })), ['cookie', 'query-token']);
  assert.deepEqual(upgradeCredentials(req('GET', '/ws', { 'sec-websocket-protocol': 'bearer.x' }, 'spiffe://x/ns/a/sa/b')), ['subprotocol', 'mesh-identity']);
});
