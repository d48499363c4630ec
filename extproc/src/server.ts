// The ext_proc gRPC server: binds Envoy's ExternalProcessor service to the engine.
import * as grpc from '@grpc/grpc-js';
import type { Engine } from './engine/engine.ts';
import type { Logger } from './log.ts';
import { externalProcessorService } from './wire/protos.ts';
import type { ProcessingRequest, ProcessingResponse } from './wire/messages.ts';
import { ExtProcStream, type StepResult } from './wire/stream.ts';
import { addHealthService } from './health.ts';
import { warmBodyPool } from './inspect/body-pool.ts';

export interface ServerOptions {
  /** Host to bind, e.g. "127.0.0.1" or "0.0.0.0". */
  host: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** Largest ProcessingRequest accepted (bytes); a larger one ends that stream with RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  /** Event time for the engine (ms since the epoch); replays through Envoy map wall time to capture time. */
  now?: () => number;
}

export const DEFAULT_SERVER_OPTIONS: ServerOptions = {
  host: '127.0.0.1',
  port: 50051,
  maxMessageBytes: 8 * 1024 * 1024,
};

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

export interface RunningServer {
  readonly port: number;
  readonly counters: Readonly<ServerCounters>;
  /** Stops accepting streams and waits for in-flight ones to finish. */
  close(): Promise<void>;
  /** Cancels every in-flight stream immediately. */
  forceClose(): void;
}

type ProcessCall = grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>;

export async function startServer(engine: Engine, log: Logger, options: Partial<ServerOptions> = {}): Promise<RunningServer> {
  const opts = { ...DEFAULT_SERVER_OPTIONS, ...options };
  const counters: ServerCounters = { streamsStarted: 0, streamsActive: 0, streamsFailed: 0, messages: 0 };
  // Request ids: a per-process prefix plus a counter (cheap, unique, and not taken from any header).
  const idPrefix = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  let nextId = 0;

  const server = new grpc.Server({
    'grpc.max_receive_message_length': opts.maxMessageBytes,
    'grpc.max_send_message_length': opts.maxMessageBytes,
  });
  // Envoy resets each ext_proc stream once done with it (RST_STREAM after half-close), so a sidecar
  // above ~33 requests/s exhausts nghttp2's rapid-reset limit (burst 1000, 33/s per connection) and
  // Node answers GOAWAY(INTERNAL_ERROR), failing the streams in flight (found by the fuzz campaign
  // and the soak). This port serves the mesh's sidecars: allow their reset rate. grpc-js has no
  // option for it; it passes these Node http2 server options through when it binds.
  const http2Options = (server as unknown as { commonServerOptions?: Record<string, unknown> }).commonServerOptions;
  if (http2Options) Object.assign(http2Options, { streamResetBurst: STREAM_RESET_BURST, streamResetRate: STREAM_RESET_RATE });

  const process_ = (call: ProcessCall): void => {
    counters.streamsStarted++;
    counters.streamsActive++;
    call.once('close', () => { counters.streamsActive--; });
    const stream = new ExtProcStream(`${idPrefix}-${(nextId++).toString(36)}`, engine, log, opts.now);
    let finished = false;

    const deliver = (result: StepResult): void => {
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
      // Large bodies are decoded off the event loop: that answer comes later, and the stream keeps
      // every later answer behind it (one response per message, in order).
      const result = stream.handle(message);
      if (result instanceof Promise) void result.then(deliver);
      else deliver(result);
    });
    call.on('end', () => {
      // Envoy half-closed: finish our side cleanly (required for graceful close), once every
      // message already received has its answer.
      void stream.idle().then(() => {
        if (!finished) {
          finished = true;
          call.end();
        }
      });
    });
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

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${opts.host}:${opts.port}`, grpc.ServerCredentials.createInsecure(), (err, boundPort) => {
      if (err) reject(new Error(`meshward: cannot listen on ${opts.host}:${opts.port}: ${err.message}`));
      else resolve(boundPort);
    });
  });
  log.info({ host: opts.host, port, maxMessageBytes: opts.maxMessageBytes }, 'ext_proc server listening');

  return {
    port,
    counters,
    close: () => {
      health.setStatus('', 'NOT_SERVING');
      health.setStatus('envoy.service.ext_proc.v3.ExternalProcessor', 'NOT_SERVING');
      return new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
    forceClose: () => server.forceShutdown(),
  };
}
