// The per-stream protocol state machine, without gRPC: every message kind, order rules, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { Engine } from '../../extproc/src/engine/engine.ts';
import { silentLogger } from '../../extproc/src/log.ts';
import { ExtProcStream } from '../../extproc/src/wire/stream.ts';
import type { ProcessingRequest } from '../../extproc/src/wire/messages.ts';
import type { Detector } from '../../extproc/src/engine/detector.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';

const hdrs = (pairs: [string, string][]) => ({ headers: { headers: pairs.map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) } });
const reqHeaders = (path = '/x', extra: [string, string][] = []): ProcessingRequest => ({
  request: 'request_headers',
  request_headers: hdrs([[':method', 'GET'], [':path', path], [':authority', 'svc'], ...extra]),
});
const msg = (kind: ProcessingRequest['request'], body?: Partial<ProcessingRequest>): ProcessingRequest => ({ request: kind, ...body });

function newStream(engine = new Engine({ denyRules: [] })): ExtProcStream {
  return new ExtProcStream('t-1', engine, silentLogger);
}

test('a full exchange of every message kind gets one matching response each, in order', () => {
  const s = newStream();
  const sequence: [ProcessingRequest, string][] = [
    [reqHeaders(), 'request_headers'],
    [msg('request_body', { request_body: { body: Buffer.from('a'), end_of_stream: false } }), 'request_body'],
    [msg('request_body', { request_body: { body: Buffer.from('b'), end_of_stream: true } }), 'request_body'],
    [msg('request_trailers', { request_trailers: {} }), 'request_trailers'],
    [msg('response_headers', { response_headers: hdrs([[':status', '200']]) }), 'response_headers'],
    [msg('response_body', { response_body: { body: Buffer.from('c'), end_of_stream: true } }), 'response_body'],
    [msg('response_trailers', { response_trailers: {} }), 'response_trailers'],
  ];
  for (const [m, expected] of sequence) {
    const r = s.step(m);
    assert.equal(r.kind, 'respond', `${m.request} answered`);
    if (r.kind === 'respond') assert.deepEqual(Object.keys(r.response), [expected]);
  }
});

test('response direction may interleave with a streaming request body', () => {
  const s = newStream();
  assert.equal(s.step(reqHeaders()).kind, 'respond');
  assert.equal(s.step(msg('request_body', { request_body: { body: Buffer.from('a') } })).kind, 'respond');
  assert.equal(s.step(msg('response_headers', { response_headers: hdrs([[':status', '200']]) })).kind, 'respond');
  assert.equal(s.step(msg('request_body', { request_body: { body: Buffer.from('b'), end_of_stream: true } })).kind, 'respond');
});

for (const [name, first, second] of [
  ['request_headers twice', reqHeaders(), reqHeaders()],
  ['response_headers twice', msg('response_headers', { response_headers: {} }), msg('response_headers', { response_headers: {} })],
  ['request body after request trailers', msg('request_trailers', { request_trailers: {} }), msg('request_body', { request_body: {} })],
  ['request body after its end_of_stream', msg('request_body', { request_body: { end_of_stream: true } }), msg('request_body', { request_body: {} })],
  ['request headers after request body', msg('request_body', { request_body: {} }), reqHeaders()],
] as const) {
  test(`out of order (${name}) ends the stream with FAILED_PRECONDITION`, () => {
    const s = newStream();
    assert.equal(s.step(first).kind, 'respond');
    const r = s.step(second);
    assert.equal(r.kind, 'error');
    if (r.kind === 'error') {
      assert.equal(r.error.code, status.FAILED_PRECONDITION);
      assert.match(r.error.message, /out-of-order/);
    }
  });
}

test('a message with no request oneof is INVALID_ARGUMENT, not a crash', () => {
  for (const bad of [{}, { request: 'nonsense' }, null, 42] as unknown[]) {
    const r = newStream().step(bad as ProcessingRequest);
    assert.equal(r.kind, 'error');
    if (r.kind === 'error') assert.equal(r.error.code, status.INVALID_ARGUMENT);
  }
});

test('a denied request answers ImmediateResponse 403 and rejects any later message', () => {
  const engine = new Engine({ denyRules: [{ name: 'r', identity: 'spiffe://td/ns/a/sa/b' }] });
  const s = newStream(engine);
  const denied = s.step({
    ...reqHeaders(),
    attributes: { 'envoy.filters.http.ext_proc': { fields: { 'connection.uri_san_peer_certificate': { stringValue: 'spiffe://td/ns/a/sa/b' } } } },
  });
  assert.equal(denied.kind, 'respond');
  if (denied.kind === 'respond') {
    assert.ok('immediate_response' in denied.response);
    if ('immediate_response' in denied.response) {
      assert.equal(denied.response.immediate_response.status.code, 403);
      assert.equal(JSON.parse(denied.response.immediate_response.body!.toString()).rule, 'r');
    }
  }
  const later = s.step(msg('response_headers', { response_headers: {} }));
  assert.equal(later.kind, 'error');
});

test('observability-mode messages are processed but not answered', () => {
  const r = newStream().step({ ...reqHeaders(), observability_mode: true });
  assert.equal(r.kind, 'silent');
});

test('observability mode, enforce: the deny still reaches observers (the filter tables) and the finding says the request was not stopped', () => {
  const flagAll = { name: 'flag-all', onRequest: (x: { callerKey: string; operation: string; request: { requestId: string; time: number } }) => [{
    category: 'API1:2023-BOLA', detector: 'flag-all', severity: 'high', caller: x.callerKey, operation: x.operation, requestId: x.request.requestId,
    time: x.request.time, summary: 'flagged', evidence: {}, enforcement: 'deny',
  }] } as unknown as Detector;
  const engine = new Engine({ denyRules: [], mode: 'enforce', detectors: () => [flagAll] });
  const decisions: string[] = [];
  const findings: Finding[] = [];
  engine.addObserver({ onDecision: (r) => decisions.push(r.decision.action), onFinding: (f) => findings.push(f) });
  assert.equal(newStream(engine).step({ ...reqHeaders(), observability_mode: true }).kind, 'silent');
  const sync = newStream(engine).step(reqHeaders());
  assert.equal(sync.kind, 'respond');
  assert.deepEqual(decisions, ['deny', 'deny']);
  assert.match(String(findings[0]!.evidence.enforcementDeferred), /observability mode/);
  assert.equal(findings[1]!.evidence.enforcementDeferred, undefined, 'a synchronous deny stopped its request');
});

test('client-sent x-meshward-* headers are removed before the app', () => {
  const r = newStream().step(reqHeaders('/x', [['x-meshward-peer', 'spiffe://forged'], ['x-other', '1']]));
  assert.equal(r.kind, 'respond');
  if (r.kind === 'respond' && 'request_headers' in r.response) {
    assert.deepEqual(r.response.request_headers.response?.header_mutation?.remove_headers, ['x-meshward-peer']);
  } else {
    assert.fail('expected a request_headers response');
  }
});

test('an engine exception becomes INTERNAL for that stream only', () => {
  const engine = new Engine({ denyRules: [] });
  engine.addObserver({ onDecision: () => { throw new Error('boom'); } });
  const r = newStream(engine).step(reqHeaders());
  assert.equal(r.kind, 'error');
  if (r.kind === 'error') assert.equal(r.error.code, status.INTERNAL);
  assert.equal(newStream().step(reqHeaders()).kind, 'respond', 'other streams are unaffected');
});
