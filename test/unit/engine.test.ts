// The engine integration: detectors run on every exchange, policy mode turns findings into
// decisions, observers see decisions and findings, pairing is bounded, detector failures are
// contained, deny rules keep working, custom detector sets plug in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { Detector } from '../../extproc/src/engine/detector.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { createDefaultDetectors, DETECTOR_FACTORIES } from '../../extproc/src/engine/detectors/index.ts';
import { findingFor } from '../../extproc/src/engine/detector-context.ts';
import { callerKeyOf } from '../../extproc/src/engine/exchange.ts';
import { SMALL_CAPS, T0, WEB, bearer } from './detectors/harness.ts';

let seq = 0;
function request(path: string, extra: Partial<RequestEvent> = {}): RequestEvent {
  return { requestId: `e${++seq}`, time: T0 + seq, caller: { workload: WEB, mtls: true, identitySource: 'filter' }, method: 'GET', authority: 'svc', path, headers: new Map(), ...extra };
}

/** A detector that flags paths containing "bad" (deny) or "slow" (rate-limit), and counts responses. */
function probe(): Detector & { responses: number } {
  return {
    name: 'probe',
    responses: 0,
    onRequest(x) {
      if (x.request.path.includes('bad')) return [findingFor('probe', x, { category: 'API1:2023-BOLA', severity: 'high', summary: 'bad', evidence: {}, enforcement: 'deny' })];
      if (x.request.path.includes('slow')) return [findingFor('probe', x, { category: 'API4:2023-UnrestrictedResourceConsumption', severity: 'medium', summary: 'slow', evidence: {}, enforcement: 'rate-limit' })];
      if (x.request.path.includes('note')) return [findingFor('probe', x, { category: 'LATERAL-Movement', severity: 'low', summary: 'note', evidence: {}, enforcement: 'none' })];
      return undefined;
    },
    onResponse(x) { this.responses++; assert.ok(x.response); return undefined; },
  };
}

test('monitor records findings and allows; enforce turns deny into 403 and rate-limit into 429; none never blocks', () => {
  for (const mode of ['monitor', 'enforce'] as const) {
    const p = probe();
    const engine = new Engine({ denyRules: [], mode, detectors: () => [p] });
    const seen: Finding[] = [];
    engine.addObserver({ onFinding: (f) => seen.push(f) });
    const bad = engine.decide(request('/bad'));
    const slow = engine.decide(request('/slow'));
    const note = engine.decide(request('/note'));
    assert.equal(seen.length, 3);
    assert.equal(note.action, 'allow');
    if (mode === 'monitor') {
      assert.equal(bad.action, 'allow');
      assert.equal(slow.action, 'allow');
    } else {
      assert.deepEqual(bad, { action: 'deny', status: 403, reason: 'API1:2023-BOLA', rule: 'probe' });
      assert.deepEqual(slow, { action: 'deny', status: 429, reason: 'API4:2023-UnrestrictedResourceConsumption', rule: 'probe' });
    }
  }
});

test('modeFor overrides the mode per exchange (per-namespace policy)', () => {
  const engine = new Engine({ denyRules: [], mode: 'monitor', modeFor: (x) => (x.request.authority === 'strict' ? 'enforce' : undefined), detectors: () => [probe()] });
  assert.equal(engine.decide(request('/bad')).action, 'allow');
  assert.equal(engine.decide(request('/bad', { authority: 'strict' })).action, 'deny');
});

test('static deny rules still decide first, and denied requests are not kept for pairing', () => {
  const engine = new Engine({ denyRules: [{ name: 'no-worker', identity: WEB, path: '/secret*' }], detectors: () => [probe()] });
  const records: unknown[] = [];
  engine.addObserver({ onDecision: (r) => records.push(r) });
  assert.deepEqual(engine.decide(request('/secret/1')), { action: 'deny', status: 403, reason: 'identity-denied', rule: 'no-worker' });
  assert.equal(engine.pendingExchanges, 0);
  assert.equal(records.length, 1);
});

test('responses pair with their request exchange; the pending table is bounded', () => {
  const p = probe();
  const engine = new Engine({ denyRules: [], detectors: () => [p], maxPendingExchanges: 3 });
  const reqs = [1, 2, 3, 4, 5].map((i) => request(`/x/${i}`));
  for (const r of reqs) engine.decide(r);
  assert.equal(engine.pendingExchanges, 3, 'oldest evicted');
  for (const r of reqs) engine.observeResponse(r, { requestId: r.requestId, time: r.time, status: 200, headers: new Map() });
  assert.equal(p.responses, 5, 'an evicted request is rebuilt for its response, never lost');
  assert.equal(engine.pendingExchanges, 0);
});

test('a throwing detector is reported and skipped; the others still run and the request is decided', () => {
  const p = probe();
  const broken: Detector = { name: 'broken', onRequest() { throw new Error('boom'); }, onResponse() { throw new Error('boom'); } };
  const engine = new Engine({ denyRules: [], mode: 'enforce', detectors: () => [broken, p] });
  const errors: string[] = [];
  engine.addObserver({ onDetectorError: (name, err) => errors.push(`${name}:${(err as Error).message}`) });
  const r = request('/bad');
  assert.equal(engine.decide(r).action, 'deny');
  engine.observeResponse(r, { requestId: r.requestId, time: r.time, status: 200, headers: new Map() });
  assert.deepEqual(errors, ['broken:boom', 'broken:boom']);
});

test('the decision record carries the request-phase findings', () => {
  const engine = new Engine({ denyRules: [], detectors: () => [probe()] });
  let findings: readonly Finding[] | undefined;
  engine.addObserver({ onDecision: (r) => { findings = r.findings; } });
  engine.decide(request('/bad'));
  assert.equal(findings?.length, 1);
});

test('the default engine runs every registered detector; content detectors can append factories', () => {
  const engine = new Engine({ denyRules: [], settings: { caps: SMALL_CAPS } });
  assert.deepEqual(engine.detectorNames.slice(0, 6), ['bola', 'broken-auth', 'resource-consumption', 'bfla', 'business-flows', 'lateral-movement']);
  const extra = (): Detector => ({ name: 'content-test' });
  DETECTOR_FACTORIES.push(extra);
  try {
    assert.ok(new Engine({ denyRules: [], settings: { caps: SMALL_CAPS } }).detectorNames.includes('content-test'));
  } finally {
    DETECTOR_FACTORIES.splice(DETECTOR_FACTORIES.indexOf(extra), 1);
  }
  assert.equal(typeof createDefaultDetectors, 'function');
});

test('caller keys: end user from the JWT at the workload, API keys only as a hash, forwarded client, workload, IP', () => {
  const base = request('/');
  const jwtHeaders = new Map(Object.entries(bearer({ sub: 'alice', iss: 'https://idp' })).map(([k, v]) => [k, [v]]));
  assert.equal(callerKeyOf({ ...base, headers: jwtHeaders }), `user:https://idp|alice@${WEB}`);
  const key = callerKeyOf({ ...base, headers: new Map([['x-api-key', ['sk_live_SECRET']]]) });
  assert.match(key, /^key:[0-9a-f]{16}@/);
  assert.ok(!key.includes('SECRET'));
  assert.equal(callerKeyOf({ ...base, headers: new Map([['x-forwarded-for', ['10.1.2.3, 10.0.0.1']]]) }), `client:10.1.2.3@${WEB}`);
  assert.equal(callerKeyOf(base), WEB);
  assert.equal(callerKeyOf({ ...base, caller: { mtls: false, sourceAddress: '10.9.9.9:4444', identitySource: 'none' }, headers: new Map([['x-forwarded-for', ['1.2.3.4']]]) }), 'ip:10.9.9.9',
    'without a workload identity, a forwarded-for header is not trusted');
  assert.equal(callerKeyOf({ ...base, caller: { mtls: false, identitySource: 'none' } }), 'anonymous');
});

test('reconfigure keeps learned detector state when only rules or mode change, and rebuilds it when settings change', () => {
  let built = 0;
  const factory = (): Detector[] => { built++; return [probe()]; };
  const engine = new Engine({ denyRules: [], detectors: factory });
  engine.reconfigure({ denyRules: [{ name: 'r', identity: WEB }], mode: 'enforce', detectors: factory });
  assert.equal(built, 1);
  assert.equal(engine.decide(request('/bad')).action, 'deny', 'the new rule and mode apply');
  engine.reconfigure({ denyRules: [], detectors: factory, settings: { bola: { foreignThreshold: 9 } } });
  assert.equal(built, 2);
});
