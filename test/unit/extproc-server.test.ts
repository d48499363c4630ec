// The gRPC server over a real HTTP/2 connection: ordering, half-close, cancel, size limit, errors.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Engine } from '../../extproc/src/engine/engine.ts';
import { silentLogger } from '../../extproc/src/log.ts';
import { startServer, type RunningServer } from '../../extproc/src/server.ts';
import { externalProcessorService } from '../../extproc/src/wire/protos.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../extproc/src/wire/messages.ts';

type Duplex = grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
let server: RunningServer;
let client: grpc.Client & { Process(): Duplex };

before(async () => {
  const engine = new Engine({ denyRules: [{ name: 'deny-b', identity: 'spiffe://td/ns/a/sa/b' }] });
  server = await startServer(engine, silentLogger, { port: 0, maxMessageBytes: 4096 });
  const Ctor = grpc.makeClientConstructor(externalProcessorService(), 'ExternalProcessor');
  client = new Ctor(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure()) as unknown as typeof client;
});

after(async () => {
  client.close();
  server.forceClose();
});

const headers = (path: string, peer?: string): ProcessingRequest => ({
  request: 'request_headers',
  request_headers: { headers: { headers: [{ key: ':method', raw_value: Buffer.from('GET') }, { key: ':path', raw_value: Buffer.from(path) }] } },
  ...(peer ? { attributes: { 'envoy.filters.http.ext_proc': { fields: { 'connection.uri_san_peer_certificate': { stringValue: peer } } } } } : {}),
});

/** Writes messages, half-closes, and collects every response plus the final status. */
function exchange(messages: ProcessingRequest[], halfClose = true): Promise<{ responses: ProcessingResponse[]; status: grpc.StatusObject | grpc.ServiceError }> {
  return new Promise((resolve) => {
    const call = client.Process();
    const responses: ProcessingResponse[] = [];
    call.on('data', (r: ProcessingResponse) => responses.push(r));
    call.on('error', (err: grpc.ServiceError) => resolve({ responses, status: err }));
    call.on('status', (s: grpc.StatusObject) => { if (s.code === grpc.status.OK) resolve({ responses, status: s }); });
    for (const m of messages) call.write(m);
    if (halfClose) call.end();
  });
}

test('one response per message, in order, then OK after half-close', async () => {
  const { responses, status } = await exchange([
    headers('/a'),
    { request: 'request_body', request_body: { body: Buffer.from('x'), end_of_stream: true } },
    { request: 'response_headers', response_headers: { headers: { headers: [{ key: ':status', raw_value: Buffer.from('200') }] } } },
    { request: 'response_body', response_body: { body: Buffer.from('y'), end_of_stream: true } },
  ]);
  assert.equal(status.code, grpc.status.OK);
  assert.deepEqual(responses.map((r) => Object.keys(r).find((k) => (r as Record<string, unknown>)[k] !== undefined && k !== 'response')),
    ['request_headers', 'request_body', 'response_headers', 'response_body']);
});

test('a denied identity gets an ImmediateResponse 403 with a JSON body', async () => {
  const { responses } = await exchange([headers('/x', 'spiffe://td/ns/a/sa/b')]);
  const imm = (responses[0] as { immediate_response?: { status: { code: string | number }; body: Buffer } }).immediate_response;
  assert.ok(imm, 'immediate response sent');
  assert.ok(imm.status.code === 'Forbidden' || imm.status.code === 403);
  assert.equal(JSON.parse(imm.body.toString()).reason, 'identity-denied');
});

test('an out-of-order message ends the stream with FAILED_PRECONDITION and a clear message', async () => {
  const { responses, status } = await exchange([headers('/a'), headers('/a')], false);
  assert.equal(responses.length, 1, 'the first message was still answered');
  assert.equal(status.code, grpc.status.FAILED_PRECONDITION);
  assert.match(status.details, /out-of-order request_headers/);
});

test('a message with no oneof set ends the stream with INVALID_ARGUMENT', async () => {
  const { status } = await exchange([{} as ProcessingRequest], false);
  assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
});

test('a message over the size limit ends that stream with RESOURCE_EXHAUSTED; the server keeps serving', async () => {
  const { status } = await exchange([headers('/a'), { request: 'request_body', request_body: { body: Buffer.alloc(8192, 1), end_of_stream: true } }], false);
  assert.equal(status.code, grpc.status.RESOURCE_EXHAUSTED);
  const again = await exchange([headers('/b')]);
  assert.equal(again.status.code, grpc.status.OK);
  assert.equal(again.responses.length, 1);
});

test('a client cancel mid-stream is absorbed: the stream is released, the server keeps serving', async () => {
  let active = -1;
  await new Promise<void>((resolve) => {
    const call = client.Process();
    call.on('error', () => resolve());
    call.on('data', () => { active = server.counters.streamsActive; call.cancel(); });
    call.write(headers('/c'));
  });
  assert.ok(active >= 1, 'the stream was open while in use');
  // The server learns of the cancel asynchronously.
  for (let i = 0; i < 100 && server.counters.streamsActive > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(server.counters.streamsActive, 0, 'no stream left open');
  const again = await exchange([headers('/d')]);
  assert.equal(again.status.code, grpc.status.OK);
});

test('many concurrent streams are each answered for their own request', async () => {
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => exchange([headers(`/p/${i}`, i % 2 ? 'spiffe://td/ns/a/sa/b' : undefined)])));
  results.forEach((r, i) => {
    assert.equal(r.status.code, grpc.status.OK);
    assert.equal('immediate_response' in r.responses[0]! && (r.responses[0] as { immediate_response?: unknown }).immediate_response !== undefined, i % 2 === 1);
  });
});
