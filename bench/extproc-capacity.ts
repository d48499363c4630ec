// `npm run bench:server`: the ext_proc server alone under gRPC load shaped like Envoy's: one
// stream per HTTP request (request headers, then response headers), many streams in flight over
// one HTTP/2 connection. Reports decisions per CPU-second of the server process and stream p99.
import os from 'node:os';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { freePort } from '../extproc/src/local/ports.ts';
import { startExtProcProcess } from './lib/extproc-process.ts';
import { externalProcessorService } from '../extproc/src/wire/protos.ts';
import type { ProcessingRequest, ProcessingResponse } from '../extproc/src/wire/messages.ts';
import { cpuSeconds, rssBytes } from './lib/procstat.ts';

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, concurrency: { type: 'string', default: '64' }, body: { type: 'boolean', default: false } } });
const seconds = Number(args.seconds);
const concurrency = Number(args.concurrency);

function headers(i: number): ProcessingRequest {
  const h = (k: string, v: string) => ({ key: k, raw_value: Buffer.from(v) });
  const peer = `spiffe://cluster.local/ns/ns${i % 50}/sa/sa${i % 7}`;
  return {
    request: 'request_headers',
    request_headers: { headers: { headers: [h(':method', 'GET'), h(':path', `/users/${i % 5000}/orders?page=${i % 10}`), h(':authority', 'orders.shop.svc.cluster.local'), h('authorization', 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.sig'), h('user-agent', 'bench')] }, end_of_stream: !args.body },
    attributes: { 'envoy.filters.http.ext_proc': { fields: {
      "filter_state['wasm.meshward']": { stringValue: `mw1\npeer=${peer}\nmtls=1\nsrc=10.0.0.${i % 250}:4000\nmethod=GET\npath=/users/${i % 5000}/orders\n` },
      'connection.uri_san_peer_certificate': { stringValue: peer },
    } } },
  };
}
const body: ProcessingRequest = { request: 'request_body', request_body: { body: Buffer.from(JSON.stringify({ item: 'x'.repeat(900), qty: 1 })), end_of_stream: true } };
const respHeaders: ProcessingRequest = { request: 'response_headers', response_headers: { headers: { headers: [{ key: ':status', raw_value: Buffer.from('200') }, { key: 'content-type', raw_value: Buffer.from('application/json') }] } } };

async function main(): Promise<void> {
  const port = await freePort();
  const child = await startExtProcProcess(port, '0');
  const Ctor = grpc.makeClientConstructor(externalProcessorService(), 'ExternalProcessor');
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { Process(): grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse> };

  const latencies: number[] = [];
  let i = 0;
  let stop = false;
  const oneStream = (): Promise<void> => new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const call = client.Process();
    const msgs = args.body ? [headers(i++), body, respHeaders] : [headers(i++), respHeaders];
    let got = 0;
    call.on('data', () => {
      got++;
      if (got < msgs.length) call.write(msgs[got]!);
      else { call.end(); latencies.push(Number(process.hrtime.bigint() - t0) / 1000); resolve(); }
    });
    call.on('error', (e: grpc.ServiceError) => { if (got < msgs.length) reject(e); });
    call.write(msgs[0]!);
  });
  const worker = async (): Promise<void> => { while (!stop) await oneStream(); };
  // Warm-up, then measure.
  stop = false; setTimeout(() => { stop = true; }, 2000); await Promise.all(Array.from({ length: concurrency }, worker));
  latencies.length = 0;
  const cpu0 = cpuSeconds(child.pid!);
  const t0 = Date.now();
  stop = false; setTimeout(() => { stop = true; }, seconds * 1000); await Promise.all(Array.from({ length: concurrency }, worker));
  const wall = (Date.now() - t0) / 1000;
  const cpu = cpuSeconds(child.pid!) - cpu0;
  latencies.sort((a, b) => a - b);
  const pct = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  const out = {
    mode: args.body ? 'headers + 1 KB body + response headers' : 'request headers + response headers',
    streams: latencies.length, wallSeconds: wall, serverCpuSeconds: cpu,
    decisionsPerCpuSecond: Math.round(latencies.length / cpu), streamsPerSecond: Math.round(latencies.length / wall),
    p50_us: Math.round(pct(0.5)), p99_us: Math.round(pct(0.99)), serverRssBytes: rssBytes(child.pid!), node: process.version, cpus: os.cpus().length,
  };
  console.log(JSON.stringify(out, null, 2));
  client.close();
  // SIGTERM: serve drains and exits, so a --cpu-prof profile is written.
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

await main();
