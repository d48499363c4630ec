// `node bench/big-bodies-event-loop.ts`: how late the ext_proc server's event loop gets while 1 MB
// request bodies arrive over gRPC (--rate per second for --seconds), measured for meshward's server and,
// in the same run, for the floor: a bare grpc-js server that answers every message with a fixed
// "continue" and does nothing else. What the floor shows is what receiving 1 MB gRPC messages in Node
// costs on this machine (grpc-js reassembles each message on the event loop, and V8 collects it),
// before any inspection; meshward hands each body to a decode worker (inspect/body-pool.ts).
// The load runs in a child process. An idle run (--rate 0) shows this machine's own timer noise.
import { fork } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { externalProcessorService } from '../extproc/src/wire/protos.ts';
import type { ProcessingRequest, ProcessingResponse } from '../extproc/src/wire/messages.ts';
import { CAPTURE_ATTRIBUTE, EXT_PROC_ATTRIBUTES_KEY } from '../extproc/src/wire/request.ts';
import { Engine } from '../extproc/src/engine/engine.ts';
import { startServer } from '../extproc/src/server.ts';
import { silentLogger } from '../extproc/src/log.ts';
import { monitorDelay, type EventLoopDelay } from './lib/event-loop-delay.ts';
import { startGrpcEcho } from './lib/grpc-echo.ts';

const MAX_MESSAGE = 8 << 20;
const { values: args, positionals } = parseArgs({ allowPositionals: true, options: {
  rate: { type: 'string', default: '20' }, seconds: { type: 'string', default: '6' }, repeats: { type: 'string', default: '2' },
} });

type Duplex = grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;

async function load(port: number): Promise<void> {
  const Ctor = grpc.makeClientConstructor(externalProcessorService(), 'ExternalProcessor');
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': MAX_MESSAGE }) as unknown as grpc.Client & { Process(): Duplex };
  const big = Buffer.from(JSON.stringify({ customer: 'c', items: Array.from({ length: 9000 }, (_, k) => ({ sku: `SKU-${k}`, qty: 1, note: 'n'.repeat(80) })) }));
  const record = 'mw1\npeer=spiffe://cluster.local/ns/web/sa/client\nmtls=1\nrole=inbound\nmethod=POST\nauthority=orders.shop\npath=/orders\ntemplate=/orders\nop=POST orders.shop /orders\nsampled=1\n';
  const headers: ProcessingRequest = {
    request: 'request_headers',
    request_headers: { headers: { headers: [[':method', 'POST'], [':path', '/orders'], [':authority', 'orders.shop'], ['content-type', 'application/json']].map(([key, v]) => ({ key: key!, raw_value: Buffer.from(v!) })) }, end_of_stream: false },
    attributes: { [EXT_PROC_ATTRIBUTES_KEY]: { fields: { [CAPTURE_ATTRIBUTE]: { stringValue: record } } } },
  };
  const start = Date.now();
  const seconds = Number(args.seconds);
  for (let i = 0; Number(args.rate) > 0 && Date.now() - start < seconds * 1000; i++) {
    const due = start + (i * 1000) / Number(args.rate);
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    const call = client.Process();
    let answers = 0;
    call.on('data', () => { if (++answers === 2) call.end(); });
    call.on('error', () => {});
    call.write(headers);
    call.write({ request: 'request_body', request_body: { body: big, end_of_stream: true } });
  }
  await new Promise((r) => setTimeout(r, Number(args.rate) > 0 ? 1000 : seconds * 1000));
  client.close();
}

async function measure(kind: 'grpc-js floor' | 'meshward'): Promise<EventLoopDelay> {
  let port: number;
  let close: () => void;
  if (kind === 'meshward') {
    const server = await startServer(new Engine({ denyRules: [] }), silentLogger, { port: 0, maxMessageBytes: MAX_MESSAGE });
    ({ port } = server);
    close = () => server.forceClose();
  } else {
    const echo = await startGrpcEcho(0, MAX_MESSAGE);
    ({ port } = echo);
    close = () => echo.forceClose();
  }
  const monitor = monitorDelay();
  const warmup = setTimeout(() => monitor.reset(), 1000);
  const child = fork(new URL(import.meta.url).pathname, ['load', String(port), '--rate', args.rate!, '--seconds', args.seconds!]);
  await new Promise((r) => child.once('exit', r));
  clearTimeout(warmup);
  const delay = monitor.stop();
  close();
  return delay;
}

if (positionals[0] === 'load') {
  await load(Number(positionals[1]));
  process.exit(0);
}
const results: { kind: string; p99Ms: number; maxMs: number }[] = [];
for (let r = 0; r < Number(args.repeats); r++) {
  for (const kind of ['grpc-js floor', 'meshward'] as const) {
    const d = await measure(kind);
    results.push({ kind, p99Ms: d.p99Ms, maxMs: d.maxMs });
    console.log(`1 MB request bodies at ${args.rate}/s for ${args.seconds} s, ${kind}: event-loop delay p99 ${d.p99Ms} ms, max ${d.maxMs} ms`);
  }
}
console.log(JSON.stringify({ rate: Number(args.rate), seconds: Number(args.seconds), results, node: process.version, cpus: os.cpus().length }));
process.exit(0);
