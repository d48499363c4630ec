// Issue #8: findings leave meshward as OTLP log records (in the request's trace) and as metrics by
// category and severity, over real OTLP/HTTP to a local receiver; tokens never leave.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import { Telemetry } from '../../extproc/src/telemetry/otel.ts';
import { logFindings } from '../../extproc/src/telemetry/finding-log.ts';
import { pino } from 'pino';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.ts';

let received: Map<string, Buffer[]>;
let endpoint: string;
let receiver: OtlpReceiver;

before(async () => {
  receiver = await startOtlpReceiver();
  ({ endpoint, received } = receiver);
});
after(() => receiver.close());

const SECRET = 'super-secret-bearer-value-123';

function pollutedRequest(traceId: string): RequestEvent {
  return {
    requestId: 'req-1', time: Date.now(), caller: { workload: 'spiffe://cluster.local/ns/web/sa/frontend', mtls: true, identitySource: 'filter' },
    method: 'GET', authority: 'orders.shop.svc.cluster.local', path: '/orders?orderId=1&orderId=2',
    headers: new Map([['traceparent', [`00-${traceId}-${randomBytes(8).toString('hex')}-01`]], ['authorization', [`Bearer ${SECRET}`]]]),
  };
}

test('a finding is exported as a log record in the request trace and counted by category and severity', async () => {
  const engine = new Engine({ denyRules: [] });
  const telemetry = new Telemetry({ endpoint, metricExportIntervalMs: 60_000 });
  telemetry.attach(engine);
  telemetry.observeServer(() => ({ streamsStarted: 3, streamsActive: 0, streamsFailed: 1, messages: 9 }));
  const traceId = randomBytes(16).toString('hex');
  engine.decide(pollutedRequest(traceId));
  await telemetry.flush();
  await telemetry.shutdown();

  const logs = Buffer.concat(received.get('/v1/logs') ?? []);
  assert.ok(logs.length > 0, 'log records exported to /v1/logs');
  assert.ok(logs.includes('API1:2023-BOLA'), 'category attribute');
  assert.ok(logs.includes('parameter pollution'), 'summary as the body');
  assert.ok(logs.includes(Buffer.from(traceId, 'hex')), 'the log record carries the request trace id');
  const metrics = Buffer.concat(received.get('/v1/metrics') ?? []);
  for (const name of ['meshward.findings', 'meshward.decisions', 'meshward.decision.duration', 'meshward.ext_proc.stream_errors']) {
    assert.ok(metrics.includes(name), `metric ${name} exported`);
  }
  assert.ok(metrics.includes('API1:2023-BOLA') && metrics.includes('medium'), 'findings metric has category and severity attributes');
  for (const [url, bodies] of received) assert.ok(!Buffer.concat(bodies).includes(SECRET), `no raw token in ${url}`);
});

test('findings as pino JSON lines, without raw secrets', () => {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => { lines.push(s); } });
  const engine = new Engine({ denyRules: [] });
  logFindings(engine, log);
  engine.decide(pollutedRequest(randomBytes(16).toString('hex')));
  const findings = lines.map((l) => JSON.parse(l) as { msg: string; finding?: { category: string; severity: string } }).filter((l) => l.msg === 'finding');
  assert.ok(findings.length >= 1);
  assert.equal(findings[0]!.finding!.category, 'API1:2023-BOLA');
  assert.ok(!lines.join('').includes(SECRET));
});
