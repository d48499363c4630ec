// Bad input named by issue #4, one case each: what the engine does with it. Never a crash; the
// request is decided by policy (monitor: allowed; enforce: only a finding that asks for it blocks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, T0, WEB, ofDetector } from './detectors/harness.ts';
import { objectRefs } from '../../extproc/src/engine/objects.ts';
import { toExchange } from '../../extproc/src/engine/exchange.ts';

test('missing identity: keyed by connection address, else "anonymous"; decided normally', () => {
  const h = new Harness({}, { mode: 'enforce' });
  const r = h.send({ time: T0, path: '/orders/1' });
  assert.equal(r.decision.action, 'allow');
  assert.ok(h.all.every((f) => f.caller === 'ip:10.0.0.1'));
});

test('malformed identity material: a garbage bearer token is a finding with its reason, never a crash', () => {
  const h = new Harness();
  const r = h.send({ time: T0, path: '/me', workload: WEB, headers: { authorization: `Bearer ${'%'.repeat(20_000)}` } });
  const f = ofDetector(r.requestFindings, 'broken-auth');
  assert.match(f[0]!.summary, /malformed bearer token: token longer than/);
  assert.ok(!JSON.stringify(f).includes('%%%%'), 'the token itself is not in the evidence');
});

test('10 KB IDs: normalized to a hash, so state and evidence stay small', () => {
  const h = new Harness();
  const id = 'a1'.repeat(5000);
  const r = h.send({ time: T0, path: `/orders/${id}`, workload: WEB });
  const ex = toExchange({ requestId: 'x', time: T0, caller: { mtls: false, identitySource: 'none' }, method: 'GET', authority: 's', path: `/orders/${id}`, headers: new Map(), body: Buffer.from(JSON.stringify({ id })) });
  ex.pathIds = [];
  for (const ref of objectRefs(ex)) assert.ok(ref.id.length <= 128, `${ref.where} id bounded`);
  assert.equal(r.decision.action, 'allow');
});

test('100k-deep JSON, invalid UTF-8 and non-JSON bodies never crash; the request is decided by policy', () => {
  const h = new Harness({}, { mode: 'enforce' });
  const bodies = [`${'['.repeat(100_000)}${']'.repeat(100_000)}`, Buffer.from([0x7b, 0xff, 0xfe, 0x22, 0xc3, 0x28, 0x7d]), 'not json at all', `{"query": "${'{ a '.repeat(10_000)}"}`];
  for (const body of bodies) {
    const r = h.send({ time: T0, method: 'POST', path: '/graphql', workload: WEB, body, responseBody: body });
    // Decided by policy, not by accident: allowed, or denied by a finding that asks for it.
    if (r.decision.action === 'deny') {
      const { rule, reason } = r.decision;
      assert.ok(r.requestFindings.some((f) => f.detector === rule && f.category === reason && f.enforcement !== 'none'), `${rule} ${reason}`);
    }
  }
});

test('duplicate and conflicting headers: the first Authorization bearer and the first forwarded hop count', () => {
  const h = new Harness();
  const engine = h.engine;
  const seen: string[] = [];
  engine.addObserver({ onFinding: (f) => seen.push(f.caller) });
  const headers = new Map([['authorization', ['Basic eDp5', 'Bearer a.b']], ['x-forwarded-for', ['10.1.1.1, 10.2.2.2', '10.3.3.3']]]);
  const d = engine.decide({ requestId: 'dup', time: T0, method: 'GET', authority: 's', path: '/me', headers, caller: { workload: WEB, mtls: true, identitySource: 'filter' } });
  assert.equal(d.action, 'allow');
  assert.ok(seen.every((c) => c === `client:10.1.1.1@${WEB}`), seen.join());
});

test('a response for an unknown stream is observed as a fresh exchange, without error', () => {
  const h = new Harness();
  assert.doesNotThrow(() => h.engine.observeResponse(
    { requestId: 'never-decided', time: T0, method: 'GET', authority: 's', path: '/a/1', headers: new Map(), caller: { mtls: false, identitySource: 'none' } },
    { requestId: 'never-decided', time: T0, status: 200, headers: new Map(), body: Buffer.from('{"id": 1}') },
  ));
});
