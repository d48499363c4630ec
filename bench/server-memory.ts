// `npm run bench:memory`: RSS of `meshward serve` as the number of distinct caller identities it has
// seen grows (issue #9: server RSS with 100k and 1M tracked identities). Each stream is one request
// from a new identity (its own JWT subject, API key and client address; 200 workloads) reading its
// own object, so every identity-keyed map of every detector and the inventory sees new keys; the
// state caps (extproc/src/engine/policy-settings.ts) are what should hold RSS flat.
// Options: --identities 100000,1000000 (checkpoints), --concurrency N.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort } from '../extproc/src/local/ports.ts';
import { PROJECT_ROOT } from '../extproc/src/local/envoy-binary.ts';
import type { ProcessingRequest } from '../extproc/src/wire/messages.ts';
import { startExtProcProcess } from './lib/extproc-process.ts';
import { cpuSeconds, rssBytes } from './lib/procstat.ts';
import { extProcClient, runStreams } from './lib/extproc-client.ts';

const { values: args } = parseArgs({ options: { identities: { type: 'string', default: '100000,1000000' }, concurrency: { type: 'string', default: '64' } } });
const checkpoints = args.identities!.split(',').map(Number).sort((a, b) => a - b);
const CLIENT_CPU = os.availableParallelism() > 1 ? '1' : '0';

const b64url = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const h = (k: string, v: string) => ({ key: k, raw_value: Buffer.from(v) });

/** Request i comes from identity i: never seen before. */
function request(i: number): ProcessingRequest[] {
  const workload = `spiffe://cluster.local/ns/ns${i % 20}/sa/client${i % 200}`;
  const token = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: `user-${i}`, iss: 'https://idp.example', exp: 4_102_444_800 })}.c2ln`;
  const src = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:40000`;
  return [{
    request: 'request_headers',
    request_headers: { headers: { headers: [h(':method', 'GET'), h(':path', `/api/v1/users/${i}/orders/${i * 7}`), h(':authority', `orders${i % 12}.shop.svc.cluster.local`), h('authorization', `Bearer ${token}`), h('x-api-key', `key-${i}`), h('user-agent', 'bench')] }, end_of_stream: true },
    attributes: { 'envoy.filters.http.ext_proc': { fields: {
      "filter_state['wasm.meshward']": { stringValue: `mw1\npeer=${workload}\nmtls=1\nsrc=${src}\nmethod=GET\npath=/api/v1/users/${i}/orders/${i * 7}\n` },
      'connection.uri_san_peer_certificate': { stringValue: workload },
    } } },
  }, { request: 'response_headers', response_headers: { headers: { headers: [h(':status', '200'), h('content-type', 'application/json')] } } }];
}

async function main(): Promise<void> {
  execFileSync('taskset', ['-p', '-c', CLIENT_CPU, String(process.pid)], { stdio: 'ignore' });
  const port = await freePort();
  const child = await startExtProcProcess(port, '0');
  const client = extProcClient(port);
  const mb = (b: number): number => Math.round(b / 1048576 * 10) / 10;
  await runStreams(client, { messages: (i) => request(1e9 + i), concurrency: Number(args.concurrency), streams: 5000 }); // warm-up: code paths compiled, pools started
  const rows: { identities: number; rssMb: number; seconds: number; serverCpuUsPerStream: number }[] = [{ identities: 0, rssMb: mb(rssBytes(child.pid!)), seconds: 0, serverCpuUsPerStream: 0 }];
  console.log(JSON.stringify(rows[0]));
  let sent = 0;
  const t0 = Date.now();
  for (const target of checkpoints) {
    const cpu0 = cpuSeconds(child.pid!);
    const from = sent;
    await runStreams(client, { messages: (i) => request(from + i), concurrency: Number(args.concurrency), streams: target - from });
    sent = target;
    rows.push({ identities: target, rssMb: mb(rssBytes(child.pid!)), seconds: Math.round((Date.now() - t0) / 1000), serverCpuUsPerStream: Math.round((cpuSeconds(child.pid!) - cpu0) / (target - from) * 1e6) });
    console.log(JSON.stringify(rows.at(-1)));
  }
  client.close();
  child.kill('SIGKILL');
  const result = { date: new Date().toISOString(), node: process.version, machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model }, rows };
  await mkdir(path.join(PROJECT_ROOT, 'bench', 'results'), { recursive: true });
  const file = path.join(PROJECT_ROOT, 'bench', 'results', `server-memory-${result.date.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify(result, null, 2));
  console.log(`results: ${path.relative(process.cwd(), file)}`);
}

await main();
