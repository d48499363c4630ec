// Properties of guessable-walk detection (API1). Walks: any sequentialRun (5) consecutive values of
// one counter shape (prefix, padding, suffix; decimal, hex or base 36), in any order and among other
// IDs, reach a run of 5 by the fifth; any 7 distinct names in sorted order reach 7. Benign: counters
// with gaps, random IDs and any IDs the API showed the caller never make a walk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CounterWalks, SortedNameWalks } from '../../extproc/src/engine/id-walks.ts';
import { Harness, T0, WEB, ofDetector } from '../unit/detectors/harness.ts';
import { fuzzRuns } from './fuzz-runs.ts';

const RUN = 5;
const NAME_RUN = 7;
const MEMORY = 48;

const decimalShape = fc.record({
  prefix: fc.stringMatching(/^([A-Za-z]{1,4}[-_])?([0-9]{2,4}[-_])?$/),
  suffix: fc.stringMatching(/^([-_.][a-z]{1,3})?$/),
  width: fc.constantFrom(0, 4, 6, 8),
});
const decimalId = (s: { prefix: string; suffix: string; width: number }, n: number) => `${s.prefix}${String(n).padStart(s.width, '0')}${s.suffix}`;
const radixShape = fc.record({ prefix: fc.stringMatching(/^([A-Za-z]{1,3}[-_:])?$/), radix: fc.constantFrom(16, 36), width: fc.integer({ min: 4, max: 8 }) });

/** A block of RUN consecutive values in some order: ascending, descending or shuffled. */
const walkOrder: fc.Arbitrary<number[]> = fc.oneof(
  fc.constant<number[]>([0, 1, 2, 3, 4]),
  fc.constant<number[]>([4, 3, 2, 1, 0]),
  fc.shuffledSubarray([0, 1, 2, 3, 4], { minLength: RUN, maxLength: RUN }),
);

function maxRun(ids: readonly string[]): number {
  const walks = new CounterWalks(MEMORY);
  return Math.max(0, ...ids.map((id) => walks.observe(id)?.run ?? 0));
}

/** Inserts noise IDs at the given places, keeping the order of the walk. */
const noise = fc.array(fc.tuple(fc.nat(RUN), fc.uuid()), { maxLength: 6 });
function withNoise(walk: readonly string[], extra: readonly [number, string][]): string[] {
  const out = [...walk];
  for (const [at, id] of [...extra].sort((a, b) => b[0] - a[0])) out.splice(at, 0, id);
  return out;
}

test('walks: five consecutive values of any decimal counter shape, in any order and among other IDs, are a run of five', () => {
  fc.assert(fc.property(decimalShape, fc.integer({ min: 0, max: 999_990 }), walkOrder, noise, (shape, start, order, extra) => {
    const walk = order.map((k) => decimalId(shape, start + k));
    assert.ok(maxRun(walk) >= RUN, walk.join(' '));
    const mixed = withNoise(walk, extra);
    assert.ok(maxRun(mixed) >= RUN, mixed.join(' '));
  }), { numRuns: fuzzRuns(300) });
});

test('walks: hex and base-36 counters behind a prefix, through carries, are a run of five', () => {
  fc.assert(fc.property(radixShape, fc.nat(), walkOrder, (shape, seed, order) => {
    const limit = shape.radix ** shape.width - RUN;
    const start = seed % Math.min(limit, Number.MAX_SAFE_INTEGER);
    const walk = order.map((k) => `${shape.prefix}${(start + k).toString(shape.radix).padStart(shape.width, '0')}`);
    assert.ok(maxRun(walk) >= RUN, walk.join(' '));
  }), { numRuns: fuzzRuns(200) });
});

test('benign: counter values with gaps, in any order, never form a run', () => {
  const gapped = fc.array(fc.tuple(fc.integer({ min: 2, max: 50 }), fc.nat()), { minLength: 2, maxLength: 16 });
  fc.assert(fc.property(decimalShape, gapped, fc.nat(100_000), (shape, steps, start) => {
    let v = start;
    // Each value gets a random sort key, so the visiting order is any permutation.
    const values = steps.map(([gap, key]) => ({ value: (v += gap), key })).sort((a, b) => a.key - b.key);
    assert.equal(maxRun(values.map(({ value }) => decimalId(shape, value))), 1);
  }), { numRuns: fuzzRuns(300) });
});

test('benign: random IDs (UUIDs, random tokens) never form a run', () => {
  const id = fc.oneof(fc.uuid(), fc.stringMatching(/^[a-z0-9]{8,12}$/), fc.stringMatching(/^[A-Za-z]{3,10}\.[a-z]{2,8}[0-9]{1,3}$/));
  fc.assert(fc.property(fc.uniqueArray(id, { minLength: 1, maxLength: 30 }), (ids) => { assert.ok(maxRun(ids) < RUN); }), { numRuns: fuzzRuns(200) });
});

test('names: the run is the length of the strictly ascending tail (model), so any seven sorted distinct names reach seven', () => {
  const name = fc.stringMatching(/^[a-z]{2,10}$/);
  fc.assert(fc.property(fc.array(name, { maxLength: 30 }), (names) => {
    const walks = new SortedNameWalks(4);
    let model = 0;
    names.forEach((n, i) => {
      model = i > 0 && n > names[i - 1]! ? model + 1 : 1;
      assert.equal(walks.observe('users', n), model);
    });
  }), { numRuns: fuzzRuns(200) });
  fc.assert(fc.property(fc.uniqueArray(name, { minLength: NAME_RUN, maxLength: 12 }), (names) => {
    const walks = new SortedNameWalks(4);
    const runs = [...names].sort().map((n) => walks.observe('users', n));
    assert.equal(runs[NAME_RUN - 1], NAME_RUN);
  }), { numRuns: fuzzRuns(200) });
});

test('engine: prefixed IDs the API showed the caller are never a walk in any order; the same IDs unshown are flagged by the fifth', () => {
  fc.assert(fc.property(decimalShape, fc.integer({ min: 0, max: 999_000 }), fc.integer({ min: RUN, max: 12 }), fc.context(), (shape, start, count, ctx) => {
    fc.pre(/[A-Za-z]/.test(shape.prefix + shape.suffix)); // a path segment is an ID when it mixes letters and digits
    const ids = Array.from({ length: count }, (_, k) => decimalId(shape, start + k));
    fc.pre(new Set(ids).size === count && ids.every((id) => !id.includes('/')));
    const h = new Harness();
    let t = T0;
    const shown = { workload: WEB, client: '10.70.0.1' };
    h.send({ time: (t += 100), path: '/records', ...shown, responseBody: { items: ids.map((id) => ({ id })) } });
    for (const id of [...ids].reverse().concat(ids)) {
      const r = h.send({ time: (t += 100), path: `/records/${encodeURIComponent(id)}`, ...shown, responseBody: { id } });
      assert.equal(ofDetector(r.findings, 'bola').length, 0, `shown ${id}`);
    }
    const flags = ids.map((id) => ofDetector(h.send({ time: (t += 100), path: `/records/${encodeURIComponent(id)}`, workload: WEB, client: '10.70.0.2', status: 404 }).requestFindings, 'bola').length > 0);
    ctx.log(flags.join(','));
    assert.ok(flags.indexOf(true) >= 0 && flags.indexOf(true) < RUN, `unshown walk flagged at ${flags.indexOf(true) + 1}`);
  }), { numRuns: fuzzRuns(25) });
});
