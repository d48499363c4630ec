// The inventory in the real data path: real Envoy sidecars with SPIFFE mTLS, the meshward filter
// and ext_proc; the inventory observes the engine and answers on the admin HTTP API.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import { AdminRouter } from '../../extproc/src/admin/server.ts';
import { startInventory, type InventoryRuntime } from '../../extproc/src/inventory/runtime.ts';
import { registerInventoryRoutes } from '../../extproc/src/inventory/admin-routes.ts';

const FRONTEND = 'web/frontend';
const WORKER = 'payments/payment-worker';
const TOKEN = 'inventory-e2e-token-0123456789';

describe('inventory behind real Envoy sidecars', () => {
  let mesh: LocalMesh;
  let runtime: InventoryRuntime;
  const router = new AdminRouter();

  before(async () => {
    mesh = await startLocalMesh({ callers: [FRONTEND, WORKER], server: 'shop/orders', admin: { router, token: TOKEN } });
    runtime = await startInventory(mesh.engine);
    registerInventoryRoutes(router, runtime.inventory, runtime.specs);
  });

  after(async () => {
    runtime?.close();
    await mesh?.stop();
  });

  const admin = async (path: string): Promise<any> => {
    const res = await fetch(`http://127.0.0.1:${mesh.adminPort}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 200);
    return res.json();
  };

  test('operations, SPIFFE callers, statuses and learned templates from traffic through Envoy', async () => {
    const users = ['alice.lee', 'bob.ng', 'chen.wu', 'dave.k', 'erin.m', 'farah.s', 'grace.o'];
    for (const u of users) await (await fetch(`${mesh.urlFor(FRONTEND)}/users/${u}`)).text();
    for (let i = 0; i < 12; i++) await (await fetch(`${mesh.urlFor(FRONTEND)}/users/me`)).text();
    await (await fetch(`${mesh.urlFor(WORKER)}/orders/77/payments`, { method: 'POST', body: '{"amount": 12.5}', headers: { 'content-type': 'application/json' } })).text();

    const { services } = await admin('/inventory');
    assert.equal(services.length, 1);
    const ops = services[0].operations as { method: string; path: string; count: number; callers: string[]; state: string }[];
    const find = (method: string, path: string) => ops.find((o) => o.method === method && o.path === path);
    assert.equal(find('GET', '/users/{user}')?.count, users.length, 'usernames learned as a parameter');
    assert.equal(find('GET', '/users/me')?.count, 12, 'the static sibling stays');
    const payments = find('POST', '/orders/{id}/payments');
    assert.deepEqual(payments?.callers, [mesh.spiffeIdOf(WORKER)], 'the caller is the SPIFFE ID from the mTLS connection');
    assert.ok(ops.every((o) => o.state === 'shadow'), 'no spec loaded: everything seen is shadow');

    const records = runtime.inventory.operations();
    const me = records.find((o) => o.template === '/users/me')!;
    assert.deepEqual(me.statuses, { '200': 12 }, 'responses observed through ext_proc');
    assert.ok(me.authTypes.includes('mtls'));
    assert.equal(me.eastWest, 12);

    const table = await admin('/inventory/templates');
    const [service] = Object.keys(table.services);
    assert.deepEqual(table.services[service!].filter((t: string) => t.startsWith('/users/')), ['/users/me', '/users/{user}']);
  });
});
