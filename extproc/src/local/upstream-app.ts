// A sample upstream application for local stacks: answers JSON describing the request and records
// every request it received, so tests can prove what reached (or never reached) the app.
import http from 'node:http';
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';

/** RFC 6455 handshake answer: base64(SHA-1(key + the protocol's fixed GUID)). */
export function webSocketAccept(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC11B85`).digest('base64');
}

export interface AppRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface UpstreamApp {
  readonly port: number;
  readonly received: AppRequest[];
  close(): Promise<void>;
}

export interface AppAnswer { status: number; headers: [string, string][]; body: Buffer }
/** Answers a request instead of the default JSON echo (e.g. a replay of recorded responses); a
 *  promise holds the answer back (e.g. until a test has every request of a burst in flight). */
export type AppHandler = (request: AppRequest) => AppAnswer | Promise<AppAnswer>;

export async function startUpstreamApp(port = 0, handler?: AppHandler): Promise<UpstreamApp> {
  const received: AppRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry: AppRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(entry);
      if (handler) {
        const send = (answer: AppAnswer): void => {
          res.writeHead(answer.status, answer.headers.flat());
          res.end(answer.body);
        };
        const answer = handler(entry);
        if (answer instanceof Promise) answer.then(send, () => res.destroy());
        else send(answer);
        return;
      }
      const body = JSON.stringify({ ok: true, method: entry.method, path: entry.path, echo: entry.body });
      res.writeHead(200, { 'content-type': 'application/json', 'x-app': 'meshward-sample' });
      res.end(body);
    });
  });
  // WebSocket upgrades: recorded like requests and accepted with the RFC 6455 handshake (tests prove
  // what reaches the app through the sidecars, not a WebSocket conversation).
  const sockets = new Set<Duplex>();
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
    received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: '' });
    const key = req.headers['sec-websocket-key'];
    if (typeof key !== 'string' || req.headers.upgrade?.toLowerCase() !== 'websocket') {
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    socket.on('error', () => {});
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // Left open: the tunnel ends when the client (or close()) ends it.
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${webSocketAccept(key)}\r\n\r\n`);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : port,
    received,
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
