// Issue #10: the server-wide budget for body bytes held for inspection (extproc/src/body-budget.ts).
// Each stream's body is capped, the sum is not: thousands of held streams could exceed the memory
// limit. A body that does not fit is not inspected and the policy's spec.content.overload decides.
// Request bodies are held until their stream ends, response bodies until answered (or the end).
import { test, after } from 'node:test';
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
import { closeBodyPool, warmBodyPool } from '../../extproc/src/inspect/body-pool.ts';
import { OFF_THREAD_BODY_BYTES } from '../../extproc/src/inspect/body.ts';

after(() => closeBodyPool());

const hdrs = (pairs: [string, string][]) => ({ headers: { headers: pairs.map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) }, end_of_stream: false });
const sampledPost: ProcessingRequest = {
  request: 'request_headers',
  request_headers: hdrs([[':method', 'POST'], [':path', '/users'], [':authority', 'svc'], ['content-type', 'application/json']]),
  attributes: { [EXT_PROC_ATTRIBUTES_KEY]: { fields: { [CAPTURE_ATTRIBUTE]: { kind: 'stringValue', stringValue: 'mw1\nrole=inbound\npeer=spiffe://cluster.local/ns/a/sa/b\nmtls=1\nsampled=1\n' } } } },
};
/** The same sampled request without a body (headers end the request). */
const sampledGet: ProcessingRequest = { ...sampledPost, request_headers: { ...hdrs([[':method', 'GET'], [':path', '/users'], [':authority', 'svc']]), end_of_stream: true } };
const bodyMessage = (body: Buffer): ProcessingRequest => ({ request: 'request_body', request_body: { body, end_of_stream: true } });
const responseHeaders: ProcessingRequest = { request: 'response_headers', response_headers: hdrs([[':status', '200'], ['content-type', 'application/json']]) };
const responseBody = (body: Buffer): ProcessingRequest => ({ request: 'response_body', response_body: { body, end_of_stream: true } });
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
  return { engine, findings, open: () => new ExtProcStream(`s${n++}`, engine, silentLogger, Date.now, undefined, budget) };
}

/** A stream at the point where Envoy sends the sampled response's body. */
function awaitingResponseBody(open: () => ExtProcStream, requestBody?: Buffer): ExtProcStream {
  const s = open();
  s.step(requestBody === undefined ? sampledGet : sampledPost);
  if (requestBody !== undefined) s.step(bodyMessage(requestBody));
  const asked = s.step(responseHeaders);
  assert.ok(asked.kind === 'respond' && 'mode_override' in asked.response && asked.response.mode_override?.response_body_mode === 'BUFFERED_PARTIAL', 'the sampled response body is asked for');
  return s;
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

test('a response body counts against the budget while it is inspected and leaves it once answered', () => {
  const budget = new BodyBudget(10_000);
  const { engine, open } = streams(budget, 'open', 'enforce');
  const heldDuringInspection: number[] = [];
  engine.addObserver({ onResponse: () => heldDuringInspection.push(budget.held) });
  const s = awaitingResponseBody(open, jsonBody(800));
  assert.equal(budget.held, 800, 'the request body is held for its response');
  const r = s.step(responseBody(jsonBody(1200)));
  assert.ok(r.kind === 'respond' && 'response_body' in r.response);
  assert.deepEqual(heldDuringInspection, [2000], 'request and response bodies both held while the response is inspected');
  assert.deepEqual([budget.held, budget.leases], [800, 1], 'answered: the response body is no longer held');
  s.releaseBodies();
  assert.deepEqual([budget.held, budget.leases, budget.overBudget], [0, 0, 0]);
});

test('a request body beyond the budget is not kept for its response either (the engine holds the request until then)', () => {
  const budget = new BodyBudget(1000);
  const { engine, open } = streams(budget, 'open', 'monitor');
  const requestBodiesAtResponse: (number | undefined)[] = [];
  engine.addObserver({ onResponse: (request) => requestBodiesAtResponse.push(request.body?.length) });
  const kept = awaitingResponseBody(open, jsonBody(800));
  const dropped = awaitingResponseBody(open, jsonBody(700));
  kept.step(responseBody(jsonBody(50)));
  dropped.step(responseBody(jsonBody(50)));
  assert.deepEqual(requestBodiesAtResponse, [800, undefined]);
  kept.releaseBodies();
  dropped.releaseBodies();
  assert.deepEqual([budget.held, budget.leases], [0, 0]);
});

test('a response body beyond the server budget passes uninspected or is stopped, as spec.content.overload says', () => {
  for (const [overload, mode, stopped, severity] of [['open', 'enforce', false, 'info'], ['closed', 'enforce', true, 'medium'], ['closed', 'monitor', false, 'medium']] as const) {
    const budget = new BodyBudget(1000);
    const { findings, open } = streams(budget, overload, mode);
    const holder = awaitingResponseBody(open, jsonBody(800));
    const s = awaitingResponseBody(open);
    const r = s.step(responseBody(jsonBody(400)));
    assert.equal(r.kind, 'respond');
    if (stopped) {
      assert.ok(r.kind === 'respond' && 'immediate_response' in r.response && r.response.immediate_response?.status?.code === 502, `${overload}/${mode}: ${JSON.stringify(r)}`);
    } else {
      assert.ok(r.kind === 'respond' && 'response_body' in r.response && r.response.response_body?.response?.body_mutation === undefined, `${overload}/${mode}: passed unchanged`);
    }
    const note = findings.filter((f) => f.detector === 'content-body');
    assert.equal(note.length, 1, `${overload}/${mode}: one finding for the uninspected response`);
    assert.equal(note[0]!.severity, severity);
    assert.equal(note[0]!.evidence.direction, 'response');
    assert.equal(note[0]!.blocksResponse === true, overload === 'closed');
    assert.match(note[0]!.summary, /^response body .*body of 400 bytes not inspected: server body budget full \(800 of 1000 bytes held\)/);
    assert.deepEqual([budget.held, budget.overBudget], [800, 1], 'the refused response body was never held');
    holder.releaseBodies();
    s.releaseBodies();
    assert.deepEqual([budget.held, budget.leases], [0, 0]);
  }
});

test('a response body leaves the budget on every ending: off-thread answer, cancel during the decode, failure, protocol error', async () => {
  await warmBodyPool();
  const large = jsonBody(OFF_THREAD_BODY_BYTES * 2);
  const budget = new BodyBudget(1024 * 1024);
  const { engine, open } = streams(budget, 'open', 'enforce');

  const answered = awaitingResponseBody(open);
  const pending = answered.handle(responseBody(large));
  assert.ok(pending instanceof Promise, 'a large body is decoded off the event loop');
  assert.equal(budget.held, large.length, 'held while the decode runs');
  assert.equal((await pending).kind, 'respond');
  assert.deepEqual([budget.held, budget.leases], [0, 0], 'answered');

  const cancelled = awaitingResponseBody(open);
  const late = cancelled.handle(responseBody(Buffer.from(large))); // a new buffer: decodes are cached per buffer
  assert.equal(budget.held, large.length);
  cancelled.releaseBodies(); // the call closed (Envoy reset it) before the decode finished
  assert.deepEqual([budget.held, budget.leases], [0, 0], 'released at once');
  await late;
  assert.deepEqual([budget.held, budget.leases], [0, 0], 'the late answer releases nothing twice');

  const removeFailing = engine.addObserver({ onResponse: () => { throw new Error('sink failed'); } });
  const failed = awaitingResponseBody(open);
  assert.equal(failed.step(responseBody(jsonBody(500))).kind, 'error');
  assert.deepEqual([budget.held, budget.leases], [0, 0], 'a failed answer holds nothing');
  removeFailing();

  const violated = awaitingResponseBody(open);
  violated.step(responseBody(jsonBody(500)));
  assert.equal(violated.step(responseBody(jsonBody(500))).kind, 'error', 'a body after the end is a protocol error');
  violated.releaseBodies();
  assert.deepEqual([budget.held, budget.leases, budget.overBudget], [0, 0, 0]);
});

test('property: interleaved request and response bodies of many streams, ended at any point, match a model of the budget and return to zero', () => {
  // Per stream: request headers, request body (if any), response headers, response body; ended at endAt.
  const streamPlan = fc.record({ request: fc.option(fc.integer({ min: 20, max: 700 }), { nil: undefined }), response: fc.integer({ min: 20, max: 700 }), endAt: fc.integer({ min: 0, max: 4 }) });
  fc.assert(fc.property(fc.array(streamPlan, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 60 }), (plans, schedule) => {
    const budget = new BodyBudget(1500);
    const { open } = streams(budget, 'open', 'monitor');
    const live = plans.map((plan) => ({ plan, stream: open(), stepsDone: 0, charged: 0, ended: false }));
    let modelHeld = 0;
    let modelOver = 0;
    const charge = (bytes: number): boolean => {
      if (modelHeld + bytes > budget.maxBytes) { modelOver++; return false; }
      modelHeld += bytes;
      return true;
    };
    const end = (l: (typeof live)[number]): void => {
      l.stream.releaseBodies();
      modelHeld -= l.charged;
      l.ended = true;
    };
    for (const pick of schedule) {
      const l = live[pick % live.length]!;
      if (l.ended) continue;
      const steps = l.plan.request === undefined ? ['headers', 'response headers', 'response body'] : ['headers', 'request body', 'response headers', 'response body'];
      if (l.stepsDone >= Math.min(l.plan.endAt, steps.length)) { end(l); continue; }
      const step = steps[l.stepsDone++]!;
      let result;
      if (step === 'headers') result = l.stream.step(l.plan.request === undefined ? sampledGet : sampledPost);
      else if (step === 'request body') {
        result = l.stream.step(bodyMessage(jsonBody(l.plan.request!)));
        if (charge(l.plan.request!)) l.charged = l.plan.request!;
      } else if (step === 'response headers') result = l.stream.step(responseHeaders);
      else {
        result = l.stream.step(responseBody(jsonBody(l.plan.response)));
        if (charge(l.plan.response)) modelHeld -= l.plan.response; // held only while inspected
      }
      assert.equal(result.kind, 'respond', 'monitor mode passes everything');
      assert.ok(budget.held <= budget.maxBytes);
      assert.deepEqual([budget.held, budget.overBudget], [modelHeld, modelOver]);
    }
    for (const l of live) if (!l.ended) end(l);
    assert.deepEqual([budget.held, budget.leases], [0, 0]);
  }), { numRuns: 60 });
});

test('messages queued behind an off-thread decode when the stream ends charge nothing afterwards', async () => {
  await warmBodyPool();
  const budget = new BodyBudget(1024 * 1024);
  const { open } = streams(budget, 'open', 'monitor');
  const s = open();
  s.handle(sampledPost);
  const decoding = s.handle(bodyMessage(jsonBody(OFF_THREAD_BODY_BYTES * 2)));
  assert.ok(decoding instanceof Promise);
  // A client that does not wait for answers: these queue behind the decode.
  const queued = [s.handle(responseHeaders), s.handle(responseBody(jsonBody(OFF_THREAD_BODY_BYTES * 3)))];
  s.releaseBodies(); // the call closed (cancelled) before the decode finished
  assert.deepEqual([budget.held, budget.leases], [0, 0]);
  await Promise.all([decoding, ...queued]);
  await s.idle();
  assert.deepEqual([budget.held, budget.leases], [0, 0], 'nothing reserved after the stream ended');
});
