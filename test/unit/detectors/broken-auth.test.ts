// API2 broken authentication: JWT defects, JWKS verification, token sharing, unauthenticated calls
// to authenticated operations, credential stuffing (burst, batched, spread over many sources).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { Harness, T0, WEB, QUICK_LEARNING, bearer, makeJwt, ofDetector } from './harness.ts';

const AUTH = 'broken-auth';
const sec = (ms: number): number => Math.floor(ms / 1000);

test('JWT defects: alg none, expired, not yet valid, unknown issuer each give a finding; a sound token none', () => {
  const h = new Harness({ auth: { trustedIssuers: ['https://idp.example'] } });
  const good = { sub: 'u1', iss: 'https://idp.example', exp: sec(T0) + 600 };
  const quiet = h.send({ time: T0, path: '/me', workload: WEB, headers: bearer(good) });
  assert.equal(ofDetector(quiet.findings, AUTH).length, 0);
  const cases: [string, Record<string, string>, RegExp][] = [
    ['alg none', bearer(good, { alg: 'none' }), /unsigned JWT/],
    ['expired', bearer({ ...good, exp: sec(T0) - 600 }), /expired/],
    ['not yet valid', bearer({ ...good, nbf: sec(T0) + 600 }), /nbf/],
    ['unknown issuer', bearer({ ...good, iss: 'https://evil.example' }), /issuer/],
    ['malformed', { authorization: 'Bearer abc.def' }, /malformed/],
  ];
  for (const [name, headers, summary] of cases) {
    const r = h.send({ time: T0 + 1, path: '/me', workload: WEB, headers });
    const f = ofDetector(r.requestFindings, AUTH);
    assert.ok(f.some((x) => summary.test(x.summary)), `${name}: ${f.map((x) => x.summary).join('; ')}`);
    assert.ok(f.every((x) => x.category === 'API2:2023-BrokenAuthentication' && typeof x.evidence.tokenHash === 'string'));
    // Never the raw token in evidence.
    assert.ok(!JSON.stringify(f).includes(headers.authorization!.slice(7, 40)), `${name}: raw token leaked`);
  }
});

test('JWKS: an RS256 token signed by the policy key verifies; a forged or HS256-confused one does not', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256' };
  const h = new Harness({ auth: { jwks: { 'https://idp.example': { keys: [jwk] } } } });
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const payload = { sub: 'u1', iss: 'https://idp.example', exp: sec(T0) + 600 };
  const input = `${enc({ alg: 'RS256', kid: 'k1' })}.${enc(payload)}`;
  const good = `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
  const forged = `${enc({ alg: 'RS256', kid: 'k1' })}.${enc({ ...payload, sub: 'admin' })}.${good.split('.')[2]}`;
  const confused = makeJwt(payload, { alg: 'HS256', secret: String(publicKey.export({ format: 'pem', type: 'spki' })) });
  const verdict = (token: string) => ofDetector(h.send({ time: T0, path: '/me', workload: WEB, headers: { authorization: `Bearer ${token}` } }).requestFindings, AUTH)
    .filter((f) => /JWKS/.test(f.summary));
  assert.equal(verdict(good).length, 0);
  assert.equal(verdict(forged).length, 1);
  assert.equal(verdict(confused).length, 1);
});

test('one token presented from many workloads or addresses is reported', () => {
  const h = new Harness();
  const headers = bearer({ sub: 'shared', exp: sec(T0) + 600 });
  const flags = [];
  for (let i = 1; i <= 6; i++) {
    flags.push(ofDetector(h.send({ time: T0 + i, path: '/me', workload: WEB, client: `10.9.0.${i}`, headers }).requestFindings, AUTH).some((f) => /different workloads/.test(f.summary)));
  }
  assert.equal(flags.indexOf(true), 4, 'fifth distinct source (default 5)');
});

const loginFail = { status: 200, responseBody: { status: 'fail', message: 'Password is not correct for the given username.' } };
const loginOk = { status: 200, responseBody: { auth_token: makeJwt({ sub: 'x' }), status: 'success' } };

test('credential stuffing from one source: flagged at the failure threshold, then rate-limited; enforce answers 429', () => {
  const h = new Harness({}, { mode: 'enforce' });
  const decisions = [];
  for (let i = 0; i < 14; i++) {
    const r = h.send({ time: T0 + i * 30, method: 'POST', path: '/users/v1/login', workload: WEB, client: '10.8.8.8', body: { username: `user${i}`, password: 'x' }, ...loginFail });
    decisions.push(r.decision);
  }
  const firstDeny = decisions.findIndex((d) => d.action === 'deny');
  assert.ok(firstDeny > 0 && firstDeny <= 10, `denied from ${firstDeny}`);
  assert.deepEqual(decisions[13], { action: 'deny', status: 429, reason: 'API2:2023-BrokenAuthentication', rule: AUTH });
});

test('a user mistyping twice then logging in is not flagged', () => {
  const h = new Harness();
  const findings = [
    h.send({ time: T0, method: 'POST', path: '/login', workload: WEB, client: '10.1.0.1', body: { username: 'ann', password: 'a' }, ...loginFail }),
    h.send({ time: T0 + 3000, method: 'POST', path: '/login', workload: WEB, client: '10.1.0.1', body: { username: 'ann', password: 'b' }, ...loginFail }),
    h.send({ time: T0 + 6000, method: 'POST', path: '/login', workload: WEB, client: '10.1.0.1', body: { username: 'ann', password: 'c' }, ...loginOk }),
  ].flatMap((r) => ofDetector(r.findings, AUTH));
  assert.deepEqual(findings, []);
});

test('many login attempts packed in one GraphQL request (aliases, batch) are flagged on the request', () => {
  const h = new Harness();
  const aliases = Array.from({ length: 15 }, (_, i) => `l${i}: login(username: "admin", password: "p${i}") { accessToken }`).join(' ');
  const r = h.send({ time: T0, method: 'POST', path: '/graphql', workload: 'spiffe://cluster.local/ns/payments/sa/worker', body: { query: `mutation { ${aliases} }` } });
  const f = ofDetector(r.requestFindings, AUTH);
  assert.equal(f.length, 1);
  assert.equal(f[0]!.evidence.attempts, 15);
  const batch = Array.from({ length: 8 }, (_, i) => ({ query: `mutation { login(username: "op", password: "p${i}") { accessToken } }` }));
  const b = h.send({ time: T0 + 1, method: 'POST', path: '/graphql', workload: WEB, client: '10.1.2.3', body: batch });
  assert.equal(ofDetector(b.requestFindings, AUTH)[0]?.evidence.attempts, 8);
  const single = h.send({ time: T0 + 2, method: 'POST', path: '/graphql', workload: WEB, client: '10.1.2.4', body: { query: 'mutation L($u: String, $p: String) { login(username: $u, password: $p) { accessToken } }', variables: { u: 'a', p: 'b' } } });
  assert.equal(ofDetector(single.requestFindings, AUTH).length, 0);
});

test('low-and-slow: failures spread over many sources cross the operation-wide threshold', () => {
  const h = new Harness({ auth: { failedLoginsGlobalFloor: 20 } });
  const flagged: number[] = [];
  for (let i = 0; i < 30; i++) {
    const r = h.send({ time: T0 + i * 1000, method: 'POST', path: '/login', workload: WEB, client: `10.77.${i}.1`, body: { username: `victim${i}`, password: 'Summer2026!' }, ...loginFail });
    if (ofDetector(r.findings, AUTH).length > 0) flagged.push(i);
  }
  assert.equal(flagged[0], 19, '20th failure across sources');
});

test('unauthenticated call to an operation that is normally authenticated (after learning)', () => {
  const h = new Harness({ learning: QUICK_LEARNING });
  for (let i = 0; i < 30; i++) h.send({ time: T0 + i * 100, path: '/orders', workload: WEB, client: '10.0.0.9', headers: bearer({ sub: `u${i % 5}` }) });
  const r = h.send({ time: T0 + 5000, path: '/orders', workload: WEB, client: '10.0.0.9' });
  assert.ok(ofDetector(r.requestFindings, AUTH).some((f) => /unauthenticated/.test(f.summary)));
  // An operation that is usually public stays quiet.
  for (let i = 0; i < 30; i++) h.send({ time: T0 + 6000 + i, path: '/catalog', workload: WEB, client: '10.0.0.9' });
  assert.equal(ofDetector(h.send({ time: T0 + 7000, path: '/catalog', workload: WEB }).requestFindings, AUTH).length, 0);
});
