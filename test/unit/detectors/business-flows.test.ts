// API6 sensitive business flows: per-source rates, flow-wide surges with rotating sources,
// machine-regular timing, required step order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, T0, WEB, ofDetector } from './harness.ts';

const FLOWS = 'business-flows';

test('per-source: more signups from one address than the flow allows', () => {
  const h = new Harness();
  const flags = [];
  for (let i = 0; i < 8; i++) {
    flags.push(ofDetector(h.send({ time: T0 + i * 4000, method: 'POST', path: '/users/v1/register', workload: WEB, client: '10.0.3.1', body: { username: `u${i}` } }).requestFindings, FLOWS).length > 0);
  }
  assert.equal(flags.indexOf(true), 5, 'sixth signup in a minute (default 5)');
});

test('a signup bot rotating addresses is caught by the flow-wide surge; the regular trickle before it is not', () => {
  const h = new Harness();
  let t = T0;
  // Ten minutes of organic signups: a few a minute at irregular times.
  const gaps = [7000, 23000, 4000, 31000, 12000, 9000, 45000, 3000, 18000, 27000];
  for (let i = 0; i < 30; i++) {
    const r = h.send({ time: (t += gaps[i % gaps.length]!), method: 'POST', path: '/signup', workload: WEB, client: `10.10.${i}.1`, body: { email: `p${i}@x.io` } });
    assert.equal(ofDetector(r.findings, FLOWS).length, 0, `organic signup ${i}`);
  }
  const flagged = [];
  for (let i = 0; i < 60; i++) {
    const r = h.send({ time: (t += 150 + (i % 3) * 20), method: 'POST', path: '/signup', workload: WEB, client: `172.16.${i}.9`, body: { email: `bot${i}@x.io` } });
    flagged.push(ofDetector(r.findings, FLOWS).length > 0);
  }
  const first = flagged.indexOf(true);
  assert.ok(first >= 0 && first < 30, `flagged from bot request ${first}`);
  assert.ok(flagged.slice(first).every(Boolean), 'every later bot signup is flagged while the flow is under abuse');
});

test('machine-regular inter-arrival times are flagged even below the surge threshold', () => {
  const h = new Harness({ flows: { flows: [{ name: 'coupon', match: '^redeem$', perSourceLimit: 1000, globalFloor: 1000, globalFactor: 100, windowMs: 60_000 }] } });
  const flagged = [];
  for (let i = 0; i < 20; i++) {
    flagged.push(ofDetector(h.send({ time: T0 + i * 2000, method: 'POST', path: '/redeem', workload: WEB, client: `10.20.${i}.2` }).findings, FLOWS).some((f) => /regular/.test(f.summary)));
  }
  assert.equal(flagged.indexOf(true), 12, 'after 12 gaps (default samples)');
});

test('required step order: checkout without a cart first is flagged; with it, not', () => {
  const h = new Harness({ flows: { flows: [{ name: 'checkout', match: '^checkout$', perSourceLimit: 10, globalFloor: 60, globalFactor: 5, windowMs: 60_000, requires: [{ match: '^POST \\S+ /cart/items$' }] }] } });
  const skip = h.send({ time: T0, method: 'POST', path: '/checkout', workload: WEB, client: '10.30.0.1' });
  assert.match(ofDetector(skip.requestFindings, FLOWS)[0]?.summary ?? '', /required earlier steps/);
  h.send({ time: T0 + 1, method: 'POST', path: '/cart/items', workload: WEB, client: '10.30.0.2' });
  const ok = h.send({ time: T0 + 2, method: 'POST', path: '/checkout', workload: WEB, client: '10.30.0.2' });
  assert.equal(ofDetector(ok.requestFindings, FLOWS).length, 0);
});

test('the flow step is the last static path segment: POST /api/Users is a signup, POST /users/v1/login is not', () => {
  const h = new Harness({ flows: { flows: [{ name: 'signup', match: '^(register|users)$', methods: ['POST'], perSourceLimit: 1, globalFloor: 1000, globalFactor: 100, windowMs: 60_000 }] } });
  const send = (path: string, i: number) => ofDetector(h.send({ time: T0 + i, method: 'POST', path, workload: WEB, client: '10.40.0.1' }).requestFindings, FLOWS).length;
  assert.equal(send('/api/Users', 1), 0);
  assert.equal(send('/api/Users', 2), 1, 'second signup from the source is over the limit of 1');
  assert.equal(send('/users/v1/login', 3), 0);
  assert.equal(send('/users/v1/login', 4), 0);
});
