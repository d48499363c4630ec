// Issue #10 item 3: the ext_proc server's stream limits over a real gRPC connection: a stream over
// the cap is refused at once with RESOURCE_EXHAUSTED (counted, logged at most once per interval) and
// never reaches the engine; an idle stream is reaped (DEADLINE_EXCEEDED before the response phase, a
// clean close after it) and frees its slot; a stream piling up unanswered messages is ended; the
// limits load from the config file and flags with clear errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Engine } from '../../extproc/src/engine/engine.ts';
import { ALLOW } from '../../extproc/src/engine/decision.ts';
import { silentLogger } from '../../extproc/src/log.ts';
import { ConfigError, parseServerConfig } from '../../extproc/src/config.ts';
import { DEFAULT_SERVER_OPTIONS, MAX_UNANSWERED_MESSAGES, startServer, type RunningServer } from '../../extproc/src/server.ts';
import { externalProcessorService } from '../../extproc/src/wire/protos.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../extproc/src/wire/messages.ts';
import { CAPTURE_ATTRIBUTE, EXT_PROC_ATTRIBUTES_KEY } from '../../extproc/src/wire/request.ts';

type Duplex = grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
type Client = grpc.Client & { Process(): Duplex };
const h = (pairs: [string, string][]): { headers: { key: string; raw_value: Buffer }[] } => ({ headers: pairs.map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) });
const requestHeaders = (sampled: boolean): ProcessingRequest => ({
  request: 'request_headers',
  request_headers: { headers: h([[':method', 'POST'], [':path', '/orders'], [':authority', 'shop.svc']]), end_of_stream: false },
  attributes: { [EXT_PROC_ATTRIBUTES_KEY]: { fields: { [CAPTURE_ATTRIBUTE]: { stringValue: `mw1\npeer=spiffe://cluster.local/ns/web/sa/frontend\nmtls=1\nrole=inbound\nmethod=POST\npath=/orders\nsampled=${sampled ? 1 : 0}\n` } } } },
});
const responseHeaders: ProcessingRequest = { request: 'response_headers', response_headers: { headers: h([[':status', '200']]), end_of_stream: false } };

interface Opened { call: Duplex; answers: ProcessingResponse[]; status: Promise<grpc.StatusObject> }
function open(client: Client, ...messages: ProcessingRequest[]): Opened {
  const call = client.Process();
  const answers: ProcessingResponse[] = [];
  const status = new Promise<grpc.StatusObject>((resolve) => { call.on('status', resolve); });
  call.on('data', (r: ProcessingResponse) => answers.push(r));
  call.on('error', () => {});
  for (const m of messages) call.write(m);
  return { call, answers, status };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), what);
}

async function withServer(engine: Engine, options: Parameters<typeof startServer>[2], run: (client: Client, server: RunningServer) => Promise<void>, log = silentLogger): Promise<void> {
  const server = await startServer(engine, log, { port: 0, ...options });
  const Ctor = grpc.makeClientConstructor(externalProcessorService(), 'ExternalProcessor');
  const client = new Ctor(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure()) as unknown as Client;
  try {
    await run(client, server);
  } finally {
    client.close();
    server.forceClose();
  }
}

test('over the cap: refused at once with RESOURCE_EXHAUSTED, without engine work, counted, logged once per interval', async () => {
  const lines: { msg: string; refused?: number }[] = [];
  const log = pino({ level: 'info' }, new Writable({ write(chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString())); done(); } }));
  const engine = new Engine({ denyRules: [] });
  let decisions = 0;
  engine.addObserver({ onDecision: () => { decisions++; } });
  await withServer(engine, { maxConcurrentStreams: 2, streamIdleSeconds: 0 }, async (client, server) => {
    const held = [open(client, requestHeaders(false)), open(client, requestHeaders(false))];
    await until(() => held.every((s) => s.answers.length === 1), 'two streams held');
    const refused = await Promise.all(Array.from({ length: 5 }, () => open(client, requestHeaders(false)).status));
    for (const s of refused) {
      assert.equal(s.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match(s.details, /2 concurrent ext_proc streams/);
    }
    assert.equal(decisions, 2, 'refused streams never reached the engine');
    assert.equal(server.counters.streamsRefused, 5);
    assert.equal(server.counters.streamsStarted, 2, 'refused streams are not counted as started');
    const refusalLines = lines.filter((l) => /concurrent-stream cap/.test(l.msg));
    assert.equal(refusalLines.length, 1, 'one log line for a burst of refusals');
    // The held streams are untouched by the refusals and finish normally.
    for (const s of held) { s.call.write(responseHeaders); s.call.end(); }
    for (const s of held) assert.equal((await s.status).code, grpc.status.OK);
    await until(() => server.counters.streamsActive === 0, 'slots released');
    const next = open(client, requestHeaders(false));
    await until(() => next.answers.length === 1, 'a new stream is admitted');
    next.call.end();
  }, log);
});

test('an idle stream is reaped: DEADLINE_EXCEEDED before the response phase, a clean close after it; its slot frees', async () => {
  await withServer(new Engine({ denyRules: [] }), { maxConcurrentStreams: 2, streamIdleSeconds: 0.2 }, async (client, server) => {
    const waitingForApp = open(client, requestHeaders(false));
    const pastResponse = open(client, requestHeaders(false), responseHeaders);
    const refused = await open(client, requestHeaders(false)).status;
    assert.equal(refused.code, grpc.status.RESOURCE_EXHAUSTED);
    const [a, b] = await Promise.all([waitingForApp.status, pastResponse.status]);
    assert.equal(a.code, grpc.status.DEADLINE_EXCEEDED, 'Envoy applies the failure mode');
    assert.equal(b.code, grpc.status.OK, 'nothing left to decide: continue');
    assert.equal(pastResponse.answers.length, 2);
    assert.equal(server.counters.streamsReaped, 2);
    await until(() => server.counters.streamsActive === 0, 'slots released');
    const after = open(client, requestHeaders(false));
    await until(() => after.answers.length === 1, 'admitted again');
    after.call.end();
  });
});

test('a stream that keeps sending while its answers wait is ended with RESOURCE_EXHAUSTED', async () => {
  // An engine whose off-thread body decode never finishes: every later message of the stream queues.
  const stuck = { decide: () => ALLOW, observeResponse: () => {}, prepare: () => new Promise<void>(() => {}) } as unknown as Engine;
  await withServer(stuck, { streamIdleSeconds: 0 }, async (client, server) => {
    const chunk = (): ProcessingRequest => ({ request: 'request_body', request_body: { body: Buffer.from('{"a":1}'), end_of_stream: false } });
    const s = open(client, requestHeaders(true), ...Array.from({ length: MAX_UNANSWERED_MESSAGES + 1 }, chunk));
    const status = await s.status;
    assert.equal(status.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(status.details, /awaiting an answer/);
    assert.equal(server.counters.streamsFailed, 1);
  });
});

test('the limits come from the config file with their ranges; bad values name the field', () => {
  const { server } = parseServerConfig('m.yaml', 'server: { maxConcurrentStreams: 300, maxConcurrentStreamsPerConnection: 50, streamIdleSeconds: 2.5 }');
  assert.equal(server.maxConcurrentStreams, 300);
  assert.equal(server.maxConcurrentStreamsPerConnection, 50);
  assert.equal(server.streamIdleSeconds, 2.5);
  assert.equal(parseServerConfig('m.yaml', '').server.maxConcurrentStreams, DEFAULT_SERVER_OPTIONS.maxConcurrentStreams);
  for (const [text, field] of [
    ['server: { maxConcurrentStreams: 0 }', 'maxConcurrentStreams'],
    ['server: { maxConcurrentStreams: 1.5 }', 'maxConcurrentStreams'],
    ['server: { maxConcurrentStreams: "10" }', 'maxConcurrentStreams'],
    ['server: { maxConcurrentStreamsPerConnection: -1 }', 'maxConcurrentStreamsPerConnection'],
    ['server: { streamIdleSeconds: -1 }', 'streamIdleSeconds'],
    ['server: { streamIdleSeconds: .nan }', 'streamIdleSeconds'],
  ] as const) {
    assert.throws(() => parseServerConfig('m.yaml', text), (err: Error) => err instanceof ConfigError && err.message.startsWith(`m.yaml: $.server.${field}: must be`), text);
  }
});

test('meshward serve refuses a bad --max-concurrent-streams with exit 2 and the reason', () => {
  const cli = path.resolve(import.meta.dirname, '../../extproc/src/cli.ts');
  const run = spawnSync(process.execPath, [cli, 'serve', '--port', '0', '--max-concurrent-streams', '0'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 2);
  assert.match(run.stderr, /--max-concurrent-streams must be an integer from 1 to 1000000/);
});
