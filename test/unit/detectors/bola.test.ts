// API1 BOLA detector: ownership learned from creates, owner fields and listings; foreign and
// unexplained object access, sequential walks, 403/404 bursts, parameter pollution.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, T0, WEB, bearer, ofDetector } from './harness.ts';
import { ownerOf } from '../../../extproc/src/engine/detectors/bola.ts';

const user = (sub: string) => bearer({ sub, exp: T0 / 1000 + 3600 });

test('ownerOf names the single owner of a response and none for a listing of many owners', () => {
  assert.equal(ownerOf({ title: 'a', owner: 'alice' }), 'alice');
  assert.equal(ownerOf({ data: { paste: { owner: { name: 'bob' } } } }), 'bob');
  assert.equal(ownerOf({ books: [{ t: 'a', user: 'alice' }, { t: 'b', user: 'bob' }] }), undefined);
  assert.equal(ownerOf({ title: 'x' }), undefined);
});

test('reading your own objects is quiet; reading others\' objects is flagged at the threshold and then blocked on request', () => {
  const h = new Harness();
  let t = T0;
  for (const [who, book] of [['alice', 'alpha-1'], ['bob', 'bravo-2'], ['bob', 'bravo-3'], ['bob', 'bravo-4'], ['bob', 'bravo-5']] as const) {
    h.send({ time: (t += 100), method: 'POST', path: '/books', workload: WEB, headers: user(who), body: { title: book, secret: 's' } });
  }
  // Alice reads her own book repeatedly: never a finding.
  for (let i = 0; i < 5; i++) {
    const r = h.send({ time: (t += 100), path: '/books/alpha-1', workload: WEB, headers: user('alice'), responseBody: { title: 'alpha-1', owner: 'alice' } });
    assert.equal(ofDetector(r.findings, 'bola').length, 0);
  }
  // Mallory reads Bob's books: the third distinct foreign object is the finding.
  const results = ['bravo-2', 'bravo-3', 'bravo-4', 'bravo-5'].map((b) =>
    h.send({ time: (t += 100), path: `/books/${b}`, workload: WEB, headers: user('mallory'), responseBody: { title: b, owner: 'bob', secret: 's' } }));
  assert.deepEqual(results.map((r) => ofDetector(r.findings, 'bola').length > 0), [false, false, true, true]);
  assert.equal(results[2]!.findings[0]!.category, 'API1:2023-BOLA');
  assert.equal(results[2]!.findings[0]!.evidence.distinctForeign, 3);
  // The fourth was flagged at request time (it can be blocked), not only after the response.
  assert.ok(ofDetector(results[3]!.requestFindings, 'bola').length > 0);
  // Bob reading his own books stays quiet even while Mallory is flagged.
  const own = h.send({ time: (t += 100), path: '/books/bravo-2', workload: WEB, headers: user('bob'), responseBody: { title: 'bravo-2', owner: 'bob' } });
  assert.equal(ofDetector(own.findings, 'bola').length, 0);
});

test('enforce mode denies the flagged caller\'s further foreign reads with 403', () => {
  const h = new Harness({}, { mode: 'enforce' });
  let t = T0;
  const decisions = [];
  for (let i = 1; i <= 6; i++) {
    decisions.push(h.send({ time: (t += 100), path: `/docs/doc-${i}x`, workload: WEB, headers: user('eve'), responseBody: { id: `doc-${i}x`, owner: 'carol' } }).decision);
  }
  assert.deepEqual(decisions.slice(0, 3).map((d) => d.action), ['allow', 'allow', 'allow']);
  for (const d of decisions.slice(3)) assert.deepEqual(d, { action: 'deny', status: 403, reason: 'API1:2023-BOLA', rule: 'bola' });
});

test('a sequential walk over numeric IDs the caller was never given is flagged at the configured run length', () => {
  const h = new Harness();
  let t = T0;
  const flaggedAt: number[] = [];
  for (let id = 100; id < 110; id++) {
    const r = h.send({ time: (t += 200), path: `/orders/${id}`, workload: WEB, client: '10.1.1.1', responseBody: { id, total: 5 } });
    if (ofDetector(r.requestFindings, 'bola').length > 0) flaggedAt.push(id);
  }
  assert.equal(flaggedAt[0], 104, 'fifth consecutive ID');
});

test('IDs the API showed the caller (a listing) or that it created are not unexplained; others count up to the threshold', () => {
  const h = new Harness();
  let t = T0;
  const ids = [11, 23, 37, 41, 58, 62, 79, 83, 97, 105];
  h.send({ time: (t += 100), path: '/orders', workload: WEB, client: '10.2.2.2', responseBody: { orders: ids.map((id) => ({ id })) } });
  for (const id of ids) {
    const r = h.send({ time: (t += 100), path: `/orders/${id}`, workload: WEB, client: '10.2.2.2', responseBody: { id } });
    assert.equal(ofDetector(r.findings, 'bola').length, 0, `listed id ${id}`);
  }
  // Another client touching scattered IDs nobody showed it: flagged at the 8th (default threshold).
  const other = [501, 517, 533, 549, 565, 581, 597, 613, 629];
  const flags = other.map((id) => ofDetector(h.send({ time: (t += 100), path: `/orders/${id}`, workload: WEB, client: '10.3.3.3', responseBody: { id } }).findings, 'bola').length > 0);
  assert.equal(flags.indexOf(true), 7);
});

test('a burst of 403/404 answers on object operations is flagged', () => {
  const h = new Harness();
  let t = T0;
  const flags = [];
  // Scattered IDs: consecutive ones would be a guessable walk, flagged earlier on its own.
  for (let i = 0; i < 12; i++) {
    flags.push(ofDetector(h.send({ time: (t += 100), path: `/invoices/inv-${i * 7 + 3}a`, workload: WEB, client: '10.4.4.4', status: i % 2 ? 403 : 404 }).findings, 'bola').length > 0);
  }
  assert.equal(flags.indexOf(true), 9, 'tenth denied object request (default burst 10)');
});

test('parameter pollution: the same ID parameter twice with different values', () => {
  const h = new Harness();
  const r = h.send({ time: T0, path: '/account?user_id=7&user_id=8', workload: WEB, client: '10.5.5.5' });
  const f = ofDetector(r.requestFindings, 'bola');
  assert.equal(f.length, 1);
  assert.match(f[0]!.summary, /pollution/);
  const same = h.send({ time: T0 + 1, path: '/account?user_id=7&user_id=7', workload: WEB, client: '10.5.5.5' });
  assert.equal(ofDetector(same.requestFindings, 'bola').length, 0);
});

test('GraphQL: object IDs in variables and literal arguments are judged like path IDs', () => {
  const h = new Harness();
  let t = T0;
  // A create returns the new id: own.
  h.send({ time: (t += 100), method: 'POST', path: '/graphql', workload: WEB, client: '10.6.6.6',
    body: { query: 'mutation New($t: String) { createPaste(title: $t) { paste { id } } }', variables: { t: 'x' } },
    responseBody: { data: { createPaste: { paste: { id: '900' } } } } });
  const own = h.send({ time: (t += 100), method: 'POST', path: '/graphql', workload: WEB, client: '10.6.6.6',
    body: { query: 'query P($id: Int) { paste(id: $id) { id } }', variables: { id: 900 } }, responseBody: { data: { paste: { id: '900' } } } });
  assert.equal(ofDetector(own.findings, 'bola').length, 0);
  const flagged = [];
  for (let id = 1; id <= 6; id++) {
    const r = h.send({ time: (t += 100), method: 'POST', path: '/graphql', workload: WEB, client: '10.7.7.7',
      body: { query: `{ paste(id: ${id}) { id content } }` }, responseBody: { data: { paste: { id: String(id) } } } });
    flagged.push(ofDetector(r.requestFindings, 'bola').length > 0);
  }
  assert.equal(flagged.indexOf(true), 4);
});
