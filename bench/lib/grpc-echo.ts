// The grpc-js floor the benchmarks and the event-loop test measure meshward against: an
// ExternalProcessor that answers every message at once with a fixed "continue" and does nothing else
// (no decoding beyond grpc-js's, no engine), with meshward's server options (channelz off, the same
// HTTP/2 reset limits). What it costs is what grpc-js and Node's HTTP/2 cost on the machine.
import * as grpc from '@grpc/grpc-js';
import { externalProcessorService } from '../../extproc/src/wire/protos.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../extproc/src/wire/messages.ts';
import { STREAM_RESET_BURST, STREAM_RESET_RATE } from '../../extproc/src/server.ts';
import { setHttp2ServerOptions } from '../../extproc/src/grpc-internals.ts';

const CONTINUE: Record<string, ProcessingResponse> = {
  request_headers: { request_headers: {} }, request_body: { request_body: {} }, request_trailers: { request_trailers: {} },
  response_headers: { response_headers: {} }, response_body: { response_body: {} }, response_trailers: { response_trailers: {} },
};

export interface GrpcEcho {
  readonly port: number;
  /** Whether the raised HTTP/2 reset limits took (grpc-internals.ts). */
  readonly resetLimitsRaised: boolean;
  forceClose(): void;
  close(): Promise<void>;
}

/** Starts the floor on 127.0.0.1:`port` (0: any free port). */
export async function startGrpcEcho(port = 0, maxMessageBytes?: number): Promise<GrpcEcho> {
  const server = new grpc.Server({ 'grpc.enable_channelz': 0, ...(maxMessageBytes !== undefined ? { 'grpc.max_receive_message_length': maxMessageBytes } : {}) });
  const resetLimitsRaised = setHttp2ServerOptions(server, { streamResetBurst: STREAM_RESET_BURST, streamResetRate: STREAM_RESET_RATE });
  server.addService(externalProcessorService(), {
    Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
      call.on('data', (m: ProcessingRequest) => { call.write(CONTINUE[m.request ?? 'request_headers']!); });
      call.on('end', () => call.end());
      call.on('error', () => {});
    },
  });
  const bound = await new Promise<number>((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return {
    port: bound, resetLimitsRaised,
    forceClose: () => server.forceShutdown(),
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}
