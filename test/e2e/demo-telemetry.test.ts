// `meshward demo --otlp-endpoint`: the demo's decisions reach a real Jaeger v2 over OTLP/HTTP, the
// blocked attacks among them with the rule that blocked them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { runDemo } from '../../extproc/src/cli/demo.ts';
import { startJaeger, type Jaeger } from '../support/jaeger.ts';

let jaeger: Jaeger;
before(async () => { jaeger = await startJaeger(); });
after(async () => { await jaeger?.stop(); });

interface JaegerSpan { operationName: string; tags: { key: string; value: unknown }[] }

test('the demo exports a span per decision; denied ones carry their rule', async () => {
  const { report } = await runDemo({ learnMs: 5000, attackMs: 0, latencySamples: 5, thinkMs: 40, progress: 'none', printReport: false, out: () => {}, otlpEndpoint: jaeger.otlpHttpEndpoint });
  const tags = encodeURIComponent(JSON.stringify({ 'meshward.decision': 'deny' }));
  let spans: JaegerSpan[] = [];
  for (let i = 0; i < 50 && spans.length === 0; i++) {
    const res = await fetch(`${jaeger.queryUrl}/api/traces?service=meshward-demo&tags=${tags}&limit=200&lookback=1h`);
    const body = await res.json() as { data?: { spans: JaegerSpan[] }[] };
    spans = (body.data ?? []).flatMap((t) => t.spans).filter((s) => s.operationName === 'meshward.decide');
    if (spans.length === 0) await new Promise((r) => setTimeout(r, 200));
  }
  const tag = (s: JaegerSpan, k: string): unknown => s.tags.find((t) => t.key === k)?.value;
  assert.ok(spans.length > 0, 'denied decisions found in Jaeger');
  const rules = new Set(spans.map((s) => tag(s, 'meshward.rule')));
  const blockedRules = new Set(report.blocked.map((b) => b.rule));
  for (const r of rules) assert.ok(blockedRules.has(r as string), `span rule ${String(r)} is one the report says blocked`);
  assert.ok(rules.has('bola'), 'the ID walk block is traced');
});
