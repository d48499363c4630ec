// API4 resource consumption: policy hard limits (429 in enforce), learned rate baselines (reported
// as proposed limits, enforced only when policy allows), abusive page sizes, oversized bodies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, T0, WEB, ofDetector } from './harness.ts';

const RES = 'resource-consumption';

test('a hard limit from policy: requests beyond it are rate-limited (429 in enforce mode), per caller', () => {
  const h = new Harness({ resource: { limits: [{ name: 'search', operation: '^GET \\S+ /search$', limit: 5, windowMs: 60_000 }] } }, { mode: 'enforce' });
  const statuses = [];
  for (let i = 0; i < 8; i++) {
    const d = h.send({ time: T0 + i * 1000, path: '/search?q=x', workload: WEB, client: '10.0.1.1' }).decision;
    statuses.push(d.action === 'deny' ? d.status : 200);
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
  // Another caller has its own budget.
  assert.equal(h.send({ time: T0 + 9000, path: '/search?q=y', workload: WEB, client: '10.0.1.2' }).decision.action, 'allow');
  // The window slides: a minute later the first caller may search again.
  assert.equal(h.send({ time: T0 + 75_000, path: '/search?q=z', workload: WEB, client: '10.0.1.1' }).decision.action, 'allow');
});

test('learned baseline: a caller far above its usual rate gets a proposed limit, reported but not enforced by default', () => {
  const h = new Harness({}, { mode: 'enforce' });
  let t = T0;
  // Six minutes at ~10 requests a minute.
  for (let m = 0; m < 6; m++) for (let i = 0; i < 10; i++) h.send({ time: (t = T0 + m * 60_000 + i * 5000), path: '/feed', workload: WEB, client: '10.0.2.1' });
  const burst = [];
  for (let i = 0; i < 120; i++) burst.push(h.send({ time: T0 + 6 * 60_000 + i * 200, path: '/feed', workload: WEB, client: '10.0.2.1' }));
  const reported = burst.flatMap((r) => ofDetector(r.findings, RES));
  assert.equal(reported.length, 1, 'reported once per window');
  assert.equal(reported[0]!.enforcement, 'none');
  assert.ok((reported[0]!.evidence.proposedLimit as number) >= 60);
  assert.ok(burst.every((r) => r.decision.action === 'allow'), 'not enforced unless policy allows');

  const strict = new Harness({ resource: { enforceLearned: true } }, { mode: 'enforce' });
  for (let m = 0; m < 6; m++) for (let i = 0; i < 10; i++) strict.send({ time: T0 + m * 60_000 + i * 5000, path: '/feed', workload: WEB, client: '10.0.2.1' });
  const denied = [];
  for (let i = 0; i < 120; i++) denied.push(strict.send({ time: T0 + 6 * 60_000 + i * 200, path: '/feed', workload: WEB, client: '10.0.2.1' }).decision);
  const firstDeny = denied.findIndex((d) => d.action === 'deny');
  // The sliding minute also holds the tail of the previous minute's ~10 requests.
  assert.ok(firstDeny >= 45 && firstDeny <= 60, `first denial at burst request ${firstDeny}`);
  assert.ok(denied.slice(firstDeny).every((d) => d.action === 'deny' && d.status === 429), 'everything above the proposed limit of 60 is denied');
  void t;
});

test('abusive page size in query or GraphQL arguments; normal sizes pass', () => {
  const h = new Harness();
  const f = (path: string, body?: unknown) => ofDetector(h.send({ time: T0, method: body ? 'POST' : 'GET', path, workload: WEB, body }).requestFindings, RES);
  assert.equal(f('/products?limit=50').length, 0);
  assert.equal(f('/products?page_size=100000')[0]?.evidence.value, 100000);
  assert.equal(f('/graphql', { query: '{ pastes(limit: 5000) { id } }' })[0]?.evidence.parameter, 'limit');
  assert.equal(f('/graphql', { query: 'query F($n: Int) { pastes(limit: $n) { id } }', variables: { n: 20 } }).length, 0);
});

test('oversized body by Content-Length or by body bytes', () => {
  const h = new Harness({ resource: { maxBodyBytes: 1000 } });
  const big = h.send({ time: T0, method: 'POST', path: '/upload', workload: WEB, headers: { 'content-length': '5000' } });
  assert.equal(ofDetector(big.requestFindings, RES)[0]?.evidence.bytes, 5000);
  const body = h.send({ time: T0, method: 'POST', path: '/upload', workload: WEB, body: 'x'.repeat(2000) });
  assert.equal(ofDetector(body.requestFindings, RES)[0]?.evidence.bytes, 2000);
  assert.equal(ofDetector(h.send({ time: T0, method: 'POST', path: '/upload', workload: WEB, body: 'x'.repeat(10) }).requestFindings, RES).length, 0);
});

test('a caller without history is judged against the operation\'s usual per-caller rate', () => {
  const h = new Harness();
  // Twenty callers, each a few requests a minute over three minutes: the operation's norm.
  for (let m = 0; m < 3; m++) for (let c = 0; c < 20; c++) for (let i = 0; i < 3; i++) h.send({ time: T0 + m * 60_000 + c * 1000 + i * 100, path: '/report', workload: WEB, client: `10.0.5.${c}` });
  const flood = [];
  for (let i = 0; i < 80; i++) flood.push(h.send({ time: T0 + 3 * 60_000 + i * 100, path: '/report', workload: WEB, client: '10.0.9.9' }));
  const reported = flood.flatMap((r) => ofDetector(r.findings, RES));
  assert.equal(reported.length, 1);
  assert.equal(reported[0]!.evidence.baseline, 'operation');
  assert.equal(reported[0]!.evidence.count, 61, 'above the floor of 60 (the norm of 3 a minute is lower)');
});
