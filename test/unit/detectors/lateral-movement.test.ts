// East-west: learned call graph (new edge after learning), least-privilege scopes for agents.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, T0, WEB, QUICK_LEARNING, ofDetector } from './harness.ts';

const LAT = 'lateral-movement';
const WORKER = 'spiffe://cluster.local/ns/payments/sa/payment-worker';
const AGENT = 'spiffe://cluster.local/ns/agents/sa/support-bot';

test('edges seen while learning are the graph; a new edge afterwards is reported once', () => {
  const h = new Harness({ learning: QUICK_LEARNING });
  for (let i = 0; i < 20; i++) h.send({ time: T0 + i * 100, path: '/orders', workload: WEB, client: '10.0.0.1' });
  assert.equal(ofDetector(h.all, LAT).length, 0);
  const first = h.send({ time: T0 + 3000, path: '/users/1', workload: WORKER });
  const f = ofDetector(first.requestFindings, LAT);
  assert.equal(f.length, 1);
  assert.deepEqual(f[0]!.evidence, { workload: WORKER, service: 'shop.svc' });
  assert.equal(f[0]!.enforcement, 'none', 'a new edge is reported, not blocked: deployments add edges');
  assert.equal(ofDetector(h.send({ time: T0 + 3100, path: '/users/2', workload: WORKER }).findings, LAT).length, 0);
  // The same workload calling a different service is a different edge.
  assert.equal(ofDetector(h.send({ time: T0 + 3200, path: '/x', authority: 'other.svc', workload: WORKER }).findings, LAT).length, 0, 'other.svc is still learning');
});

test('an agent identity with a scope is held to it from the first request; enforce denies outside it', () => {
  const h = new Harness({ lateral: { scopes: [{ identity: 'spiffe://cluster.local/ns/agents/*', allow: ['^GET \\S+ /tickets(/|$)'] }] } }, { mode: 'enforce' });
  assert.equal(h.send({ time: T0, path: '/tickets/42', workload: AGENT }).decision.action, 'allow');
  const out = h.send({ time: T0 + 1, method: 'DELETE', path: '/tickets/42', workload: AGENT });
  assert.deepEqual(out.decision, { action: 'deny', status: 403, reason: 'LATERAL-Movement', rule: LAT });
  assert.equal(h.send({ time: T0 + 2, method: 'DELETE', path: '/tickets/42', workload: WEB }).decision.action, 'allow', 'others are not scoped');
});
