// Profiles of namespace and workload policies are built when the policy is applied, not on their
// first request: building a detector set allocates every bounded map, which on a busy machine took
// close to a second, past Envoy's ext_proc message timeout (a namespace's first request got 504).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicySet } from '../../extproc/src/policy/precedence.ts';
import { WorkloadPolicies } from '../../extproc/src/policy/workload-policy.ts';
import type { ApiSecurityPolicy, PolicySpec } from '../../extproc/src/policy/types.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import { createDefaultDetectors } from '../../extproc/src/engine/detectors/index.ts';
import type { DetectorContext } from '../../extproc/src/engine/detector-context.ts';

const policy = (namespace: string, name: string, spec: PolicySpec): ApiSecurityPolicy =>
  ({ apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name, namespace }, spec }) as ApiSecurityPolicy;

test('prepareProfiles builds each distinct non-default profile once, before any request; requests then build nothing', () => {
  const workloads = new WorkloadPolicies();
  workloads.update(new PolicySet('meshward', [
    policy('meshward', 'mesh-default', { mode: 'monitor' }),
    policy('shop', 'shop', { mode: 'enforce', rateLimits: [{ name: 'l', requests: 5, per: 'minute' }] }),
    policy('shop', 'checkout', { selector: { matchLabels: { app: 'checkout' } }, mode: 'enforce', rateLimits: [{ name: 'l', requests: 1, per: 'minute' }] }),
    policy('lab', 'lab', { mode: 'monitor' }), // same as the mesh default: no profile of its own
  ]));
  let builds = 0;
  const engine = new Engine({ denyRules: [], modeFor: workloads.modeFor, profileFor: workloads.profileFor, detectors: (c: DetectorContext) => { builds++; return createDefaultDetectors(c); } });
  const atStart = builds;
  const profiles = workloads.knownProfiles();
  assert.equal(profiles.length, 2, 'shop and shop/checkout');
  engine.prepareProfiles(profiles);
  assert.equal(builds - atStart, 2);
  engine.prepareProfiles(profiles);
  assert.equal(builds - atStart, 2, 'already built: nothing rebuilt');
  for (const [i, labels] of [undefined, { app: 'checkout' }].entries()) {
    engine.decide({
      requestId: `r${i}`, time: 1_000, caller: { workload: 'spiffe://cluster.local/ns/web/sa/web', mtls: true, identitySource: 'filter' },
      method: 'GET', authority: 'orders.shop', path: '/orders', headers: new Map(), sidecarWorkload: { namespace: 'shop', ...(labels ? { labels } : {}) },
    });
  }
  assert.equal(builds - atStart, 2, 'the first requests of both workloads found their profiles built');
});
