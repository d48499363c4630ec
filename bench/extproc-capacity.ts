// `npm run bench:server`: the ext_proc server alone under gRPC load shaped like Envoy's: one
// stream per HTTP request (request headers, then response headers), many streams in flight over
// one HTTP/2 connection. Reports decisions per CPU-second of the server process and stream p99.
// `--server grpc-echo` runs the floor instead of meshward: a grpc-js server that answers every
// message with a fixed "continue" (bench/lib/grpc-echo-server.ts), i.e. what grpc-js and Node's
// HTTP/2 alone cost per stream on this machine.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../extproc/src/local/ports.ts';
import { PROJECT_ROOT } from '../extproc/src/local/envoy-binary.ts';
import { trackChild } from '../extproc/src/local/children.ts';
import { startExtProcProcess, waitForPort } from './lib/extproc-process.ts';
import type { ProcessingRequest } from '../extproc/src/wire/messages.ts';
import { cpuSeconds, rssBytes } from './lib/procstat.ts';
import { extProcClient, quantile, runStreams } from './lib/extproc-client.ts';

const { values: args } = parseArgs({ options: {
  seconds: { type: 'string', default: '10' }, concurrency: { type: 'string', default: '64' }, body: { type: 'boolean', default: false },
  server: { type: 'string', default: 'meshward' },
} });
const seconds = Number(args.seconds);
const concurrency = Number(args.concurrency);
const SERVER_CPU = '0';
const CLIENT_CPU = os.availableParallelism() > 1 ? '1' : '0';

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

async function startServerProcess(port: number): Promise<ChildProcess> {
  if (args.server === 'meshward') return startExtProcProcess(port, SERVER_CPU);
  if (args.server !== 'grpc-echo') throw new Error(`--server must be meshward or grpc-echo (got ${args.server})`);
  const child = spawn('taskset', ['-c', SERVER_CPU, process.execPath, path.join(PROJECT_ROOT, 'bench/lib/grpc-echo-server.ts'), String(port)], { stdio: 'inherit' });
  trackChild(child);
  await waitForPort(child, port);
  return child;
}

async function main(): Promise<void> {
  // The client on the other core, so its work does not compete with the server's.
  execFileSync('taskset', ['-p', '-c', CLIENT_CPU, String(process.pid)], { stdio: 'ignore' });
  const port = await freePort();
  const child = await startServerProcess(port);
  const client = extProcClient(port);
  const messages = (i: number): ProcessingRequest[] => args.body ? [headers(i), body, respHeaders] : [headers(i), respHeaders];
  const until = (ms: number): (() => boolean) => { const end = Date.now() + ms; return () => Date.now() >= end; };

  await runStreams(client, { messages, concurrency, stop: until(2000) }); // warm-up
  const cpu0 = cpuSeconds(child.pid!);
  const t0 = Date.now();
  const { streams, latenciesUs } = await runStreams(client, { messages, concurrency, stop: until(seconds * 1000) });
  const wall = (Date.now() - t0) / 1000;
  const cpu = cpuSeconds(child.pid!) - cpu0;
  latenciesUs.sort((a, b) => a - b);
  const out = {
    server: args.server,
    mode: args.body ? 'headers + 1 KB body + response headers' : 'request headers + response headers',
    streams, wallSeconds: wall, serverCpuSeconds: cpu,
    decisionsPerCpuSecond: Math.round(streams / cpu), serverCpuUsPerStream: Math.round(cpu / streams * 1e6), streamsPerSecond: Math.round(streams / wall),
    p50_us: Math.round(quantile(latenciesUs, 0.5)), p99_us: Math.round(quantile(latenciesUs, 0.99)), serverRssBytes: rssBytes(child.pid!), node: process.version, cpus: os.cpus().length,
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
