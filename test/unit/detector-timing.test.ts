// The engine's detector timing hook (onDetectorTiming) and its telemetry histogram
// meshward.detector.duration, exported over real OTLP/HTTP to a local receiver.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Engine, type DetectorPhase } from '../../extproc/src/engine/engine.ts';
import type { RequestEvent, ResponseEvent } from '../../extproc/src/engine/event.ts';
import type { Detector } from '../../extproc/src/engine/detector.ts';
import { Telemetry } from '../../extproc/src/telemetry/otel.ts';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.ts';

const request = (id: string): RequestEvent => ({
  requestId: id, time: 1_000_000, caller: { workload: 'spiffe://cluster.local/ns/web/sa/frontend', mtls: true, identitySource: 'filter' },
  method: 'GET', authority: 'orders.svc', path: '/orders/1', headers: new Map(),
});
const response = (id: string): ResponseEvent => ({ requestId: id, time: 1_000_010, status: 200, headers: new Map() });

/** A detector that holds the event loop for at least `ms` milliseconds on each request. */
const slow = (ms: number): Detector => ({
  name: 'slow',
  onRequest: () => { const t = performance.now(); while (performance.now() - t < ms); return []; },
});
const requestOnly: Detector = { name: 'request-only', onRequest: () => [] };
const responseOnly: Detector = { name: 'response-only', onResponse: () => [] };
const throwing: Detector = { name: 'throwing', onRequest: () => { throw new Error('boom'); } };

test('every detector call is timed once, by phase; a throwing detector is timed too', () => {
  const engine = new Engine({ denyRules: [], detectors: () => [slow(3), requestOnly, responseOnly, throwing] });
  const timings: [string, DetectorPhase, number][] = [];
  const errors: string[] = [];
  engine.addObserver({ onDetectorTiming: (d, phase, ms) => timings.push([d, phase, ms]), onDetectorError: (d) => errors.push(d) });
  engine.decide(request('a'));
  engine.observeResponse(request('a'), response('a'));
  assert.deepEqual(timings.map(([d, p]) => `${d}:${p}`), ['slow:request', 'request-only:request', 'throwing:request', 'response-only:response']);
  assert.deepEqual(errors, ['throwing']);
  const slowMs = timings.find(([d]) => d === 'slow')![2];
  assert.ok(slowMs >= 3, `the slow detector's duration covers its work (${slowMs} ms)`);
  assert.ok(timings.every(([, , ms]) => Number.isFinite(ms) && ms >= 0));
});

test('a removed observer gets no more timings; other observers are unaffected', () => {
  const engine = new Engine({ denyRules: [], detectors: () => [requestOnly] });
  let timed = 0;
  let decided = 0;
  const remove = engine.addObserver({ onDetectorTiming: () => { timed++; } });
  engine.addObserver({ onDecision: () => { decided++; } });
  engine.decide(request('b'));
  remove();
  engine.decide(request('c'));
  assert.equal(timed, 1);
  assert.equal(decided, 2);
});

let receiver: OtlpReceiver;
before(async () => { receiver = await startOtlpReceiver(); });
after(() => receiver.close());

test('telemetry records meshward.detector.duration per detector and phase', async () => {
  const engine = new Engine({ denyRules: [] });
  const telemetry = new Telemetry({ endpoint: receiver.endpoint, metricExportIntervalMs: 60_000 });
  telemetry.attach(engine);
  engine.decide(request('d'));
  engine.observeResponse(request('d'), response('d'));
  await telemetry.flush();
  await telemetry.shutdown();
  const metrics = Buffer.concat(receiver.received.get('/v1/metrics') ?? []);
  assert.ok(metrics.includes('meshward.detector.duration'), 'histogram exported');
  for (const detector of engine.detectorNames) assert.ok(metrics.includes(detector), `detector attribute ${detector}`);
  assert.ok(metrics.includes('request') && metrics.includes('response'), 'phase attribute');
});
