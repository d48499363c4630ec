// WebSocket abuse through the real stack (issue #6): the sidecars allow WebSocket upgrades as
// Istio's do (upgrade_configs), so the upgrade reaches the meshward filter and ext_proc on both the
// calling workload's outbound sidecar and the called workload's inbound sidecar. An upgrade without
// any credential is denied where it has none (outbound: the app's own plaintext call), and an
// upgrade flood from one caller is rate-limited with 429; a credentialed upgrade completes (101).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import { createContentDetectors } from '../../extproc/src/engine/detectors/content.ts';
import { createContentContext } from '../../extproc/src/inspect/settings.ts';

const HOST = 'chat.shop';
const CLIENT = 'web/frontend';
const UPGRADES_PER_MINUTE = 6;
let mesh: LocalMesh;
const findings: Finding[] = [];
const decided: RequestEvent[] = [];

before(async () => {
  const content = createContentContext({ websocket: { requireCredentials: true, upgradesPerMinute: UPGRADES_PER_MINUTE } });
  mesh = await startLocalMesh({
    callers: [CLIENT],
    pluginConfig: { version: 'e2e-ws', sampling: { percent: 100, seed: 'ws' } },
    outboundFilter: { pluginConfig: { role: 'outbound', sampling: { percent: 100, seed: 'ws-out' } } },
    engine: { denyRules: [], mode: 'enforce', detectors: (c) => createContentDetectors(c, content) },
  });
  mesh.engine.addObserver({ onFinding: (f) => findings.push(f), onDecision: (r) => decided.push(r.request) });
});

after(async () => { await mesh?.stop(); });

/** An HTTP/1.1 WebSocket handshake through the client sidecar: 101 on upgrade, else the status. */
function upgrade(headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const url = new URL(mesh.urlFor(CLIENT));
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname, port: url.port, path: '/chat', agent: false,
      headers: { host: HOST, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers },
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode ?? 0, body: '' }); });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

const upgradesAtApp = (): number => mesh.app.received.filter((r) => r.headers.upgrade === 'websocket').length;

test('a credentialed upgrade passes both sidecars and ext_proc, and completes at the app (101)', async () => {
  const res = await upgrade({ authorization: 'Bearer opaque-token' });
  assert.equal(res.status, 101, res.body);
  assert.equal(upgradesAtApp(), 1);
  const seen = decided.filter((r) => r.headers.get('upgrade')?.[0] === 'websocket');
  assert.equal(seen.length, 2, 'ext_proc decided the upgrade on the outbound and on the inbound sidecar');
  assert.ok(seen.some((r) => r.caller.mtls && r.caller.workload === mesh.spiffeIdOf(CLIENT)), 'inbound: the mTLS identity of the caller');
  assert.equal(findings.length, 0, JSON.stringify(findings.map((f) => f.summary)));
});

test('an upgrade without any credential is denied before it leaves the calling workload', async () => {
  const res = await upgrade();
  assert.equal(res.status, 403);
  assert.equal(JSON.parse(res.body).reason, 'WEBSOCKET-Abuse');
  assert.equal(upgradesAtApp(), 1, 'the app never saw it');
  const f = findings.find((x) => x.detector === 'content-websocket');
  assert.match(f?.summary ?? '', /without any credential/);
});

test('an upgrade flood from one caller is rate-limited with 429, and stays limited', async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 2 * UPGRADES_PER_MINUTE; i++) statuses.push((await upgrade({ authorization: 'Bearer opaque-token' })).status);
  const first429 = statuses.indexOf(429);
  assert.ok(first429 > 0, `some upgrades pass before the limit, then 429: ${statuses.join(',')}`);
  assert.ok(statuses.slice(0, first429).every((s) => s === 101), statuses.join(','));
  assert.ok(statuses.slice(first429).every((s) => s === 429), statuses.join(','));
  const f = findings.find((x) => x.detector === 'content-websocket' && x.enforcement === 'rate-limit');
  assert.match(f?.summary ?? '', new RegExp(`WebSocket upgrades from this caller in a minute \\(limit ${UPGRADES_PER_MINUTE}\\)`));
});
