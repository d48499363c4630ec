// API1 parameter pollution and guessable ID walks through real Envoy (SPIFFE mTLS, the Wasm filter,
// ext_proc, enforce mode): an object ID given twice with different values in path and header
// (including a duplicated header, however Envoy hands it over), path and query, path and JSON body is
// denied 403 before the app sees it; the same ID given twice alike passes; a walk over prefixed
// invoice IDs is denied from its fifth ID.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { rawRequest } from '../support/raw-http.ts';

const HOST = 'accounts.bank';
const CLIENT = 'web/frontend';

describe('BOLA pollution and walks through real Envoy', () => {
  let mesh: LocalMesh;
  const findings: Finding[] = [];

  before(async () => {
    mesh = await startLocalMesh({
      callers: [CLIENT],
      server: 'bank/accounts',
      engine: { denyRules: [], mode: 'enforce' },
      pluginConfig: { role: 'inbound', sampling: { percent: 100, seed: 'bola' } },
    });
    mesh.engine.addObserver({ onFinding: (f) => findings.push(f) });
  });
  after(async () => { await mesh?.stop(); });

  async function send(client: string, method: string, path: string, headers: [string, string][] = [], body?: unknown) {
    const from = findings.length;
    const appFrom = mesh.app.received.length;
    const res = await rawRequest(mesh.urlFor(CLIENT), {
      method, path, headers: [['host', HOST], ['x-forwarded-for', client], ...headers, ...(body !== undefined ? [['content-type', 'application/json'] as [string, string]] : [])],
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, reachedApp: mesh.app.received.length > appFrom, bola: findings.slice(from).filter((f) => f.detector === 'bola') };
  }

  test('the same ID twice with different values is denied; given alike it passes', async () => {
    const alike = await send('10.1.0.1', 'GET', '/accounts/5', [['X-Account-Id', '5']]);
    assert.equal(alike.status, 200);
    assert.deepEqual(alike.bola, []);
    const cases: [string, string, [string, string][], unknown, string][] = [
      ['GET', '/accounts/5', [['X-Account-Id', '7']], undefined, 'header'],
      ['GET', '/accounts/5', [['x-account-id', '5'], ['x-account-id', '7']], undefined, 'header'],
      ['GET', '/users/5?user_id=7', [], undefined, 'query'],
      ['PUT', '/users/5', [], { user_id: 7, email: 'e@x.example' }, 'body'],
    ];
    for (const [i, [method, path, headers, body, where]] of cases.entries()) {
      const r = await send(`10.1.1.${i + 1}`, method, path, headers, body);
      assert.equal(r.status, 403, `${method} ${path} ${JSON.stringify(headers)}`);
      assert.equal(r.reachedApp, false);
      const f = r.bola.find((x) => x.evidence.kind === 'parameter-pollution');
      assert.ok(f, `${method} ${path}: pollution finding`);
      const places = f.evidence.places as { where: string; value: string }[];
      assert.equal(places[0]!.where, 'path');
      assert.equal(places[1]!.where, where);
      assert.equal(places[0]!.value, '5');
    }
  });

  test('a walk over prefixed IDs is denied from its fifth ID', async () => {
    const statuses = [];
    for (let n = 101; n <= 107; n++) statuses.push((await send('10.1.2.1', 'GET', `/invoices/INV-2026-${String(n).padStart(6, '0')}`)).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 403, 403, 403]);
    assert.ok(findings.some((f) => f.evidence.kind === 'counter' && f.evidence.pattern === 'INV-2026-{n:6}'));
  });
});
