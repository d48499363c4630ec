// Export and reports: the discovered API as a valid OpenAPI 3.1 document with inferred schemas,
// the diff against a spec, the admin HTTP API, and the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Inventory } from '../../extproc/src/inventory/inventory.ts';
import { replayIntoInventory } from '../../extproc/src/inventory/replay.ts';
import { exportOpenApi } from '../../extproc/src/inventory/export.ts';
import { diffAgainstSpec } from '../../extproc/src/inventory/diff.ts';
import { loadSpecFile } from '../../extproc/src/inventory/spec.ts';
import { SpecRegistry } from '../../extproc/src/inventory/spec-registry.ts';
import { InventoryStore } from '../../extproc/src/inventory/store.ts';
import { registerInventoryRoutes } from '../../extproc/src/inventory/admin-routes.ts';
import { AdminRouter, startAdminServer } from '../../extproc/src/admin/server.ts';
import { silentLogger } from '../../extproc/src/log.ts';
import { readCapture } from '../../extproc/src/replay/record.ts';

const CORPORA = new URL('../../../shared/corpora/', import.meta.url).pathname;
const VAMPI_SPEC = `${CORPORA}specs/vampi-openapi3.yml`;
const VAMPI_CAPTURE = `${CORPORA}dev/vampi.jsonl`;
const SERVICE = 'vampi.shop.svc.cluster.local';
const vampi = await readCapture(VAMPI_CAPTURE);
const dir = mkdtempSync(join(tmpdir(), 'meshward-export-'));

function replayed(): Inventory {
  const inventory = new Inventory();
  replayIntoInventory(inventory, vampi);
  return inventory;
}

test('export: a valid OpenAPI 3.1 document of the observed API with inferred schemas', async () => {
  const inventory = replayed();
  const doc = exportOpenApi(SERVICE, inventory.operations(SERVICE));
  await SwaggerParser.validate(structuredClone(doc) as never);
  const paths = doc.paths as Record<string, Record<string, any>>;
  const user = paths['/users/v1/{user}']!.get;
  assert.deepEqual(user.parameters.find((p: any) => p.in === 'path'), { name: 'user', in: 'path', required: true, schema: { type: 'string' } });
  const register = paths['/users/v1/register']!.post;
  const props = register.requestBody.content['application/json'].schema.properties;
  assert.equal(props.email.type, 'string');
  assert.equal(props.email.format, 'email', 'formats are inferred');
  assert.ok(paths['/me']!.get.security.some((s: Record<string, unknown>) => 'jwt' in s));
  assert.deepEqual((doc.components as any).securitySchemes.jwt, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  const total = Object.values(paths).flatMap((item) => Object.values(item)).reduce((n, op: any) => n + op['x-meshward'].count, 0);
  assert.equal(total, vampi.length, 'every request is accounted for');
  assert.ok(!JSON.stringify(doc).includes('Bearer '), 'no credential lands in the export');
});

test('diff against the spec: classification plus undeclared use', async () => {
  const report = diffAgainstSpec(SERVICE, replayed().operations(SERVICE), await loadSpecFile(VAMPI_SPEC), { now: Date.parse('2026-11-28T00:00:00Z') });
  assert.equal(report.spec, VAMPI_SPEC);
  assert.ok(report.counts.active > 0 && report.counts.orphan > 0 && report.counts.shadow > 0);
  const errors = vampi.filter((r) => r.response?.status === 500 && /^\/users\/v1\/[^/]+$/.test(r.request.path)).length;
  const user = report.undeclared.find((u) => u.specPath === '/users/v1/{username}' && u.method === 'GET');
  assert.ok(errors > 0 && user?.statusCodes.includes('500'), 'the 500s of the SQL injection probe are not in the spec');
});

test('admin API: bearer token required, report, export, templates, spec upload keeps the last good one', async () => {
  const inventory = replayed();
  const specs = new SpecRegistry(inventory);
  assert.equal((await specs.load(SERVICE, { kind: 'openapi-file', file: VAMPI_SPEC })).ok, true);
  const router = new AdminRouter();
  registerInventoryRoutes(router, inventory, specs, { now: () => Date.parse('2026-11-28T00:00:00Z') });
  const token = 'test-token-0123456789abcdef';
  const server = await startAdminServer(router, { host: '127.0.0.1', port: 0, token }, silentLogger);
  const call = async (method: string, path: string, body?: string, auth = true): Promise<{ status: number; json: any }> => {
    const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { method, ...(body !== undefined ? { body } : {}), headers: auth ? { authorization: `Bearer ${token}` } : {} });
    return { status: res.status, json: await res.json() };
  };
  try {
    assert.equal((await call('GET', '/inventory', undefined, false)).status, 401);
    const all = await call('GET', '/inventory');
    assert.equal(all.status, 200);
    assert.equal(all.json.services[0].service, SERVICE);
    assert.equal(all.json.services[0].spec, VAMPI_SPEC);
    assert.equal((await call('GET', `/inventory/export?service=${SERVICE}`)).json.openapi, '3.1.0');
    assert.equal((await call('GET', '/inventory/export?service=nope.svc')).status, 404);
    assert.equal((await call('GET', '/inventory/export')).status, 400);
    assert.ok((await call('GET', `/inventory/diff?service=${SERVICE}`)).json.counts.active > 0);
    assert.ok(Array.isArray((await call('GET', '/inventory/templates')).json.services[SERVICE]));
    const bad = await call('PUT', `/inventory/specs?service=${SERVICE}&name=broken.yaml`, 'openapi: 3.0.3\ninfo: {title: x, version: "1"}\npaths:\n  /a:\n    get: {responses: {"200": {descriptio: x}}}\n');
    assert.equal(bad.status, 422);
    assert.equal(bad.json.spec, 'broken.yaml');
    assert.match(bad.json.place, /^#\/paths\/~1a\/get\/responses\/200/);
    assert.equal(bad.json.inForce, VAMPI_SPEC, 'the last good spec stays in force');
    assert.equal((await call('GET', '/inventory')).json.services[0].spec, VAMPI_SPEC);
    const specsStatus = await call('GET', '/inventory/specs');
    assert.match(specsStatus.json.specs[0].lastError, /broken\.yaml/);
  } finally {
    await server.close();
  }
});

const run = promisify(execFile);
const CLI = new URL('../../extproc/src/cli.ts', import.meta.url).pathname;

test('CLI: inventory --json from a capture, diff --spec, export, and from the SQLite file', async () => {
  const json = JSON.parse((await run(process.execPath, [CLI, 'inventory', '--json', '--capture', VAMPI_CAPTURE, '--spec', VAMPI_SPEC])).stdout);
  const counts = json.services[0].counts;
  assert.ok(counts.active > 0 && counts.orphan > 0);
  const diff = (await run(process.execPath, [CLI, 'inventory', 'diff', '--spec', VAMPI_SPEC, '--capture', VAMPI_CAPTURE])).stdout;
  assert.match(diff, /orphan\s+GET\s+\/createdb/);
  const file = join(dir, 'cli.db');
  const inv = new Inventory();
  const { store } = InventoryStore.open(file, inv);
  replayIntoInventory(inv, vampi);
  store.close();
  const exported = JSON.parse((await run(process.execPath, [CLI, 'inventory', 'export', '--db', file])).stdout);
  assert.equal(exported.openapi, '3.1.0');
  assert.ok('/users/v1/{user}' in exported.paths);
  const table = (await run(process.execPath, [CLI, 'inventory', '--db', file])).stdout;
  assert.match(table, /shadow\s+POST\s+\/users\/v1\/login/);
  await assert.rejects(run(process.execPath, [CLI, 'inventory']), (err: any) => err.code === 2 && /--db FILE and\/or --capture FILE/.test(err.stderr));
  const badSpec = join(dir, 'bad.yaml');
  writeFileSync(badSpec, 'swagger: "2.0"\n');
  await assert.rejects(run(process.execPath, [CLI, 'inventory', 'diff', '--spec', badSpec, '--db', file]), (err: any) => /bad\.yaml.*#\/swagger/.test(err.stderr));
});
