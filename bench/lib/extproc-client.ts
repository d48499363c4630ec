// A gRPC load client shaped like Envoy's ext_proc client: one bidi stream per HTTP request, the
// next message written when the previous one is answered, many streams in flight over one HTTP/2
// connection. Used by the server benchmarks (capacity, memory).
import * as grpc from '@grpc/grpc-js';
import { externalProcessorService } from '../../extproc/src/wire/protos.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../extproc/src/wire/messages.ts';

type ProcessClient = grpc.Client & { Process(): grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse> };

export interface StreamLoad {
  /** Messages of stream number i (request headers first), sent one per answer. */
  messages(i: number): ProcessingRequest[];
  /** Streams in flight at once. */
  concurrency: number;
  /** Stop after this many streams in total ... */
  streams?: number;
  /** ... or when this returns true (checked before each stream starts). */
  stop?: () => boolean;
}

export interface StreamLoadResult {
  streams: number;
  /** Per-stream latency in microseconds, from the first write to the last answer. */
  latenciesUs: number[];
}

export function extProcClient(port: number): ProcessClient {
  const Ctor = grpc.makeClientConstructor(externalProcessorService(), 'ExternalProcessor');
  return new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as ProcessClient;
}

function oneStream(client: ProcessClient, msgs: ProcessingRequest[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const call = client.Process();
    let got = 0;
    call.on('data', () => {
      got++;
      if (got < msgs.length) call.write(msgs[got]!);
      else { call.end(); resolve(Number(process.hrtime.bigint() - t0) / 1000); }
    });
    call.on('error', (e: grpc.ServiceError) => { if (got < msgs.length) reject(e); });
    call.write(msgs[0]!);
  });
}

/** Runs `load` against the client's server until its stream count or stop condition is reached. */
export async function runStreams(client: ProcessClient, load: StreamLoad): Promise<StreamLoadResult> {
  const latenciesUs: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (!(load.stop?.() ?? false) && (load.streams === undefined || next < load.streams)) {
      latenciesUs.push(await oneStream(client, load.messages(next++)));
    }
  };
  await Promise.all(Array.from({ length: load.concurrency }, worker));
  return { streams: latenciesUs.length, latenciesUs };
}

/** Value at quantile q of an ascending array. */
export function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}
