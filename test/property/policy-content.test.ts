// spec.content operation strings: whatever "METHOD /path" the CRD accepts maps to a pattern that
// compiles, matches the operation ids of its own instances ({param} = any one segment) and no other
// method's or path's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { validatePolicyObject } from '../../extproc/src/policy/validate.ts';
import { contentSettingsFor } from '../../extproc/src/policy/content-mapping.ts';
import type { ContentPolicy } from '../../extproc/src/policy/types.ts';
import { fuzzRuns } from './fuzz-runs.ts';

const segmentText = fc.string({ minLength: 1, maxLength: 8 }).filter((s) => !/[\s/{}*]/.test(s));
const segment = fc.oneof(
  segmentText.map((s) => ({ template: s, instance: fc.constant(s) })),
  segmentText.map((s) => ({ template: `{${s}}`, instance: segmentText })),
);
const method = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE');

test('an accepted contracts operation matches its instances and nothing with another method or an extra segment', () => {
  fc.assert(fc.property(method, fc.array(segment, { minLength: 1, maxLength: 5 }), fc.gen(), (m, segments, gen) => {
    const operation = `${m} /${segments.map((s) => s.template).join('/')}`;
    const content: ContentPolicy = { contracts: { operations: [{ operation, mode: 'monitor' }] } };
    const doc = { apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name: 'p', namespace: 'ns' }, spec: { content } };
    assert.deepEqual(validatePolicyObject(doc).errors, []);
    const pattern = new RegExp(contentSettingsFor(content).contract!.patterns![0]!.operation);
    const path = `/${segments.map((s) => gen(() => s.instance)).join('/')}`;
    assert.ok(pattern.test(`${m} svc.ns:8080 ${path}`), `${operation} ~ ${path}`);
    assert.ok(!pattern.test(`${m === 'GET' ? 'POST' : 'GET'} svc.ns ${path}`), 'another method');
    assert.ok(!pattern.test(`${m} svc.ns ${path}/extra`), 'an extra segment');
  }), { numRuns: fuzzRuns(200) });
});
