// A sample upstream application for local stacks: answers JSON describing the request and records
// every request it received, so tests can prove what reached (or never reached) the app.
import http from 'node:http';

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

/** Answers a request instead of the default JSON echo (e.g. a replay of recorded responses). */
export type AppHandler = (request: AppRequest) => { status: number; headers: [string, string][]; body: Buffer };

export async function startUpstreamApp(port = 0, handler?: AppHandler): Promise<UpstreamApp> {
  const received: AppRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry: AppRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(entry);
      if (handler) {
        const answer = handler(entry);
        res.writeHead(answer.status, answer.headers.flat());
        res.end(answer.body);
        return;
      }
      const body = JSON.stringify({ ok: true, method: entry.method, path: entry.path, echo: entry.body });
      res.writeHead(200, { 'content-type': 'application/json', 'x-app': 'meshward-sample' });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : port,
    received,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
