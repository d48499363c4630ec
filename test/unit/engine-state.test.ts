// Bounded state helpers: sliding counts, distinct-in-window, EWMA baselines, caps, event-time TTL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventClock, WindowBaseline, WindowCount, WindowDistinct, boundedMap } from '../../extproc/src/engine/state.ts';

test('WindowCount counts events within the window and forgets older ones', () => {
  const w = new WindowCount(60_000);
  for (let i = 0; i < 10; i++) w.add(1_000_000 + i * 1000);
  assert.equal(w.total(1_010_000), 10);
  assert.equal(w.total(1_000_000 + 120_000), 0);
  assert.equal(w.add(1_000_000 + 62_000, 3), 3 + 5, "the bucket holding events 0-4 fell out of the window; 5-9 remain");
});

test('WindowDistinct counts distinct values in the window, bounded by its cap', () => {
  const d = new WindowDistinct(10_000, 4);
  assert.equal(d.add('a', 0), 1);
  assert.equal(d.add('a', 1), 1);
  assert.equal(d.add('b', 2), 2);
  assert.equal(d.size(10_001), 1, 'a last seen at 1, b at 2: only b within (1, 10001]');
  for (const v of ['c', 'd', 'e', 'f', 'g']) d.add(v, 10_002);
  assert.equal(d.size(10_002), 4, 'cap holds');
});

test('WindowBaseline learns mean and spread of per-window counts, idle windows count as zero', () => {
  const b = new WindowBaseline(1000);
  for (let w = 0; w < 20; w++) for (let i = 0; i < 10; i++) b.add(w * 1000 + i);
  assert.equal(b.windows, 19);
  assert.ok(Math.abs(b.mean - 10) < 0.01);
  b.add(30_000);
  assert.ok(b.mean < 10, 'idle windows pulled the mean down');
});

test('boundedMap: entry cap and event-time TTL', () => {
  const clock = new EventClock();
  clock.advance(1000);
  const m = boundedMap<number>(clock, { caps: { maxEntries: 3, maxBytes: 1_000_000 }, ttlMs: 500 });
  for (let i = 0; i < 10; i++) m.set(`k${i}`, i);
  assert.equal(m.size, 3);
  assert.equal(m.get('k9'), 9);
  clock.advance(1600);
  assert.equal(m.get('k9'), undefined, 'expired by event time');
  clock.advance(100);
  assert.equal(clock.now(), 1600, 'the clock never goes backwards');
});

test('boundedMap: byte cap evicts least recently used', () => {
  const m = boundedMap<string>(new EventClock(), { caps: { maxEntries: 1000, maxBytes: 1000 }, ttlMs: 1e9, sizeOf: (_k, v) => (v as string).length });
  for (let i = 0; i < 10; i++) m.set(`k${i}`, 'x'.repeat(300));
  assert.ok(m.calculatedSize <= 1000);
  assert.equal(m.size, 3);
});
