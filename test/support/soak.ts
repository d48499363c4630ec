// The soak run (issue #10, item 5): the full stack as a user runs it (client and server Envoy
// sidecars with the filter sampling 10% of bodies, `meshward serve` with admin API and SQLite
// inventory) under steady benign load, sampling RSS and open file descriptors of Envoy and the server
// from /proc. `npm run soak` runs it for 30 minutes; the suite runs a short one with wider tolerances.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalMesh } from '../../extproc/src/local/mesh.ts';
import { freePort } from '../../extproc/src/local/ports.ts';
import { startServe } from './serve-child.ts';
import { startLoad, unexpectedOutcomes } from './load.ts';

export interface SoakOptions { durationMs: number; ratePerSecond: number; sampleEveryMs: number; onSample?: (s: ProcessSample) => void }
export interface ProcessSample { t: number; rssMb: Record<string, number>; fds: Record<string, number> }
export interface SoakResult {
  sent: number;
  outcomes: Record<string, number>;
  unexpected: Record<string, number>;
  samples: ProcessSample[];
}

const TOKEN = 'soak-admin-token-0123456789abcdef';
const HOST = 'orders.shop';
const CLIENT = 'web/frontend';

/** VmRSS of a process in MB, from /proc. */
export function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return kb === undefined ? Number.NaN : Number(kb) / 1024;
}

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-soak-'));
  const mesh = await startLocalMesh({
    callers: [CLIENT], server: 'shop/orders',
    inbound: [{ name: 'closed', failureModeAllow: false }, { name: 'open', failureModeAllow: true }],
    pluginConfig: { role: 'inbound', sampling: { percent: 10, seed: 'soak' } },
  });
  let serve: Awaited<ReturnType<typeof startServe>> | undefined;
  try {
    await mesh.stopExtProc();
    writeFileSync(path.join(dir, 'token'), TOKEN);
    serve = await startServe(['--port', String(mesh.extProcPort), '--admin-token-file', path.join(dir, 'token'), '--inventory-db', path.join(dir, 'inventory.db')],
      await freePort(), { MESHWARD_LOG_LEVEL: 'warn' });
    const pids: Record<string, number> = { server: serve.child.pid!, 'envoy-server': mesh.serverSidecar.pid, 'envoy-client': mesh.clientSidecar.pid };
    const samples: ProcessSample[] = [];
    const start = Date.now();
    const sample = (): void => {
      const s: ProcessSample = { t: Date.now() - start, rssMb: {}, fds: {} };
      for (const [name, pid] of Object.entries(pids)) { s.rssMb[name] = rssMb(pid); s.fds[name] = openFds(pid); }
      samples.push(s);
      o.onSample?.(s);
    };
    // A fixed, pre-opened pool of 16 connections per listener: fds then count leaks, not pool growth
    // when latency spikes (a 30-minute run with a 64-connection pool grew fds from 73 to 160).
    const load = startLoad(['closed', 'open'].map((l) => ({ name: l, baseUrl: mesh.urlFor(CLIENT, l), host: HOST })), o.ratePerSecond, { maxSockets: 16, prewarm: true });
    sample();
    const sampler = setInterval(sample, o.sampleEveryMs);
    await new Promise((r) => setTimeout(r, o.durationMs));
    clearInterval(sampler);
    sample();
    const counts = await load.stop();
    return {
      sent: counts.sent, outcomes: Object.fromEntries(counts.outcomes), samples,
      unexpected: unexpectedOutcomes(counts, (_target, status) => status === 200),
    };
  } finally {
    serve?.kill();
    await mesh.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor(s.length / 2)]!;
}

export interface Growth { process: string; baseRssMb: number; endRssMb: number; baseFds: number; endFds: number; peakFds: number }

/** RSS and fds per process: median of the first third after warm-up vs. median of the last third.
 *  A leak is growth that stays; a connection pool that widens for a moment when latency spikes and
 *  closes the extra connections on idle is not one, so fds compare medians too (the peak is kept). */
export function growth(samples: readonly ProcessSample[], warmupFraction = 0.2): Growth[] {
  const steady = samples.slice(Math.floor(samples.length * warmupFraction));
  const third = Math.max(1, Math.floor(steady.length / 3));
  const first = steady.slice(0, third);
  const last = steady.slice(-third);
  return Object.keys(samples[0]?.rssMb ?? {}).map((p) => ({
    process: p,
    baseRssMb: median(first.map((s) => s.rssMb[p]!)), endRssMb: median(last.map((s) => s.rssMb[p]!)),
    baseFds: median(first.map((s) => s.fds[p]!)), endFds: median(last.map((s) => s.fds[p]!)),
    peakFds: Math.max(...steady.map((s) => s.fds[p]!)),
  }));
}

/** What a soak must show, as failures (empty = passed): no unexpected outcome, flat RSS, no fd growth. */
export function soakFailures(r: SoakResult, tolerance: { rssFraction: number; rssMb: number; fds: number }): string[] {
  const failures: string[] = [];
  if (Object.keys(r.unexpected).length > 0) failures.push(`unexpected outcomes: ${JSON.stringify(r.unexpected)}`);
  for (const g of growth(r.samples)) {
    const allowed = Math.max(g.baseRssMb * tolerance.rssFraction, tolerance.rssMb);
    if (g.endRssMb - g.baseRssMb > allowed) failures.push(`${g.process} RSS grew ${g.baseRssMb.toFixed(1)} -> ${g.endRssMb.toFixed(1)} MB (allowed +${allowed.toFixed(1)})`);
    if (g.endFds - g.baseFds > tolerance.fds) failures.push(`${g.process} open fds grew ${g.baseFds} -> ${g.endFds} (allowed +${tolerance.fds})`);
  }
  return failures;
}
