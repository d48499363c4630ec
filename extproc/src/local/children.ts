// Every child process a local stack starts is killed when this process exits, however it exits,
// so a failed test or a Ctrl-C never leaves an Envoy behind.
import type { ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();
let hooked = false;

function killAll(): void {
  for (const c of live) {
    try { c.kill('SIGKILL'); } catch { /* already gone */ }
  }
  live.clear();
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}

export function trackChild(child: ChildProcess): () => void {
  hook();
  live.add(child);
  child.once('exit', () => live.delete(child));
  return () => { live.delete(child); };
}
