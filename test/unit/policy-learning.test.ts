// Learning periods from policy (issue #4): spec.learning for every detector that learns, and
// spec.detectors[].learning for one. Policies are applied the way `meshward serve` applies them
// (mesh default's settings on the engine, the namespace policy per request through WorkloadPolicies),
// and only findings tell whether a detector judged or is still learning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicySet } from '../../extproc/src/policy/precedence.ts';
import { WorkloadPolicies } from '../../extproc/src/policy/workload-policy.ts';
import { engineSettingsFor } from '../../extproc/src/policy/engine-mapping.ts';
import { validatePolicyObject } from '../../extproc/src/policy/validate.ts';
import type { ApiSecurityPolicy, PolicySpec } from '../../extproc/src/policy/types.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { LATERAL_DETECTOR } from '../../extproc/src/engine/detectors/lateral-movement.ts';
import { BFLA_DETECTOR } from '../../extproc/src/engine/detectors/bfla.ts';
import { RESOURCE_DETECTOR } from '../../extproc/src/engine/detectors/resource-consumption.ts';

const policy = (namespace: string, name: string, spec: PolicySpec): ApiSecurityPolicy =>
  ({ apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name, namespace }, spec }) as ApiSecurityPolicy;

const T0 = Date.UTC(2026, 10, 28, 6, 0, 0);
const CAPS = { maxEntries: 2000, maxBytes: 4 * 1024 * 1024 };

/** An engine with the mesh default (default learning) and the "shop" namespace's policy. */
function engineWith(shop: PolicySpec) {
  const workloads = new WorkloadPolicies();
  workloads.update(new PolicySet('meshward', [policy('meshward', 'mesh-default', { mode: 'monitor' }), policy('shop', 'shop', shop)]));
  const mesh = engineSettingsFor({ mode: 'monitor' }).engine;
  const engine = new Engine({ ...mesh, settings: { ...mesh.settings, caps: CAPS }, modeFor: workloads.modeFor, profileFor: workloads.profileFor });
  const findings: Finding[] = [];
  engine.addObserver({ onFinding: (f) => findings.push(f) });
  let n = 0;
  const call = (workload: string, path: string, at: number, namespace = 'shop'): void => {
    const request: RequestEvent = {
      requestId: `r${n++}`, time: T0 + at, caller: { workload, mtls: true, identitySource: 'filter' },
      method: 'GET', authority: 'orders.shop', path, headers: new Map(), sidecarWorkload: { namespace },
    };
    engine.decide(request);
    engine.observeResponse(request, { requestId: request.requestId, time: request.time, status: 200, headers: new Map() });
  };
  return { engine, findings, call };
}

const A = 'spiffe://cluster.local/ns/web/sa/frontend';
const B = 'spiffe://cluster.local/ns/batch/sa/worker';
const of = (findings: Finding[], detector: string): Finding[] => findings.filter((f) => f.detector === detector);

/** 50 calls from A over 5 s (25 of them privileged), then B's first call. */
function traffic(call: (workload: string, path: string, at: number, namespace?: string) => void, namespace = 'shop'): void {
  for (let i = 0; i < 50; i++) call(A, i % 2 === 0 ? '/admin/users' : '/orders', i * 100, namespace);
  call(B, '/admin/users', 6_000, namespace);
}

test('spec.learning: a short period makes the call graph judge new edges, a long one keeps it learning', () => {
  const short = engineWith({ learning: { periodSeconds: 1, minRequests: 5 } });
  traffic(short.call);
  const edges = of(short.findings, LATERAL_DETECTOR).filter((f) => /new call-graph edge/.test(f.summary));
  assert.equal(edges.length, 1, 'the new edge B -> orders.shop is reported');
  assert.equal(edges[0]!.caller, B);

  const long = engineWith({ learning: { periodSeconds: 3600, minRequests: 5 } });
  traffic(long.call);
  assert.deepEqual(of(long.findings, LATERAL_DETECTOR), [], 'an hour-long period: still learning after 6 s');

  const manyRequests = engineWith({ learning: { periodSeconds: 1, minRequests: 1000 } });
  traffic(manyRequests.call);
  assert.deepEqual(of(manyRequests.findings, LATERAL_DETECTOR), [], 'minRequests not reached: still learning');
});

test('spec.learning applies to its own namespace only: the mesh default keeps the default period', () => {
  const { findings, call } = engineWith({ learning: { periodSeconds: 1, minRequests: 5 } });
  traffic(call, 'elsewhere');
  assert.deepEqual(of(findings, LATERAL_DETECTOR), [], 'default learning (60 s, 100 requests) not over after 6 s and 51 requests');
});

test('spec.detectors[].learning overrides spec.learning for that detector only', () => {
  const bflaJudges = engineWith({ learning: { periodSeconds: 3600 }, detectors: [{ name: 'bfla', learning: { periodSeconds: 1, minRequests: 5 } }] });
  traffic(bflaJudges.call);
  const bfla = of(bflaJudges.findings, BFLA_DETECTOR);
  assert.equal(bfla.length, 1, 'B outside the learned caller set of /admin');
  assert.equal(bfla[0]!.caller, B);
  assert.deepEqual(of(bflaJudges.findings, LATERAL_DETECTOR), [], 'the call graph keeps the policy-wide hour');

  const lateralJudges = engineWith({ learning: { periodSeconds: 3600, minRequests: 5 }, detectors: [{ name: 'lateral', learning: { periodSeconds: 1 } }] });
  traffic(lateralJudges.call);
  assert.equal(of(lateralJudges.findings, LATERAL_DETECTOR).length, 1, 'periodSeconds from the detector, minRequests from spec.learning');
  assert.deepEqual(of(lateralJudges.findings, BFLA_DETECTOR), [], 'bfla keeps the policy-wide hour');
});

/** One caller whose rate varies (5 and 55 per minute in turn), then 100 in the fifth minute. */
function variableRate(shop: PolicySpec): Finding[] {
  const { findings, call } = engineWith(shop);
  [5, 55, 5, 55, 100].forEach((count, minute) => {
    for (let i = 0; i < count; i++) call(A, '/orders', minute * 60_000 + Math.floor((i * 60_000) / count));
  });
  return of(findings, RESOURCE_DETECTOR);
}

test('resource learning.periodSeconds: a learned rate baseline judges the caller by its own history; while learning the floor judges it', () => {
  const learned = variableRate({ detectors: [{ name: 'resource', learning: { periodSeconds: 120 } }] });
  assert.deepEqual(learned, [], 'after two windows 100 is within what this caller has done (mean + 6 sd)');
  const learning = variableRate({ detectors: [{ name: 'resource', learning: { periodSeconds: 3600 } }] });
  assert.equal(learning.length, 1, 'still learning: 100 is above the floor of 60');
  assert.equal(learning[0]!.evidence.baseline, 'floor');
  assert.ok(learning[0]!.time >= T0 + 4 * 60_000);
  const policyWide = variableRate({ learning: { periodSeconds: 120 } });
  assert.deepEqual(policyWide, [], 'spec.learning.periodSeconds applies to rate baselines too');
});

test('learning periods map to the engine settings (milliseconds; rate baselines in windows)', () => {
  const { detectors } = engineSettingsFor({ learning: { periodSeconds: 90, minRequests: 7 }, detectors: [{ name: 'auth', learning: { minRequests: 3 } }, { name: 'resource', thresholds: { baselineWindowMs: 30_000 } }] });
  assert.deepEqual(detectors.learning, { minDurationMs: 90_000, minRequests: 7 });
  assert.deepEqual(detectors.auth?.learning, { minRequests: 3 });
  assert.equal(detectors.resource?.baselineMinWindows, 3, '90 s of 30 s windows');
  const explicit = engineSettingsFor({ learning: { periodSeconds: 90 }, detectors: [{ name: 'resource', thresholds: { baselineMinWindows: 8 } }] });
  assert.equal(explicit.detectors.resource?.baselineMinWindows, 8, 'an explicit threshold wins over spec.learning');
  assert.equal(engineSettingsFor({}).detectors.learning, undefined, 'no policy learning: the engine defaults');
});

test('bad learning settings are rejected with errors naming the field', () => {
  const errorsOf = (spec: unknown): string[] => validatePolicyObject({ apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name: 'p' }, spec })
    .errors.map((e) => `${e.path}: ${e.reason}`);
  assert.deepEqual(errorsOf({ learning: { periodSeconds: 60, minRequests: 10 }, detectors: [{ name: 'bfla', learning: { periodSeconds: 5 } }, { name: 'resource', learning: { periodSeconds: 600 } }] }), []);
  const cases: [unknown, RegExp][] = [
    [{ learning: { periodSeconds: -1 } }, /^spec\.learning\.periodSeconds: must be >= 0/],
    [{ learning: { periodSeconds: 604801 } }, /^spec\.learning\.periodSeconds: must be <= 604800/],
    [{ learning: { periodSeconds: 1.5 } }, /^spec\.learning\.periodSeconds: must be of type integer/],
    [{ learning: { minRequests: 10_000_001 } }, /^spec\.learning\.minRequests: must be <= 10000000/],
    [{ learning: { period: 60 } }, /^spec\.learning\.period: unknown field/],
    [{ detectors: [{ name: 'lateral', learning: { periodSeconds: '60' } }] }, /^spec\.detectors\[0\]\.learning\.periodSeconds: must be of type integer/],
    [{ detectors: [{ name: 'bola', learning: { periodSeconds: 60 } }] }, /^spec\.detectors\[0\]\.learning: detector bola has no learning period/],
    [{ detectors: [{ name: 'flows', learning: { minRequests: 60 } }] }, /^spec\.detectors\[0\]\.learning: detector flows has no learning period/],
    [{ detectors: [{ name: 'resource', learning: { minRequests: 60 } }] }, /^spec\.detectors\[0\]\.learning\.minRequests: .*only periodSeconds applies/],
    [{ detectors: [{ name: 'resource', thresholds: { baselineMinWindows: 3 }, learning: { periodSeconds: 60 } }] }, /^spec\.detectors\[0\]\.learning\.periodSeconds: conflicts with thresholds\.baselineMinWindows/],
  ];
  for (const [spec, expected] of cases) {
    const errors = errorsOf(spec);
    assert.ok(errors.some((e) => expected.test(e)), `${JSON.stringify(spec)}: ${JSON.stringify(errors)}`);
  }
});

test('a namespace policy merges a detector\'s learning with the mesh default\'s field by field', () => {
  const set = new PolicySet('meshward', [
    policy('meshward', 'mesh-default', { detectors: [{ name: 'bfla', learning: { periodSeconds: 1, minRequests: 1000 } }] }),
    policy('shop', 'shop', { detectors: [{ name: 'bfla', thresholds: { minReadsBeforeTampering: 2 }, learning: { minRequests: 5 } }] }),
  ]);
  const bfla = set.effectiveFor({ namespace: 'shop' }).spec.detectors?.find((d) => d.name === 'bfla');
  assert.deepEqual(bfla?.learning, { periodSeconds: 1, minRequests: 5 });
  assert.deepEqual(engineSettingsFor(set.effectiveFor({ namespace: 'shop' }).spec).detectors.bfla?.learning, { minDurationMs: 1000, minRequests: 5 });
});
