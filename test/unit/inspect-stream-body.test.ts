// The ext_proc stream hands bodies to the engine (issue #6): a sampled request with a body is
// decided when its BUFFERED body arrives (so content detectors can deny it), a sampled response is
// observed with its body; unsampled requests are decided on headers as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { Detector } from '../../extproc/src/engine/detector.ts';
import { findingFor } from '../../extproc/src/engine/detector-context.ts';
import { silentLogger } from '../../extproc/src/log.ts';
import { ExtProcStream } from '../../extproc/src/wire/stream.ts';
import type { ProcessingRequest } from '../../extproc/src/wire/messages.ts';
import { CAPTURE_ATTRIBUTE, EXT_PROC_ATTRIBUTES_KEY } from '../../extproc/src/wire/request.ts';

const hdrs = (pairs: [string, string][], endOfStream = false) => ({ headers: { headers: pairs.map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) }, end_of_stream: endOfStream });

function requestHeaders(sampled: boolean, endOfStream: boolean): ProcessingRequest {
  const record = `mw1\nrole=inbound\npeer=spiffe://cluster.local/ns/a/sa/b\nmtls=1\nsampled=${sampled ? 1 : 0}\n`;
  return {
    request: 'request_headers',
    request_headers: hdrs([[':method', 'POST'], [':path', '/users'], [':authority', 'svc'], ['content-type', 'application/json']], endOfStream),
    attributes: { [EXT_PROC_ATTRIBUTES_KEY]: { fields: { [CAPTURE_ATTRIBUTE]: { kind: 'stringValue', stringValue: record } } } },
  };
}

/** Denies requests whose body sets "isAdmin", and remembers the bodies each phase saw. */
function setup() {
  const seen = { requestBodies: [] as (string | undefined)[], responseBodies: [] as (string | undefined)[] };
  const detector: Detector = {
    name: 'body-probe',
    onRequest: (ex) => {
      seen.requestBodies.push(ex.request.body?.toString());
      return ex.request.body?.includes('isAdmin') ? [findingFor('body-probe', ex, { category: 'API3:2023-BrokenObjectPropertyLevelAuthorization', severity: 'high', summary: 'x', evidence: {}, enforcement: 'deny' })] : [];
    },
    onResponse: (ex) => { seen.responseBodies.push(ex.response?.body?.toString()); return []; },
  };
  const engine = new Engine({ denyRules: [], mode: 'enforce', detectors: () => [detector] });
  return { stream: new ExtProcStream('s1', engine, silentLogger), seen };
}

test('a sampled request with a body: headers continue with BUFFERED_PARTIAL, the decision comes with the body', () => {
  const { stream, seen } = setup();
  const h = stream.step(requestHeaders(true, false));
  assert.equal(h.kind, 'respond');
  if (h.kind === 'respond') assert.deepEqual((h.response as { mode_override?: unknown }).mode_override, { request_body_mode: 'BUFFERED_PARTIAL' });
  assert.deepEqual(seen.requestBodies, [], 'not decided on headers');
  const b = stream.step({ request: 'request_body', request_body: { body: Buffer.from('{"isAdmin":true}'), end_of_stream: true } });
  assert.equal(b.kind, 'respond');
  if (b.kind === 'respond') assert.equal((b.response as { immediate_response?: { status: { code: number } } }).immediate_response?.status.code, 403);
  assert.deepEqual(seen.requestBodies, ['{"isAdmin":true}']);
});

test('a sampled request with a harmless body continues, and its response is observed with the body', () => {
  const { stream, seen } = setup();
  stream.step(requestHeaders(true, false));
  const b = stream.step({ request: 'request_body', request_body: { body: Buffer.from('{"name":"ann"}'), end_of_stream: true } });
  assert.ok(b.kind === 'respond' && 'request_body' in b.response);
  const rh = stream.step({ request: 'response_headers', response_headers: hdrs([[':status', '200']]) });
  assert.ok(rh.kind === 'respond' && (rh.response as { mode_override?: { response_body_mode?: string } }).mode_override?.response_body_mode === 'BUFFERED_PARTIAL');
  assert.deepEqual(seen.responseBodies, [], 'response waits for its body');
  stream.step({ request: 'response_body', response_body: { body: Buffer.from('{"id":1}'), end_of_stream: true } });
  assert.deepEqual(seen.responseBodies, ['{"id":1}']);
});

test('unsampled requests, and sampled ones without a body, are decided on headers', () => {
  for (const [sampled, endOfStream] of [[false, false], [true, true]] as const) {
    const { stream, seen } = setup();
    const h = stream.step(requestHeaders(sampled, endOfStream));
    assert.ok(h.kind === 'respond' && 'request_headers' in h.response);
    assert.deepEqual(seen.requestBodies, [undefined]);
  }
});

test('if Envoy never sends the body (mode override refused), the request is still decided, at the response', () => {
  const { stream, seen } = setup();
  stream.step(requestHeaders(true, false));
  stream.step({ request: 'response_headers', response_headers: hdrs([[':status', '200']], true) });
  assert.deepEqual(seen.requestBodies, [undefined]);
  assert.deepEqual(seen.responseBodies, [undefined]);
});
