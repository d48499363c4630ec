// Content inspection through the real stack (issue #6): client sidecar -> mTLS with SPIFFE
// certificates -> server sidecar (meshward Wasm filter samples the request, ext_proc asks Envoy for
// the BUFFERED body) -> content detectors in enforce mode -> 403 before the app sees the request,
// or the app's response body inspected on its way back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import http2 from 'node:http2';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { createContentDetectors } from '../../extproc/src/engine/detectors/content.ts';
import { createContentContext } from '../../extproc/src/inspect/settings.ts';
import type { OpenApiOperation } from '../../extproc/src/inspect/contract.ts';
import { rawRequest, type RawResponse } from '../support/raw-http.ts';

const HOST = 'users.shop';
const CLIENT = 'web/frontend';

const registerOp: OpenApiOperation = {
  operationId: 'register',
  requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['username', 'password'], properties: { username: { type: 'string' }, password: { type: 'string' }, email: { type: 'string' } } } } } },
};

let mesh: LocalMesh;
const findings: Finding[] = [];

before(async () => {
  const content = createContentContext({}, (ex) => (ex.template === '/users/v1/register' ? { operation: registerOp, pathParams: {} } : undefined));
  mesh = await startLocalMesh({
    callers: [CLIENT],
    pluginConfig: { version: 'e2e-content', sampling: { percent: 100, seed: 'content' } },
    engine: { denyRules: [], mode: 'enforce', detectors: (c) => createContentDetectors(c, content) },
  });
  mesh.engine.addObserver({ onFinding: (f) => findings.push(f) });
});

after(async () => { await mesh?.stop(); });

function post(path: string, body: string | Buffer, extra: [string, string][] = []): Promise<RawResponse> {
  return rawRequest(mesh.urlFor(CLIENT), { method: 'POST', path, headers: [['host', HOST], ['content-type', 'application/json'], ...extra], body });
}

const reachedApp = (path: string, needle: string): boolean => mesh.app.received.some((r) => r.path === path && r.body.includes(needle));

test('API3 mass assignment: the request body is checked against the contract and denied before the app', async () => {
  const res = await post('/users/v1/register', '{"username":"eve","password":"x","isAdmin":true}');
  assert.equal(res.status, 403);
  assert.equal(JSON.parse(res.body).reason, 'API3:2023-BrokenObjectPropertyLevelAuthorization');
  assert.equal(reachedApp('/users/v1/register', 'isAdmin'), false, 'the app never saw it');
  const f = findings.find((x) => x.detector === 'content-contract');
  assert.deepEqual(f?.evidence.properties, ['/isAdmin']);
  assert.equal(f?.caller, mesh.spiffeIdOf(CLIENT), 'the caller is the mTLS identity');

  const ok = await post('/users/v1/register', '{"username":"ann","password":"x"}');
  assert.equal(ok.status, 200);
  assert.ok(reachedApp('/users/v1/register', '"ann"'));
});

test('API7 SSRF: a metadata URL in the body is denied', async () => {
  const res = await post('/webhooks', '{"callback":"http://2852039166/latest/meta-data/"}');
  assert.equal(res.status, 403);
  assert.equal(JSON.parse(res.body).reason, 'API7:2023-SSRF');
  assert.equal(reachedApp('/webhooks', '2852039166'), false);
});

test('GRAPHQL: an alias overload is denied, a normal query passes', async () => {
  const aliases = `query { ${Array.from({ length: 50 }, (_, i) => `a${i}: systemHealth`).join(' ')} }`;
  assert.equal((await post('/graphql', JSON.stringify({ query: aliases }))).status, 403);
  assert.equal((await post('/graphql', JSON.stringify({ query: '{ pastes(limit: 5) { id } }' }))).status, 200);
});

test('API3 exposure and API8 verbose errors: the response body comes back through ext_proc and is inspected', async () => {
  // The sample app echoes the request body in its JSON response.
  const before = findings.length;
  const res = await post('/notes', JSON.stringify({ note: '-----BEGIN RSA PRIVATE KEY-----\nMIIEow', log: 'Traceback (most recent call last):\n  File "/app/x.py", line 1, in <module>' }));
  assert.equal(res.status, 200, 'response-side findings report, they do not block');
  const seen = findings.slice(before).map((f) => `${f.detector} ${f.category}`).sort();
  assert.deepEqual(seen, ['content-exposure API3:2023-BrokenObjectPropertyLevelAuthorization', 'content-misconfig API8:2023-SecurityMisconfiguration']);
  assert.ok(!JSON.stringify(findings.slice(before)).includes('MIIEow'), 'the secret is never copied into evidence');
});

test('API4 bad input: a gzip bomb is stopped at the decompression cap and denied', async () => {
  const bomb = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024));
  const res = await post('/upload', bomb, [['content-encoding', 'gzip']]);
  assert.equal(res.status, 403);
  assert.equal(JSON.parse(res.body).reason, 'API4:2023-UnrestrictedResourceConsumption');
  const f = findings.find((x) => x.detector === 'content-body');
  assert.match(f?.summary ?? '', /decompression stopped at the cap/);
});

/** One HTTP/2 (h2c) gRPC-framed call; returns the :status and grpc-status Envoy answered with. */
function grpcCall(path: string): Promise<{ status: number; grpcStatus: string | undefined }> {
  return new Promise((resolve, reject) => {
    const client = http2.connect(mesh.urlFor(CLIENT));
    client.on('error', reject);
    const req = client.request({ ':method': 'POST', ':path': path, ':authority': HOST, 'content-type': 'application/grpc', te: 'trailers' });
    let status = 0;
    let grpcStatus: string | undefined;
    req.on('response', (h) => { status = Number(h[':status']); grpcStatus = h['grpc-status'] as string | undefined; });
    req.on('trailers', (t) => { grpcStatus ??= t['grpc-status'] as string | undefined; });
    req.on('data', () => {});
    req.on('end', () => { client.close(); resolve({ status, grpcStatus }); });
    req.on('error', (err) => { client.close(); reject(err); });
    req.end(Buffer.from([0, 0, 0, 0, 2, 0x3a, 0x00])); // one uncompressed message of 2 bytes
  });
}

test('GRPC: a server-reflection call is denied before the app; another method passes', async () => {
  const reflection = await grpcCall('/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo');
  assert.ok(reflection.status === 403 || reflection.grpcStatus === '7', `denied: ${JSON.stringify(reflection)}`);
  assert.equal(mesh.app.received.some((r) => r.path.startsWith('/grpc.reflection')), false);
  assert.ok(findings.some((f) => f.category === 'GRPC-Abuse'));
  await grpcCall('/shop.Orders/Get');
  assert.ok(mesh.app.received.some((r) => r.path === '/shop.Orders/Get'), 'an ordinary method reaches the app');
});
