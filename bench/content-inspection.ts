// Content inspection in-process (issue #6 targets): a 1 KB JSON request validated against its
// contract and inspected by every content detector (median <= 100 us, p99 <= 500 us), and how long
// one 1 MB JSON body blocks the event loop (target: never more than 5 ms).
// Run: node bench/content-inspection.ts [--iterations N] [--big-rate BODIES_PER_SECOND] [--big-seconds N]
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import type { RequestEvent, ResponseEvent } from '../extproc/src/engine/event.ts';
import { toExchange } from '../extproc/src/engine/exchange.ts';
import { EventClock } from '../extproc/src/engine/state.ts';
import { defaultDetectorSettings } from '../extproc/src/engine/policy-settings.ts';
import { createContentDetectors } from '../extproc/src/engine/detectors/content.ts';
import { createContentContext } from '../extproc/src/inspect/settings.ts';
import type { OpenApiOperation } from '../extproc/src/inspect/contract.ts';
import { closeBodyPool, warmBodyPool } from '../extproc/src/inspect/body-pool.ts';
import { monitorDelay } from './lib/event-loop-delay.ts';

const { values: args } = parseArgs({ options: { iterations: { type: 'string', default: '20000' }, 'big-rate': { type: 'string', default: '20' }, 'big-seconds': { type: 'string', default: '5' } } });
const iterations = Number(args.iterations);

const item = { type: 'object', properties: { sku: { type: 'string', maxLength: 32 }, qty: { type: 'integer', minimum: 1 }, note: { type: 'string' } } };
const op: OpenApiOperation = {
  operationId: 'createOrder',
  requestBody: { content: { 'application/json': { schema: { type: 'object', required: ['customer', 'items'], properties: { customer: { type: 'string' }, email: { type: 'string', format: 'email' }, items: { type: 'array', items: item }, callback: { type: 'string' } } } } } },
  responses: { '200': { content: { 'application/json': { schema: { type: 'object', properties: { id: { type: 'integer' }, status: { type: 'string' } } } } } } },
};

const content = createContentContext({}, () => ({ operation: op, pathParams: {} }));
const detectors = createContentDetectors({ settings: defaultDetectorSettings(), clock: new EventClock() }, content);

function body1k(i: number): Buffer {
  const items = Array.from({ length: 8 }, (_, k) => ({ sku: `SKU-${i}-${k}`, qty: 1 + (k % 3), note: 'gift wrap, leave at door' }));
  const doc = { customer: `customer-${i}`, email: `c${i}@example.com`, items, callback: 'https://hooks.example.com/orders' };
  let text = JSON.stringify(doc);
  while (text.length < 1024) text = JSON.stringify({ ...doc, pad: 'x'.repeat(1024 - text.length) });
  return Buffer.from(text);
}

function exchange(i: number, body: Buffer): void {
  const request: RequestEvent = {
    requestId: `r${i}`, time: 1_000_000 + i, caller: { workload: 'spiffe://cluster.local/ns/web/sa/frontend', mtls: true, identitySource: 'filter' },
    method: 'POST', authority: 'orders.svc', path: '/orders', headers: new Map([['content-type', ['application/json']]]), body,
  };
  const ex = toExchange(request);
  for (const d of detectors) d.onRequest?.(ex);
  const response: ResponseEvent = { requestId: request.requestId, time: request.time, status: 200, headers: new Map([['content-type', ['application/json']]]), body: Buffer.from(`{"id":${i},"status":"created"}`) };
  ex.response = response;
  for (const d of detectors) d.onResponse?.(ex);
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

const bodies = Array.from({ length: 64 }, (_, i) => body1k(i));
for (let i = 0; i < 2000; i++) exchange(i, bodies[i % 64]!); // warm-up: JIT and the compiled validators
const latencies: number[] = [];
for (let i = 0; i < iterations; i++) {
  const b = Buffer.from(bodies[i % 64]!); // a fresh Buffer: no decode cache hit across iterations
  const t = performance.now();
  exchange(i, b);
  latencies.push((performance.now() - t) * 1000);
}
latencies.sort((a, b) => a - b);
const median = percentile(latencies, 0.5);
const p99 = percentile(latencies, 0.99);
console.log(`1 KB JSON request + response through ${detectors.length} content detectors (${iterations} runs): median ${median.toFixed(1)} us (target <= 100), p99 ${p99.toFixed(1)} us (target <= 500)`);

const big = Buffer.from(JSON.stringify({ customer: 'c', items: Array.from({ length: 9000 }, (_, k) => ({ sku: `SKU-${k}`, qty: 1, note: 'n'.repeat(80) })) }));
const JSON_HEADERS = new Map([['content-type', ['application/json']]]);
// As the server runs it: prepare() hands the body to a decode worker (engine.prepare, stream.ts), then
// the detectors run on the sample. The event loop's synchronous blocks are the hand-off and the
// detectors. Measured over a steady stream of 1 MB bodies (--big-rate per second for --big-seconds),
// each arriving as a fresh Buffer as grpc-js delivers it, with the event-loop monitor running: the
// longest timer lateness is what a 1 MB body costs the event loop, garbage collection included.
// The whole-body decode on the event loop (what nothing does any more) is measured afterwards,
// apart, so its garbage does not land in the hand-off's numbers.
await warmBodyPool();
for (let i = 0; i < 4; i++) { const b = Buffer.from(big); await content.decoder.prepare(b, JSON_HEADERS); exchange(900_000 + i, b); } // warm-up
const handOffs: number[] = [];
const detectorRuns: number[] = [];
const bigRate = Number(args['big-rate']);
const monitor = monitorDelay();
const bigStart = performance.now();
const inFlight: Promise<void>[] = [];
for (let i = 0; performance.now() - bigStart < Number(args['big-seconds']) * 1000; i++) {
  const due = bigStart + (i * 1000) / bigRate;
  if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()));
  const body = Buffer.from(big);
  let t = performance.now();
  const ready = content.decoder.prepare(body, JSON_HEADERS);
  handOffs.push(performance.now() - t);
  inFlight.push(Promise.resolve(ready).then(() => {
    t = performance.now();
    exchange(1_000_000 + i, body);
    detectorRuns.push(performance.now() - t);
  }));
}
await Promise.all(inFlight);
const delay = monitor.stop();
let worstInline = 0;
for (let i = 0; i < 4; i++) {
  const t = performance.now();
  exchange(2_000_000 + i, Buffer.from(big)); // not prepared: decoded whole on the event loop
  worstInline = Math.max(worstInline, performance.now() - t);
}
await closeBodyPool();
handOffs.sort((a, b) => a - b);
detectorRuns.sort((a, b) => a - b);
const worstBlock = Math.max(handOffs.at(-1)!, detectorRuns.at(-1)!);
console.log(`${(big.length / 1048576).toFixed(2)} MB JSON bodies, ${handOffs.length} at ${bigRate}/s: longest synchronous block ${worstBlock.toFixed(1)} ms (target <= 5 ms): hand-off to the decode worker p50 ${percentile(handOffs, 0.5).toFixed(2)} / max ${handOffs.at(-1)!.toFixed(2)} ms, content detectors on the sample p50 ${percentile(detectorRuns, 0.5).toFixed(2)} / max ${detectorRuns.at(-1)!.toFixed(2)} ms; event-loop delay meanwhile p99 ${delay.p99Ms} ms, max ${delay.maxMs} ms (garbage collection included); decoded on the event loop instead: ${worstInline.toFixed(1)} ms`);
