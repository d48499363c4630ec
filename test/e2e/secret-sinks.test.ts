// Issue #10, item 4: secrets never leave meshward raw. The full stack as a user runs it (real Envoy
// sidecars with the filter sampling every body, `meshward serve` with admin API, SQLite inventory and
// OTLP export to a local receiver, debug logging) carries known secrets: bearer JWTs, API keys,
// cookies, Basic credentials, query-string tokens, passwords in JSON bodies, card numbers (also in
// responses). Afterwards every sink is scanned: pino output, /findings, /report, /inventory and its
// OpenAPI export, OTLP traces/metrics/logs as received, and the SQLite file. Hashes are fine.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import { freePort } from '../../extproc/src/local/ports.ts';
import { rawRequest } from '../support/raw-http.ts';
import { startServe, type ServeChild } from '../support/serve-child.ts';

const HOST = 'orders.shop';
const CLIENT = 'web/frontend';
const WORKER = 'payments/payment-worker';
const TOKEN = 'sinks-admin-token-0123456789abcdef';
const rand = (): string => randomBytes(9).toString('hex');
const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

function luhnValid(prefix: string): string {
  // Random 15 digits after the prefix, then the check digit.
  let digits = prefix;
  while (digits.length < 15) digits += String(randomBytes(1)[0]! % 10);
  for (let check = 0; check < 10; check++) {
    const n = digits + String(check);
    let sum = 0;
    for (let i = 0; i < n.length; i++) {
      let d = Number(n[n.length - 1 - i]);
      if (i % 2 === 1) { d *= 2; if (d > 9) d -= 9; }
      sum += d;
    }
    if (sum % 10 === 0) return n;
  }
  throw new Error('unreachable');
}

const jwtKey = randomBytes(32);
const jwtUnsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'alice', iss: 'https://idp.example', exp: 4102444800, jti: `jti${rand()}` })}`;
const jwtSignature = createHmac('sha256', jwtKey).update(jwtUnsigned).digest('base64url');
const basicPassword = `basicpw${rand()}`;
const SECRETS: Record<string, string> = {
  'bearer JWT': `${jwtUnsigned}.${jwtSignature}`,
  'JWT signature': jwtSignature,
  'API key': `mwk_live_${rand()}`,
  'session cookie': `sess${rand()}`,
  'CSRF cookie': `csrf${rand()}`,
  'Basic credentials': Buffer.from(`alice:${basicPassword}`).toString('base64'),
  'Basic password': basicPassword,
  'query token': `qtok${rand()}`,
  'denied query token': `dtok${rand()}`,
  'JSON password': `Pw-${rand()}`,
  'new password': `NewPw-${rand()}`,
  'card number': luhnValid('4'),
  'card number (response)': luhnValid('5'),
  'x-auth-token': `xat${rand()}`,
  // Opaque to the sensitive-data scanner, so BOLA records it as an object the caller created:
  // persisted, and only as a keyed hash.
  'object reference': `ref${rand()}`,
};

let mesh: LocalMesh;
let serve: ServeChild;
let dir: string;
const otlp: Buffer[] = [];
let receiver: http.Server;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-sinks-'));
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => { otlp.push(Buffer.concat(chunks)); res.writeHead(200, { 'content-type': 'application/x-protobuf' }); res.end(); });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  mesh = await startLocalMesh({
    callers: [CLIENT, WORKER],
    server: 'shop/orders',
    pluginConfig: { role: 'inbound', sampling: { percent: 100, seed: 'sinks' } },
  });
  // The stack under test is `meshward serve`, not the mesh's in-process server.
  await mesh.stopExtProc();
  writeFileSync(path.join(dir, 'token'), TOKEN);
  writeFileSync(path.join(dir, 'meshward.yaml'), `denyRules:\n  - name: worker-no-admin\n    identity: ${mesh.spiffeIdOf(WORKER)}\n    path: /admin/*\n`);
  serve = await startServe(['--port', String(mesh.extProcPort), '--config', path.join(dir, 'meshward.yaml'), '--admin-token-file', path.join(dir, 'token'),
    '--inventory-db', path.join(dir, 'inventory.db'), '--otlp-endpoint', `http://127.0.0.1:${(receiver.address() as { port: number }).port}`],
  await freePort(), { MESHWARD_LOG_LEVEL: 'debug' });
});

after(async () => {
  serve?.kill();
  await mesh?.stop();
  receiver?.close();
});

function send(caller: string, method: string, urlPath: string, headers: [string, string][], body?: unknown): Promise<{ status: number; body: string }> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return rawRequest(mesh.urlFor(caller), { method, path: urlPath, headers: [['host', HOST], ...(text !== undefined ? [['content-type', 'application/json'] as [string, string]] : []), ...headers], ...(text !== undefined ? { body: text } : {}) });
}

test('no sink holds a raw secret after a run that carried them', async () => {
  const s = SECRETS;
  const credentials: [string, string][] = [
    ['authorization', `Bearer ${s['bearer JWT']}`], ['x-api-key', s['API key']!], ['cookie', `session=${s['session cookie']}; csrf=${s['CSRF cookie']}`],
  ];
  for (let id = 1; id <= 12; id++) {
    assert.equal((await send(CLIENT, 'GET', `/orders/${id}?access_token=${s['query token']}`, credentials)).status, 200);
  }
  for (let i = 0; i < 4; i++) {
    await send(CLIENT, 'POST', '/login', [['authorization', `Basic ${s['Basic credentials']}`]], { username: 'alice', password: s['JSON password'] });
    await send(CLIENT, 'POST', '/users/alice/password', [['x-auth-token', s['x-auth-token']!]], { oldPassword: s['JSON password'], newPassword: s['new password'] });
  }
  await send(CLIENT, 'POST', '/payments', credentials, { reference: s['object reference'], amount: 5 });
  // The sample app echoes the request body, so the card number also travels back in the response.
  await send(CLIENT, 'POST', '/payments', credentials, { card: s['card number'], cvv: '123', amount: 10 });
  await send(CLIENT, 'POST', '/payments', credentials, { card_number: s['card number (response)'], password: s['JSON password'] });
  const denied = await send(WORKER, 'GET', `/admin/users?access_token=${s['denied query token']}`, credentials);
  assert.equal(denied.status, 403, 'the deny rule fired (the deny log line is a sink too)');

  const sinks = new Map<string, string>();
  for (const p of ['/findings?limit=1000', '/report', '/inventory', `/inventory/export?service=${HOST}`, '/inventory/templates', '/policy']) {
    const res = await serve.admin(p, TOKEN);
    assert.equal(res.status, 200, p);
    sinks.set(`admin ${p}`, await res.text());
  }
  const findings = JSON.parse(sinks.get('admin /findings?limit=1000')!) as { totals: { total: number; byDetector?: Record<string, number> }; findings: unknown[] };
  assert.ok(findings.totals.total > 0, 'the run produced findings to scan');
  assert.ok((findings.totals.byDetector?.['content-exposure'] ?? 0) >= 1, 'bodies were inspected: the card number in a response was found');
  assert.match(sinks.get(`admin /inventory/export?service=${HOST}`)!, /\/payments/, 'the inventory holds the traffic');

  serve.child.kill('SIGTERM');
  assert.equal(await serve.exited, 0, serve.output());
  sinks.set('pino output', serve.output());
  const db = path.join(dir, 'inventory.db');
  for (const f of [db, `${db}-wal`]) if (existsSync(f)) sinks.set(`SQLite ${path.basename(f)}`, readFileSync(f).toString('latin1'));
  assert.ok((sinks.get('SQLite inventory.db') ?? '').includes('/payments'), 'the SQLite file holds the inventory');
  assert.ok([...sinks].some(([k, text]) => k.startsWith('SQLite') && text.includes('bola.ownership')), 'BOLA object ownership was persisted (keyed hashes)');
  const keyFile = `${db}.key`;
  assert.ok(existsSync(keyFile), 'the state key lives beside the SQLite file, not in it');
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  assert.ok(![...sinks].some(([k, text]) => k.startsWith('SQLite') && text.includes(readFileSync(keyFile, 'utf8').trim())), 'the key is not in the state file');
  const exported = Buffer.concat(otlp).toString('latin1');
  assert.ok(exported.includes('meshward.decide') && exported.includes('meshward.finding'), 'spans and finding log records were exported');
  sinks.set('OTLP export', exported);
  assert.match(serve.output(), /"msg":"finding"/, 'findings were logged');
  assert.match(serve.output(), /"msg":"request denied"/, 'the denial was logged');

  const leaks: string[] = [];
  for (const [sink, text] of sinks) {
    for (const [name, secret] of Object.entries(SECRETS)) if (text.includes(secret)) leaks.push(`${name} in ${sink}`);
  }
  assert.deepEqual(leaks, [], 'no raw secret in any sink');
});
