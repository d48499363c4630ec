// API5 BFLA: privileged operations (naming or policy) called from outside their learned callers;
// method tampering (write methods on resources only ever read).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, T0, WEB, QUICK_LEARNING, bearer, ofDetector } from './harness.ts';

const BFLA = 'bfla';
const user = (sub: string) => bearer({ sub });

function warmUp(h: Harness, until: number): void {
  for (let i = 0; i < 20; i++) h.send({ time: T0 + (i * until) / 20, path: '/products', workload: WEB, client: '10.0.0.1' });
}

test('an admin operation used by its learned admins stays quiet; a new caller once the set converged is flagged', () => {
  const h = new Harness({ learning: QUICK_LEARNING });
  for (let i = 0; i < 24; i++) h.send({ time: T0 + i, path: '/admin/users', workload: WEB, headers: user(['root', 'ops'][i % 2]!) });
  warmUp(h, 2000);
  const admin = h.send({ time: T0 + 3000, path: '/admin/users', workload: WEB, headers: user('root') });
  assert.equal(ofDetector(admin.findings, BFLA).length, 0);
  const intruder = h.send({ time: T0 + 3100, path: '/admin/users', workload: WEB, headers: user('mallory') });
  const f = ofDetector(intruder.requestFindings, BFLA);
  assert.equal(f.length, 1);
  assert.equal(f[0]!.category, 'API5:2023-BFLA');
  assert.deepEqual(f[0]!.evidence.privileged, ['admin']);
});

test('while new admins keep appearing (the set has not converged) a new caller is not yet surprising', () => {
  const h = new Harness({ learning: QUICK_LEARNING });
  h.send({ time: T0, path: '/admin/users', workload: WEB, headers: user('a0') });
  warmUp(h, 2000);
  const flags = ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'].map((u, i) => ofDetector(h.send({ time: T0 + 3000 + i, path: '/admin/users', workload: WEB, headers: user(u) }).findings, BFLA).length);
  assert.deepEqual(flags, [0, 0, 0, 0, 0, 0]);
});

test('privileged by policy, and privileged GraphQL fields by name', () => {
  const h = new Harness({ learning: QUICK_LEARNING, bfla: { privilegedOperations: ['^POST \\S+ /refunds$'] } });
  for (let i = 0; i < 24; i++) {
    h.send({ time: T0 + i, method: 'POST', path: '/refunds', workload: WEB, headers: user('finance') });
    h.send({ time: T0 + i, method: 'POST', path: '/graphql', workload: WEB, headers: user('root'), body: { query: 'mutation { adminPromote(user: "x") { ok } }' } });
  }
  warmUp(h, 2000);
  const refund = h.send({ time: T0 + 3000, method: 'POST', path: '/refunds', workload: WEB, headers: user('bob') });
  assert.deepEqual(ofDetector(refund.requestFindings, BFLA)[0]?.evidence.privileged, ['(policy)']);
  const gql = h.send({ time: T0 + 3000, method: 'POST', path: '/graphql', workload: WEB, headers: user('bob'), body: { query: 'mutation { deleteAllPastes(confirm: true) { ok } adminPromote(user: "bob") { ok } }' } });
  assert.deepEqual(ofDetector(gql.requestFindings, BFLA)[0]?.evidence.privileged, ['adminPromote']);
  // Words that merely contain "admin" are not privileged.
  const plain = h.send({ time: T0 + 3000, path: '/badminton/courts', workload: WEB, headers: user('bob') });
  assert.equal(ofDetector(plain.requestFindings, BFLA).length, 0);
});

test('method tampering: DELETE on a user resource only ever read is flagged; an established write method is not', () => {
  const h = new Harness({ learning: QUICK_LEARNING });
  warmUp(h, 2000);
  let t = T0 + 2000;
  for (const u of ['ann1', 'ben2', 'cat3', 'dan4', 'eve5', 'fay6']) h.send({ time: (t += 100), path: `/users/${u}`, workload: WEB, headers: user(u) });
  const del = h.send({ time: (t += 100), method: 'DELETE', path: '/users/early.bird', workload: WEB, headers: user('mallory') });
  const f = ofDetector(del.requestFindings, BFLA);
  assert.equal(f.length, 1, 'the unseen child of a parametric collection is an object ID');
  assert.match(f[0]!.summary, /method tampering/);
  // PUT on /profiles/{} used by several callers is normal.
  for (const u of ['ann1', 'ben2', 'cat3']) h.send({ time: (t += 100), method: 'PUT', path: `/profiles/${u}`, workload: WEB, headers: user(u) });
  for (const u of ['dan4', 'eve5', 'fay6', 'gus7', 'hal8']) h.send({ time: (t += 100), path: `/profiles/${u}`, workload: WEB, headers: user(u) });
  const put = h.send({ time: (t += 100), method: 'PUT', path: '/profiles/ivy9', workload: WEB, headers: user('ivy9') });
  assert.equal(ofDetector(put.findings, BFLA).length, 0);
});
