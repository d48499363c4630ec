// Runs one Envoy process from a bootstrap object; waits until its admin endpoint reports LIVE.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { envoyBinary } from './envoy-binary.ts';
import { trackChild } from './children.ts';

export interface EnvoyProcess {
  readonly name: string;
  readonly adminPort: number;
  readonly logFile: string;
  readonly pid: number;
  /** Envoy's counters and gauges whose names match `filter` (regex), from /stats?format=json. */
  stats(filter: string): Promise<Map<string, number>>;
  logTail(lines?: number): Promise<string>;
  stop(): Promise<void>;
}

async function waitLive(adminPort: number, child: ChildProcess, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      const log = await readFile(logFile, 'utf8').catch(() => '');
      throw new Error(`envoy exited with code ${child.exitCode} during start-up:\n${log.split('\n').slice(-30).join('\n')}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${adminPort}/ready`);
      if (res.status === 200) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`envoy admin on port ${adminPort} not LIVE after ${timeoutMs} ms (log: ${logFile})`);
}

export interface EnvoyStartOptions {
  extraArgs?: string[];
  /** Pin the process to these CPUs (taskset list, e.g. "0"), for benchmarks. */
  cpus?: string;
  concurrency?: number;
}

export async function startEnvoy(name: string, bootstrap: Record<string, unknown>, dir: string, adminPort: number,
  options: EnvoyStartOptions = {}): Promise<EnvoyProcess> {
  const configFile = `${dir}/${name}.json`;
  const logFile = `${dir}/${name}.log`;
  await writeFile(configFile, JSON.stringify(bootstrap, null, 2));
  const out = createWriteStream(logFile);
  const args = [
    '-c', configFile, '--disable-hot-restart', '--concurrency', String(options.concurrency ?? 1), '--log-level', 'warning',
    '--component-log-level', 'wasm:info', ...(options.extraArgs ?? []),
  ];
  const child = options.cpus !== undefined
    ? spawn('taskset', ['-c', options.cpus, envoyBinary(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(envoyBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  const untrack = trackChild(child);
  try {
    await waitLive(adminPort, child, logFile, 20_000);
  } catch (err) {
    child.kill('SIGKILL');
    untrack();
    throw err;
  }
  return {
    name,
    adminPort,
    logFile,
    pid: child.pid!,
    async stats(filter: string) {
      const res = await fetch(`http://127.0.0.1:${adminPort}/stats?format=json&filter=${encodeURIComponent(filter)}`);
      const body = await res.json() as { stats: { name: string; value?: number }[] };
      const m = new Map<string, number>();
      for (const s of body.stats) if (typeof s.value === 'number') m.set(s.name, s.value);
      return m;
    },
    async logTail(lines = 40) {
      const log = await readFile(logFile, 'utf8').catch(() => '');
      return log.split('\n').slice(-lines).join('\n');
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      untrack();
    },
  };
}
