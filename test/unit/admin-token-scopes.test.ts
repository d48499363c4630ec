// The admin API's two tokens: the admin token opens every route; the filter token, which every
// sidecar's plugin configuration carries (and so any meshed pod can read from Envoy's config dump),
// opens only the filter's table refresh. Findings, inventory, policy and spec uploads stay closed to it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Engine } from '../../extproc/src/engine/engine.ts';
import { AdminRouter, startAdminServer, type RunningAdminServer } from '../../extproc/src/admin/server.ts';
import { FindingsBuffer } from '../../extproc/src/admin/findings-buffer.ts';
import { BlockedLog, registerCoreRoutes } from '../../extproc/src/admin/core-routes.ts';
import { startInventory, type InventoryRuntime } from '../../extproc/src/inventory/runtime.ts';
import { registerInventoryRoutes } from '../../extproc/src/inventory/admin-routes.ts';
import { FILTER_CONFIG_PATH, FilterConfigStore, registerFilterConfigRoute } from '../../extproc/src/filter-config/route.ts';
import { silentLogger } from '../../extproc/src/log.ts';

const ADMIN_TOKEN = 'scopes-admin-token-0123456789';
const FILTER_TOKEN = 'scopes-filter-token-0123456789';
const SPEC = JSON.stringify({ openapi: '3.0.3', info: { title: 'orders', version: '1' }, paths: { '/orders': { get: { responses: { '200': { description: 'ok' } } } } } });

describe('admin token scopes', () => {
  let admin: RunningAdminServer;
  let inventory: InventoryRuntime;
  const router = new AdminRouter();

  before(async () => {
    const engine = new Engine({ denyRules: [] });
    inventory = await startInventory(engine);
    registerCoreRoutes(router, { engine, findings: new FindingsBuffer(10), blocked: new BlockedLog(), mode: () => 'monitor', policy: () => ({ source: 'test' }), inventory: inventory.inventory });
    registerInventoryRoutes(router, inventory.inventory, inventory.specs);
    registerFilterConfigRoute(router, new FilterConfigStore({ version: 'v1', deny: { identities: ['spiffe://cluster.local/ns/x/sa/y'] } }));
    admin = await startAdminServer(router, { host: '127.0.0.1', port: 0, token: ADMIN_TOKEN, filterToken: FILTER_TOKEN }, silentLogger);
  });
  after(async () => { inventory?.close(); await admin?.close(); });

  const call = async (method: string, path: string, token: string | null, body?: string): Promise<number> => {
    const res = await fetch(`http://127.0.0.1:${admin.port}${path}`, {
      method, ...(body !== undefined ? { body } : {}),
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    });
    await res.arrayBuffer();
    return res.status;
  };

  test('the filter token reads the filter tables and nothing else (403, whether the route exists or not)', async () => {
    assert.equal(await call('GET', FILTER_CONFIG_PATH, FILTER_TOKEN), 200);
    for (const path of ['/findings', '/policy', '/posture', '/report', '/inventory', '/inventory/export', '/inventory/specs', '/no-such-route']) {
      assert.equal(await call('GET', path, FILTER_TOKEN), 403, `GET ${path}`);
    }
    const specsBefore = await (await fetch(`http://127.0.0.1:${admin.port}/inventory/specs`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
    assert.equal(await call('PUT', '/inventory/specs?service=orders', FILTER_TOKEN, SPEC), 403, 'no spec upload with the filter token');
    const specsAfter = await (await fetch(`http://127.0.0.1:${admin.port}/inventory/specs`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
    assert.deepEqual(specsAfter, specsBefore, 'the refused upload changed nothing');
  });

  test('the admin token opens every route, the filter route included', async () => {
    for (const path of [FILTER_CONFIG_PATH, '/findings', '/policy', '/posture', '/inventory', '/inventory/specs']) {
      assert.equal(await call('GET', path, ADMIN_TOKEN), 200, `GET ${path}`);
    }
    assert.equal(await call('GET', '/no-such-route', ADMIN_TOKEN), 404);
  });

  test('no token or any other token: 401 on every route, the filter route included', async () => {
    assert.equal(await call('GET', FILTER_CONFIG_PATH, null), 401);
    await fc.assert(fc.asyncProperty(fc.string({ minLength: 1, maxLength: 40 }).filter((t) => /^[\x21-\x7e]+$/.test(t) && t !== ADMIN_TOKEN && t !== FILTER_TOKEN),
      fc.constantFrom(FILTER_CONFIG_PATH, '/findings', '/inventory'), async (token, path) => {
        assert.equal(await call('GET', path, token), 401);
      }), { numRuns: 60 });
    // A prefix or extension of a real token is another token.
    assert.equal(await call('GET', FILTER_CONFIG_PATH, FILTER_TOKEN.slice(0, -1)), 401);
    assert.equal(await call('GET', FILTER_CONFIG_PATH, `${FILTER_TOKEN}x`), 401);
  });
});

test('the filter token must be long enough and must differ from the admin token', async () => {
  const router = new AdminRouter();
  await assert.rejects(startAdminServer(router, { host: '127.0.0.1', port: 0, token: ADMIN_TOKEN, filterToken: ADMIN_TOKEN }, silentLogger), /must differ from the admin token/);
  await assert.rejects(startAdminServer(router, { host: '127.0.0.1', port: 0, token: ADMIN_TOKEN, filterToken: 'short' }, silentLogger), /at least 16 characters/);
});
