// Issue #7: which policy applies to a workload (mesh default < namespace < most specific selector).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicySet } from '../../extproc/src/policy/precedence.ts';
import type { ApiSecurityPolicy, PolicySpec } from '../../extproc/src/policy/types.ts';

function p(namespace: string, name: string, spec: PolicySpec): ApiSecurityPolicy {
  return { apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name, namespace }, spec };
}

const meshDefault = p('meshward', 'mesh-default', {
  mode: 'monitor', failureMode: 'open',
  detectors: [{ name: 'bola', thresholds: { foreignThreshold: 3, sequentialRun: 5 } }],
  rateLimits: [{ name: 'global', requests: 100, per: 'second' }],
});

describe('policy precedence', () => {
  test('no policy at all: the built-in default (monitor, fail open)', () => {
    const e = new PolicySet('meshward', []).effectiveFor({ namespace: 'shop' });
    assert.deepEqual(e, { spec: { mode: 'monitor', failureMode: 'open' }, from: [] });
  });

  test('a namespace without its own policy gets the mesh default', () => {
    const e = new PolicySet('meshward', [meshDefault]).effectiveFor({ namespace: 'shop' });
    assert.deepEqual(e.from, ['meshward/mesh-default']);
    assert.equal(e.spec.mode, 'monitor');
    assert.equal(e.spec.rateLimits?.[0]?.name, 'global');
  });

  test('a namespace policy overrides the default field by field; detectors merge by name', () => {
    const shop = p('shop', 'shop', { mode: 'enforce', detectors: [{ name: 'bola', thresholds: { foreignThreshold: 2 } }, { name: 'auth', enabled: false }] });
    const e = new PolicySet('meshward', [meshDefault, shop]).effectiveFor({ namespace: 'shop' });
    assert.deepEqual(e.from, ['meshward/mesh-default', 'shop/shop']);
    assert.equal(e.spec.mode, 'enforce', 'overridden');
    assert.equal(e.spec.failureMode, 'open', 'inherited');
    assert.equal(e.spec.rateLimits?.[0]?.name, 'global', 'inherited');
    assert.deepEqual(e.spec.detectors, [
      { name: 'bola', thresholds: { foreignThreshold: 2, sequentialRun: 5 } },
      { name: 'auth', enabled: false, thresholds: {} },
    ]);
    // Other namespaces are untouched by shop's policy.
    assert.equal(new PolicySet('meshward', [meshDefault, shop]).effectiveFor({ namespace: 'web' }).spec.mode, 'monitor');
  });

  test('the most specific matching selector wins; non-matching selectors never apply', () => {
    const ns = p('shop', 'shop', { mode: 'monitor' });
    const app = p('shop', 'checkout', { selector: { matchLabels: { app: 'checkout' } }, failureMode: 'closed' });
    const appV2 = p('shop', 'checkout-v2', { selector: { matchLabels: { app: 'checkout', version: 'v2' } }, mode: 'enforce' });
    const set = new PolicySet('meshward', [meshDefault, ns, app, appV2]);
    assert.deepEqual(set.effectiveFor({ namespace: 'shop', labels: { app: 'checkout', version: 'v2' } }).from, ['meshward/mesh-default', 'shop/checkout-v2']);
    assert.deepEqual(set.effectiveFor({ namespace: 'shop', labels: { app: 'checkout', version: 'v1' } }).from, ['meshward/mesh-default', 'shop/checkout']);
    assert.deepEqual(set.effectiveFor({ namespace: 'shop', labels: { app: 'cart' } }).from, ['meshward/mesh-default', 'shop/shop']);
    // The winning policy's own selector stays in the effective spec (the default's never does).
    assert.equal(set.effectiveFor({ namespace: 'shop', labels: { app: 'checkout' } }).spec.selector?.matchLabels?.app, 'checkout');
  });

  test('ties go to the alphabetically first name; the other is reported as shadowed', () => {
    const a = p('shop', 'a-policy', { mode: 'enforce' });
    const b = p('shop', 'b-policy', { mode: 'monitor' });
    const set = new PolicySet('meshward', [b, a]);
    assert.deepEqual(set.effectiveFor({ namespace: 'shop' }).from, ['shop/a-policy']);
    assert.deepEqual([...set.shadowed()], [['shop/b-policy', 'shop/a-policy']]);
  });

  test("in meshward's own namespace the default is not applied twice", () => {
    const e = new PolicySet('meshward', [meshDefault]).effectiveFor({ namespace: 'meshward' });
    assert.deepEqual(e.from, ['meshward/mesh-default']);
  });
});
