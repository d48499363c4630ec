// The engine's token bucket (rate limits with a burst) never lets more through than the filter's
// bucket semantics allow: in any interval [a, b], at most burst + rate * (b - a) requests, and a
// caller at or under the rate is never refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TokenBucket } from '../../extproc/src/engine/token-bucket.ts';

test('allowed requests in any interval stay within burst + rate x length', () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 0, max: 20 }),
    fc.array(fc.integer({ min: 0, max: 2_000 }), { minLength: 1, maxLength: 200 }),
    (limit, windowMs, extra, gaps) => {
      const burst = limit + extra;
      const rate = limit / windowMs;
      let t = 0;
      const times = gaps.map((g) => (t += g));
      const bucket = new TokenBucket(burst, rate, 0);
      const allowed = times.filter((at) => bucket.take(at));
      for (let i = 0; i < allowed.length; i++) {
        for (let j = i; j < allowed.length; j++) {
          assert.ok(j - i + 1 <= burst + rate * (allowed[j]! - allowed[i]!) + 1e-9, `${j - i + 1} allowed in ${allowed[j]! - allowed[i]!} ms`);
        }
      }
    },
  ), { numRuns: 300 });
});

test('requests spaced at the sustained rate are never refused', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 100 }), (limit, windowMs, n) => {
    const bucket = new TokenBucket(limit, limit / windowMs, 0);
    const spacing = Math.ceil(windowMs / limit);
    for (let i = 0; i < n; i++) assert.equal(bucket.take(i * spacing), true, `request ${i}`);
  }), { numRuns: 300 });
});
