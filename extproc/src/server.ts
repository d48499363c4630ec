// The ext_proc gRPC server: binds Envoy's ExternalProcessor service to the engine.
import { BodyBudget, DEFAULT_MAX_BUFFERED_BODY_MIB } from './body-budget.ts';
import * as grpc from '@grpc/grpc-js';
import http2 from 'node:http2';
import type { Engine } from './engine/engine.ts';
import type { Logger } from './log.ts';
import { externalProcessorService } from './wire/protos.ts';
import type { ProcessingRequest, ProcessingResponse } from './wire/messages.ts';
import { ExtProcStream, ProcessingError, type StepResult } from './wire/stream.ts';
import { addHealthService } from './health.ts';
import { warmBodyPool } from './inspect/body-pool.ts';
import { StreamSlots, type StreamSlot } from './stream-slots.ts';
import { mtlsServerCredentials, streamPeerOf, type ServerTlsOptions } from './server-tls.ts';
import { installedGrpcInternals, lostInternalsWarner, type GrpcInternals, type LostInternalsWarner } from './grpc-internals.ts';
import type { StreamBindingOptions } from './wire/stream.ts';
import type { FailureMode } from './wire/stream-binding.ts';

export interface ServerOptions {
  /** Host to bind, e.g. "127.0.0.1" or "0.0.0.0". */
  host: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** Largest ProcessingRequest accepted (bytes); a larger one ends that stream with RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  /** ext_proc streams held at once, server-wide; beyond it a new stream is refused with RESOURCE_EXHAUSTED
   *  (Envoy then applies the listener's failure mode). Sized to the documented memory cap. */
  maxConcurrentStreams: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS of each connection (one Envoy worker's pool connection). */
  maxConcurrentStreamsPerConnection: number;
  /** A stream that sends nothing for this long is ended (0: never); must exceed the mesh's longest
   *  upstream response time, since a stream waits for the app between request and response. */
  streamIdleSeconds: number;
  /** Request and response body bytes (MiB) held for inspection at once, server-wide (body-budget.ts);
   *  a body beyond it is not inspected and the policy's spec.content.overload decides whether it passes. */
  maxBufferedBodyMib: number;
  /** Event time for the engine (ms since the epoch); replays through Envoy map wall time to capture time. */
  now?: () => number;
  /** grpc-js private shapes the server uses (grpc-internals.ts); default: the installed grpc-js's. */
  grpcInternals?: GrpcInternals;
  /** mTLS (client certificate from the mesh CA required; each stream bound to its certificate's
   *  workload). Absent: plaintext, for local runs and tests only. */
  tls?: ServerTlsOptions;
  /** What a stream whose claimed sidecar does not match its certificate gets: closed (default) 403, open: passes unlearned. */
  forgedStreamFailureMode?: FailureMode;
  /** Plaintext chosen on purpose: `meshward serve` refuses plaintext on a non-loopback address without it. */
  insecurePlaintext?: boolean;
}

export const DEFAULT_SERVER_OPTIONS: ServerOptions = {
  host: '127.0.0.1',
  port: 50051,
  maxMessageBytes: 8 * 1024 * 1024,
  maxConcurrentStreams: 5_000,
  maxConcurrentStreamsPerConnection: 1_000,
  maxBufferedBodyMib: DEFAULT_MAX_BUFFERED_BODY_MIB,
  streamIdleSeconds: 60,
};

/** Messages of one stream received but not yet answered; Envoy waits for each answer, so more
 *  means a misbehaving client, and each may hold a body up to maxMessageBytes. */
export const MAX_UNANSWERED_MESSAGES = 16;
/** At most one "streams refused" log line per this interval (with the count since the last one). */
export const REFUSED_LOG_INTERVAL_MS = 10_000;

/** RST_STREAM frames one connection may send: burst, then per second (Node's defaults: 1000 and 33).
 *  One reset per request, far above a sidecar's request rate, still bounded against a reset flood. */
export const STREAM_RESET_BURST = 100_000;
export const STREAM_RESET_RATE = 50_000;

export interface ServerCounters {
  streamsStarted: number;
  /** Streams not yet closed (ended, cancelled or failed). */
  streamsActive: number;
  /** Streams this server ended with a gRPC error status (protocol violations, internal errors). */
  streamsFailed: number;
  messages: number;
}

/** What the server-wide body budget did, beside ServerCounters. */
export interface BodyBudgetCounters {
  /** Bodies not inspected because the server-wide body budget was full. */
  readonly bodiesOverBudget: number;
  /** Body bytes held for inspection right now. */
  readonly bodyBytesHeld: number;
}

/** What the concurrent-stream cap did, beside ServerCounters. */
export interface StreamCapCounters {
  /** Streams refused at once with RESOURCE_EXHAUSTED because the server held maxConcurrentStreams (not in streamsStarted). */
  streamsRefused: number;
  /** Streams ended because they sent nothing for streamIdleSeconds. */
  streamsReaped: number;
}

export interface RunningServer {
  readonly port: number;
  readonly counters: Readonly<ServerCounters & StreamCapCounters & BodyBudgetCounters>;
  /** Stops accepting streams and waits for in-flight ones to finish. */
  close(): Promise<void>;
  /** Cancels every in-flight stream immediately. */
  forceClose(): void;
}

type ProcessCall = grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>;

export async function startServer(engine: Engine, log: Logger, options: Partial<ServerOptions> = {}): Promise<RunningServer> {
  const opts = { ...DEFAULT_SERVER_OPTIONS, ...options };
  const bodyBudget = new BodyBudget(opts.maxBufferedBodyMib * 1024 * 1024);
  const counters: ServerCounters & StreamCapCounters & BodyBudgetCounters = {
    streamsStarted: 0, streamsActive: 0, streamsFailed: 0, streamsRefused: 0, streamsReaped: 0, messages: 0,
    get bodiesOverBudget() { return bodyBudget.overBudget; },
    get bodyBytesHeld() { return bodyBudget.held; },
  };
  const internals = opts.grpcInternals ?? installedGrpcInternals;
  const warnLostInternals = lostInternalsWarner(log, internals);
  const admission = admitStreams(opts, counters, log, (call) => closeAfterResponse(call, internals, warnLostInternals));
  // Request ids: a per-process prefix plus a counter (cheap, unique, and not taken from any header).
  const idPrefix = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  let nextId = 0;

  const server = new grpc.Server({
    'grpc.max_receive_message_length': opts.maxMessageBytes,
    'grpc.max_send_message_length': opts.maxMessageBytes,
    'grpc.max_concurrent_streams': opts.maxConcurrentStreamsPerConnection,
    // Channelz (grpc-js's introspection service, which meshward does not expose) tracks every
    // call: ~6 µs of CPU and several objects per ext_proc stream (bench:server, grpc-echo floor).
    'grpc.enable_channelz': 0,
  });
  // Envoy resets each ext_proc stream once done with it (RST_STREAM after half-close), so a sidecar
  // above ~33 requests/s exhausts nghttp2's rapid-reset limit (burst 1000, 33/s per connection) and
  // Node answers GOAWAY(INTERNAL_ERROR), failing the streams in flight (found by the fuzz campaign
  // and the soak). This port serves the mesh's sidecars: allow their reset rate. grpc-js has no
  // option for it; grpc-internals.ts sets the Node http2 server options grpc-js binds with.
  const resetLimitsRaised = internals.setHttp2ServerOptions(server, { streamResetBurst: STREAM_RESET_BURST, streamResetRate: STREAM_RESET_RATE });
  // One startup warning for all this grpc-js cannot give (a call's stream found missing later is warned then).
  warnLostInternals([...(resetLimitsRaised ? [] : ['resetLimits' as const]), ...(internals.supported ? [] : ['refusalReset' as const])]);

  const process_ = (call: ProcessCall): void => {
    let finished = false;
    let responseStarted = false;
    const slot = admission.admit(call, () => {
      if (finished) return;
      finished = true;
      // Past the response headers Envoy needs nothing more: a clean close lets the rest pass. Before
      // them, an error status makes Envoy apply the failure mode (never a silent pass).
      if (responseStarted) call.end();
      else call.emit('error', { code: grpc.status.DEADLINE_EXCEEDED, details: 'meshward: ext_proc stream idle past the server deadline' });
    });
    if (slot === undefined) return;
    counters.streamsStarted++;
    counters.streamsActive++;
    const stream = new ExtProcStream(`${idPrefix}-${(nextId++).toString(36)}`, engine, log, opts.now, streamBinding(call, opts), bodyBudget);
    // 'close' follows every ending (end, cancel, error, idle reap): the stream's bodies leave the budget.
    call.once('close', () => { counters.streamsActive--; slot.release(); stream.releaseBodies(); });
    let unanswered = 0;

    const deliver = (result: StepResult): void => {
      unanswered--;
      if (finished) return;
      if (result.kind === 'respond') {
        if (!call.write(result.response)) {
          // Backpressure: stop reading until Envoy has taken what we wrote.
          call.pause();
          call.once('drain', () => call.resume());
        }
      } else if (result.kind === 'error') {
        finished = true;
        counters.streamsFailed++;
        log.warn({ requestId: stream.requestId, code: grpc.status[result.error.code], reason: result.error.message }, 'ext_proc stream ended with error');
        call.emit('error', { code: result.error.code, details: result.error.message });
      }
    };
    call.on('data', (message: ProcessingRequest) => {
      if (finished) return;
      counters.messages++;
      slot.touch();
      if (message?.request === 'response_headers') responseStarted = true;
      if (++unanswered > MAX_UNANSWERED_MESSAGES) {
        deliver({ kind: 'error', error: new ProcessingError(grpc.status.RESOURCE_EXHAUSTED, `meshward: more than ${MAX_UNANSWERED_MESSAGES} ext_proc messages awaiting an answer`) });
        return;
      }
      // Large bodies are decoded off the event loop: that answer comes later, and the stream keeps
      // every later answer behind it (one response per message, in order).
      const result = stream.handle(message);
      if (result instanceof Promise) void result.then(deliver);
      else deliver(result);
      // Observability mode: Envoy holds the stream open for deferred_close_timeout after the
      // request ends unless we close it; response headers are the last message meshward needs
      // (bodies are not sent in this mode), so end it now rather than hold one stream per request
      // for seconds (at 1,000 requests/s that would exhaust the per-connection stream limit).
      if (message?.observability_mode === true && message.request === 'response_headers') endCleanly();
    });
    /** Ends our side with OK once every message already received has its answer. */
    const endCleanly = (): void => {
      void stream.idle().then(() => {
        if (!finished) {
          finished = true;
          call.end();
        }
      });
    };
    // Envoy half-closed: finish our side cleanly (required for graceful close).
    call.on('end', endCleanly);
    call.on('cancelled', () => {
      // Envoy resets every stream after half-closing it by default; that is normal, not an error.
      finished = true;
    });
    call.on('error', (err: Error & { code?: number }) => {
      if (err.code === grpc.status.CANCELLED) return;
      log.debug({ requestId: stream.requestId, err: err.message }, 'ext_proc stream error');
    });
  };

  server.addService(externalProcessorService(), { Process: process_ });
  // Large bodies are decoded in a worker thread: start it before the first one arrives.
  await warmBodyPool().catch((err: unknown) => log.warn({ err: String(err) }, 'body decode pool did not start; large bodies will go uninspected'));
  // grpc.health.v1 beside ExternalProcessor: SERVING overall and for the ext_proc service until close().
  const health = addHealthService(server);
  health.setStatus('envoy.service.ext_proc.v3.ExternalProcessor', 'SERVING');

  const credentials = opts.tls ? await mtlsServerCredentials(opts.tls) : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${opts.host}:${opts.port}`, credentials, (err, boundPort) => {
      if (err) reject(new Error(`meshward: cannot listen on ${opts.host}:${opts.port}: ${err.message}`));
      else resolve(boundPort);
    });
  });
  log.info({ host: opts.host, port, maxMessageBytes: opts.maxMessageBytes, transport: opts.tls ? 'mtls' : 'plaintext' }, 'ext_proc server listening');

  return {
    port,
    counters,
    close: () => {
      admission.stop();
      health.setStatus('', 'NOT_SERVING');
      health.setStatus('envoy.service.ext_proc.v3.ExternalProcessor', 'NOT_SERVING');
      return new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
    forceClose: () => { admission.stop(); server.forceShutdown(); },
  };
}

/** After a complete response to a request still open, HTTP/2 lets the server reset the stream with
 *  NO_ERROR (RFC 9113 section 8.1). Without it a refused stream stays half-open until the client
 *  ends it and keeps counting against the connection's max_concurrent_streams: under a flood Node
 *  then refuses new streams itself and, after 100 refusals, destroys the connection with every held
 *  stream on it (found by test/sim/stream-flood.test.ts). grpc-js keeps the HTTP/2 stream private. */
function closeAfterResponse(call: ProcessCall, internals: GrpcInternals, warnLost: LostInternalsWarner): void {
  const http2Stream = internals.http2StreamOf(call);
  if (http2Stream === undefined) warnLost(['refusalReset']);
  else if (!http2Stream.closed) http2Stream.close(http2.constants.NGHTTP2_NO_ERROR);
}

interface StreamAdmission {
  /** A slot for the call, or undefined after refusing it (RESOURCE_EXHAUSTED already sent). */
  admit(call: ProcessCall, onIdle: () => void): StreamSlot | undefined;
  stop(): void;
}

/** Maps the stream cap onto gRPC calls: refuses over the cap at once, without engine work, logs
 *  refusals at most once per interval, and sweeps idle streams. */
function admitStreams(opts: ServerOptions, counters: StreamCapCounters, log: Logger, closeRefused: (call: ProcessCall) => void): StreamAdmission {
  const idleMs = opts.streamIdleSeconds * 1000;
  const slots = new StreamSlots({ maxStreams: opts.maxConcurrentStreams, idleMs });
  const sweep = idleMs > 0 ? setInterval(() => { counters.streamsReaped += slots.reapIdle(); }, Math.max(100, idleMs / 4)) : undefined;
  sweep?.unref();
  let lastLog = -Infinity;
  let refusedAtLastLog = 0;
  return {
    admit(call, onIdle) {
      const slot = slots.acquire(call.getPeer(), onIdle);
      if (slot !== undefined) return slot;
      counters.streamsRefused++;
      const now = Date.now();
      if (now - lastLog >= REFUSED_LOG_INTERVAL_MS) {
        log.warn({ refused: counters.streamsRefused - refusedAtLastLog, held: slots.held, maxConcurrentStreams: opts.maxConcurrentStreams }, 'ext_proc streams refused: server at its concurrent-stream cap');
        lastLog = now;
        refusedAtLastLog = counters.streamsRefused;
      }
      call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: `meshward: ${opts.maxConcurrentStreams} concurrent ext_proc streams held; try later` });
      closeRefused(call);
      return undefined;
    },
    stop() { if (sweep) clearInterval(sweep); },
  };
}

/** On the mTLS port every stream is checked against the certificate that opened it. */
function streamBinding(call: ProcessCall, opts: Pick<ServerOptions, 'tls' | 'forgedStreamFailureMode'>): StreamBindingOptions | undefined {
  if (!opts.tls) return undefined;
  return { peer: streamPeerOf(call), failureMode: opts.forgedStreamFailureMode ?? 'closed' };
}
