// Issue #10, item 5 (bounded): a 35 s soak through real Envoy and `meshward serve` at a steady rate,
// both fail-open and fail-closed listeners: no unexpected status, RSS of Envoy (both sidecars) and the
// server flat within tolerance, no file-descriptor growth (from /proc). `npm run soak` runs 30 minutes
// with tighter tolerances.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { growth, runSoak, soakFailures } from '../support/soak.ts';

const SECONDS = Number(process.env.MESHWARD_SOAK_TEST_SECONDS ?? 35);
const RATE = 40;

test(`short soak: ${SECONDS} s at ${RATE} requests/s, no errors, flat RSS, no fd growth`, async () => {
  const result = await runSoak({ durationMs: SECONDS * 1000, ratePerSecond: RATE, sampleEveryMs: 1000 });
  assert.ok(result.sent >= SECONDS * RATE * 0.9, `the load kept its rate: ${result.sent} requests`);
  assert.ok(result.samples.length >= SECONDS * 0.8, 'sampled every second');
  const failures = soakFailures(result, { rssFraction: 0.25, rssMb: 25, fds: 12 });
  assert.deepEqual(failures, [], JSON.stringify({ outcomes: result.outcomes, growth: growth(result.samples) }));
  console.log(`# soak ${SECONDS}s: ${JSON.stringify({ sent: result.sent, outcomes: result.outcomes, growth: growth(result.samples) })}`);
});
