// A local OTLP/HTTP receiver for telemetry tests: records every request body by URL path
// (/v1/traces, /v1/metrics, /v1/logs) and answers 200, as a collector does.
import http from 'node:http';

export interface OtlpReceiver {
  /** Base URL to give Telemetry as its endpoint. */
  readonly endpoint: string;
  /** Request bodies received, by URL path. */
  readonly received: Map<string, Buffer[]>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const received = new Map<string, Buffer[]>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const list = received.get(req.url ?? '') ?? [];
      list.push(Buffer.concat(chunks));
      received.set(req.url ?? '', list);
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
