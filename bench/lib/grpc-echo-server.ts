// The floor under `bench:server` as its own process (so its CPU time can be read): bench/lib/grpc-echo.ts.
// Usage: node bench/lib/grpc-echo-server.ts PORT
import { startGrpcEcho } from './grpc-echo.ts';

const echo = await startGrpcEcho(Number(process.argv[2])).catch((err: Error) => { console.error(err.message); process.exit(2); });
if (!echo.resetLimitsRaised) {
  console.error('grpc-echo-server: this grpc-js version takes no raised HTTP/2 reset limits (see extproc/src/grpc-internals.ts); running with Node\'s defaults, as meshward then does');
}
process.on('SIGTERM', () => { void echo.close().then(() => process.exit(0)); });
