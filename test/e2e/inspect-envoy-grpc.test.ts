// gRPC methods against the policy's descriptor set through the real stack (issue #6): client
// sidecar -> mTLS with SPIFFE certificates -> server sidecar (Wasm filter, ext_proc) -> content-grpc
// with spec.content.grpc.descriptorSet (a FileDescriptorSet built here from .proto text) in enforce
// mode: a declared method reaches the app, an undeclared one is refused before it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { descriptorSetBase64 } from '../support/descriptor-set.ts';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { createContentDetectors } from '../../extproc/src/engine/detectors/content.ts';
import { createContentContext, defaultContentSettings, mergeContentSettings } from '../../extproc/src/inspect/settings.ts';
import { contentSettingsFor } from '../../extproc/src/policy/content-mapping.ts';
import { rawRequest } from '../support/raw-http.ts';

const HOST = 'orders.shop';
const CLIENT = 'web/frontend';

let mesh: LocalMesh;
const findings: Finding[] = [];

before(async () => {
  const base64 = descriptorSetBase64('syntax = "proto3"; package shop.v1; message Req { int32 id = 1; } message Res { string name = 1; } service Orders { rpc Get (Req) returns (Res); }');
  const content = createContentContext(mergeContentSettings(defaultContentSettings(), contentSettingsFor({ grpc: { descriptorSet: { base64 } } })));
  mesh = await startLocalMesh({
    callers: [CLIENT],
    pluginConfig: { version: 'e2e-grpc', sampling: { percent: 100, seed: 'grpc' } },
    engine: { denyRules: [], mode: 'enforce', detectors: (c) => createContentDetectors(c, content) },
  });
  mesh.engine.addObserver({ onFinding: (f) => findings.push(f) });
});

after(async () => { await mesh?.stop(); });

// A unary gRPC message frame: not compressed, 4-byte length, then the protobuf bytes (field 1 = 7).
const FRAME = Buffer.from([0, 0, 0, 0, 2, 0x08, 0x07]);
const call = (path: string) => rawRequest(mesh.urlFor(CLIENT), { method: 'POST', path, headers: [['host', HOST], ['content-type', 'application/grpc'], ['te', 'trailers']], body: FRAME });
const reachedApp = (path: string): boolean => mesh.app.received.some((r) => r.path === path);

test('a method the descriptor set declares reaches the app; another is refused before it with a content-grpc finding', async () => {
  await call('/shop.v1.Orders/Get');
  assert.ok(reachedApp('/shop.v1.Orders/Get'), 'the declared method reached the app');
  assert.equal(findings.filter((f) => f.detector === 'content-grpc').length, 0);

  const refused = await call('/shop.v1.Orders/Drop');
  // Envoy answers a gRPC request's local reply as gRPC (HTTP 200 with a non-zero grpc-status) or with the status itself.
  assert.ok(refused.status === 403 || (refused.headers['grpc-status'] !== undefined && refused.headers['grpc-status'] !== '0'), `refused: ${refused.status} ${JSON.stringify(refused.headers)}`);
  assert.equal(reachedApp('/shop.v1.Orders/Drop'), false, 'the app never saw the undeclared method');
  const f = findings.find((x) => x.detector === 'content-grpc');
  assert.equal(f?.evidence.method, '/shop.v1.Orders/Drop');
  assert.equal(f?.caller, mesh.spiffeIdOf(CLIENT), 'the caller is the mTLS identity');
});
