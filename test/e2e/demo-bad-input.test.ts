// What the demo does when something is wrong: no Envoy, its port taken, a sidecar crashing, Ctrl-C.
// Each case names what failed and how to fix it, exits with its code, and leaves no process behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { runDemo } from '../../extproc/src/cli/demo.ts';
import type { DemoMesh } from '../../extproc/src/local/demo-mesh.ts';

const CLI = path.resolve(import.meta.dirname, '../../extproc/src/cli.ts');
/** Running (a zombie waiting for a reaper that is not this test's business counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Every descendant process of `pid` (Linux /proc). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number): void => {
    let kids: number[] = [];
    try { kids = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { /* gone */ }
    for (const k of kids) { out.push(k); walk(k); }
  };
  walk(pid);
  return out;
}

test('missing Envoy: exit 3 with what to do, nothing started', () => {
  const r = spawnSync(process.execPath, [CLI, 'demo', '--out', '/tmp/meshward-demo-unused'], { encoding: 'utf8', env: { ...process.env, ENVOY_BIN: '/nonexistent/envoy' }, timeout: 30_000 });
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stderr, /cannot start: ENVOY_BIN=\/nonexistent\/envoy does not exist/);
});

test('ingress port in use: exit 3 naming the port and the fix', async () => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    const r = spawnSync(process.execPath, [CLI, 'demo', '--ingress-port', String(port)], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`port ${port} \\(the demo ingress gateway, --ingress-port\\) is already in use: stop the program using it`));
  } finally {
    blocker.close();
  }
});

test('a bad option value is a usage error (exit 2)', () => {
  const r = spawnSync(process.execPath, [CLI, 'demo', '--learn-seconds', 'soon'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--learn-seconds must be a number/);
});

test('a sidecar that crashes mid-demo: the demo fails naming it, and stops every other process', async () => {
  let mesh: DemoMesh | undefined;
  const run = runDemo({
    learnMs: 20_000, attackMs: 0, latencySamples: 5, progress: 'none', out: () => {},
    onStarted: (m) => {
      mesh = m;
      const victim = m.processes.find((p) => p.name === 'orders-sidecar')!;
      setTimeout(() => process.kill(victim.pid, 'SIGKILL'), 1000);
    },
  });
  await assert.rejects(run, /orders-sidecar \(envoy, pid \d+\) exited unexpectedly/);
  assert.ok(mesh);
  for (const p of mesh.processes) assert.equal(alive(p.pid), false, `${p.name} is not left running`);
});

test('Ctrl-C while the demo runs leaves no process behind; a second run starts cleanly', async () => {
  for (let attempt = 0; attempt < 2; attempt++) {
    const child = spawn(process.execPath, [CLI, 'demo', '--learn-seconds', '60', '--out', '/tmp/meshward-demo-unused'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    for (let i = 0; i < 300 && !/learning \(benign\)/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /learning \(benign\)/, 'the demo got going');
    const kids = descendants(child.pid!);
    assert.ok(kids.length >= 4, `Envoy children found (${kids.length})`);
    child.kill('SIGINT');
    assert.equal(await exited, 130);
    await new Promise((r) => setTimeout(r, 200));
    for (const k of kids) assert.equal(alive(k), false, `child ${k} killed on Ctrl-C`);
  }
});
