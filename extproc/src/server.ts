// The ext_proc gRPC server: binds Envoy's ExternalProcessor service to the engine.
import * as grpc from '@grpc/grpc-js';
import type { Engine } from './engine/engine.ts';
import type { Logger } from './log.ts';
import { externalProcessorService } from './wire/protos.ts';
import type { ProcessingRequest, ProcessingResponse } from './wire/messages.ts';
import { ExtProcStream } from './wire/stream.ts';
import { addHealthService } from './health.ts';

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

  const process_ = (call: ProcessCall): void => {
    counters.streamsStarted++;
    counters.streamsActive++;
    call.once('close', () => { counters.streamsActive--; });
    const stream = new ExtProcStream(`${idPrefix}-${(nextId++).toString(36)}`, engine, log, opts.now);
    let finished = false;

    call.on('data', (message: ProcessingRequest) => {
      if (finished) return;
      counters.messages++;
      const result = stream.step(message);
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
    });
    call.on('end', () => {
      // Envoy half-closed: finish our side cleanly (required for graceful close).
      if (!finished) {
        finished = true;
        call.end();
      }
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
