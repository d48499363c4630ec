// `meshward serve` as a user runs it: help, a bad configuration, and a clean SIGTERM shutdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../extproc/src/local/ports.ts';

const CLI = path.resolve(import.meta.dirname, '../../extproc/src/cli.ts');

test('--help lists serve and exits 0', () => {
  const r = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.match(r.stdout, /serve/);
});

test('an invalid configuration exits 2 naming the field', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-cli-'));
  const file = path.join(dir, 'bad.yaml');
  writeFileSync(file, 'denyRules: [ { identity: "not-spiffe" } ]\n');
  const r = spawnSync(process.execPath, [CLI, 'serve', '--config', file], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /\$\.denyRules\[0\]\.identity: must be a SPIFFE ID/);
});

test('an unknown option is a usage error (exit 2)', () => {
  const r = spawnSync(process.execPath, [CLI, 'serve', '--no-such-flag'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
});

test('serve listens, then drains and exits 0 on SIGTERM', async () => {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MESHWARD_LOG_LEVEL: 'info' } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const listening = async (): Promise<boolean> => new Promise((r) => { const s = net.connect(port, '127.0.0.1', () => { s.end(); r(true); }); s.on('error', () => r(false)); });
  for (let i = 0; i < 200 && !(await listening()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(await listening(), 'server accepts connections');
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.match(out, /ext_proc server listening/);
  assert.match(out, /shutting down/);
});
