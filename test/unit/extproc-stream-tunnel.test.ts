// A sampled upgrade (WebSocket) or CONNECT opens a tunnel: its "body" lasts as long as the
// connection, so the stream must decide on the headers and never ask Envoy to buffer it, in either
// direction; a sampled ordinary request still waits for its body.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../extproc/src/engine/engine.ts';
import { ExtProcStream } from '../../extproc/src/wire/stream.ts';
import type { ProcessingRequest } from '../../extproc/src/wire/messages.ts';
import { silentLogger } from '../../extproc/src/log.ts';

const h = (k: string, v: string) => ({ key: k, raw_value: Buffer.from(v) });
function requestHeaders(method: string, extra: [string, string][]): ProcessingRequest {
  return {
    request: 'request_headers',
    request_headers: { headers: { headers: [h(':method', method), h(':path', '/chat'), h(':authority', 'chat.svc'), ...extra.map(([k, v]) => h(k, v))] }, end_of_stream: false },
    attributes: { 'envoy.filters.http.ext_proc': { fields: { "filter_state['wasm.meshward']": { stringValue: 'mw1\npeer=spiffe://cluster.local/ns/web/sa/frontend\nmtls=1\nsampled=1\n' } } } },
  };
}
const responseHeaders = (status: string): ProcessingRequest => ({ request: 'response_headers', response_headers: { headers: { headers: [h(':status', status)] }, end_of_stream: false } });

for (const [name, method, extra] of [
  ['WebSocket upgrade', 'GET', [['upgrade', 'websocket'], ['connection', 'Upgrade']]],
  ['CONNECT', 'CONNECT', [[':protocol', 'websocket']]],
] as const) {
  test(`a sampled ${name} is decided on its headers and no body is requested either way`, () => {
    const engine = new Engine({ denyRules: [] });
    let decisions = 0;
    engine.addObserver({ onDecision: () => { decisions++; } });
    const stream = new ExtProcStream('t', engine, silentLogger);
    const req = stream.step(requestHeaders(method, extra.map(([k, v]) => [k, v])));
    assert.equal(req.kind, 'respond');
    assert.ok(req.kind === 'respond' && !('mode_override' in req.response), 'no body mode override on the tunnel');
    assert.equal(decisions, 1, 'decided at the headers');
    const res = stream.step(responseHeaders('101'));
    assert.ok(res.kind === 'respond' && !('mode_override' in res.response), 'no response body requested');
  });
}

test('a sampled ordinary request still waits for its body', () => {
  const engine = new Engine({ denyRules: [] });
  let decisions = 0;
  engine.addObserver({ onDecision: () => { decisions++; } });
  const stream = new ExtProcStream('o', engine, silentLogger);
  const req = stream.step(requestHeaders('POST', [['content-type', 'application/json']]));
  assert.ok(req.kind === 'respond' && 'mode_override' in req.response, 'body requested');
  assert.equal(decisions, 0);
});
