// Issue #10, item 6: `meshward serve` drains on SIGTERM behind real Envoy. With an ext_proc stream in
// flight (a client still uploading its body): readiness goes false (admin /readyz 503, grpc.health.v1
// Watch reports NOT_SERVING), the in-flight request completes through the draining server, the
// inventory is flushed to SQLite, and the process exits 0. A stream that outlives --drain-seconds
// is cancelled at the deadline and the state is still flushed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import { freePort } from '../../extproc/src/local/ports.ts';
import { startServe, watchHealth, type ServeChild } from '../support/serve-child.ts';

const HOST = 'orders.shop';
const CLIENT = 'web/frontend';
const TOKEN = 'shutdown-admin-token-0123456789abcdef';
const CLI = path.resolve(import.meta.dirname, '../../extproc/src/cli.ts');

let mesh: LocalMesh;
let dir: string;
let serve: ServeChild | undefined;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-shutdown-'));
  writeFileSync(path.join(dir, 'token'), TOKEN);
  mesh = await startLocalMesh({ callers: [CLIENT], server: 'shop/orders', pluginConfig: { role: 'inbound', sampling: { percent: 0, seed: 's' } } });
  await mesh.stopExtProc();
});
after(async () => {
  serve?.kill();
  await mesh?.stop();
});

/** A POST whose body is sent in two parts; the ext_proc stream stays open until the response. */
function slowUpload(urlPath: string): { finish(): void; result: Promise<{ status: number; body: string }> } {
  const url = new URL(mesh.urlFor(CLIENT));
  let req!: http.ClientRequest;
  const result = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req = http.request({ host: url.hostname, port: url.port, method: 'POST', path: urlPath, agent: false, headers: { host: HOST, 'content-type': 'application/json', 'content-length': '15' } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
  });
  req.write('{"part":"one",');
  return { finish: () => req.end('}'), result };
}

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting for ${what}`);
}

function inventoryOperations(db: string): string[] {
  const r = spawnSync(process.execPath, [CLI, 'inventory', '--db', db, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { services: { operations: { service: string; method: string; path: string }[] }[] };
  return report.services.flatMap((s) => s.operations.map((o) => `${o.method} ${o.service} ${o.path}`));
}

test('SIGTERM with a stream in flight: not ready, the request completes, inventory flushed, exit 0', async () => {
  const db = path.join(dir, 'drain.db');
  const adminPort = await freePort();
  serve = await startServe(['--port', String(mesh.extProcPort), '--admin-token-file', path.join(dir, 'token'), '--inventory-db', db, '--drain-seconds', '20'], adminPort);
  assert.equal((await fetch(mesh.urlFor(CLIENT) + '/orders/1', { headers: { host: HOST } })).status, 200);
  const statuses: string[] = [];
  const health = watchHealth(mesh.extProcPort, statuses);
  await until('health SERVING', () => statuses.includes('SERVING'));

  const upload = slowUpload('/uploads/slow');
  // The request headers went through ext_proc; the stream stays open until the response.
  await until('the in-flight request in the inventory', async () => (await (await serve!.admin('/inventory', TOKEN)).text()).includes('/uploads/slow'));
  serve.child.kill('SIGTERM');
  await until('/readyz 503', async () => (await serve!.admin('/readyz')).status === 503);
  await until('grpc.health NOT_SERVING', () => statuses.includes('NOT_SERVING'));
  health.cancel();
  assert.equal(serve.child.exitCode, null, 'still draining while the stream is in flight');

  upload.finish();
  const res = await upload.result;
  assert.equal(res.status, 200, `the in-flight request completed: ${res.body}\n${serve.output()}`);
  assert.equal(JSON.parse(res.body).echo, '{"part":"one",}');
  assert.equal(await serve.exited, 0, serve.output());
  assert.match(serve.output(), /"drained":true/);
  const ops = inventoryOperations(db);
  assert.ok(ops.some((o) => o.includes('/uploads/slow')), `the in-flight request is in the flushed inventory: ${ops.join(', ')}`);
  assert.ok(ops.some((o) => o.includes('/orders/')));
});

test('a stream that outlives --drain-seconds is cancelled at the deadline; state is still flushed, exit 0', async () => {
  const db = path.join(dir, 'deadline.db');
  serve = await startServe(['--port', String(mesh.extProcPort), '--admin-token-file', path.join(dir, 'token'), '--inventory-db', db, '--drain-seconds', '1'], await freePort());
  assert.equal((await fetch(mesh.urlFor(CLIENT) + '/orders/2', { headers: { host: HOST } })).status, 200);
  const stuck = slowUpload('/uploads/stuck');
  await new Promise((r) => setTimeout(r, 300));
  const signalled = Date.now();
  serve.child.kill('SIGTERM');
  assert.equal(await serve.exited, 0, serve.output());
  const took = Date.now() - signalled;
  assert.ok(took >= 900 && took < 6000, `exited at the deadline (1 s), after ${took} ms`);
  console.log(`# drain deadline 1 s: exit 0 after ${took} ms`);
  assert.match(serve.output(), /drain deadline passed/);
  assert.match(serve.output(), /"drained":false/);
  assert.ok(inventoryOperations(db).some((o) => o.includes('/orders/')), 'the inventory was flushed');
  stuck.finish();
  const res = await stuck.result;
  assert.notEqual(res.status, 200, 'fail-closed listener: the cancelled stream does not pass silently');
});
