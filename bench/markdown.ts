// Prints a data-plane benchmark result (bench/results/dataplane-*.json) as the README's markdown table.
import { readFileSync } from 'node:fs';

interface Row { variant: string; description: string; rate: number; p50_us: number; p90_us: number; p99_us: number; p999_us: number; added_p50_us: number; added_p90_us: number; added_p99_us: number; envoy_cpu_us_per_req: number; server_cpu_us_per_req: number; saturation_rps: number; saturation_ratio: number }
interface Result { date: string; machine: { cpus: number; model?: string }; envoy: string; node: string; loadGenerator: string; settings: { seconds: number; repeats: number }; rows: Row[]; errors: string[]; memory: Record<string, unknown> }

const file = process.argv[2];
if (!file) { console.error('usage: node bench/markdown.ts bench/results/dataplane-<date>.json'); process.exit(2); }
const r = JSON.parse(readFileSync(file, 'utf8')) as Result;
const n = (x: number): string => (Math.abs(x) >= 1000 ? (x / 1000).toFixed(2) + ' ms' : x.toFixed(0) + ' µs');
console.log(`Measured ${r.date.slice(0, 10)} on ${r.machine.cpus} vCPUs (${r.machine.model ?? 'unknown CPU'}), Envoy ${r.envoy.split('/')[1] ?? r.envoy}, Node ${r.node}, ${r.loadGenerator}; ${r.settings.seconds} s per point, median of ${r.settings.repeats} alternated runs.\n`);
console.log('| variant | rate | p50 | p90 | p99 | p99.9 | added p50 | added p90 | added p99 | Envoy CPU/req | server CPU/req | max rps (vs bare) |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const x of r.rows) {
  console.log(`| ${x.description} | ${x.rate} | ${n(x.p50_us)} | ${n(x.p90_us)} | ${n(x.p99_us)} | ${n(x.p999_us)} | ${x.variant === 'bare' ? '-' : n(x.added_p50_us)} | ${x.variant === 'bare' ? '-' : n(x.added_p90_us)} | ${x.variant === 'bare' ? '-' : n(x.added_p99_us)} | ${n(x.envoy_cpu_us_per_req)} | ${x.server_cpu_us_per_req ? n(x.server_cpu_us_per_req) : '-'} | ${x.saturation_rps.toFixed(0)} (${(x.saturation_ratio * 100).toFixed(0)} %) |`);
}
if (r.errors.length) console.log(`\nNon-200 answers and errors during the run: ${r.errors.join('; ')}`);
if (Object.keys(r.memory).length) console.log(`\nMemory: ${JSON.stringify(r.memory)}`);
