// `npm run bench`: data-plane overhead of meshward against bare Envoy, measured in one run.
// Topology (all loopback): oha, presenting a SPIFFE client certificate over mTLS as a mesh client
// would -> server-side Envoy (the variant under test) -> sample app; the ext_proc server is a
// separate process. The server-side Envoy (--concurrency 1) is pinned to CPU 0; oha, the app and
// the ext_proc server to CPU 1 (no client-side Envoy: on two cores it would only add contention).
// Variants are alternated (bare first, then each variant, repeated) so machine drift cancels.
// `noop-wasm` (an empty proxy-wasm module with the filter's exports, bench/fixtures/noop-filter) is
// the floor under the filter: what Envoy's V8 Wasm runtime costs before any filter logic runs.
// `extproc-enforce` is `extproc` against a second server whose mesh-default policy says enforce.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { generatePki } from '../extproc/src/local/certs.ts';
import { meshwardExtProcFilter, meshwardWasmFilter, serverSidecarBootstrap } from '../extproc/src/local/envoy-config.ts';
import { startEnvoy, type EnvoyProcess } from '../extproc/src/local/envoy-process.ts';
import { envoyBinary, envoyVersion, PROJECT_ROOT } from '../extproc/src/local/envoy-binary.ts';
import { DEFAULT_WASM_FILE } from '../extproc/src/local/mesh.ts';
import { freePort } from '../extproc/src/local/ports.ts';
import { trackChild } from '../extproc/src/local/children.ts';
import { cpuSeconds, rssBytes } from './lib/procstat.ts';
import { startExtProcProcess } from './lib/extproc-process.ts';
import { ohaVersion, runLoad, type LoadResult } from './lib/oha.ts';

const { values: args } = parseArgs({
  options: {
    rates: { type: 'string', default: '500,1000,2000' },
    seconds: { type: 'string', default: '10' },
    repeats: { type: 'string', default: '2' },
    variants: { type: 'string', default: 'bare,noop-wasm,filter,extproc,extproc-async,extproc-enforce,extproc-body' },
    'memory-requests': { type: 'string', default: '200000' },
    quick: { type: 'boolean', default: false },
    // Another build of the filter (e.g. the previous commit's) measured as variant filter-baseline.
    'baseline-wasm': { type: 'string' },
  },
});
const quick = args.quick!;
const rates = (quick ? '1000' : args.rates!).split(',').map(Number);
const seconds = quick ? 3 : Number(args.seconds);
const repeats = quick ? 1 : Number(args.repeats);
const variantNames = args.variants!.split(',');
if (variantNames.includes('filter-baseline') && !args['baseline-wasm']) throw new Error('variant filter-baseline needs --baseline-wasm FILE');
const memoryRequests = quick ? 20000 : Number(args['memory-requests']);
const ENVOY_CPU = '0';
const OTHER_CPU = os.availableParallelism() > 1 ? '1' : '0';

type Variant = 'bare' | 'noop-wasm' | 'filter' | 'filter-baseline' | 'extproc' | 'extproc-async' | 'extproc-enforce' | 'extproc-body';
const DESCRIPTIONS: Record<Variant, string> = {
  bare: 'bare Envoy (mTLS inbound, router)',
  'noop-wasm': '+ empty Wasm module (the V8 floor)',
  filter: '+ meshward Wasm filter',
  'filter-baseline': '+ meshward Wasm filter, --baseline-wasm build',
  extproc: '+ filter + ext_proc (headers only, monitor)',
  'extproc-async': '+ filter + ext_proc in observability mode (headers only, monitor, Envoy does not wait)',
  'extproc-enforce': '+ filter + ext_proc (headers only, enforce)',
  'extproc-body': '+ filter + ext_proc + 1 KB JSON body buffered',
};
/** The filter's per-VM gauges of their Wasm linear memory (Envoy stats filter regex). */
const WASM_MEMORY_STAT = 'meshward_filter_vm[0-9]+_wasm_memory_bytes';
const usesExtProc = (v: Variant): boolean => v.startsWith('extproc');

/** The mesh-default policy of the enforce variant's server. */
const ENFORCE_POLICY = `apiVersion: security.meshward.io/v1alpha1
kind: ApiSecurityPolicy
metadata: { name: mesh-default, namespace: meshward }
spec: { mode: enforce, failureMode: closed }
`;

interface RateSample { variant: Variant; rate: number; result: LoadResult; envoyCpuPerReq: number; serverCpuPerReq: number }
interface SatSample { variant: Variant; result: LoadResult }

async function startApp(port: number): Promise<ChildProcess> {
  // The sample app in its own process, so its CPU is not the benchmark driver's.
  const code = `const http=require('node:http');http.createServer((q,s)=>{const c=[];q.on('data',d=>c.push(d));q.on('end',()=>{s.writeHead(200,{'content-type':'application/json'});s.end('{"ok":true}')})}).listen(${port},'127.0.0.1')`;
  const child = spawn('taskset', ['-c', OTHER_CPU, process.execPath, '-e', code], { stdio: 'ignore' });
  trackChild(child);
  await new Promise((r) => setTimeout(r, 300));
  return child;
}

function stats(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!; // median across repeats
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meshward-bench-'));
  const pki = await generatePki(path.join(dir, 'certs'), [{ namespace: 'bench', serviceAccount: 'server' }, { namespace: 'bench', serviceAccount: 'loadgen' }]);
  const server = pki.workloads.get('bench/server')!;
  const loadgen = pki.workloads.get('bench/loadgen')!;
  const appPort = await freePort();
  const app = await startApp(appPort);
  const extProcPort = await freePort();
  await mkdir(path.join(PROJECT_ROOT, 'bench', 'results'), { recursive: true });
  const serverLog = path.join(PROJECT_ROOT, 'bench', 'results', 'ext-proc-server.log');
  const extProc = await startExtProcProcess(extProcPort, OTHER_CPU, [], serverLog);
  let enforceExtProc: ChildProcess | undefined;
  const enforcePort = await freePort();
  if (variantNames.includes('extproc-enforce')) {
    const policyFile = path.join(dir, 'enforce.yaml');
    await writeFile(policyFile, ENFORCE_POLICY);
    enforceExtProc = await startExtProcProcess(enforcePort, OTHER_CPU, ['--policy-source', 'file', '--policy-file', policyFile, '--policy-namespace', 'meshward'], serverLog);
  }
  let noopWasm = '';
  if (variantNames.includes('noop-wasm')) {
    noopWasm = path.join(dir, 'noop.wasm');
    execFileSync(path.join(PROJECT_ROOT, 'node_modules', '.bin', 'asc'), [path.join(PROJECT_ROOT, 'bench/fixtures/noop-filter/index.ts'), '-o', noopWasm, '--runtime', 'incremental', '-O3', '--exportStart', '_initialize', '--use', 'abort=']);
  }
  const serverOf = (v: Variant): ChildProcess => (v === 'extproc-enforce' ? enforceExtProc! : extProc);
  const inboundPort = await freePort();
  // oha resolves the certificate's DNS name to the loopback listener.
  const tls = { certFile: loadgen.certFile, keyFile: loadgen.keyFile, caFile: pki.caFile, connectTo: `server.bench.svc:${inboundPort}:127.0.0.1:${inboundPort}` };
  const bodyFile = path.join(dir, 'body.json');
  await writeFile(bodyFile, JSON.stringify({ order: { items: Array.from({ length: 12 }, (_, i) => ({ sku: `SKU-${1000 + i}`, qty: i + 1, price: 9.99 + i })), note: 'x'.repeat(200) } }).slice(0, 1024));

  const startServerEnvoy = async (variant: Variant): Promise<EnvoyProcess> => {
    const admin = await freePort();
    return startEnvoy(`server-${variant}`, serverSidecarBootstrap({
      adminPort: admin, inbound: [{ name: 'inbound', port: inboundPort, failureModeAllow: false }], appPort, extProcPort: variant === 'extproc-enforce' ? enforcePort : extProcPort,
      wasmFile: DEFAULT_WASM_FILE, certFile: server.certFile, keyFile: server.keyFile, caFile: pki.caFile, trustDomain: pki.trustDomain,
      httpFilters: () => {
        if (variant === 'bare') return [];
        if (variant === 'noop-wasm') return [meshwardWasmFilter({ wasmFile: noopWasm })];
        if (variant === 'filter-baseline') return [meshwardWasmFilter({ wasmFile: args['baseline-wasm']! })];
        const wasm = meshwardWasmFilter({ wasmFile: DEFAULT_WASM_FILE });
        if (variant === 'filter') return [wasm];
        return [wasm, meshwardExtProcFilter({ extProcCluster: 'meshward_ext_proc', failureModeAllow: false, requestBodyMode: variant === 'extproc-body' ? 'BUFFERED' : 'NONE', observabilityMode: variant === 'extproc-async' })];
      },
    }), dir, admin, { cpus: ENVOY_CPU });
  };

  const url = `https://server.bench.svc:${inboundPort}/orders/123`;
  const rateSamples: RateSample[] = [];
  const satSamples: SatSample[] = [];
  const memory: Record<string, unknown> = {};
  const errors: string[] = [];
  const variants = variantNames as Variant[];
  try {
    for (let rep = 0; rep < repeats; rep++) {
      for (const variant of variants) {
        const envoy = await startServerEnvoy(variant);
        const body = variant === 'extproc-body' ? { method: 'POST', bodyFile, headers: ['content-type: application/json'] } : {};
        await runLoad({ url, seconds: 2, rate: 500, connections: 16, cpus: OTHER_CPU, tls, ...body }); // warm-up
        for (const rate of rates) {
          const e0 = cpuSeconds(envoy.pid);
          const s0 = cpuSeconds(serverOf(variant).pid!);
          const result = await runLoad({ url, seconds, rate, connections: 32, cpus: OTHER_CPU, tls, ...body });
          const n = Math.max(1, result.requests);
          rateSamples.push({ variant, rate, result, envoyCpuPerReq: (cpuSeconds(envoy.pid) - e0) / n, serverCpuPerReq: (cpuSeconds(serverOf(variant).pid!) - s0) / n });
          const bad = Object.entries(result.statusCodes).filter(([c]) => c !== '200');
          if (bad.length || Object.keys(result.errors).length) errors.push(`${variant} @${rate}: statuses ${JSON.stringify(result.statusCodes)} errors ${JSON.stringify(result.errors)}`);
        }
        satSamples.push({ variant, result: await runLoad({ url, seconds, connections: 16, cpus: OTHER_CPU, tls, ...body }) });
        const timeouts = (await envoy.stats('ext_proc\\.message_timeouts')).get('http.inbound.ext_proc.message_timeouts') ?? 0;
        if (timeouts > 0) errors.push(`${variant}: ${timeouts} ext_proc message timeouts`);
        if (rep === 0 && variant === 'filter') {
          // Envoy's RSS and the filter's own Wasm linear memory (its gauge, summed over the VMs)
          // before and after memoryRequests requests at saturation.
          const wasmBytes = async (): Promise<number> => [...(await envoy.stats(WASM_MEMORY_STAT)).values()].reduce((a, b) => a + b, 0);
          const before = rssBytes(envoy.pid);
          const wasmBefore = await wasmBytes();
          let requests = 0;
          while (requests < memoryRequests) {
            const sent = await runLoad({ url, seconds: Math.min(60, Math.ceil((memoryRequests - requests) / 4000) + 1), connections: 16, cpus: OTHER_CPU, tls });
            if (sent.requests === 0) break;
            requests += sent.requests;
          }
          memory.filterEnvoyRss = { requests, beforeBytes: before, afterBytes: rssBytes(envoy.pid), wasmMemoryBeforeBytes: wasmBefore, wasmMemoryAfterBytes: await wasmBytes() };
        }
        await envoy.stop();
      }
    }
  } finally {
    extProc.kill('SIGKILL');
    enforceExtProc?.kill('SIGKILL');
    app.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }

  // Aggregate: median across repeats, differences/ratios against bare in the same run.
  const rows: Record<string, unknown>[] = [];
  const med = (v: Variant, rate: number, f: (s: RateSample) => number): number => stats(rateSamples.filter((s) => s.variant === v && s.rate === rate).map(f));
  const sat = (v: Variant): number => stats(satSamples.filter((s) => s.variant === v).map((s) => s.result.rps));
  const lines: string[] = [];
  const header = ['variant', 'rate', 'p50 us', 'p90 us', 'p99 us', 'p99.9 us', '+p50 us', '+p99 us', 'envoy CPU us/req', 'server CPU us/req', 'max rps', 'max rps vs bare'];
  const table: string[][] = [];
  for (const v of variants) {
    for (const rate of rates) {
      const p = (k: 'p50' | 'p90' | 'p99' | 'p999'): number => med(v, rate, (s) => s.result[k]);
      const row = {
        variant: v, description: DESCRIPTIONS[v], rate,
        p50_us: p('p50'), p90_us: p('p90'), p99_us: p('p99'), p999_us: p('p999'),
        added_p50_us: p('p50') - med('bare', rate, (s) => s.result.p50),
        added_p90_us: p('p90') - med('bare', rate, (s) => s.result.p90),
        added_p99_us: p('p99') - med('bare', rate, (s) => s.result.p99),
        envoy_cpu_us_per_req: med(v, rate, (s) => s.envoyCpuPerReq) * 1e6,
        server_cpu_us_per_req: usesExtProc(v) ? med(v, rate, (s) => s.serverCpuPerReq) * 1e6 : 0,
        saturation_rps: sat(v),
        saturation_ratio: sat(v) / sat('bare'),
      };
      rows.push(row);
      table.push([v, String(rate), ...[row.p50_us, row.p90_us, row.p99_us, row.p999_us, row.added_p50_us, row.added_p99_us, row.envoy_cpu_us_per_req, row.server_cpu_us_per_req, row.saturation_rps].map((x) => x.toFixed(0)), `${(row.saturation_ratio * 100).toFixed(1)} %`]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  lines.push(header.map((h, i) => h.padStart(widths[i]!)).join('  '));
  for (const r of table) lines.push(r.map((c, i) => c.padStart(widths[i]!)).join('  '));
  console.log(lines.join('\n'));
  if (errors.length) console.log('\nerrors:\n' + errors.join('\n'));
  const result = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memoryBytes: os.totalmem(), kernel: os.release() },
    envoy: await envoyVersion(envoyBinary()), node: process.version, loadGenerator: await ohaVersion(),
    settings: { rates, seconds, repeats, envoyCpu: ENVOY_CPU, otherCpu: OTHER_CPU, connections: 32 },
    rows, memory, errors,
  };
  await mkdir(path.join(PROJECT_ROOT, 'bench', 'results'), { recursive: true });
  const file = path.join(PROJECT_ROOT, 'bench', 'results', `dataplane-${result.date.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify(result, null, 2));
  console.log(`\nresults: ${path.relative(process.cwd(), file)}; memory: ${JSON.stringify(memory)}`);
}

await main();
