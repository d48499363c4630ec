// The floor under `bench:server`: a grpc-js ExternalProcessor that answers every message at once with
// a fixed "continue" and does nothing else (no decoding beyond grpc-js's, no engine). Same HTTP/2
// reset limits as meshward's server. What it costs per stream is what grpc-js and Node's HTTP/2 cost.
// Usage: node bench/lib/grpc-echo-server.ts PORT
import * as grpc from '@grpc/grpc-js';
import { externalProcessorService } from '../../extproc/src/wire/protos.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../extproc/src/wire/messages.ts';
import { STREAM_RESET_BURST, STREAM_RESET_RATE } from '../../extproc/src/server.ts';
import { setHttp2ServerOptions } from '../../extproc/src/grpc-internals.ts';

const port = Number(process.argv[2]);
const server = new grpc.Server({ 'grpc.enable_channelz': 0 }); // as meshward's server
if (!setHttp2ServerOptions(server, { streamResetBurst: STREAM_RESET_BURST, streamResetRate: STREAM_RESET_RATE })) {
  console.error('grpc-echo-server: this grpc-js version takes no raised HTTP/2 reset limits (see extproc/src/grpc-internals.ts); running with Node\'s defaults, as meshward then does');
}
const CONTINUE: Record<string, ProcessingResponse> = {
  request_headers: { request_headers: {} }, request_body: { request_body: {} }, request_trailers: { request_trailers: {} },
  response_headers: { response_headers: {} }, response_body: { response_body: {} }, response_trailers: { response_trailers: {} },
};
server.addService(externalProcessorService(), {
  Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
    call.on('data', (m: ProcessingRequest) => { call.write(CONTINUE[m.request ?? 'request_headers']!); });
    call.on('end', () => call.end());
    call.on('error', () => {});
  },
});
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => { if (err) { console.error(err.message); process.exit(2); } });
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
