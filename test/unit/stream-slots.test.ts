// Issue #10 item 3: admission of ext_proc streams (extproc/src/stream-slots.ts): the server-wide cap,
// the reserve for light connections, idle reaping; and, as a property, that no sequence of
// acquire/release/reap ever holds more than the cap or loses track of a slot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RESERVE_FRACTION, StreamSlots, type StreamSlot } from '../../extproc/src/stream-slots.ts';

const never = (): void => {};

test('a stream beyond the cap is refused and counted; a released slot is free again', () => {
  const slots = new StreamSlots({ maxStreams: 5, idleMs: 0 });
  const held = Array.from({ length: 5 }, (_, i) => slots.acquire(`conn-${i}`, never));
  assert.ok(held.every((s) => s !== undefined));
  assert.equal(slots.acquire('conn-new', never), undefined);
  assert.equal(slots.refused, 1);
  held[0]!.release();
  held[0]!.release(); // idempotent: frees one slot, not two
  assert.equal(slots.held, 4);
  assert.ok(slots.acquire('conn-new', never));
  assert.equal(slots.acquire('conn-other', never), undefined);
  assert.equal(slots.refused, 2);
});

test('one busy connection cannot take the reserve: a light connection still gets in', () => {
  const max = 100;
  const reserve = Math.floor(max * RESERVE_FRACTION);
  const slots = new StreamSlots({ maxStreams: max, idleMs: 0 });
  let flood = 0;
  while (slots.acquire('noisy', never)) flood++;
  assert.equal(flood, max - reserve, 'the noisy connection stops short of the cap by the reserve');
  // Other connections (sidecars) each get streams from the reserve, until the cap itself.
  let others = 0;
  for (let i = 0; i < 1000 && slots.acquire(`quiet-${i}`, never); i++) others++;
  assert.equal(others, reserve);
  assert.equal(slots.held, max);
  assert.equal(slots.acquire('quiet-late', never), undefined);
});

test('with a tiny cap there is no reserve: a single connection may use every slot', () => {
  const slots = new StreamSlots({ maxStreams: 2, idleMs: 0 });
  assert.ok(slots.acquire('only', never));
  assert.ok(slots.acquire('only', never));
  assert.equal(slots.acquire('only', never), undefined);
});

test('streams idle past the deadline are reaped once; touched ones stay', () => {
  let now = 1_000;
  const slots = new StreamSlots({ maxStreams: 10, idleMs: 500 }, () => now);
  const idled: string[] = [];
  const a = slots.acquire('a', () => idled.push('a'))!;
  const b = slots.acquire('b', () => idled.push('b'))!;
  now += 400;
  b.touch();
  now += 100;
  assert.equal(slots.reapIdle(), 1);
  assert.deepEqual(idled, ['a']);
  assert.equal(slots.held, 1, 'the reaped slot is released');
  a.release(); // the stream's own close after reaping changes nothing
  assert.equal(slots.held, 1);
  assert.equal(slots.reapIdle(), 0);
  now += 500;
  assert.equal(slots.reapIdle(), 1);
  assert.deepEqual(idled, ['a', 'b']);
  assert.equal(slots.reaped, 2);
  assert.equal(slots.connections, 0);
});

test('idleMs 0 never reaps', () => {
  let now = 0;
  const slots = new StreamSlots({ maxStreams: 3, idleMs: 0 }, () => now);
  slots.acquire('a', () => assert.fail('reaped'));
  now += 1e9;
  assert.equal(slots.reapIdle(), 0);
});

test('bad limits are refused with a clear error', () => {
  assert.throws(() => new StreamSlots({ maxStreams: 0, idleMs: 0 }), /maxStreams/);
  assert.throws(() => new StreamSlots({ maxStreams: 1.5, idleMs: 0 }), /maxStreams/);
  assert.throws(() => new StreamSlots({ maxStreams: 1, idleMs: -1 }), /idleMs/);
  assert.throws(() => new StreamSlots({ maxStreams: 1, idleMs: Number.NaN }), /idleMs/);
});

test('property: no sequence of acquire/release/touch/reap holds more than the cap or loses a slot', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('acquire' as const), connection: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ kind: fc.constant('release' as const), index: fc.nat() }),
    fc.record({ kind: fc.constant('touch' as const), index: fc.nat() }),
    fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 300 }) }),
    fc.record({ kind: fc.constant('reap' as const) }),
  );
  fc.assert(fc.property(fc.integer({ min: 1, max: 40 }), fc.array(op, { maxLength: 300 }), (maxStreams, ops) => {
    let now = 0;
    const slots = new StreamSlots({ maxStreams, idleMs: 200 }, () => now);
    // The model: which slots are live, per connection.
    const live: { slot: StreamSlot; connection: number; closed: boolean }[] = [];
    for (const o of ops) {
      if (o.kind === 'acquire') {
        const entry = { slot: undefined as unknown as StreamSlot, connection: o.connection, closed: false };
        const slot = slots.acquire(`c${o.connection}`, () => { entry.closed = true; });
        if (slot) { entry.slot = slot; live.push(entry); }
        else assert.ok(slots.held >= maxStreams - Math.floor(maxStreams * RESERVE_FRACTION), 'refused only near the cap');
      } else if (o.kind === 'release' && live.length > 0) {
        const [entry] = live.splice(o.index % live.length, 1);
        entry!.slot.release();
      } else if (o.kind === 'touch' && live.length > 0) {
        live[o.index % live.length]!.slot.touch();
      } else if (o.kind === 'tick') {
        now += o.ms;
      } else if (o.kind === 'reap') {
        slots.reapIdle();
        for (let i = live.length - 1; i >= 0; i--) if (live[i]!.closed) live.splice(i, 1);
      }
      assert.ok(slots.held <= maxStreams);
      assert.equal(slots.held, live.length);
      assert.equal(slots.connections, new Set(live.map((e) => e.connection)).size);
    }
  }), { numRuns: 300 });
});
