// `meshward serve --policy-source file --admin-port`, as a user runs it: the policy's sampling and
// identity denies and its specs' templates are in the filter tables the sidecars fetch, a policy edit
// republishes them, and a spec that fails to load is reported in GET /policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../extproc/src/local/ports.ts';
import type { FilterTables } from '../../extproc/src/filter-config/schema.ts';

const CLI = path.resolve(import.meta.dirname, '../../extproc/src/cli.ts');
const SPEC = path.resolve(import.meta.dirname, '../../extproc/src/demo/specs/orders.openapi.yaml');
const TOKEN = 'serve-wiring-token-0123456789abcdef';
const BANNED = 'spiffe://cluster.local/ns/payments/sa/worker';

const policyText = (bodyRate: number): string => `apiVersion: security.meshward.io/v1alpha1
kind: ApiSecurityPolicy
metadata: { name: mesh-default }
spec:
  mode: enforce
  sampling: { bodyRate: ${bodyRate} }
  callGraph: { deny: [{ from: ${BANNED} }] }
  apiSpecs:
  - { name: orders, host: orders.shop, file: ${SPEC} }
  - { name: broken, host: broken.shop, file: broken.yaml }
`;

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, log: () => string): Promise<T> {
  let last: T | undefined;
  for (let i = 0; i < 200; i++) {
    last = await read().catch(() => undefined as T);
    if (last !== undefined && ok(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}: ${JSON.stringify(last)}\n${log()}`);
}

test('serve: policy sampling, identity denies and spec templates reach the filter tables; a bad spec is reported', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-serve-wiring-'));
  const tokenFile = path.join(dir, 'token');
  const policyFile = path.join(dir, 'policy.yaml');
  writeFileSync(tokenFile, TOKEN);
  writeFileSync(path.join(dir, 'broken.yaml'), 'openapi: 3.0.3\npaths: 7\n');
  writeFileSync(policyFile, policyText(0.25));
  const [port, adminPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [CLI, 'serve', '--port', String(port), '--admin-port', String(adminPort), '--admin-token-file', tokenFile,
    '--policy-source', 'file', '--policy-file', policyFile, '--policy-namespace', 'meshward'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const get = async <T>(p: string): Promise<T> => (await fetch(`http://127.0.0.1:${adminPort}${p}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as Promise<T>;
  try {
    const tables = await until('the policy in the filter tables', () => get<FilterTables>('/v1/filter-config'),
      (t) => t.sampling?.percent === 25 && (t.templates ?? []).some((e) => e.template === '/v2/orders/{orderId}'), () => out);
    assert.deepEqual(tables.deny?.identities, [BANNED]);
    assert.ok(tables.templates!.some((e) => e.method === 'GET' && e.template === '/v1/orders/{orderId}'), 'every spec path, per method');

    const policy = await until('the spec status', () => get<{ policy: { apiSpecs?: { reference: string; loaded: boolean; error?: string }[] } }>('/policy'),
      (p) => (p.policy.apiSpecs ?? []).length === 2, () => out);
    const byName = Object.fromEntries(policy.policy.apiSpecs!.map((s) => [s.reference, s]));
    assert.equal(byName['meshward/mesh-default: orders']?.loaded, true);
    assert.equal(byName['meshward/mesh-default: broken']?.loaded, false);
    assert.match(byName['meshward/mesh-default: broken']!.error!, /broken\.yaml/);
    assert.match(out, /policy spec not loaded; the service keeps its last good spec/);

    writeFileSync(policyFile, policyText(0.5));
    const next = await until('the edited policy in the filter tables', () => get<FilterTables>('/v1/filter-config'), (t) => t.sampling?.percent === 50, () => out);
    assert.notEqual(next.version, tables.version);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, out);
    assert.doesNotMatch(out, new RegExp(TOKEN), 'the token is never logged');
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
