// Issue #10: the shape test for the two grpc-js private shapes meshward uses (extproc/src/grpc-internals.ts).
// Against real grpc-js servers on loopback: options set through setHttp2ServerOptions reach the HTTP/2
// server grpc-js binds (its SETTINGS, and the raised reset limits keep a connection alive where Node's
// defaults send GOAWAY); http2StreamOf finds each live call's own HTTP/2 stream, with and without
// server interceptors, and closing it with NO_ERROR ends a refused stream without the client. A grpc-js
// upgrade that moves either shape fails here. An unverified version, or a shape missing at run time,
// degrades to false/undefined and the server warns once, naming the version and what is lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Engine } from '../../extproc/src/engine/engine.ts';
import {
  grpcInternalsFor, grpcInternalsSupported, http2StreamOf, installedGrpcInternals, installedGrpcJsVersion,
  isVerifiedGrpcJsVersion, LOST_WITHOUT, setHttp2ServerOptions, type ServerCall,
} from '../../extproc/src/grpc-internals.ts';
import { generatePki } from '../../extproc/src/local/certs.ts';
import { startServer, STREAM_RESET_BURST, STREAM_RESET_RATE } from '../../extproc/src/server.ts';
import { mtlsServerCredentials } from '../../extproc/src/server-tls.ts';
import { externalProcessorService } from '../../extproc/src/wire/protos.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../extproc/src/wire/messages.ts';

const HOLD_PATH = '/meshward.test.Hold/Hold';
const identity = (b: Buffer): Buffer => b;
/** A bidi method that holds every call open (the handler decides what happens to it). */
const holdService: grpc.ServiceDefinition = {
  Hold: { path: HOLD_PATH, requestStream: true, responseStream: true, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
};
type HoldCall = grpc.ServerDuplexStream<Buffer, Buffer>;

/** Serves holdService on a loopback port; every call gets its response headers at once and is handed to onCall. */
async function serveHold(server: grpc.Server, onCall: (call: HoldCall) => void = () => {}, credentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
  server.addService(holdService, { Hold: (call: HoldCall) => { call.on('error', () => {}); call.sendMetadata(new grpc.Metadata()); onCall(call); } });
  return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, port) => (err ? reject(err) : resolve(port))));
}

/** A client's TLS files for an mTLS server (its own certificate, and the CA the server's chains to). */
interface ClientTls { ca: Buffer; cert: Buffer; key: Buffer }

async function connect(port: number, tls?: ClientTls): Promise<http2.ClientHttp2Session> {
  const session = tls
    ? http2.connect(`https://127.0.0.1:${port}`, { ...tls, checkServerIdentity: () => undefined })
    : http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  await once(session, 'remoteSettings');
  return session;
}

/** A raw HTTP/2 gRPC request to the hold method (the client side is never ended by the test). */
function holdRequest(session: http2.ClientHttp2Session, n: number): http2.ClientHttp2Stream {
  const stream = session.request({ ':method': 'POST', ':path': HOLD_PATH, 'content-type': 'application/grpc', te: 'trailers', 'x-n': String(n) }, { endStream: false });
  stream.on('error', () => {});
  return stream;
}

/** Streams answered then reset by the client (RST_STREAM CANCEL), as Envoy does after each request;
 *  stops at the first GOAWAY. */
async function answeredThenReset(port: number, total: number): Promise<{ goaway?: number; reset: number }> {
  const session = await connect(port);
  let goaway: number | undefined;
  session.on('goaway', (code: number) => { goaway = code; });
  let reset = 0;
  try {
    for (let sent = 0; sent < total && goaway === undefined && !session.destroyed; sent += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => new Promise<void>((resolve) => {
        const stream = holdRequest(session, sent + i);
        stream.on('response', () => { reset++; stream.close(http2.constants.NGHTTP2_CANCEL); });
        stream.on('close', () => resolve());
      })));
    }
  } finally {
    session.destroy();
  }
  return goaway === undefined ? { reset } : { goaway, reset };
}

function shutdown(server: grpc.Server): void { server.forceShutdown(); }

test('only verified grpc-js versions are used, and the installed one is verified', () => {
  for (const v of ['1.14.0', '1.14.7', '1.15.2', '1.30.0-pre.1']) assert.equal(isVerifiedGrpcJsVersion(v), true, v);
  for (const v of ['1.13.9', '0.14.0', '2.0.0', '10.14.0', 'garbage', '', '1.14']) assert.equal(isVerifiedGrpcJsVersion(v), false, v);
  assert.match(installedGrpcJsVersion(), /^\d+\.\d+\.\d+/);
  assert.equal(installedGrpcInternals.grpcJsVersion, installedGrpcJsVersion());
  assert.equal(grpcInternalsSupported(), true, `the installed grpc-js ${installedGrpcJsVersion()} is in the verified range; widen it only after this test passes`);
});

/** The ext_proc port's mTLS credentials (server-tls.ts) and a mesh client's TLS files, from a PKI made now. */
async function meshTls(): Promise<{ dir: string; credentials: grpc.ServerCredentials; client: ClientTls }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-grpc-internals-'));
  const pki = await generatePki(dir, [{ namespace: 'mesh', serviceAccount: 'extproc' }, { namespace: 'web', serviceAccount: 'sidecar' }]);
  const [server, sidecar] = [pki.workloads.get('mesh/extproc')!, pki.workloads.get('web/sidecar')!];
  const credentials = await mtlsServerCredentials({ certFile: server.certFile, keyFile: server.keyFile, clientCaFile: pki.caFile });
  return { dir, credentials, client: { ca: readFileSync(pki.caFile), cert: readFileSync(sidecar.certFile), key: readFileSync(sidecar.keyFile) } };
}

for (const transport of ['plaintext', 'mtls'] as const) test(`options set through setHttp2ServerOptions are the ones grpc-js binds with (${transport}: seen in the SETTINGS the server sends)`, async () => {
  const tls = transport === 'mtls' ? await meshTls() : undefined;
  const server = new grpc.Server({ 'grpc.max_concurrent_streams': 77 });
  assert.equal(setHttp2ServerOptions(server, { settings: { maxHeaderListSize: 12_345 } }), true);
  const port = await serveHold(server, undefined, tls?.credentials);
  const session = await connect(port, tls?.client);
  try {
    assert.equal(session.encrypted, transport === 'mtls');
    assert.equal(session.remoteSettings.maxHeaderListSize, 12_345, 'our setting reached http2.createServer');
    assert.equal(session.remoteSettings.maxConcurrentStreams, 77, "grpc-js's own settings are kept beside ours");
  } finally {
    session.destroy();
    shutdown(server);
    if (tls) rmSync(tls.dir, { recursive: true, force: true });
  }
});

test("raised reset limits keep a connection alive past Node's default rapid-reset limit, which sends GOAWAY without them", async () => {
  // 1,500 resets within a few seconds: over Node's default burst (1,000, then 33/s).
  const TOTAL = 1_500;
  const defaults = new grpc.Server();
  const raised = new grpc.Server();
  assert.equal(setHttp2ServerOptions(raised, { streamResetBurst: STREAM_RESET_BURST, streamResetRate: STREAM_RESET_RATE }), true);
  try {
    const control = await answeredThenReset(await serveHold(defaults), TOTAL);
    assert.notEqual(control.goaway, undefined, `Node's default limit ends the connection (control; ${control.reset} streams reset)`);
    const result = await answeredThenReset(await serveHold(raised), TOTAL);
    assert.equal(result.goaway, undefined, 'no GOAWAY with the raised limits');
    assert.equal(result.reset, TOTAL, 'every stream was answered and reset on the one connection');
  } finally {
    shutdown(defaults);
    shutdown(raised);
  }
});

for (const interceptors of [[], [(_method: grpc.ServerMethodDefinition<unknown, unknown>, call: grpc.ServerInterceptingCallInterface) => new grpc.ServerInterceptingCall(call)]]) {
  test(`http2StreamOf finds each live call's own HTTP/2 stream (${interceptors.length} server interceptors); closing it with NO_ERROR ends a refused stream`, async () => {
    const calls = new Map<string, HoldCall>();
    const server = new grpc.Server({ interceptors });
    const port = await serveHold(server, (call) => calls.set(String(call.metadata.get('x-n')[0]), call));
    const session = await connect(port);
    try {
      const clientStreams = [0, 1, 2].map((n) => holdRequest(session, n));
      await Promise.all(clientStreams.map((s) => once(s, 'response')));
      const streams = [0, 1, 2].map((n) => http2StreamOf(calls.get(String(n)) as ServerCall));
      streams.forEach((stream, n) => {
        assert.ok(stream, `call ${n} has its stream`);
        assert.equal(stream.constructor.name, 'ServerHttp2Stream');
        assert.equal(stream.id, clientStreams[n]!.id, `call ${n}'s own stream, not another call's`);
        assert.equal(stream.closed, false);
      });
      // What the server does to a refused stream: status first, then the reset. Stream 0 gets only
      // the status (control): it stays half-open until the client ends it.
      const trailers0 = once(clientStreams[0]!, 'trailers');
      const closed1 = once(clientStreams[1]!, 'close');
      for (const n of [0, 1]) calls.get(String(n))!.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: 'refused' });
      streams[1]!.close(http2.constants.NGHTTP2_NO_ERROR);
      const [headers0] = await trailers0 as [http2.IncomingHttpHeaders];
      assert.equal(headers0['grpc-status'], String(grpc.status.RESOURCE_EXHAUSTED));
      await closed1;
      assert.equal(clientStreams[1]!.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'the refused stream is reset with NO_ERROR');
      assert.equal(clientStreams[0]!.closed, false, 'without the reset the refused stream stays open');
      assert.equal(clientStreams[2]!.closed, false, 'other calls are untouched');
      assert.equal(session.closed || session.destroyed, false, 'the connection stays');
    } finally {
      session.destroy();
      shutdown(server);
    }
  });
}

test('an unverified grpc-js version, or a shape missing at run time, degrades to false/undefined', async () => {
  const unverified = grpcInternalsFor('2.0.0');
  assert.equal(unverified.supported, false);
  const server = new grpc.Server();
  assert.equal(unverified.setHttp2ServerOptions(server, { settings: { maxHeaderListSize: 12_345 } }), false);
  let held: HoldCall | undefined;
  const port = await serveHold(server, (call) => { held = call; });
  const session = await connect(port);
  try {
    assert.notEqual(session.remoteSettings.maxHeaderListSize, 12_345, 'nothing was set');
    const request = holdRequest(session, 0);
    await once(request, 'response');
    assert.ok(held);
    assert.equal(unverified.http2StreamOf(held), undefined);
    assert.ok(installedGrpcInternals.http2StreamOf(held), 'the same call under the installed version');
  } finally {
    session.destroy();
    shutdown(server);
  }

  // The installed version, but objects without the shapes (a grpc-js that moved them).
  const internals = installedGrpcInternals;
  for (const fake of [{}, { commonServerOptions: null }, { commonServerOptions: 'x' }]) {
    assert.equal(internals.setHttp2ServerOptions(fake as unknown as grpc.Server, { streamResetBurst: 1 }), false, JSON.stringify(fake));
  }
  const cyclic: { nextCall?: unknown } = {};
  cyclic.nextCall = cyclic;
  let deep: object = { stream: http2StreamOf(held as ServerCall) };
  for (let i = 0; i < 40; i++) deep = { nextCall: deep };
  for (const fake of [{}, { call: null }, { call: {} }, { call: { stream: {} } }, { call: { stream: { close() {}, closed: false } } }, { call: cyclic }, { call: deep }]) {
    assert.equal(internals.http2StreamOf(fake as unknown as ServerCall), undefined);
  }
});

// --- The server: one startup warning naming the version and what is lost; it keeps working. ---

type Duplex = grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
type Client = grpc.Client & { Process(): Duplex };
const requestHeaders: ProcessingRequest = { request: 'request_headers', request_headers: { headers: { headers: [{ key: ':method', raw_value: Buffer.from('GET') }, { key: ':path', raw_value: Buffer.from('/x') }] }, end_of_stream: true } };
interface LogLine { level: number; msg: string; grpcJsVersion?: string; lost?: string[] }

/** Runs startServer with a capturing logger and a cap of one stream: one held, then two refused. */
async function heldThenRefused(grpcInternals: ReturnType<typeof grpcInternalsFor>, afterStart: (lines: LogLine[]) => void): Promise<{ lines: LogLine[]; refused: grpc.StatusObject[] }> {
  const lines: LogLine[] = [];
  const log = pino({ level: 'info' }, new Writable({ write(chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString()) as LogLine); done(); } }));
  const server = await startServer(new Engine({ denyRules: [] }), log, { port: 0, maxConcurrentStreams: 1, streamIdleSeconds: 0, grpcInternals });
  afterStart([...lines]);
  const Ctor = grpc.makeClientConstructor(externalProcessorService(), 'ExternalProcessor');
  const client = new Ctor(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure()) as unknown as Client;
  const opened: Duplex[] = [];
  try {
    const held = client.Process();
    opened.push(held);
    held.on('error', () => {});
    held.write(requestHeaders);
    await once(held, 'data');
    const refused: grpc.StatusObject[] = [];
    for (let i = 0; i < 2; i++) {
      const call = client.Process();
      opened.push(call);
      const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
      call.on('error', () => {});
      call.write(requestHeaders);
      refused.push(await status);
    }
    held.end();
    return { lines, refused };
  } finally {
    for (const call of opened) call.cancel();
    client.close();
    server.forceClose();
  }
}
const internalsWarnings = (lines: LogLine[]): LogLine[] => lines.filter((l) => /grpc-js .* internals unavailable/.test(l.msg));

test('under an unverified grpc-js the server warns once at startup, naming the version and both losses, and keeps serving', async () => {
  const { lines, refused } = await heldThenRefused(grpcInternalsFor('2.0.0'), (atStart) => {
    const warnings = internalsWarnings(atStart);
    assert.equal(warnings.length, 1, 'one warning, at startup');
    assert.equal(warnings[0]!.level, 40, 'warn');
    assert.equal(warnings[0]!.grpcJsVersion, '2.0.0');
    assert.match(warnings[0]!.msg, /grpc-js 2\.0\.0/);
    assert.deepEqual(warnings[0]!.lost, [LOST_WITHOUT.resetLimits, LOST_WITHOUT.refusalReset]);
  });
  for (const s of refused) assert.equal(s.code, grpc.status.RESOURCE_EXHAUSTED, 'refusal still works');
  assert.equal(internalsWarnings(lines).length, 1, 'refusals add no second warning');
});

test('with the installed grpc-js the server warns of nothing; a call stream missing at run time is warned once', async () => {
  const { lines } = await heldThenRefused(installedGrpcInternals, (atStart) => assert.equal(internalsWarnings(atStart).length, 0));
  assert.equal(internalsWarnings(lines).length, 0);

  const streamless = { ...installedGrpcInternals, http2StreamOf: () => undefined };
  const run = await heldThenRefused(streamless, (atStart) => assert.equal(internalsWarnings(atStart).length, 0, 'the options shape is there'));
  for (const s of run.refused) assert.equal(s.code, grpc.status.RESOURCE_EXHAUSTED);
  const warnings = internalsWarnings(run.lines);
  assert.equal(warnings.length, 1, 'two refusals, one warning');
  assert.deepEqual(warnings[0]!.lost, [LOST_WITHOUT.refusalReset]);
  assert.equal(warnings[0]!.grpcJsVersion, installedGrpcJsVersion());
});
