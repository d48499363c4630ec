// Free loopback ports for local stacks (tests, demo, benchmarks).
// A port is chosen below the kernel's ephemeral range (Linux default 32768-60999): a port taken from
// that range with listen(0) can be handed to an outgoing connection (an HTTP client's, or Envoy's
// own upstream) between being chosen and being bound by Envoy, which then fails with "Address already
// in use". Ports handed out by this process are never handed out again.
import net from 'node:net';

const LOW = 20_000;
const HIGH = 32_767;
const handedOut = new Set<number>();

function tryBind(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, host, () => {
      const addr = srv.address();
      const bound = typeof addr === 'object' && addr ? addr.port : undefined;
      srv.close(() => resolve(bound));
    });
  });
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 64; attempt++) {
    const candidate = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (handedOut.has(candidate)) continue;
    const port = await tryBind(candidate, host);
    if (port !== undefined) {
      handedOut.add(port);
      return port;
    }
  }
  // Range exhausted or unusable here: fall back to a kernel-chosen port, still never handed out twice.
  for (;;) {
    const port = await tryBind(0, host);
    if (port === undefined) throw new Error(`no free port on ${host}`);
    if (!handedOut.has(port)) { handedOut.add(port); return port; }
  }
}
