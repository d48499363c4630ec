// `meshward serve` with the admin API and inventory, as a user runs it: health without a token,
// findings/policy/inventory with it, grpc.health.v1 on the ext_proc port, and bad options (exit 2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath } from 'grpc-health-check';
import { freePort } from '../../extproc/src/local/ports.ts';

const CLI = path.resolve(import.meta.dirname, '../../extproc/src/cli.ts');
const SPEC = path.resolve(import.meta.dirname, '../../extproc/src/demo/specs/orders.openapi.yaml');
const TOKEN = 'serve-admin-token-0123456789abcdef';
const FILTER_TOKEN = 'serve-filter-token-0123456789abcdef';

function healthCheck(port: number): Promise<string> {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: true, enums: String })) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  const client = new pkg.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.Check!({ service: '' }, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: { status: string }) => {
      client.close();
      if (err) reject(err); else resolve(res.status);
    });
  });
}

test('serve --admin-port: health, token-protected findings/policy/inventory, grpc.health.v1, Prometheus, clean SIGTERM', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-serve-admin-'));
  const tokenFile = path.join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`);
  const filterTokenFile = path.join(dir, 'filter-token');
  writeFileSync(filterTokenFile, `${FILTER_TOKEN}\n`);
  const [port, adminPort, promPort] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(process.execPath, [CLI, 'serve', '--port', String(port), '--admin-port', String(adminPort), '--admin-token-file', tokenFile, '--filter-token-file', filterTokenFile,
    '--spec', `orders.shop.svc.cluster.local=${SPEC}`, '--inventory-db', path.join(dir, 'inventory.db'), '--prometheus-port', String(promPort)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    const admin = (p: string, token?: string): Promise<Response> => fetch(`http://127.0.0.1:${adminPort}${p}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    let up = false;
    for (let i = 0; i < 200 && !up; i++) {
      up = await admin('/healthz').then((r) => r.ok, () => false);
      if (!up) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(up, `admin server up: ${out}`);
    assert.equal((await admin('/readyz')).status, 200);
    assert.equal((await admin('/findings')).status, 401);
    // The sidecars' token: the filter tables only.
    assert.equal((await admin('/v1/filter-config', FILTER_TOKEN)).status, 200);
    assert.equal((await admin('/findings', FILTER_TOKEN)).status, 403);
    const findings = await (await admin('/findings', TOKEN)).json() as { totals: { total: number } };
    assert.equal(findings.totals.total, 0);
    const policy = await (await admin('/policy', TOKEN)).json() as { mode: string; detectors: string[] };
    assert.equal(policy.mode, 'monitor');
    assert.ok(policy.detectors.length > 0);
    const inventory = await (await admin('/inventory/specs', TOKEN)).json() as { specs: { service: string; inForce?: string }[] };
    assert.ok(inventory.specs.some((s) => s.service === 'orders.shop.svc.cluster.local' && s.inForce), 'the --spec is in force');
    assert.equal(await healthCheck(port), 'SERVING');
    const metrics = await (await fetch(`http://127.0.0.1:${promPort}/metrics`)).text();
    assert.match(metrics, /meshward_ext_proc_stream_errors\S* 0/, 'stream error counter on the Prometheus endpoint');
    assert.match(metrics, /meshward_ext_proc_bodies_over_budget\S* 0/, 'body budget refusals on the Prometheus endpoint');
    assert.match(metrics, /meshward_ext_proc_body_bytes_held\S* 0/, 'body bytes held on the Prometheus endpoint');
    child.kill('SIGTERM');
    assert.equal(await exited, 0, out);
    assert.doesNotMatch(out, new RegExp(TOKEN), 'the token is never logged');
  } finally {
    child.kill('SIGKILL');
  }
});

test('bad serve options exit 2 and say what is expected', () => {
  const spec = spawnSync(process.execPath, [CLI, 'serve', '--spec', 'no-equals-sign'], { encoding: 'utf8' });
  assert.equal(spec.status, 2);
  assert.match(spec.stderr, /--spec takes SERVICE=FILE/);
  const otlp = spawnSync(process.execPath, [CLI, 'serve', '--otlp-endpoint', 'not a url'], { encoding: 'utf8' });
  assert.equal(otlp.status, 2);
  assert.match(otlp.stderr, /--otlp-endpoint must be a URL/);
  const admin = spawnSync(process.execPath, [CLI, 'serve', '--admin-port', '1'], { encoding: 'utf8', env: { ...process.env, MESHWARD_ADMIN_TOKEN_FILE: '' } });
  assert.equal(admin.status, 2);
  assert.match(admin.stderr, /--admin-port needs --admin-token-file/);
});
