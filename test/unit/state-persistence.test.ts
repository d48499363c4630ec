// Detector baselines survive a restart: an engine learns a call graph, BFLA callers and a rate
// baseline; a new engine restored from its snapshot judges at once (no new learning period), and a
// fresh engine given the same traffic does not (so each assertion depends on the restored state).
// Rows of another format version, corrupt JSON and malformed entries are skipped, never fatal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, T0, WEB, QUICK_LEARNING, bearer, ofDetector } from './detectors/harness.ts';
import { CLOCK_ROW, STATE_FORMAT_VERSION, StateRegistry, type StateRow } from '../../extproc/src/engine/state-snapshot.ts';
import { EventClock, boundedMap } from '../../extproc/src/engine/state.ts';

const WORKER = 'spiffe://cluster.local/ns/payments/sa/payment-worker';
const user = (sub: string) => bearer({ sub });
const SETTINGS = { learning: QUICK_LEARNING };
/** When the first engine stops: six minutes of traffic. */
const END = T0 + 6 * 60_000;
/** The probes start a minute later, so the rate probe's sliding window holds only the probe. */
const PROBE = END + 61_000;
let lastLearned = 0;

/** Six minutes of ordinary traffic: WEB calls shop.svc, admins root and ops use /admin/users, and
 *  one client reads /feed in bursty minutes (20, 55, 20, ... requests), a history with a wide
 *  spread. Returns the time of the last request. */
function learn(h: Harness): number {
  let last = 0;
  for (let m = 0; m < 6; m++) {
    const n = m % 2 === 0 ? 20 : 55;
    for (let i = 0; i < n; i++) h.send({ time: (last = Math.max(last, T0 + m * 60_000 + Math.floor((i * 60_000) / n))), path: '/feed', workload: WEB, client: '10.0.2.1' });
    for (let i = 0; i < 6; i++) h.send({ time: (last = Math.max(last, T0 + m * 60_000 + i * 10_000 + 1)), path: '/admin/users', workload: WEB, headers: user(['root', 'ops'][i % 2]!) });
  }
  return last;
}

/** What the restored engine is asked; each element is what one probe reported. The /feed probe
 *  (90 requests in 45 s) is within the spread of that caller's history, and above the floor a
 *  caller without history is held to. */
function probe(h: Harness, start: number): { knownEdge: number; newEdge: number; admin: number; intruder: number; burst: number } {
  const knownEdge = ofDetector(h.send({ time: start, path: '/orders', workload: WEB }).requestFindings, 'lateral-movement').length;
  const newEdge = ofDetector(h.send({ time: start + 1, path: '/users/1', workload: WORKER }).requestFindings, 'lateral-movement').length;
  const admin = ofDetector(h.send({ time: start + 2, path: '/admin/users', workload: WEB, headers: user('root') }).requestFindings, 'bfla').length;
  const intruder = ofDetector(h.send({ time: start + 3, path: '/admin/users', workload: WEB, headers: user('mallory') }).requestFindings, 'bfla').length;
  let burst = 0;
  for (let i = 0; i < 90; i++) burst += ofDetector(h.send({ time: start + 10 + i * 500, path: '/feed', workload: WEB, client: '10.0.2.1' }).findings, 'resource-consumption').length;
  return { knownEdge, newEdge, admin, intruder, burst };
}

function learnedSnapshot(): StateRow[] {
  const first = new Harness(SETTINGS);
  lastLearned = learn(first);
  assert.equal(ofDetector(first.all, 'lateral-movement').length + ofDetector(first.all, 'bfla').length, 0, 'learning traffic is quiet');
  return first.engine.state.snapshot();
}

test('a restored engine keeps the call graph, BFLA callers and rate baseline, and judges without a new learning period', () => {
  const rows = learnedSnapshot();
  const restored = new Harness(SETTINGS);
  const result = restored.engine.state.restore(rows);
  assert.deepEqual(result.skipped, []);
  assert.deepEqual(probe(restored, PROBE), { knownEdge: 0, newEdge: 1, admin: 0, intruder: 1, burst: 0 });
  // Without the restore: nothing is judged new (every service is learning again) and the known
  // caller's usual rate is reported against the floor for strangers.
  assert.deepEqual(probe(new Harness(SETTINGS), PROBE), { knownEdge: 0, newEdge: 0, admin: 0, intruder: 0, burst: 1 });
});

test('the snapshot holds the event clock and one row per persisted map, short windows excluded', () => {
  const rows = learnedSnapshot();
  const byName = new Map(rows.map((r) => [r.name, r]));
  assert.equal(JSON.parse(byName.get(CLOCK_ROW)!.state), lastLearned, 'the clock is the latest request time');
  for (const name of ['learning.first-seen', 'objects.collections', 'lateral.edges', 'bfla.callers', 'resource.rates', 'auth.operations', 'bola.collections', 'contract.learned', 'exposure.by-caller']) {
    assert.ok(byName.has(name), `${name} is persisted`);
  }
  assert.ok(rows.every((r) => r.version === STATE_FORMAT_VERSION));
  // Per-source windows and caches are not (they are seconds to minutes long).
  assert.equal(rows.length, new Set(rows.map((r) => r.name)).size);
  assert.ok(!rows.some((r) => /websocket|hard|tokens|verdicts/.test(r.name)));
  assert.ok(byName.has('bola.ownership'), 'object ownership is persisted (keyed hashes, never raw IDs: bola-ownership-persistence.test.ts)');
  const edges = JSON.parse(byName.get('lateral.edges')!.state) as unknown[][];
  assert.equal(edges.length, 1, 'one call-graph edge learned');
  assert.match(String(edges[0]![0]), /frontend/);
});

test('entries keep their age across a snapshot; downtime ages them once, when the clock moves on', () => {
  const caps = { maxEntries: 10, maxBytes: 10_000 };
  const make = () => {
    const clock = new EventClock();
    const registry = new StateRegistry(clock);
    const map = boundedMap<{ n: number }>(clock, { caps, ttlMs: 1000, persist: { registry, name: 'test.map' } });
    return { clock, registry, map };
  };
  const a = make();
  a.clock.advance(T0);
  a.map.set('early', { n: 1 });
  a.clock.advance(T0 + 600);
  a.map.set('late', { n: 2 });
  a.clock.advance(T0 + 900);
  const b = make();
  b.registry.restore(a.registry.snapshot());
  assert.equal(b.clock.now(), T0 + 900, 'the clock comes back');
  assert.deepEqual(b.map.get('early'), { n: 1 });
  assert.equal(Math.round(b.map.getRemainingTTL('early')), 100);
  b.clock.advance(T0 + 1001); // traffic resumes: the first entry is past its TTL, the second is not
  assert.equal(b.map.get('early'), undefined);
  assert.deepEqual(b.map.get('late'), { n: 2 });
  assert.equal(Math.round(b.map.getRemainingTTL('late')), 599);
});

test('rows of another format version, corrupt JSON and malformed entries are skipped; the rest restores', () => {
  const rows = learnedSnapshot();
  const damaged = rows.map((r): StateRow => {
    if (r.name === 'lateral.edges') return { ...r, version: STATE_FORMAT_VERSION + 1 };
    if (r.name === 'bfla.callers') return { ...r, state: r.state.slice(0, r.state.length / 2) };
    if (r.name === 'resource.rates') return { ...r, state: JSON.stringify([['k', { zz: 1 }, 1000, 1]]) };
    return r;
  });
  const restored = new Harness(SETTINGS);
  const result = restored.engine.state.restore(damaged);
  assert.deepEqual(result.skipped.map((s) => s.name).sort(), ['bfla.callers', 'lateral.edges', 'resource.rates']);
  assert.match(result.skipped.find((s) => s.name === 'lateral.edges')!.reason, /format version/);
  assert.match(result.skipped.find((s) => s.name === 'bfla.callers')!.reason, /corrupt JSON/);
  assert.match(result.skipped.find((s) => s.name === 'resource.rates')!.reason, /unreadable state.*unknown tag/);
  // The learning tracker restored: the service is learned, so the now-empty call graph reports
  // even the old edge as new, and the emptied BFLA callers map converges again before judging.
  const p = probe(restored, PROBE);
  assert.equal(p.knownEdge, 1, 'edges skipped: the old edge is new to this engine');
  assert.equal(p.newEdge, 1);
});

test('bad rows of every kind never throw', () => {
  const restored = new Harness(SETTINGS);
  const bad: StateRow[] = [
    { name: CLOCK_ROW, version: STATE_FORMAT_VERSION, state: String(T0) },
    { name: 'lateral.edges', version: STATE_FORMAT_VERSION, state: '{"not":"a list"}' },
    { name: 'bfla.callers', version: STATE_FORMAT_VERSION, state: '[[1,2,3]]' },
    { name: 'bfla.resources', version: STATE_FORMAT_VERSION, state: JSON.stringify([['k', { o: {} }, -5, 1]]) },
    { name: 'resource.rates', version: STATE_FORMAT_VERSION, state: JSON.stringify([['k', { c: 'WindowBaseline', v: { o: { windowMs: { n: 'NaN' } } } }, 1, 1]]) },
    { name: 'learning.first-seen', version: STATE_FORMAT_VERSION, state: JSON.stringify([['k', { c: 'Process', v: 1 }, 1, 1]]) },
    { name: 'objects.collections', version: STATE_FORMAT_VERSION, state: '[' + '['.repeat(100_000) },
  ];
  const result = restored.engine.state.restore(bad);
  assert.equal(result.skipped.length, bad.length - 1, 'every map row is skipped');
  assert.equal(result.restored, 1, 'only the clock');
  // Without a usable clock no entry's age is known: nothing is restored.
  const noClock = new Harness(SETTINGS).engine.state.restore([{ name: CLOCK_ROW, version: STATE_FORMAT_VERSION, state: '"yesterday"' }, ...learnedSnapshot().filter((r) => r.name !== CLOCK_ROW)]);
  assert.equal(noClock.restored, 0);
  assert.ok(noClock.skipped.some((s) => s.name === 'lateral.edges' && /no saved clock/.test(s.reason)));
  // The engine works normally afterwards.
  assert.equal(restored.send({ time: T0, path: '/orders', workload: WEB }).decision.action, 'allow');
});

test('a policy profile\'s detector state is restored when its profile is first used after the restart', () => {
  const profile = { key: 'ns-shop', denyRules: [], settings: { caps: { maxEntries: 2000, maxBytes: 4 * 1024 * 1024 }, learning: QUICK_LEARNING } };
  const first = new Harness(SETTINGS, { profileFor: () => profile });
  learn(first);
  const rows = first.engine.state.snapshot();
  assert.ok(rows.some((r) => /^profile:[0-9a-f]{16}\/lateral\.edges$/.test(r.name)), 'profile maps are saved under a scoped name');
  const restored = new Harness(SETTINGS, { profileFor: () => profile });
  restored.engine.state.restore(rows);
  // Until the profile is used its rows wait, and are carried into the next snapshot.
  const waiting = restored.engine.state.snapshot().find((r) => r.name.endsWith('/lateral.edges'));
  assert.equal(waiting?.state, rows.find((r) => r.name.endsWith('/lateral.edges'))!.state, 'unchanged while the clock has not moved');
  const p = probe(restored, PROBE);
  assert.equal(p.knownEdge, 0);
  assert.equal(p.newEdge, 1);
  assert.equal(p.intruder, 1);
});

test('rebuilt detectors replace their maps in the registry; a dropped detector\'s map is no longer saved', () => {
  const h = new Harness(SETTINGS);
  for (let i = 0; i < 20; i++) h.send({ time: T0 + i * 100, path: '/orders', workload: WEB });
  assert.ok(h.engine.state.snapshot().some((r) => r.name === 'lateral.edges'));
  h.engine.reconfigure({ denyRules: [], settings: { caps: { maxEntries: 100, maxBytes: 1 << 20 } }, detectors: () => [] });
  const names = h.engine.state.snapshot().map((r) => r.name).sort();
  assert.deepEqual(names, [CLOCK_ROW, 'learning.first-seen', 'objects.collections'].sort());
});

test('secrets seen in bodies are not in the snapshot (it is written to disk)', () => {
  const h = new Harness(SETTINGS);
  const password = 'Pw-7d1c0ffee9a2b4';
  const card = '4111111111111111';
  const json = { 'content-type': 'application/json' };
  for (let i = 0; i < 4; i++) {
    h.send({ time: T0 + i, method: 'POST', path: '/login', workload: WEB, headers: json, body: { username: 'alice', password }, responseHeaders: json, responseBody: { username: 'alice', password } });
    h.send({ time: T0 + i, method: 'POST', path: '/payments', workload: WEB, headers: json, body: { card, amount: 10 }, responseHeaders: json, responseBody: { id: 7 + i, card, amount: 10 } });
  }
  const text = JSON.stringify(h.engine.state.snapshot());
  assert.ok(text.includes('/payments') || text.includes('payments'), 'the snapshot holds what was learned from this traffic');
  assert.ok(!text.includes(password) && !text.includes(card));
});
