// An ext_proc server that misbehaves on purpose, on the port the sidecars' ext_proc cluster uses,
// so the failure-matrix test can show what Envoy does in each case.
import * as grpc from '@grpc/grpc-js';
import { externalProcessorService } from '../../extproc/src/wire/protos.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../extproc/src/wire/messages.ts';

export type Fault =
  | 'killed-in-request-phase'   // process dies while Envoy waits for the request-headers answer
  | 'killed-in-response-phase'  // answers the request, dies while Envoy waits for the response-headers answer
  | 'slower-than-timeout'       // never answers: Envoy's message_timeout fires
  | 'wrong-message-kind'        // answers request headers with a response-headers message
  | 'grpc-error'                // ends the stream with UNAVAILABLE
  | 'clean-close';              // ends the stream with OK without answering

export interface FaultyServer { streams: number; close(): void }

export async function startFaultyExtProc(port: number, fault: Fault): Promise<FaultyServer> {
  const server = new grpc.Server();
  const state: FaultyServer = { streams: 0, close: () => server.forceShutdown() };
  server.addService(externalProcessorService(), {
    Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
      state.streams++;
      call.on('data', (m: ProcessingRequest) => {
        switch (fault) {
          case 'killed-in-request-phase':
            server.forceShutdown();
            return;
          case 'killed-in-response-phase':
            if (m.request === 'request_headers') call.write({ request_headers: {} });
            else server.forceShutdown();
            return;
          case 'slower-than-timeout':
            return;
          case 'wrong-message-kind':
            call.write({ response_headers: {} });
            return;
          case 'grpc-error':
            call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'injected fault' });
            return;
          case 'clean-close':
            call.end();
            return;
        }
      });
      call.on('error', () => {});
    },
  });
  await new Promise<void>((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  return state;
}
