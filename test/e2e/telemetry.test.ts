// Issue #8: meshward's span sits in the request's own trace, read back from a real Jaeger v2
// that received it over OTLP/HTTP, after the request went through real Envoy sidecars.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import { Telemetry } from '../../extproc/src/telemetry/otel.ts';
import { startJaeger, type Jaeger } from '../support/jaeger.ts';

let mesh: LocalMesh;
let jaeger: Jaeger;
let telemetry: Telemetry;

before(async () => {
  jaeger = await startJaeger();
  mesh = await startLocalMesh({
    callers: ['web/frontend', 'payments/payment-worker'],
    engine: { denyRules: [{ name: 'worker-denied', identity: 'spiffe://cluster.local/ns/payments/sa/payment-worker' }] },
  });
  telemetry = new Telemetry({ endpoint: jaeger.otlpHttpEndpoint, serviceName: 'meshward-test' });
  telemetry.attach(mesh.engine);
});

after(async () => {
  await telemetry?.shutdown();
  await mesh?.stop();
  await jaeger?.stop();
});

async function spansOf(traceId: string, want: number): Promise<Awaited<ReturnType<Jaeger['traceSpans']>>> {
  for (let i = 0; i < 100; i++) {
    await telemetry.flush();
    const spans = await jaeger.traceSpans(traceId);
    if (spans.length >= want) return spans;
    await new Promise((r) => setTimeout(r, 100));
  }
  return jaeger.traceSpans(traceId);
}

const tag = (span: { tags: { key: string; value: unknown }[] }, key: string): unknown => span.tags.find((t) => t.key === key)?.value;

test('the meshward span is a child of the caller span named in traceparent', async () => {
  const traceId = randomBytes(16).toString('hex');
  const parentSpanId = randomBytes(8).toString('hex');
  const res = await fetch(mesh.urlFor('web/frontend') + '/orders/42?token=secret-value', { headers: { traceparent: `00-${traceId}-${parentSpanId}-01` } });
  assert.equal(res.status, 200);
  const spans = await spansOf(traceId, 1);
  const span = spans.find((s) => s.operationName === 'meshward.decide');
  assert.ok(span, `meshward span found in trace ${traceId}: ${JSON.stringify(spans.map((s) => s.operationName))}`);
  assert.deepEqual(span.references.map((r) => [r.refType, r.traceID, r.spanID]), [['CHILD_OF', traceId, parentSpanId]]);
  assert.equal(tag(span, 'meshward.decision'), 'allow');
  assert.equal(tag(span, 'meshward.caller.workload'), mesh.spiffeIdOf('web/frontend'));
  assert.equal(tag(span, 'url.path'), '/orders/42', 'the query string (which may carry secrets) is not exported');
  assert.equal(tag(span, 'http.response.status_code'), 200);
  assert.ok(!JSON.stringify(span).includes('secret-value'), 'no query value anywhere in the span');
});

test('a denied request is traced with its rule', async () => {
  const traceId = randomBytes(16).toString('hex');
  const res = await fetch(mesh.urlFor('payments/payment-worker') + '/orders/1', { headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` } });
  assert.equal(res.status, 403);
  const span = (await spansOf(traceId, 1)).find((s) => s.operationName === 'meshward.decide');
  assert.ok(span);
  assert.equal(tag(span, 'meshward.decision'), 'deny');
  assert.equal(tag(span, 'meshward.rule'), 'worker-denied');
});
