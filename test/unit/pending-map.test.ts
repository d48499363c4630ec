// PendingMap: per-request state from request to response (engine exchanges, inventory entries,
// telemetry spans), capped and expiring, with a sentinel that keeps lru-cache from emptying its
// arrays on every last delete (extproc/src/engine/pending-map.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PendingMap } from '../../extproc/src/engine/pending-map.ts';

function clock(): { now(): number; advance(ms: number): void } {
  let t = 1_000;
  return { now: () => t, advance: (ms) => { t += ms; } };
}

test('take returns what was set once, then nothing; size counts only real entries', () => {
  const m = new PendingMap<{ n: number }>({ max: 10, ttlMs: 60_000 }, { n: -1 });
  assert.equal(m.size, 0);
  m.set('a', { n: 1 });
  m.set('b', { n: 2 });
  assert.equal(m.size, 2);
  assert.deepEqual(m.get('a'), { n: 1 });
  assert.deepEqual(m.take('a'), { n: 1 });
  assert.equal(m.take('a'), undefined);
  assert.deepEqual(m.take('b'), { n: 2 });
  assert.equal(m.size, 0);
  // The map keeps working after it went empty.
  m.set('c', { n: 3 });
  assert.deepEqual(m.take('c'), { n: 3 });
});

test('the cap evicts the oldest real entry (reported), never the sentinel', () => {
  const evicted: string[] = [];
  const sentinel = { n: -1 };
  const m = new PendingMap<{ n: number }>({ max: 3, ttlMs: 60_000, onEvicted: (_v, id) => evicted.push(id) }, sentinel);
  for (let i = 0; i < 10; i++) m.set(`r${i}`, { n: i });
  assert.equal(m.size, 3);
  assert.deepEqual(evicted, ['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
  for (const id of ['r7', 'r8', 'r9']) assert.ok(m.take(id));
  assert.equal(m.size, 0);
  for (let i = 0; i < 3; i++) m.set(`s${i}`, { n: i });
  assert.equal(m.size, 3, 'all three slots are usable again: the sentinel was never evicted');
});

test('entries expire after the TTL: purgeStale reports them, take finds nothing', () => {
  const c = clock();
  const evicted: string[] = [];
  const m = new PendingMap<{ n: number }>({ max: 100, ttlMs: 1_000, perf: c, onEvicted: (_v, id) => evicted.push(id) }, { n: -1 });
  m.set('old', { n: 1 });
  c.advance(600);
  m.set('young', { n: 2 });
  c.advance(600);
  m.purgeStale();
  assert.deepEqual(evicted, ['old']);
  assert.equal(m.take('old'), undefined);
  assert.deepEqual(m.take('young'), { n: 2 });
  c.advance(10_000_000);
  m.set('later', { n: 3 });
  assert.deepEqual(m.take('later'), { n: 3 }, 'the sentinel never expires, so the map stays usable');
});

test('take and clear are not evictions; the sentinel id is inert', () => {
  const evicted: string[] = [];
  const m = new PendingMap<{ n: number }>({ max: 5, ttlMs: 60_000, onEvicted: (_v, id) => evicted.push(id) }, { n: -1 });
  m.set('a', { n: 1 });
  m.take('a');
  m.set('b', { n: 2 });
  m.clear();
  assert.equal(m.size, 0);
  assert.deepEqual(evicted, []);
  const sentinelId = '\u0000pending-sentinel';
  m.set(sentinelId, { n: 9 });
  assert.equal(m.get(sentinelId), undefined);
  assert.equal(m.take(sentinelId), undefined);
  assert.equal(m.size, 0);
});

test('property: behaves like a capped insertion-ordered map under any sequence of set/take', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 12 })), { maxLength: 200 }), (max, ops) => {
    const m = new PendingMap<{ id: number }>({ max, ttlMs: 60_000 }, { id: -1 });
    const model = new Map<number, { id: number }>();
    for (const [isSet, id] of ops) {
      if (isSet) {
        model.delete(id);
        model.set(id, { id });
        if (model.size > max) model.delete(model.keys().next().value!);
        m.set(String(id), { id });
      } else {
        const expected = model.get(id);
        model.delete(id);
        assert.deepEqual(m.take(String(id)), expected);
      }
      assert.equal(m.size, model.size);
    }
  }), { numRuns: 300 });
});
