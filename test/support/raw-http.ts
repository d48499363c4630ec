// HTTP/1.1 requests with full control over headers (Host, latin1 bytes, many headers), which
// fetch() does not allow. Header values given as Buffers are sent byte for byte.
import http from 'node:http';

export interface RawResponse { status: number; headers: http.IncomingHttpHeaders; body: string }

export function rawRequest(baseUrl: string, options: {
  method?: string; path: string; headers?: [string, string | Buffer][]; body?: string | Buffer;
}): Promise<RawResponse> {
  const url = new URL(baseUrl);
  // Node validates header strings; latin1 strings carry arbitrary bytes 0x80-0xff unchanged.
  const flat: string[] = [];
  for (const [k, v] of options.headers ?? []) flat.push(k, Buffer.isBuffer(v) ? v.toString('latin1') : v);
  if (options.body !== undefined) flat.push('content-length', String(Buffer.byteLength(options.body)));
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname, port: url.port, method: options.method ?? 'GET', path: options.path, headers: flat,
      agent: false, insecureHTTPParser: true,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}
