// Drives oha (crates.io, installed by bench/setup.sh): an open-loop, constant-rate HTTP load
// generator whose --latency-correction measures each request from its planned send time, so a
// stall is charged to every request it delayed (no coordinated omission).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../extproc/src/local/envoy-binary.ts';

const run = promisify(execFile);

export function ohaBinary(): string {
  const local = path.join(PROJECT_ROOT, '.bench-tools', 'bin', 'oha');
  if (process.env.OHA_BIN) return process.env.OHA_BIN;
  if (existsSync(local)) return local;
  throw new Error('oha not found: run `bash bench/setup.sh` (cargo install into .bench-tools/) or set OHA_BIN');
}

export interface LoadResult {
  requests: number;
  successRate: number;
  rps: number;
  /** Latency percentiles in microseconds. */
  p50: number; p90: number; p99: number; p999: number;
  statusCodes: Record<string, number>;
  errors: Record<string, number>;
}

export interface LoadOptions {
  url: string;
  seconds: number;
  /** Requests per second; undefined = as fast as possible (saturation). */
  rate?: number;
  connections: number;
  method?: string;
  bodyFile?: string;
  headers?: string[];
  cpus?: string;
  /** mTLS as a mesh client: the caller's certificate, the CA, and where the URL's host really is. */
  tls?: { certFile: string; keyFile: string; caFile: string; connectTo: string };
}

interface OhaJson {
  summary: { successRate: number; requestsPerSec: number; total: number };
  latencyPercentiles: Record<string, number | null>;
  statusCodeDistribution: Record<string, number>;
  errorDistribution: Record<string, number>;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const args = ['-z', `${o.seconds}s`, '-c', String(o.connections), '--no-tui', '--output-format', 'json', '--worker-threads', '1', '-w'];
  if (o.rate !== undefined) args.push('-q', String(o.rate), '--latency-correction');
  if (o.method) args.push('-m', o.method);
  if (o.bodyFile) args.push('-D', o.bodyFile);
  for (const h of o.headers ?? []) args.push('-H', h);
  if (o.tls) args.push('--cert', o.tls.certFile, '--key', o.tls.keyFile, '--cacert', o.tls.caFile, '--connect-to', o.tls.connectTo);
  args.push(o.url);
  const cmd = o.cpus !== undefined ? 'taskset' : ohaBinary();
  const full = o.cpus !== undefined ? ['-c', o.cpus, ohaBinary(), ...args] : args;
  const { stdout } = await run(cmd, full, { maxBuffer: 64 * 1024 * 1024 });
  const j = JSON.parse(stdout) as OhaJson;
  const us = (k: string): number => (j.latencyPercentiles[k] ?? NaN) * 1e6;
  const requests = Object.values(j.statusCodeDistribution).reduce((a, b) => a + b, 0);
  return {
    requests,
    successRate: j.summary.successRate,
    rps: j.summary.requestsPerSec,
    p50: us('p50'), p90: us('p90'), p99: us('p99'), p999: us('p99.9'),
    statusCodes: j.statusCodeDistribution,
    errors: j.errorDistribution,
  };
}

export async function ohaVersion(): Promise<string> {
  const { stdout } = await run(ohaBinary(), ['--version']);
  return stdout.trim();
}
