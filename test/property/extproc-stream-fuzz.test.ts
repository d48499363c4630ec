// Issue #10, item 2: the ext_proc stream handler over a real gRPC connection, fuzzed. Random message
// kinds, orders, sizes, header names and raw bytes, attributes (capture records included) and
// half-close or cancel: every stream ends with OK or a protocol status (never INTERNAL, which would be
// a bug of ours), every response answers the message it follows, no stream is left open, and the
// server still serves a well-formed stream after each campaign. Longer: MESHWARD_FUZZ_SCALE (npm run fuzz).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { Engine } from '../../extproc/src/engine/engine.ts';
import { silentLogger } from '../../extproc/src/log.ts';
import { startServer, type RunningServer } from '../../extproc/src/server.ts';
import { externalProcessorService } from '../../extproc/src/wire/protos.ts';
import type { HeaderValue, ProcessingRequest, ProcessingResponse } from '../../extproc/src/wire/messages.ts';
import { CAPTURE_ATTRIBUTE, EXT_PROC_ATTRIBUTES_KEY, PEER_URI_ATTRIBUTE } from '../../extproc/src/wire/request.ts';
import { fuzzRuns } from './fuzz-runs.ts';

type Duplex = grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
const MAX_MESSAGE_BYTES = 64 * 1024;
let server: RunningServer;
let client: grpc.Client & { Process(): Duplex };

before(async () => {
  const engine = new Engine({ denyRules: [{ name: 'deny-admin', identity: 'spiffe://cluster.local/ns/a/sa/admin', path: '/admin/*' }] });
  server = await startServer(engine, silentLogger, { port: 0, maxMessageBytes: MAX_MESSAGE_BYTES });
  const Ctor = grpc.makeClientConstructor(externalProcessorService(), 'ExternalProcessor');
  client = new Ctor(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure()) as unknown as typeof client;
});
after(() => { client.close(); server.forceClose(); });

const KINDS = ['request_headers', 'request_body', 'request_trailers', 'response_headers', 'response_body', 'response_trailers'] as const;
const bytes = (max: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength: max }).map((b) => Buffer.from(b));
const headerName = fc.oneof(
  fc.constantFrom(':method', ':path', ':authority', ':status', 'host', 'authorization', 'x-api-key', 'cookie', 'content-type', 'content-encoding',
    'x-forwarded-for', 'traceparent', 'x-meshward-peer', 'x-request-id', 'content-length', 'upgrade', 'grpc-status'),
  fc.string({ maxLength: 20 }),
);
const headerValue = fc.oneof(
  fc.constantFrom('GET', 'POST', '/admin/x', '/orders/1?x=1', '200', '500', 'application/json', 'gzip', 'br', 'multipart/form-data; boundary=x',
    'Bearer a.b.c', 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', '10.0.0.1, 1.2.3.4', 'websocket'),
  fc.string({ maxLength: 64 }),
).map((s) => Buffer.from(s));
const header: fc.Arbitrary<HeaderValue> = fc.record({
  key: headerName,
  raw_value: fc.oneof(headerValue, bytes(300)),
}, { requiredKeys: ['key'] });
const headerMap = fc.array(header, { maxLength: 12 }).map((headers) => ({ headers }));
const captureRecord = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.array(fc.tuple(fc.constantFrom('peer', 'mtls', 'role', 'self', 'op', 'template', 'sampled', 'jwt.sub', 'jwt.flags', 'jwt.exp', 'trunc', 'node.labels', 'path'), fc.string({ maxLength: 40 })), { maxLength: 10 })
    .map((kv) => `mw1\n${kv.map(([k, v]) => `${k}=${v}`).join('\n')}\n`),
);
const attributes = fc.option(fc.record({
  [CAPTURE_ATTRIBUTE]: captureRecord.map((stringValue) => ({ stringValue })),
  [PEER_URI_ATTRIBUTE]: fc.constantFrom('spiffe://cluster.local/ns/a/sa/admin', 'spiffe://cluster.local/ns/b/sa/user', '').map((stringValue) => ({ stringValue })),
}, { requiredKeys: [] }).map((fields) => ({ [EXT_PROC_ATTRIBUTES_KEY]: { fields } })), { nil: undefined });

const message: fc.Arbitrary<ProcessingRequest> = fc.tuple(fc.constantFrom(...KINDS), headerMap, fc.oneof(bytes(64), bytes(20_000)), fc.boolean(), attributes, fc.boolean())
  .map(([kind, headers, body, eos, attrs, observability]) => {
    const payload = kind.endsWith('headers') ? { headers, end_of_stream: eos } : kind.endsWith('body') ? { body, end_of_stream: eos } : { trailers: headers };
    return { request: kind, [kind]: payload, ...(attrs ? { attributes: attrs } : {}), ...(observability ? { observability_mode: true } : {}) } as ProcessingRequest;
  });
/** Mostly protocol-shaped sequences (headers first) with random tails, plus fully random ones. */
const stream = fc.record({
  messages: fc.array(message, { minLength: 1, maxLength: 8 }),
  ending: fc.constantFrom('half-close', 'cancel', 'none'),
});

const PROTOCOL_CODES = new Set([grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.FAILED_PRECONDITION, grpc.status.RESOURCE_EXHAUSTED, grpc.status.CANCELLED]);

function run(messages: ProcessingRequest[], ending: string): Promise<{ code: number; details: string; responses: ProcessingResponse[] }> {
  return new Promise((resolve) => {
    const call = client.Process();
    const responses: ProcessingResponse[] = [];
    let done = false;
    const finish = (code: number, details: string): void => { if (!done) { done = true; clearTimeout(timer); resolve({ code, details, responses }); } };
    call.on('data', (r: ProcessingResponse) => responses.push(r));
    call.on('error', (err: grpc.ServiceError) => finish(err.code, err.details));
    call.on('status', (s: grpc.StatusObject) => finish(s.code, s.details));
    for (const m of messages) call.write(m);
    if (ending === 'half-close') call.end();
    // Without half-close a stream stays open (as Envoy's do between phases): the client gives up.
    // A half-closed one must end by itself; the long timer only keeps a hung server from hanging the test.
    const timer = setTimeout(() => { call.cancel(); }, ending === 'cancel' ? 0 : ending === 'none' ? 50 : 10_000);
  });
}

test('random ext_proc streams end with OK or a protocol status, never INTERNAL, and leave nothing open', async () => {
  await fc.assert(fc.asyncProperty(stream, async ({ messages, ending }) => {
    const r = await run(messages, ending);
    assert.ok(PROTOCOL_CODES.has(r.code), `status ${grpc.status[r.code]} (${r.details})`);
    if (ending === 'half-close') assert.notEqual(r.code, grpc.status.CANCELLED, 'a half-closed stream is ended by the server');
    assert.ok(r.responses.length <= messages.length, 'at most one response per message');
    const observabilityOnly = messages.every((m) => m.observability_mode === true);
    if (observabilityOnly) assert.equal(r.responses.length, 0, 'observability mode: Envoy ignores responses, none are sent');
  }), { numRuns: fuzzRuns(300) });
  for (let i = 0; i < 100 && server.counters.streamsActive > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(server.counters.streamsActive, 0, 'every stream was closed');
  // The server is still healthy: a well-formed stream gets its answers.
  const ok = await run([
    { request: 'request_headers', request_headers: { headers: { headers: [{ key: ':method', raw_value: Buffer.from('GET') }, { key: ':path', raw_value: Buffer.from('/x') }] }, end_of_stream: true } },
    { request: 'response_headers', response_headers: { headers: { headers: [{ key: ':status', raw_value: Buffer.from('200') }] }, end_of_stream: true } },
  ], 'half-close');
  assert.equal(ok.code, grpc.status.OK);
  assert.equal(ok.responses.length, 2);
});

test('messages over the size limit end only that stream (RESOURCE_EXHAUSTED)', async () => {
  await fc.assert(fc.asyncProperty(fc.integer({ min: MAX_MESSAGE_BYTES + 1, max: MAX_MESSAGE_BYTES * 4 }), async (size) => {
    const r = await run([{ request: 'request_body', request_body: { body: Buffer.alloc(size, 0x61), end_of_stream: true } }], 'half-close');
    assert.equal(r.code, grpc.status.RESOURCE_EXHAUSTED);
  }), { numRuns: fuzzRuns(5) });
});
