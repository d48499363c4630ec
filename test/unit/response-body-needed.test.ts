// Which responses the server asks Envoy for whatever the filter's sampling said (Engine.needsResponseBody):
// redaction in enforce mode and third-party answers in enforce mode act before the client receives the
// response, so they need every such body, not a sample. Everything else stays on the filter's sampling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, type PolicyMode } from '../../extproc/src/engine/engine.ts';
import type { RequestEvent, ResponseEvent } from '../../extproc/src/engine/event.ts';
import { createContentDetectors } from '../../extproc/src/engine/detectors/content.ts';
import { createContentContext, defaultContentSettings, type ContentSettings } from '../../extproc/src/inspect/settings.ts';
import { ExtProcStream } from '../../extproc/src/wire/stream.ts';
import { silentLogger } from '../../extproc/src/log.ts';
import { CAPTURE_ATTRIBUTE, EXT_PROC_ATTRIBUTES_KEY } from '../../extproc/src/wire/request.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../extproc/src/wire/messages.ts';

let seq = 0;
function engineWith(mode: PolicyMode, content: Partial<ContentSettings>): Engine {
  const context = createContentContext(content);
  return new Engine({ denyRules: [], mode, detectors: (c) => createContentDetectors(c, context) });
}

function request(over: Partial<RequestEvent> = {}): RequestEvent {
  return {
    requestId: `r${seq++}`, time: Date.now(), caller: { workload: 'spiffe://cluster.local/ns/shop/sa/payments', mtls: true, identitySource: 'filter' },
    method: 'GET', authority: 'accounts.shop', path: '/account', headers: new Map(), sampled: false, ...over,
  };
}

const REDACT: Partial<ContentSettings> = { exposure: { ...defaultContentSettings().exposure, redact: ['card-number'] } };
const THIRD_PARTY: Partial<ContentSettings> = { thirdPartyHosts: ['api.fx-rates.example'] };
const outbound = (authority: string): Partial<RequestEvent> => ({ direction: 'outbound', authority, destination: authority });
const responseOf = (r: RequestEvent, headers: [string, string][] = [['content-type', 'application/json']]): ResponseEvent =>
  ({ requestId: r.requestId, time: r.time, status: 200, headers: new Map(headers.map(([k, v]) => [k, [v]])) });

test('redaction needs every response body in enforce mode, none in monitor mode or without redaction', () => {
  for (const [mode, content, expected] of [['enforce', REDACT, true], ['monitor', REDACT, false], ['enforce', {}, false]] as const) {
    const engine = engineWith(mode, content);
    const r = request();
    engine.decide(r);
    assert.equal(engine.needsResponseBody(r, responseOf(r)), expected, `${mode} ${JSON.stringify(content)}`);
  }
});

test('redaction does not buffer types that cannot carry the values (an encoded JSON body is fetched: the finding says it could not be rewritten)', () => {
  const engine = engineWith('enforce', REDACT);
  const cases: [[string, string][], boolean][] = [
    [[['content-type', 'application/problem+json']], true],
    [[['content-type', 'text/plain; charset=utf-8']], true],
    [[], true], // undeclared: it may be JSON
    [[['content-type', 'image/png']], false],
    [[['content-type', 'application/octet-stream']], false],
    [[['content-type', 'application/json'], ['content-encoding', 'gzip']], true],
    [[['content-type', 'application/json'], ['content-encoding', 'identity']], true],
  ];
  for (const [headers, expected] of cases) {
    const r = request();
    engine.decide(r);
    assert.equal(engine.needsResponseBody(r, responseOf(r, headers)), expected, JSON.stringify(headers));
  }
});

test('third-party answers need their bodies in enforce mode; inbound calls and other hosts stay sampled', () => {
  const enforce = engineWith('enforce', THIRD_PARTY);
  const cases: [Partial<RequestEvent>, boolean][] = [
    [outbound('api.fx-rates.example'), true],
    [outbound('orders.shop.svc.cluster.local'), false],
    [{ direction: 'inbound', authority: 'api.fx-rates.example' }, false],
  ];
  for (const [over, expected] of cases) {
    const r = request(over);
    enforce.decide(r);
    assert.equal(enforce.needsResponseBody(r, responseOf(r)), expected, JSON.stringify(over));
  }
  const monitor = engineWith('monitor', THIRD_PARTY);
  const r = request(outbound('api.fx-rates.example'));
  monitor.decide(r);
  assert.equal(monitor.needsResponseBody(r, responseOf(r)), false);
});

test('on the wire: an unsampled request still gets its response body asked for when redaction needs it', async () => {
  const record = (sampled: boolean): string => `mw1\npeer=spiffe://cluster.local/ns/shop/sa/web\nmtls=1\nrole=inbound\nmethod=GET\nauthority=accounts.shop\npath=/account\nsampled=${sampled ? 1 : 0}\n`;
  const headers = (sampled: boolean): ProcessingRequest => ({
    request: 'request_headers', request_headers: { headers: { headers: [{ key: ':method', raw_value: Buffer.from('GET') }, { key: ':path', raw_value: Buffer.from('/account') }, { key: ':authority', raw_value: Buffer.from('accounts.shop') }] }, end_of_stream: true },
    attributes: { [EXT_PROC_ATTRIBUTES_KEY]: { fields: { [CAPTURE_ATTRIBUTE]: { stringValue: record(sampled) } } } },
  });
  const responseHeaders: ProcessingRequest = { request: 'response_headers', response_headers: { headers: { headers: [{ key: ':status', raw_value: Buffer.from('200') }, { key: 'content-type', raw_value: Buffer.from('application/json') }] }, end_of_stream: false } };
  const asksForBody = async (engine: Engine): Promise<boolean> => {
    const stream = new ExtProcStream(`s${seq++}`, engine, silentLogger, Date.now);
    await stream.handle(headers(false));
    const answer = await stream.handle(responseHeaders) as { kind: string; response?: ProcessingResponse };
    assert.equal(answer.kind, 'respond');
    return (answer.response as { mode_override?: { response_body_mode?: string } }).mode_override?.response_body_mode === 'BUFFERED_PARTIAL';
  };
  assert.equal(await asksForBody(engineWith('enforce', REDACT)), true);
  assert.equal(await asksForBody(engineWith('monitor', REDACT)), false);
  assert.equal(await asksForBody(engineWith('enforce', {})), false);
});
