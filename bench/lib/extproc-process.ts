// Runs `meshward serve` as its own process (pinned to a CPU), so benchmarks can read its CPU time.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { openSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../extproc/src/local/envoy-binary.ts';
import { trackChild } from '../../extproc/src/local/children.ts';

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

export async function startExtProcProcess(port: number, cpus: string, extraArgs: string[] = [], logFile?: string): Promise<ChildProcess> {
  const out = logFile ? openSync(logFile, 'a') : 'ignore';
  const child = spawn('taskset', ['-c', cpus, process.execPath, ...(process.env.MESHWARD_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), path.join(PROJECT_ROOT, 'extproc/src/cli.ts'), 'serve', '--port', String(port), ...extraArgs], {
    stdio: ['ignore', out, 'inherit'], env: { ...process.env, MESHWARD_LOG_LEVEL: 'warn' },
  });
  trackChild(child);
  await waitForPort(child, port);
  return child;
}

/** Waits until `child` listens on `port` (30 s at most; killed and thrown otherwise). */
export async function waitForPort(child: ChildProcess, port: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`server process exited with ${child.exitCode}`);
    if (await portOpen(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error('server process did not start listening within 30 s');
}
