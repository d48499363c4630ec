// Issue #5 (spec sources): what reports and logs show of a spec's URL never carries its credentials or
// query (either may hold a token), for any URL; and SpecsLoaded names every failing spec, whatever the mix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { displayUrl, type PolicySpecStatus } from '../../extproc/src/policy/spec-sources.ts';
import { specConditions } from '../../extproc/src/policy/status-conditions.ts';
import { fuzzRuns } from './fuzz-runs.ts';

const secret = fc.stringMatching(/^[A-Za-z0-9]{20}$/);

test('displayUrl: user, password and query values never appear; scheme, host and path stay', () => {
  fc.assert(fc.property(fc.webUrl({ withFragments: true }), secret, secret, secret, (base, user, password, token) => {
    const u = new URL(base);
    u.username = user;
    u.password = password;
    u.searchParams.set('access_token', token);
    const shown = displayUrl(u.href);
    for (const s of [user, password, token]) assert.ok(!shown.includes(s), `${shown} shows a secret`);
    assert.ok(shown.startsWith(`${u.protocol}//${u.host}${u.pathname}`), shown);
    assert.ok(shown.endsWith('?<query hidden>'), shown);
  }), { numRuns: fuzzRuns(300) });
  assert.equal(displayUrl('not a url'), '<malformed URL>');
});

const entry: fc.Arbitrary<PolicySpecStatus> = fc.record({
  policy: fc.constantFrom('shop/shop', 'web/web'),
  name: fc.stringMatching(/^[a-z]{1,8}$/),
  problem: fc.constantFrom(undefined, 'invalid', 'unavailable', 'conflict'),
  generation: fc.integer({ min: 1, max: 50 }),
}).map(({ policy, name, problem, generation }) => ({
  policy, name, generation, reference: `${policy}: ${name}`, place: `file ${name}.yaml`, service: name,
  loaded: problem === undefined,
  ...(problem ? { problem, error: `${problem} ${name}` } : {}),
}));

test('SpecsLoaded: one condition per policy; False exactly when a spec failed, naming each failing one with its error', () => {
  fc.assert(fc.property(fc.array(entry, { maxLength: 12 }), (status) => {
    const out = specConditions(status, 'T');
    assert.deepEqual([...out.keys()].sort(), [...new Set(status.map((s) => s.policy))].sort());
    for (const [policy, [condition]] of out) {
      const mine = status.filter((s) => s.policy === policy);
      const failing = mine.filter((s) => !s.loaded);
      assert.equal(condition!.status, failing.length ? 'False' : 'True');
      for (const s of failing) assert.ok(condition!.message!.includes(`${s.name} (${s.place}): ${s.error}`), condition!.message);
      const reason = failing.some((s) => s.problem === 'invalid') ? 'SpecInvalid' : failing.some((s) => s.problem === 'unavailable') ? 'SpecUnavailable' : failing.length ? 'Conflicting' : 'Loaded';
      assert.equal(condition!.reason, reason);
    }
  }), { numRuns: fuzzRuns(300) });
});
