// The persisted-state codec (engine/state-snapshot.ts) and the window classes' toJSON/fromJSON:
// anything a detector stores survives encode -> JSON text -> decode, a restored window behaves
// exactly like the original from then on, and arbitrary JSON never decodes by accident or crashes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { STRUCTURED_CODEC } from '../../extproc/src/engine/state-snapshot.ts';
import { Ewma, WindowBaseline, WindowCount, WindowDistinct } from '../../extproc/src/engine/state.ts';

const roundTrip = <T>(value: T): T => STRUCTURED_CODEC.decode(JSON.parse(JSON.stringify(STRUCTURED_CODEC.encode(value)))) as T;

/** Detector-like values: plain objects, arrays, Maps and Sets of user strings, odd numbers. */
const detectorValue = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' },
    fc.string(), fc.boolean(), fc.constant(null), fc.double(), fc.integer(),
    fc.constantFrom(Infinity, -Infinity),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string(), tie('value'), { maxKeys: 4, noNullPrototype: true }),
    fc.array(fc.tuple(fc.string(), tie('value')), { maxLength: 4 }).map((pairs) => new Map(pairs)),
    fc.array(fc.string(), { maxLength: 4 }).map((xs) => new Set(xs))),
})).value;

test('any detector-like value survives the codec exactly (Maps, Sets, infinities, user strings that look like tags)', () => {
  fc.assert(fc.property(detectorValue, (v) => {
    assert.deepStrictEqual(roundTrip(v), v);
  }), { numRuns: 500 });
  // Strings and keys shaped like the codec's own tags stay data.
  const tricky = { o: 'x', m: [['a', 1]], c: 'WindowBaseline', nested: new Map([['{"s":[]}', new Set(['u', 'n'])]]) };
  assert.deepStrictEqual(roundTrip(tricky), tricky);
});

/** Event times: increasing, sometimes in bursts, sometimes after long gaps. */
const times = fc.array(fc.oneof(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: 600_000 })), { minLength: 1, maxLength: 80 })
  .map((steps) => { let t = 1_700_000_000_000; return steps.map((s) => (t += s)); });

test('a restored WindowBaseline, WindowCount and Ewma continue exactly as the originals', () => {
  fc.assert(fc.property(times, times, fc.integer({ min: 1000, max: 120_000 }), fc.boolean(), (before, afterSteps, windowMs, exclude) => {
    const base = new WindowBaseline(windowMs);
    const count = new WindowCount(windowMs);
    const ewma = new Ewma(0.3);
    for (const t of before) { base.add(t); count.add(t); ewma.add(t % 97); }
    if (exclude) base.excludeCurrentWindow();
    const [base2, count2, ewma2] = roundTrip([base, count, ewma]);
    assert.ok(base2 instanceof WindowBaseline && count2 instanceof WindowCount && ewma2 instanceof Ewma);
    const offset = before.at(-1)! - afterSteps[0]!;
    for (const step of afterSteps) {
      const t = step + offset;
      assert.equal(base2.add(t), base.add(t));
      assert.equal(count2.add(t), count.add(t));
      ewma.add(t % 89); ewma2.add(t % 89);
    }
    assert.deepEqual([base2.windows, base2.mean, base2.stddev], [base.windows, base.mean, base.stddev]);
    assert.deepEqual([ewma2.samples, ewma2.mean, ewma2.stddev], [ewma.samples, ewma.mean, ewma.stddev]);
  }), { numRuns: 200 });
});

test('a restored WindowDistinct keeps its values, window and cap', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.string({ maxLength: 3 }), fc.integer({ min: 0, max: 10_000 })), { maxLength: 60 }), fc.integer({ min: 1, max: 16 }), (adds, cap) => {
    const d = new WindowDistinct(2000, cap);
    let t = 0;
    for (const [v, step] of adds) d.add(v, (t += step));
    const d2 = roundTrip(d);
    assert.deepEqual([...d2.values()], [...d.values()]);
    assert.equal(d2.add('probe', t + 1), d.add('probe', t + 1));
    assert.equal(d2.size(t + 3000), d.size(t + 3000));
  }), { numRuns: 200 });
});

test('arbitrary JSON either decodes or throws an Error: never a crash of another kind, never a class by accident', () => {
  fc.assert(fc.property(fc.jsonValue(), (j) => {
    try {
      const v = STRUCTURED_CODEC.decode(j);
      // Only tagged objects decode; any object that did decode came from a one-key tag.
      if (j !== null && typeof j === 'object') assert.ok(!Array.isArray(j) && Object.keys(j).length <= 2, JSON.stringify(j));
      void v;
    } catch (err) {
      assert.ok(err instanceof Error);
    }
  }), { numRuns: 1000 });
  assert.throws(() => STRUCTURED_CODEC.decode({ c: 'WindowBaseline', v: { o: { windowMs: 'x' } } }), /windowMs is not a number/);
  assert.throws(() => STRUCTURED_CODEC.decode({ c: 'Function', v: 1 }), /unknown tag|malformed/);
  assert.throws(() => STRUCTURED_CODEC.encode(new Date()), /cannot persist a Date/);
  let deep: unknown = 1;
  for (let i = 0; i < 1000; i++) deep = { a: [deep] };
  assert.throws(() => STRUCTURED_CODEC.decode(deep), /nested too deeply/);
});
