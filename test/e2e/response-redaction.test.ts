// Redaction of sensitive response values in enforce mode (issue #6, response exposure), through real
// Envoy: sampling is 0 %, yet redaction makes ext_proc ask for every response body (a sample would
// let most card numbers through), ext_proc receives the buffered body, and the client gets
// the body with the configured kinds replaced by "[redacted]" (valid JSON, a matching
// content-length). Kinds not configured, and a body that is content-encoded, pass unchanged.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { createContentDetectors } from '../../extproc/src/engine/detectors/content.ts';
import { createContentContext, defaultContentSettings } from '../../extproc/src/inspect/settings.ts';
import { rawRequest } from '../support/raw-http.ts';

const CLIENT = 'default/client';
const CARD = '4111111111111111';
const KEY = 'AKIAIOSFODNN7EXAMPLE';
const EMAIL = 'alice@example.com';
let mesh: LocalMesh;
const findings: Finding[] = [];

before(async () => {
  const content = createContentContext({ exposure: { ...defaultContentSettings().exposure, redact: ['card-number', 'cloud-key'] } });
  mesh = await startLocalMesh({
    callers: [CLIENT],
    pluginConfig: { version: 'e2e-redact', sampling: { percent: 0 } },
    engine: { denyRules: [], mode: 'enforce', detectors: (c) => createContentDetectors(c, content) },
    appHandler: (req) => {
      const doc = { user: { email: EMAIL, card: CARD, nested: [{ awsKey: KEY }] }, note: 'ok' };
      if (req.path === '/avatar.png') return { status: 200, headers: [['content-type', 'image/png']], body: Buffer.from(`\x89PNG....${CARD}`, 'latin1') };
      if (req.path === '/gzip') return { status: 200, headers: [['content-type', 'application/json'], ['content-encoding', 'gzip']], body: gzipSync(JSON.stringify(doc)) };
      return { status: 200, headers: [['content-type', 'application/json']], body: Buffer.from(JSON.stringify(doc)) };
    },
  });
  mesh.engine.addObserver({ onFinding: (f) => findings.push(f) });
});

after(async () => { await mesh?.stop(); });

test('enforce mode: card numbers and cloud keys are redacted, the email (not configured) is kept, the JSON stays valid', async () => {
  const res = await rawRequest(mesh.urlFor(CLIENT), { path: '/account', headers: [['host', 'accounts.shop']] });
  assert.equal(res.status, 200);
  assert.doesNotMatch(res.body, new RegExp(`${CARD}|${KEY}`));
  const doc = JSON.parse(res.body) as { user: { email: string; card: string; nested: { awsKey: string }[] }; note: string };
  assert.deepEqual(doc, { user: { email: EMAIL, card: '[redacted]', nested: [{ awsKey: '[redacted]' }] }, note: 'ok' });
  assert.equal(Number(res.headers['content-length'] ?? Buffer.byteLength(res.body)), Buffer.byteLength(res.body));
  const f = findings.find((x) => x.redact !== undefined);
  assert.ok(f, 'a finding lists what was redacted');
  assert.equal(f.evidence.redaction, 'redacted');
  assert.doesNotMatch(JSON.stringify(f), new RegExp(`${CARD}|${KEY}`), 'the finding holds no raw value');
});

test('a content-encoded body is delivered unchanged and the finding says redaction was not possible', async () => {
  findings.length = 0;
  const res = await rawRequest(mesh.urlFor(CLIENT), { path: '/gzip', headers: [['host', 'accounts.shop'], ['accept-encoding', 'gzip']] });
  assert.equal(res.status, 200);
  const f = findings.find((x) => x.redact !== undefined);
  assert.ok(f);
  assert.match(String(f.evidence.redaction), /not possible/);
});

test('a response of a type that cannot carry redactable values (image/png) is not buffered: no body reaches ext_proc', async () => {
  const messages = () => mesh.extProcCounters()!.messages;
  const beforeJson = messages();
  assert.equal((await rawRequest(mesh.urlFor(CLIENT), { path: '/account', headers: [['host', 'accounts.shop']] })).status, 200);
  assert.equal(messages() - beforeJson, 3, 'JSON: request headers, response headers and the response body');
  const beforePng = messages();
  const png = await rawRequest(mesh.urlFor(CLIENT), { path: '/avatar.png', headers: [['host', 'accounts.shop']] });
  assert.equal(png.status, 200);
  assert.equal(messages() - beforePng, 2, 'image: request and response headers only, the body streams through');
  assert.ok(png.body.includes(CARD), 'delivered unchanged');
});
