// A separate process that floods an ext_proc server with streams that never finish, the way a stuck or
// hostile sidecar would: each stream sends request headers (a request "waiting for the app") and then
// holds. Streams go out over CONNECTIONS separate HTTP/2 connections; like Envoy's connection pool, a
// connection never carries more than PER_CONNECTION open streams (the server's
// max_concurrent_streams: Node's client does not queue beyond it, and the server would refuse them).
// Usage (IPC child): node test/support/stream-flood.ts PORT STREAMS CONNECTIONS PER_CONNECTION
// Sends {answered, refused, other, otherCodes, lostHeld} once every stream was answered (held) or
// refused, or when no connection has room left; on the message 'release' cancels the held streams,
// waits for their status and exits.
import * as grpc from '@grpc/grpc-js';
import { externalProcessorService } from '../../extproc/src/wire/protos.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../extproc/src/wire/messages.ts';
import { CAPTURE_ATTRIBUTE, EXT_PROC_ATTRIBUTES_KEY } from '../../extproc/src/wire/request.ts';

const [port, streams, connections, perConnection] = process.argv.slice(2).map(Number) as [number, number, number, number];
type Duplex = grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
const Ctor = grpc.makeClientConstructor(externalProcessorService(), 'ExternalProcessor');
// A local subchannel pool per client: each client is its own HTTP/2 connection.
const clients = Array.from({ length: connections }, () => new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as grpc.Client & { Process(): Duplex });
/** Streams open (held or waiting for their answer) per connection. */
const openOn = new Array<number>(connections).fill(0);
const h = (pairs: [string, string][]): { headers: { key: string; raw_value: Buffer }[] } => ({ headers: pairs.map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) });

let opened = 0;
let settled = 0;
let answered = 0;
let refused = 0;
let other = 0;
let reported = false;
const otherCodes: Record<string, number> = {};
const held: Duplex[] = [];
/** Held streams that ended on their own: the server must not end a held stream. */
const ended = new Set<Duplex>();
let lostHeld = 0;

function open(n: number, connection: number): void {
  opened++;
  openOn[connection]!++;
  const path = `/flood/${n}`;
  const record = `mw1\npeer=spiffe://cluster.local/ns/noisy/sa/flooder\nmtls=1\nrole=inbound\nmethod=POST\nauthority=orders.shop\npath=${path}\nsampled=0\n`;
  const call = clients[connection]!.Process();
  let done = false;
  const settle = (): void => { if (!done) { done = true; settled++; pump(); } };
  call.on('data', () => { answered++; held.push(call); settle(); });
  call.on('status', (s: grpc.StatusObject) => {
    openOn[connection]!--;
    if (done) { ended.add(call); lostHeld++; return; }
    if (s.code === grpc.status.RESOURCE_EXHAUSTED) refused++;
    else { other++; otherCodes[grpc.status[s.code]] = (otherCodes[grpc.status[s.code]] ?? 0) + 1; }
    settle();
  });
  call.on('error', () => {});
  call.write({ request: 'request_headers', request_headers: { headers: h([[':method', 'POST'], [':path', path], [':authority', 'orders.shop'], ['content-type', 'application/json']]), end_of_stream: false },
    attributes: { [EXT_PROC_ATTRIBUTES_KEY]: { fields: { [CAPTURE_ATTRIBUTE]: { stringValue: record } } } } });
}

let next = 0;
function pump(): void {
  // Round-robin over connections with room, as a pool spreads its requests.
  for (let tried = 0; opened < streams && tried < connections; next = (next + 1) % connections) {
    if (openOn[next]! < perConnection) { open(opened, next); tried = 0; } else tried++;
  }
  const stuck = opened < streams && opened === settled;
  if (!reported && (settled === streams || stuck)) {
    reported = true;
    process.send!({ answered, refused, other, otherCodes, lostHeld, opened });
  }
}

process.on('message', (m) => {
  if (m !== 'release') return;
  let left = held.length;
  const done = (): void => { if (--left === 0) { for (const c of clients) c.close(); process.exit(0); } };
  if (left === 0) process.exit(0);
  for (const call of held) {
    if (ended.has(call)) done();
    else { call.on('status', done); call.cancel(); }
  }
});
pump();
