// Large bodies are decoded off the event loop (inspect/body-pool.ts): the sample they become, the
// bad inputs (bombs, deadline, full pipeline), ordered answers on the ext_proc stream, and the
// event loop kept free while 1 MB bodies are inspected.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { sampleJson, sampleDecodedBody } from '../../extproc/src/inspect/body-sample.ts';
import { BodyDecoder, OFF_THREAD_BODY_BYTES, decodeBody } from '../../extproc/src/inspect/body.ts';
import { closeBodyPool, warmBodyPool } from '../../extproc/src/inspect/body-pool.ts';
import { jsonOf } from '../../extproc/src/engine/body.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { ExtProcStream, type StepResult } from '../../extproc/src/wire/stream.ts';
import type { ProcessingRequest } from '../../extproc/src/wire/messages.ts';
import { createLogger } from '../../extproc/src/log.ts';
import { createContentDetectors } from '../../extproc/src/engine/detectors/content.ts';
import { createContentContext } from '../../extproc/src/inspect/settings.ts';

after(() => closeBodyPool());

const JSON_HEADERS = new Map([['content-type', ['application/json']]]);

/** A JSON document of about `bytes` bytes: `extra`, then an array of small records (many values:
 *  the costly shape to parse and walk). */
function bigDocument(bytes: number, extra: Record<string, unknown> = {}): Buffer {
  const item = (k: number) => ({ id: k, sku: `SKU-${k}`, ok: k % 2 === 0 });
  const count = Math.ceil(bytes / JSON.stringify(item(99999)).length);
  return Buffer.from(JSON.stringify({ ...extra, items: Array.from({ length: count }, (_, k) => item(k)) }));
}

test('sampleJson keeps arrays to their first items, every key within the budget, and own __proto__ keys', () => {
  const root = JSON.parse('{"a":[1,2,3,4,5],"__proto__":{"isAdmin":true},"b":{"c":[[1,2,3],[4]]}}');
  const { value, cut } = sampleJson(root, { arrayItems: 2, nodes: 100, textChars: 10 });
  assert.equal(cut, true);
  assert.deepEqual((value as { a: number[] }).a, [1, 2]);
  assert.deepEqual((value as { b: unknown }).b, { c: [[1, 2], [4]] });
  assert.ok(Object.hasOwn(value as object, '__proto__'), '__proto__ stays an own key');
  assert.equal(({} as Record<string, unknown>).isAdmin, undefined, 'no prototype pollution');
  assert.equal(Object.getPrototypeOf(value), Object.prototype);

  const small = sampleJson({ x: [1, 2], y: 'z' }, { arrayItems: 2, nodes: 100, textChars: 10 });
  assert.equal(small.cut, false);
  assert.deepEqual(small.value, { x: [1, 2], y: 'z' });

  const budget = sampleJson(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, i])), { arrayItems: 10, nodes: 11, textChars: 10 });
  assert.equal(budget.cut, true);
  assert.equal(Object.keys(budget.value as object).length, 10, 'the root and ten values fit the budget of 11');
});

test('sampleDecodedBody says the body was sampled only when something was left out', () => {
  const whole = decodeBody(Buffer.from('{"a":[1,2]}'), JSON_HEADERS);
  assert.equal(sampleDecodedBody(whole).problems.length, 0);
  const big = decodeBody(bigDocument(200_000), JSON_HEADERS);
  const sampled = sampleDecodedBody(big);
  assert.ok(sampled.problems.some((p) => p.code === 'sampled'));
  assert.equal(sampled.text.length, 64 * 1024);
  assert.equal(sampled.wireBytes, big.wireBytes);
});

// The server starts the worker pool before it serves (server.ts); so do these tests, or a cold
// start on a busy machine would overrun the 250 ms decode deadline they are not about.
before(async () => { await warmBodyPool(); });

test('prepare() decodes large bodies off-thread into the cache decode() and jsonOf() read; small bodies stay synchronous', async () => {
  const decoder = new BodyDecoder();
  assert.equal(decoder.prepare(Buffer.from('{"a":1}'), JSON_HEADERS), undefined);
  assert.equal(decoder.prepare(undefined, JSON_HEADERS), undefined);
  const body = bigDocument(OFF_THREAD_BODY_BYTES * 2, { role: 'admin' });
  const ready = decoder.prepare(body, JSON_HEADERS);
  assert.ok(ready instanceof Promise);
  await ready;
  assert.equal(decoder.prepare(body, JSON_HEADERS), undefined, 'already decoded');
  const decoded = decoder.decode(body, JSON_HEADERS);
  assert.equal(decoded.content.kind, 'json');
  const value = (decoded.content as { value: { role: string; items: unknown[] } }).value;
  assert.equal(value.role, 'admin');
  assert.equal(value.items.length, 64);
  assert.ok(decoded.problems.some((p) => p.code === 'sampled'));
  assert.equal(jsonOf(body), value, 'the engine reads the same sample, never parsing the body itself');
});

test('bad input off-thread: a gzip bomb stops at the cap, invalid JSON is reported, an impossible deadline leaves the body uninspected', async () => {
  const decoder = new BodyDecoder({ maxDecompressedBytes: 1024 * 1024 });
  const bomb = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
  const padded = Buffer.concat([bomb, Buffer.alloc(Math.max(0, OFF_THREAD_BODY_BYTES - bomb.length))]);
  const bombHeaders = new Map([['content-type', ['application/json']], ['content-encoding', ['gzip']]]);
  await decoder.prepare(padded, bombHeaders);
  assert.ok(decoder.decode(padded, bombHeaders).problems.some((p) => p.code === 'decompression-bomb'));
  assert.equal(jsonOf(padded), undefined);

  const broken = Buffer.from(`{"a":"${'x'.repeat(OFF_THREAD_BODY_BYTES)}`);
  await decoder.prepare(broken, JSON_HEADERS);
  assert.ok(decoder.decode(broken, JSON_HEADERS).problems.some((p) => p.code === 'invalid-json'));

  const late = bigDocument(OFF_THREAD_BODY_BYTES * 4);
  await decoder.prepare(late, JSON_HEADERS, 0);
  const skipped = decoder.decode(late, JSON_HEADERS);
  assert.equal(skipped.content.kind, 'binary');
  assert.match(skipped.problems[0]?.detail ?? '', /not inspected: off-thread decode exceeded 0 ms/);
});

test('a body the pool could not decode in time is decided on headers and reported, never blocked for capacity', async () => {
  const content = createContentContext();
  const engine = new Engine({ denyRules: [], mode: 'enforce', detectors: (c) => createContentDetectors(c, content) });
  const findings: Finding[] = [];
  engine.addObserver({ onFinding: (f) => findings.push(f) });
  const body = Buffer.from(`{"isAdmin":true,"pad":"${'x'.repeat(OFF_THREAD_BODY_BYTES)}"`); // malformed too: still not judged
  await content.decoder.prepare(body, JSON_HEADERS, 0);
  const decision = engine.decide({
    requestId: 'late', time: 1, caller: { mtls: false, identitySource: 'none' }, method: 'POST', authority: 'a.svc', path: '/x', headers: JSON_HEADERS, body,
  });
  assert.equal(decision.action, 'allow');
  assert.equal(findings.length, 1);
  assert.equal(findings[0]!.enforcement, 'none');
  assert.match(findings[0]!.summary, /decided on headers only: body of \d+ bytes not inspected/);
});

const h = (k: string, v: string) => ({ key: k, raw_value: Buffer.from(v) });
function requestHeaders(path: string): ProcessingRequest {
  return {
    request: 'request_headers',
    request_headers: { headers: { headers: [h(':method', 'POST'), h(':path', path), h(':authority', 'orders.svc'), h('content-type', 'application/json')] }, end_of_stream: false },
    attributes: { 'envoy.filters.http.ext_proc': { fields: { "filter_state['wasm.meshward']": { stringValue: 'mw1\npeer=spiffe://cluster.local/ns/web/sa/frontend\nmtls=1\nsampled=1\n' } } } },
  };
}
const body = (b: Buffer): ProcessingRequest => ({ request: 'request_body', request_body: { body: b, end_of_stream: true } });
const responseHeaders: ProcessingRequest = { request: 'response_headers', response_headers: { headers: { headers: [h(':status', '200'), h('content-type', 'application/json')] } } };
const responseBody = (b: Buffer): ProcessingRequest => ({ request: 'response_body', response_body: { body: b, end_of_stream: true } });

function kindOf(result: StepResult): string {
  if (result.kind !== 'respond') return result.kind;
  return Object.keys(result.response).filter((k) => k !== 'mode_override')[0] ?? '';
}

test('a large body is answered asynchronously, and every later message of the stream waits behind it', async () => {
  const engine = new Engine({ denyRules: [], mode: 'enforce' });
  const stream = new ExtProcStream('s1', engine, createLogger('silent'));
  const first = stream.handle(requestHeaders('/orders'));
  assert.ok(!(first instanceof Promise));
  assert.equal(kindOf(first), 'request_headers');
  const malformed = Buffer.from(`{"items":[${'1,'.repeat(OFF_THREAD_BODY_BYTES)}`); // declared JSON, never closed
  const answers: string[] = [];
  const pending = [stream.handle(body(malformed)), stream.handle(responseHeaders)];
  assert.ok(pending.every((p) => p instanceof Promise), 'the message after a pending one is queued, not answered early');
  for (const p of pending) void Promise.resolve(p).then((r) => answers.push(kindOf(r)));
  await stream.idle();
  // The malformed body is denied (content-body, enforce mode), and the message after it gets the
  // protocol error that follows an immediate response: answers in order, one per message.
  assert.deepEqual(answers, ['immediate_response', 'error']);
});

test('the event loop stays free while 1 MB request and response bodies are inspected', async (t) => {
  const engine = new Engine({ denyRules: [] });
  const findings: Finding[] = [];
  engine.addObserver({ onFinding: (f) => findings.push(f) });
  const log = createLogger('silent');
  // Built before measuring: making a 1 MB test document is itself a long synchronous job.
  const requests = Array.from({ length: 9 }, () => bigDocument(1024 * 1024, { isAdmin: true }));
  const responses = Array.from({ length: 9 }, (_, i) => bigDocument(1024 * 1024, { owner: { email: `owner${i}@example.com`, key: 'AKIAIOSFODNN7EXAMPLE' } }));
  const run = async (i: number): Promise<void> => {
    const stream = new ExtProcStream(`big-${i}`, engine, log);
    const request = requests[i + 1]!;
    const response = responses[i + 1]!;
    for (const m of [requestHeaders(`/orders/${i}`), body(request), responseHeaders, responseBody(response)]) {
      await new Promise(setImmediate); // each message in its own event-loop turn, as gRPC delivers them
      const r = await stream.handle(m);
      assert.equal(r.kind, 'respond');
    }
  };
  await run(-1); // warm-up: worker start and JIT are not what is measured
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  for (let round = 0; round < 4; round++) await Promise.all([0, 1].map((k) => run(round * 2 + k)));
  delay.disable();
  const maxMs = delay.max / 1e6;
  t.diagnostic(`event-loop delay while inspecting 16 bodies of 1 MB: max ${maxMs.toFixed(1)} ms, p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms`);
  // The synchronous path (step()) blocks this loop for hundreds of milliseconds per 1 MB body of
  // this shape; off-thread, the loop only clones and walks a bounded sample (a few ms). The bound
  // sits far from both, leaving room for GC and CPU contention on a shared 2-core machine; the
  // 5 ms target itself is measured by bench/engine-decisions.ts.
  assert.ok(maxMs < 50, `event loop blocked ${maxMs.toFixed(1)} ms while inspecting 1 MB bodies`);
  assert.ok(findings.some((f) => f.detector === 'content-exposure'), 'the sampled response bodies were still inspected');
});
