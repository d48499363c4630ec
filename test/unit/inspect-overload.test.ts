// spec.content.overload: a large request body the decode pool could not inspect (deadline passed,
// queue full, worker failed) passes on its headers (open, the default) or is refused in enforce
// mode (closed); either way the finding says so and the reason is counted for the metric.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { OFF_THREAD_BODY_BYTES } from '../../extproc/src/inspect/body.ts';
import { closeBodyPool, countUninspected, uninspectedBodies, warmBodyPool } from '../../extproc/src/inspect/body-pool.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import type { PolicyMode } from '../../extproc/src/policy/types.ts';
import { createContentDetectors } from '../../extproc/src/engine/detectors/content.ts';
import { createContentContext, type ContentSettings } from '../../extproc/src/inspect/settings.ts';
import { contentSettingsFor } from '../../extproc/src/policy/content-mapping.ts';
import { validatePolicyObject } from '../../extproc/src/policy/validate.ts';

before(async () => { await warmBodyPool(); });
after(() => closeBodyPool());

const JSON_HEADERS = new Map([['content-type', ['application/json']]]);

/** Sends one large body whose off-thread decode cannot meet its (zero) deadline. */
async function uninspectedRequest(overload: ContentSettings['overload'] | undefined, mode: PolicyMode) {
  const content = createContentContext(overload === undefined ? {} : { overload });
  const engine = new Engine({ denyRules: [], mode, detectors: (c) => createContentDetectors(c, content) });
  const findings: Finding[] = [];
  engine.addObserver({ onFinding: (f) => findings.push(f) });
  // Large enough (8 MiB) that no worker decodes it before a 0 ms deadline fires: a body just over the
  // off-thread threshold sometimes came back first on an idle machine, and the test then saw no miss.
  const body = Buffer.from(JSON.stringify({ pad: 'x'.repeat(Math.max(OFF_THREAD_BODY_BYTES, 8 * 1024 * 1024)) }));
  const deadlinesBefore = uninspectedBodies().deadline;
  await content.decoder.prepare(body, JSON_HEADERS, 0);
  const counted = uninspectedBodies().deadline - deadlinesBefore;
  const decision = engine.decide({
    requestId: 'late', time: 1, caller: { mtls: false, identitySource: 'none' }, method: 'POST', authority: 'a.svc', path: '/x', headers: JSON_HEADERS, body,
  });
  return { decision, findings, counted };
}

test('open (the default): the request passes on its headers, the finding says so, the deadline is counted', async () => {
  const { decision, findings, counted } = await uninspectedRequest(undefined, 'enforce');
  assert.equal(decision.action, 'allow');
  assert.equal(counted, 1);
  assert.equal(findings.length, 1);
  assert.equal(findings[0]!.enforcement, 'none');
  assert.equal(findings[0]!.evidence.overload, 'open');
  assert.match(findings[0]!.summary, /decided on headers only: body of \d+ bytes not inspected: off-thread decode exceeded 0 ms \(overload policy open\)/);
});

test('closed: refused in enforce mode with the reason in the finding; monitor mode still passes', async () => {
  const enforced = await uninspectedRequest('closed', 'enforce');
  assert.equal(enforced.decision.action, 'deny');
  assert.equal(enforced.decision.action === 'deny' && enforced.decision.rule, 'content-body');
  assert.equal(enforced.findings[0]!.enforcement, 'deny');
  assert.equal(enforced.findings[0]!.evidence.overload, 'closed');
  assert.match(enforced.findings[0]!.summary, /could not be inspected \(overload policy closed/);

  const monitored = await uninspectedRequest('closed', 'monitor');
  assert.equal(monitored.decision.action, 'allow');
  assert.equal(monitored.findings[0]!.enforcement, 'deny', 'the finding says what enforce mode would do');
});

test('rejections are counted by reason: queue full, deadline, worker failure', () => {
  const before = { ...uninspectedBodies() };
  assert.equal(countUninspected(new Error('Task queue is at limit')), 'queue-full');
  assert.equal(countUninspected(new DOMException('The operation was aborted', 'AbortError')), 'deadline');
  assert.equal(countUninspected(new Error('worker exited with code 1')), 'worker-failed');
  assert.equal(countUninspected('not even an error'), 'worker-failed');
  const now = uninspectedBodies();
  assert.deepEqual([now['queue-full'] - before['queue-full'], now.deadline - before.deadline, now['worker-failed'] - before['worker-failed']], [1, 1, 2]);
});

test('spec.content.overload reaches the content settings; other values are rejected naming the field', () => {
  assert.equal(contentSettingsFor({ overload: 'closed' }).overload, 'closed');
  assert.equal(contentSettingsFor({}).overload, undefined, 'absent keeps the server default');
  const errorsOf = (overload: unknown) => validatePolicyObject({ apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name: 'p', namespace: 'shop' }, spec: { content: { overload } } }).errors;
  assert.deepEqual(errorsOf('closed'), []);
  assert.ok(errorsOf('fail').some((e) => e.path === 'spec.content.overload'), JSON.stringify(errorsOf('fail')));
});
