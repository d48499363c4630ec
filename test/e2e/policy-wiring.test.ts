// Policy, inventory and specs wired into what the sidecars and the engine do, in real Envoy:
// the policy's fast-path part and the inventory's templates reach the Wasm filter through its
// refresh; policy apiSpecs drive contracts; and each namespace's policy mode applies to requests
// arriving at workloads of that namespace (from the sidecar's node metadata, which no client sets).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLocalMesh } from '../../extproc/src/local/mesh.ts';
import { AdminRouter } from '../../extproc/src/admin/server.ts';
import { FILTER_CONFIG_PATH, FilterConfigStore, registerFilterConfigRoute } from '../../extproc/src/filter-config/route.ts';
import { FILTER_CONFIG_CLUSTER } from '../../extproc/src/local/envoy-config.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { startInventory } from '../../extproc/src/inventory/runtime.ts';
import { startPolicyRuntime } from '../../extproc/src/policy/runtime.ts';
import { PolicyServerWiring } from '../../extproc/src/policy/server-wiring.ts';
import { createLogger } from '../../extproc/src/log.ts';
import { rawRequest } from '../support/raw-http.ts';
import { waitFor } from '../support/wait-for.ts';
import { startFilePolicies } from '../support/file-policies.ts';

const TOKEN = 'e2e-admin-token-0123456789';
const CLIENT = 'default/client';
const BLOCKED = 'default/blocked';
const HOST = 'orders.shop';

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const UNSIGNED_JWT = `${b64({ alg: 'none' })}.${b64({ sub: 'mallory', iss: 'https://idp' })}.`;

const SPEC = `openapi: 3.0.3
info: { title: orders, version: '1' }
paths:
  /orders/{orderId}:
    get:
      parameters: [{ name: orderId, in: path, required: true, schema: { type: string } }]
      responses: { '200': { description: ok } }
  /orders:
    post:
      requestBody:
        content:
          application/json:
            schema: { type: object, additionalProperties: false, required: [item], properties: { item: { type: string } } }
      responses: { '200': { description: ok } }
`;

/** The composition `meshward serve` runs (cli/serve.ts): policy wiring, engine, inventory and the
 *  filter tables route, recording decisions and findings. */
async function startWiredServer() {
  const log = createLogger('silent');
  const wiring = new PolicyServerWiring(log);
  const engine = new Engine({ denyRules: [], detectors: wiring.detectors });
  const inventory = await startInventory(engine, {});
  wiring.useInventory(inventory);
  const router = new AdminRouter();
  const store = new FilterConfigStore({});
  registerFilterConfigRoute(router, store);
  const seen: RequestEvent[] = [];
  const findings: Finding[] = [];
  engine.addObserver({ onDecision: ({ request }) => { seen.push(request); }, onFinding: (f) => { findings.push(f); } });
  return { log, wiring, engine, inventory, router, store, seen, findings };
}

test('policy -> filter tables (deny, sampling), specs -> filter templates and contracts, learned templates -> filter', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meshward-wiring-'));
  const { log, wiring, engine, inventory, router, store, seen, findings } = await startWiredServer();
  const mesh = await startLocalMesh({
    callers: [CLIENT, BLOCKED],
    engine,
    admin: { router, token: TOKEN },
    pluginConfig: { refresh: { cluster: FILTER_CONFIG_CLUSTER, path: FILTER_CONFIG_PATH, token: TOKEN, intervalMs: 200 } },
  });
  await writeFile(path.join(dir, 'orders.yaml'), SPEC);
  await writeFile(path.join(dir, 'policy.yaml'), `apiVersion: security.meshward.io/v1alpha1
kind: ApiSecurityPolicy
metadata: { name: mesh-default, namespace: meshward }
spec:
  mode: enforce
  sampling: { bodyRate: 1 }
  apiSpecs: [{ name: orders, host: ${HOST}, file: orders.yaml }]
  callGraph: { deny: [{ from: ${mesh.spiffeIdOf(BLOCKED)} }] }
`);
  const policies = await startPolicyRuntime({
    source: 'file', files: [path.join(dir, 'policy.yaml')], namespace: 'meshward', engine, log,
    detectors: wiring.detectors, onApplied: wiring.onApplied,
  });
  wiring.serveFilterTables(store, 200);
  try {
    const get = (caller: string, p: string) => rawRequest(mesh.urlFor(caller), { path: p, headers: [['host', HOST]] });
    // 1. The policy's whole-identity deny reaches the filter: a local 403 without an ext_proc stream.
    await waitFor('the policy deny in the filter', async () => (await get(BLOCKED, '/orders/1')).headers['x-meshward-fastpath'] === 'deny');
    const streams = mesh.extProcCounters()!.streamsStarted;
    assert.equal((await get(BLOCKED, '/orders/1')).status, 403);
    assert.equal(mesh.extProcCounters()!.streamsStarted, streams, 'denied by the filter alone');
    assert.equal(store.current.sampling?.percent, 100, 'policy sampling.bodyRate 1 = 100 %');

    // 3 + 2. The policy's spec is loaded: its templates reach the filter (operation ids follow the spec) ...
    await waitFor('the spec template in the filter', async () => {
      await get(CLIENT, '/orders/A-17');
      return seen.at(-1)?.operation === `GET ${HOST} /orders/{orderId}`;
    });
    assert.equal(wiring.specStatus()?.[0]?.loaded, true);
    // ... and its request contract is checked on sampled bodies (mass assignment: an undeclared property).
    const post = await rawRequest(mesh.urlFor(CLIENT), { method: 'POST', path: '/orders', headers: [['host', HOST], ['content-type', 'application/json']], body: '{"item":"book","isAdmin":true}' });
    assert.equal(seen.at(-1)?.sampled, true, 'sampled: the policy rate reached the filter');
    const contract = findings.find((f) => f.detector === 'content-contract' && f.operation.startsWith('POST'));
    assert.ok(contract, `a contract finding (got ${findings.map((f) => f.detector).join(', ')})`);
    assert.equal(post.status, 403, 'enforce: the contract violation is denied');

    // 2. Templates learned from traffic reach the filter: many distinct user names become a parameter.
    for (let i = 0; i < 60; i++) await get(CLIENT, `/users/user${String.fromCharCode(97 + (i % 26))}${i}x`);
    await waitFor('the learned template in the filter', async () => {
      await get(CLIENT, '/users/zed-new-user');
      const op = seen.at(-1)?.operation ?? '';
      return /^GET orders\.shop \/users\/\{[^}]+\}$/.test(op);
    });
  } finally {
    wiring.stop();
    await policies.stop();
    inventory.close();
    await mesh.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('per-namespace policy at request time: mode, deny rules and detector settings of shop vs lab, from each sidecar node metadata', async () => {
  const engine = new Engine({ denyRules: [] });
  const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';
  const policies = await startFilePolicies(engine, {
    'meshward/mesh-default': '  mode: monitor',
    'shop/shop': `  mode: enforce
  rateLimits: [{ name: orders-tight, path: /orders/*, requests: 2, per: minute }]
  callGraph: { deny: [{ from: "${CLIENT_ID}", paths: [/admin/*] }] }`,
    'lab/lab-strict': '  { mode: enforce, selector: { matchLabels: { app: strict } } }',
  });
  const seen: RequestEvent[] = [];
  const findings: Finding[] = [];
  engine.addObserver({ onDecision: ({ request }) => { seen.push(request); }, onFinding: (f) => { findings.push(f); } });
  const shop = await startLocalMesh({ callers: [CLIENT], server: 'shop/orders', engine, serverNodeMetadata: { NAMESPACE: 'shop', WORKLOAD_NAME: 'orders', LABELS: { app: 'orders' } } });
  const lab = await startLocalMesh({ callers: [CLIENT], server: 'lab/orders', engine, serverNodeMetadata: { NAMESPACE: 'lab', WORKLOAD_NAME: 'orders-canary', LABELS: { app: 'orders', 'version': 'v2' } } });
  try {
    const attack = (mesh: typeof shop) => rawRequest(mesh.urlFor(CLIENT), {
      path: '/orders/1', headers: [['host', HOST], ['authorization', `Bearer ${UNSIGNED_JWT}`], ['x-meshward-namespace', 'lab']],
    });
    assert.equal((await attack(shop)).status, 403, 'shop enforces (a forged header does not change the namespace)');
    assert.deepEqual(seen.at(-1)?.sidecarWorkload, { namespace: 'shop', name: 'orders', labels: { app: 'orders' } });
    assert.equal((await attack(lab)).status, 200, 'lab monitors (its strict policy selects app=strict only)');
    assert.deepEqual(seen.at(-1)?.sidecarWorkload, { namespace: 'lab', name: 'orders-canary', labels: { app: 'orders', version: 'v2' } });
    assert.equal(shop.spiffeIdOf(CLIENT), CLIENT_ID);

    // shop's own deny rule: the client may not call /admin/* there; lab has no such rule.
    const admin = (mesh: typeof shop) => rawRequest(mesh.urlFor(CLIENT), { path: '/admin/users', headers: [['host', HOST]] });
    const denied = await admin(shop);
    assert.equal(denied.status, 403);
    assert.match(denied.body, /identity-denied/);
    assert.equal((await admin(lab)).status, 200);

    // shop's own rate limit (2 per minute on /orders/*): the third call is limited in shop only.
    const order = (mesh: typeof shop) => rawRequest(mesh.urlFor(CLIENT), { path: '/orders/7', headers: [['host', HOST]] });
    const limitFindings = () => findings.filter((f) => f.detector === 'resource-consumption' && f.summary.includes('orders-tight'));
    for (let i = 0; i < 3; i++) assert.equal((await order(lab)).status, 200);
    assert.equal(limitFindings().length, 0, 'lab runs the mesh default settings: no such limit');
    assert.deepEqual([(await order(shop)).status, (await order(shop)).status, (await order(shop)).status], [200, 200, 429]);
    assert.equal(limitFindings().length, 1);
  } finally {
    await shop.stop();
    await lab.stop();
    await policies.stop();
  }
});

test('callGraph default deny (enforce and monitor) and a rate limit for one caller with a burst, in real Envoy with real SPIFFE callers', async () => {
  const engine = new Engine({ denyRules: [] });
  const [WEB, BATCH, TOOL] = ['default/web', 'default/batch', 'lab/tool'];
  const BATCH_ID = 'spiffe://cluster.local/ns/default/sa/batch';
  const graph = `  callGraph: { default: deny, allow: [{ from: "spiffe://cluster.local/ns/default/*" }] }`;
  const policies = await startFilePolicies(engine, {
    'meshward/mesh-default': '  mode: monitor',
    'shop/shop': `  mode: enforce\n${graph}\n  rateLimits: [{ name: batch-burst, caller: "${BATCH_ID}", path: /orders/*, requests: 1, per: minute, burst: 3 }]`,
    'lab/lab': `  mode: monitor\n${graph}`,
  });
  const findings: Finding[] = [];
  engine.addObserver({ onFinding: (f) => { findings.push(f); } });
  const shop = await startLocalMesh({ callers: [WEB, BATCH, TOOL], server: 'shop/orders', engine, serverNodeMetadata: { NAMESPACE: 'shop', WORKLOAD_NAME: 'orders' } });
  const lab = await startLocalMesh({ callers: [TOOL], server: 'lab/orders', engine, serverNodeMetadata: { NAMESPACE: 'lab', WORKLOAD_NAME: 'orders' } });
  try {
    assert.equal(shop.spiffeIdOf(BATCH), BATCH_ID);
    assert.deepEqual(policies.policies.last?.errors.size, 0, 'the policies are valid');
    const order = (mesh: typeof shop, caller: string) => rawRequest(mesh.urlFor(caller), { path: '/orders/7', headers: [['host', HOST]] }).then((r) => r.status);
    const graphFindings = () => findings.filter((f) => f.detector === 'call-graph');
    // Each namespace's first request builds its detector set (hundreds of ms on a loaded machine,
    // beyond ext_proc's message timeout): build both before judging.
    await waitFor('shop profile ready', async () => (await order(shop, WEB)) === 200);
    await waitFor('lab profile ready', async () => (await order(lab, TOOL)) === 200);
    findings.length = 0;

    // Allow-list: ns/default/* may call shop; lab/tool may not (403 and a lateral-movement finding).
    assert.equal(await order(shop, WEB), 200);
    assert.equal(await order(shop, TOOL), 403);
    assert.deepEqual(graphFindings().map((f) => [f.category, f.evidence.workload]), [['LATERAL-Movement', shop.spiffeIdOf(TOOL)]]);
    // The same call graph in lab's monitor policy: the call passes, the finding is recorded.
    assert.equal(await order(lab, TOOL), 200);
    assert.equal(graphFindings().length, 2);

    // batch's bucket: 3 tokens, then 429; web (not named by the limit) is not limited.
    assert.deepEqual([await order(shop, BATCH), await order(shop, BATCH), await order(shop, BATCH), await order(shop, BATCH)], [200, 200, 200, 429]);
    const limited = findings.filter((f) => f.detector === 'resource-consumption' && f.evidence.rule === 'batch-burst');
    assert.equal(limited.length, 1);
    assert.equal(limited[0]!.evidence.burst, 3);
    for (let i = 0; i < 5; i++) assert.equal(await order(shop, WEB), 200);
  } finally {
    await shop.stop();
    await lab.stop();
    await policies.stop();
  }
});

test('spec.content per namespace: contracts monitor lets a mass-assignment request through (200 + finding), enforce denies it (403)', async () => {
  const { wiring, engine, inventory, router, store, seen, findings } = await startWiredServer();
  const common = '  mode: enforce\n  sampling: { bodyRate: 1 }\n  apiSpecs: [{ name: orders, host: ' + HOST + ', file: orders.yaml }]';
  const policies = await startFilePolicies(engine, {
    'meshward/mesh-default': common,
    'shop/shop': `${common}\n  content: { contracts: { mode: monitor } }`,
    'lab/lab': common,
  }, wiring, { 'orders.yaml': SPEC });
  wiring.serveFilterTables(store, 200);
  const pluginConfig = { refresh: { cluster: FILTER_CONFIG_CLUSTER, path: FILTER_CONFIG_PATH, token: TOKEN, intervalMs: 200 } };
  const shop = await startLocalMesh({ callers: [CLIENT], server: 'shop/orders', engine, admin: { router, token: TOKEN }, pluginConfig, serverNodeMetadata: { NAMESPACE: 'shop', WORKLOAD_NAME: 'orders' } });
  const lab = await startLocalMesh({ callers: [CLIENT], server: 'lab/orders', engine, admin: { router, token: TOKEN }, pluginConfig, serverNodeMetadata: { NAMESPACE: 'lab', WORKLOAD_NAME: 'orders' } });
  try {
    assert.equal(policies.policies.last?.errors.size, 0, 'the policies are valid');
    const massAssignment = (mesh: typeof shop) => rawRequest(mesh.urlFor(CLIENT), {
      method: 'POST', path: '/orders', headers: [['host', HOST], ['content-type', 'application/json']], body: '{"item":"book","isAdmin":true}',
    });
    await waitFor('the spec loaded and bodies sampled in both namespaces', async () => {
      if (wiring.specStatus()?.[0]?.loaded !== true) return false;
      for (const mesh of [shop, lab]) {
        await rawRequest(mesh.urlFor(CLIENT), { method: 'POST', path: '/orders', headers: [['host', HOST], ['content-type', 'application/json']], body: '{"item":"pen"}' });
        if (seen.at(-1)?.sampled !== true) return false;
      }
      return true;
    });
    const contractFindings = (namespace: string) => findings.filter((f) => f.detector === 'content-contract' && seen.find((r) => r.requestId === f.requestId)?.sidecarWorkload?.namespace === namespace);
    const monitored = await massAssignment(shop);
    assert.equal(monitored.status, 200, 'shop: content.contracts.mode monitor');
    assert.ok(contractFindings('shop').some((f) => f.category.startsWith('API3') && f.enforcement === 'none'), 'shop: reported');
    const denied = await massAssignment(lab);
    assert.equal(denied.status, 403, 'lab: contracts enforced');
    assert.ok(contractFindings('lab').some((f) => f.category.startsWith('API3') && f.enforcement === 'deny'));
  } finally {
    wiring.stop();
    await policies.stop();
    inventory.close();
    await shop.stop();
    await lab.stop();
  }
});
