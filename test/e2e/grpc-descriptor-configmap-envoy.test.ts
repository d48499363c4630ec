// A gRPC descriptor set from a ConfigMap's binaryData (issue #6) through the real stack: the policy
// (Kubernetes source, in-process API server) names the ConfigMap, the server reads it as `meshward
// serve` does (startPolicyRuntime + PolicyServerWiring), and calls go client sidecar -> mTLS with
// SPIFFE certificates -> server sidecar (Wasm filter, ext_proc). Enforce mode: a declared method
// reaches the app, an undeclared one is refused; with the key gone the check falls back (no
// knownMethods: no method check) and the same call reaches the app.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { descriptorSetBase64 } from '../support/descriptor-set.ts';
import { FakeApiServer } from '../support/fake-kubernetes-api.ts';
import { rawRequest } from '../support/raw-http.ts';
import { waitFor } from '../support/wait-for.ts';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import { startPolicyRuntime, type PolicyRuntime } from '../../extproc/src/policy/runtime.ts';
import { PolicyServerWiring } from '../../extproc/src/policy/server-wiring.ts';
import { silentLogger } from '../../extproc/src/log.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';

const HOST = 'orders.shop';
const CLIENT = 'web/frontend';
const SET = Buffer.from(descriptorSetBase64('syntax = "proto3"; package shop.v1; message Req { int32 id = 1; } message Res { string name = 1; } service Orders { rpc Get (Req) returns (Res); }'), 'base64');

let api: FakeApiServer;
let dir: string;
let previousKubeconfig: string | undefined;
let mesh: LocalMesh;
let runtime: PolicyRuntime;
const wiring = new PolicyServerWiring(silentLogger, { configMapRefreshMs: 0 });
const findings: Finding[] = [];


before(async () => {
  api = new FakeApiServer();
  await api.start();
  dir = await mkdtemp(path.join(os.tmpdir(), 'meshward-descriptor-envoy-'));
  await writeFile(path.join(dir, 'kubeconfig'), api.kubeConfig().exportConfig());
  previousKubeconfig = process.env.KUBECONFIG;
  process.env.KUBECONFIG = path.join(dir, 'kubeconfig');
  api.binaryConfigMaps.set('meshward/orders-protos', { 'orders.pb': SET });
  api.put({ apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name: 'mesh-default', namespace: 'meshward' },
    spec: { mode: 'enforce', content: { grpc: { descriptorSet: { configMapRef: { name: 'orders-protos', key: 'orders.pb' } } } } } });
  mesh = await startLocalMesh({
    callers: [CLIENT],
    pluginConfig: { version: 'e2e-grpc-cm', sampling: { percent: 100, seed: 'grpc-cm' } },
    engine: { denyRules: [], mode: 'monitor', detectors: wiring.detectors },
  });
  mesh.engine.addObserver({ onFinding: (f) => findings.push(f) });
  runtime = await startPolicyRuntime({
    source: 'kubernetes', namespace: 'meshward', engine: mesh.engine, log: silentLogger, detectors: wiring.detectors,
    onApplied: wiring.onApplied, conditions: wiring.conditions, descriptorSets: wiring.descriptorSets,
  });
  await wiring.useConfigMaps(runtime.configMaps!);
  wiring.watchSpecFiles(20);
});

after(async () => {
  wiring.stop();
  await runtime?.stop();
  await mesh?.stop();
  await api?.close();
  if (previousKubeconfig === undefined) delete process.env.KUBECONFIG;
  else process.env.KUBECONFIG = previousKubeconfig;
  await rm(dir, { recursive: true, force: true });
});

// A unary gRPC message frame: not compressed, 4-byte length, then the protobuf bytes (field 1 = 7).
const FRAME = Buffer.from([0, 0, 0, 0, 2, 0x08, 0x07]);
const call = (method: string) => rawRequest(mesh.urlFor(CLIENT), { method: 'POST', path: method, headers: [['host', HOST], ['content-type', 'application/grpc'], ['te', 'trailers']], body: FRAME });
const reachedApp = (method: string): number => mesh.app.received.filter((r) => r.path === method).length;
const loaded = (): boolean | undefined => wiring.descriptorSets.status()[0]?.loaded;

test('the ConfigMap descriptor set decides through Envoy; without its key the method check falls back', async () => {
  await waitFor('the descriptor set read', () => loaded() === true);
  await call('/shop.v1.Orders/Get');
  assert.equal(reachedApp('/shop.v1.Orders/Get'), 1, 'the declared method reached the app');
  assert.equal(findings.filter((f) => f.detector === 'content-grpc').length, 0);

  const refused = await call('/shop.v1.Orders/Drop');
  // Envoy answers a gRPC request's local reply as gRPC (HTTP 200 with a non-zero grpc-status) or with the status itself.
  assert.ok(refused.status === 403 || (refused.headers['grpc-status'] !== undefined && refused.headers['grpc-status'] !== '0'), `refused: ${refused.status} ${JSON.stringify(refused.headers)}`);
  assert.equal(reachedApp('/shop.v1.Orders/Drop'), 0, 'the app never saw the undeclared method');
  const f = findings.find((x) => x.detector === 'content-grpc');
  assert.equal(f?.evidence.method, '/shop.v1.Orders/Drop');
  assert.equal(f?.caller, mesh.spiffeIdOf(CLIENT), 'the caller is the mTLS identity');

  api.binaryConfigMaps.set('meshward/orders-protos', { 'other.pb': SET });
  await waitFor('the key gone', () => wiring.descriptorSets.status()[0]?.problem === 'unavailable');
  await call('/shop.v1.Orders/Drop');
  assert.equal(reachedApp('/shop.v1.Orders/Drop'), 1, 'no descriptor set, no knownMethods: the method is not judged');
});
