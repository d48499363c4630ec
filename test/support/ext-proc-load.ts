// A separate process that drives an ext_proc server the way Envoy does, at a steady rate: one stream
// per request (request headers with the filter's capture record, then response headers), so the
// server's event loop is measured without the load generator on it.
// Usage: node test/support/ext-proc-load.ts PORT RATE SECONDS -> prints {"sent","ok","failed"} as JSON.
import * as grpc from '@grpc/grpc-js';
import { externalProcessorService } from '../../extproc/src/wire/protos.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../extproc/src/wire/messages.ts';
import { CAPTURE_ATTRIBUTE, EXT_PROC_ATTRIBUTES_KEY } from '../../extproc/src/wire/request.ts';

const [port, rate, seconds] = process.argv.slice(2).map(Number) as [number, number, number];
type Duplex = grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
const Ctor = grpc.makeClientConstructor(externalProcessorService(), 'ExternalProcessor');
const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { Process(): Duplex };
const h = (pairs: [string, string][]): { headers: { key: string; raw_value: Buffer }[] } => ({ headers: pairs.map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) });

let sent = 0;
let ok = 0;
let failed = 0;
function one(n: number): void {
  sent++;
  const path = `/orders/${n % 5000}`;
  const record = `mw1\npeer=spiffe://cluster.local/ns/web/sa/client${n % 20}\nmtls=1\nrole=inbound\nmethod=GET\nauthority=orders.shop\npath=${path}\ntemplate=/orders/{id}\nop=GET orders.shop /orders/{id}\nsampled=0\n`;
  const call = client.Process();
  let answers = 0;
  call.on('data', () => { answers++; if (answers === 2) call.end(); });
  call.on('status', (s: grpc.StatusObject) => { if (s.code === grpc.status.OK && answers === 2) ok++; else failed++; });
  call.on('error', () => {});
  call.write({ request: 'request_headers', request_headers: { headers: h([[':method', 'GET'], [':path', path], [':authority', 'orders.shop']]), end_of_stream: true },
    attributes: { [EXT_PROC_ATTRIBUTES_KEY]: { fields: { [CAPTURE_ATTRIBUTE]: { stringValue: record } } } } });
  call.write({ request: 'response_headers', response_headers: { headers: h([[':status', '200'], ['content-type', 'application/json']]), end_of_stream: true } });
}

const start = performance.now();
const timer = setInterval(() => {
  const due = Math.floor(((performance.now() - start) / 1000) * rate);
  while (sent < due) one(sent);
  if (performance.now() - start >= seconds * 1000) {
    clearInterval(timer);
    const wait = setInterval(() => {
      if (ok + failed >= sent) { clearInterval(wait); client.close(); console.log(JSON.stringify({ sent, ok, failed })); }
    }, 20);
  }
}, 5);
