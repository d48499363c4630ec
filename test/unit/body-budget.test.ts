// Issue #10: the server-wide budget for body bytes held for inspection (extproc/src/body-budget.ts).
// Each stream's body is capped, the sum is not: thousands of held streams could exceed the memory
// limit. A body that does not fit is not inspected and the policy's spec.content.overload decides.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BodyBudget, REPORT_INTERVAL_MS } from '../../extproc/src/body-budget.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import type { PolicyMode } from '../../extproc/src/policy/types.ts';
import { createContentDetectors } from '../../extproc/src/engine/detectors/content.ts';
import { createContentContext, type ContentSettings } from '../../extproc/src/inspect/settings.ts';
import { silentLogger } from '../../extproc/src/log.ts';
import { ExtProcStream } from '../../extproc/src/wire/stream.ts';
import type { ProcessingRequest } from '../../extproc/src/wire/messages.ts';
import { CAPTURE_ATTRIBUTE, EXT_PROC_ATTRIBUTES_KEY } from '../../extproc/src/wire/request.ts';

const hdrs = (pairs: [string, string][]) => ({ headers: { headers: pairs.map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) }, end_of_stream: false });
const sampledPost: ProcessingRequest = {
  request: 'request_headers',
  request_headers: hdrs([[':method', 'POST'], [':path', '/users'], [':authority', 'svc'], ['content-type', 'application/json']]),
  attributes: { [EXT_PROC_ATTRIBUTES_KEY]: { fields: { [CAPTURE_ATTRIBUTE]: { kind: 'stringValue', stringValue: 'mw1\nrole=inbound\npeer=spiffe://cluster.local/ns/a/sa/b\nmtls=1\nsampled=1\n' } } } },
};
const bodyMessage = (body: Buffer): ProcessingRequest => ({ request: 'request_body', request_body: { body, end_of_stream: true } });
/** A JSON body of exactly `bytes` bytes. */
const jsonBody = (bytes: number): Buffer => { const head = '{"pad":"'; return Buffer.from(head + 'x'.repeat(bytes - head.length - 2) + '"}'); };

test('a lease holds its bytes until released (once); what does not fit is refused and counted', () => {
  const budget = new BodyBudget(1000);
  const a = budget.reserve(600)!;
  assert.equal(budget.held, 600);
  assert.equal(budget.reserve(401), undefined, 'past the budget');
  assert.equal(budget.overBudget, 1);
  const b = budget.reserve(400)!;
  assert.equal(budget.held, 1000, 'exactly the budget fits');
  a.release();
  a.release();
  assert.equal(budget.held, 400, 'a second release changes nothing');
  b.release();
  assert.deepEqual([budget.held, budget.leases], [0, 0]);
  assert.throws(() => budget.reserve(-1), /non-negative integer/);
  assert.throws(() => budget.reserve(1.5), /non-negative integer/);
  assert.throws(() => new BodyBudget(0), /integer >= 1/);
});

test('over-budget bodies are reported at most once per interval, with the count since the last report', () => {
  const budget = new BodyBudget(10);
  for (let i = 0; i < 5; i++) budget.reserve(11);
  assert.equal(budget.reportDue(0), 5);
  budget.reserve(11);
  assert.equal(budget.reportDue(REPORT_INTERVAL_MS - 1), undefined, 'not again within the interval');
  assert.equal(budget.reportDue(REPORT_INTERVAL_MS), 1);
  assert.equal(budget.reportDue(3 * REPORT_INTERVAL_MS), undefined, 'nothing new to report');
});

function streams(budget: BodyBudget, overload: ContentSettings['overload'], mode: PolicyMode) {
  const content = createContentContext({ overload });
  const engine = new Engine({ denyRules: [], mode, detectors: (c) => createContentDetectors(c, content) });
  const findings: Finding[] = [];
  engine.addObserver({ onFinding: (f) => findings.push(f) });
  let n = 0;
  return { findings, open: () => new ExtProcStream(`s${n++}`, engine, silentLogger, Date.now, undefined, budget) };
}

test('through the ext_proc stream: a body beyond the server budget is not inspected, the overload policy decides, ending streams frees the budget', () => {
  for (const [overload, mode, expected] of [['open', 'enforce', 'request_body'], ['closed', 'enforce', 'immediate_response'], ['closed', 'monitor', 'request_body']] as const) {
    const budget = new BodyBudget(1000);
    const { findings, open } = streams(budget, overload, mode);
    const first = open();
    first.step(sampledPost);
    assert.equal(first.step(bodyMessage(jsonBody(800))).kind, 'respond');
    assert.equal(budget.held, 800, 'the first body is held while its stream lives');
    const second = open();
    second.step(sampledPost);
    const r = second.step(bodyMessage(jsonBody(800)));
    assert.ok(r.kind === 'respond' && expected in r.response, `${overload}/${mode}: ${JSON.stringify(r)}`);
    assert.equal(budget.held, 800, 'the refused body is not held');
    const note = findings.find((f) => f.detector === 'content-body');
    assert.match(note?.summary ?? '', /server body budget full \(800 of 1000 bytes held\)/, `${overload}/${mode}`);
    first.releaseBodies();
    second.releaseBodies();
    assert.deepEqual([budget.held, budget.leases], [0, 0]);
    const third = open();
    third.step(sampledPost);
    third.step(bodyMessage(jsonBody(800)));
    assert.equal(budget.held, 800, 'after release a body fits again');
    third.releaseBodies();
  }
});

test('property: any interleaving of streams and endings keeps held <= budget and returns to zero', () => {
  fc.assert(fc.property(
    fc.array(fc.record({ bytes: fc.integer({ min: 20, max: 700 }), endAfter: fc.integer({ min: 0, max: 5 }) }), { minLength: 1, maxLength: 25 }),
    (plan) => {
      const budget = new BodyBudget(1500);
      const { open } = streams(budget, 'open', 'monitor');
      const live: { stream: ExtProcStream; endAt: number }[] = [];
      plan.forEach(({ bytes, endAfter }, i) => {
        const s = open();
        s.step(sampledPost);
        s.step(bodyMessage(jsonBody(bytes)));
        live.push({ stream: s, endAt: i + endAfter });
        assert.ok(budget.held <= budget.maxBytes);
        for (const l of live.filter((x) => x.endAt <= i)) l.stream.releaseBodies();
      });
      for (const l of live) l.stream.releaseBodies();
      assert.deepEqual([budget.held, budget.leases], [0, 0]);
    },
  ), { numRuns: 40 });
});
