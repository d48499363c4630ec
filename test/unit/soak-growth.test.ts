// The soak's leak judgement (test/support/soak.ts): growth that stays fails it, a moment's spike does not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { growth, soakFailures, type SoakResult } from '../support/soak.ts';

const TOLERANCE = { rssFraction: 0.1, rssMb: 20, fds: 8 };
const run = (fds: number[], rss: number[] = fds.map(() => 100)): SoakResult =>
  ({ sent: 1, outcomes: {}, unexpected: {}, samples: fds.map((f, i) => ({ t: i, rssMb: { envoy: rss[i]! }, fds: { envoy: f } })) }) as unknown as SoakResult;

test('a pool that widens for one sample and closes again is no fd leak; its peak is reported', () => {
  const fds = [...Array(40).fill(61), 84, ...Array(19).fill(61)];
  assert.deepEqual(soakFailures(run(fds), TOLERANCE), []);
  assert.equal(growth(run(fds).samples)[0]!.peakFds, 84);
});

test('fds that keep growing fail the soak', () => {
  const fds = Array.from({ length: 60 }, (_, i) => 60 + Math.floor(i / 2));
  assert.match(soakFailures(run(fds), TOLERANCE).join(), /envoy open fds grew/);
});

test('RSS that keeps growing fails the soak; flat RSS with noise does not', () => {
  const flat = Array.from({ length: 60 }, (_, i) => 100 + (i % 3));
  assert.deepEqual(soakFailures(run(Array(60).fill(30), flat), TOLERANCE), []);
  const leaking = Array.from({ length: 60 }, (_, i) => 100 + i * 2);
  assert.match(soakFailures(run(Array(60).fill(30), leaking), TOLERANCE).join(), /envoy RSS grew/);
});
