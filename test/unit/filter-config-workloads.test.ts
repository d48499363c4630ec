// Server side of the filter tables per workload: GET /v1/filter-config?namespace=&labels= answers
// with that workload's effective policy's tables, and enforced findings become TTL'd entries in the
// tables of the namespace they were made in (real Envoy: test/e2e/filter-tables.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { AdminRouter, type AdminRequest } from '../../extproc/src/admin/server.ts';
import { FILTER_CONFIG_PATH, FilterConfigStore, registerFilterConfigRoute, workloadOfQuery } from '../../extproc/src/filter-config/route.ts';
import { FilterTablesPublisher } from '../../extproc/src/filter-config/publisher.ts';
import { EnforcedDenies, enforcedEntryOf, enforcementRecorder } from '../../extproc/src/filter-config/enforced.ts';
import { validateTables } from '../../extproc/src/filter-config/schema.ts';
import { PolicySet } from '../../extproc/src/policy/precedence.ts';
import { PolicyServerWiring } from '../../extproc/src/policy/server-wiring.ts';
import type { ApiSecurityPolicy, PolicySpec } from '../../extproc/src/policy/types.ts';
import { Engine, type DecisionRecord } from '../../extproc/src/engine/engine.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import type { Detector } from '../../extproc/src/engine/detector.ts';

const MESH = 'meshward';
const EVE = 'spiffe://cluster.local/ns/shop/sa/eve';
const MALLORY = 'spiffe://cluster.local/ns/shop/sa/mallory';
const policy = (namespace: string, name: string, spec: PolicySpec): ApiSecurityPolicy =>
  ({ apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name, namespace }, spec }) as ApiSecurityPolicy;

/** Serves a refresh as the admin server would: the registered route with this query. */
async function refresh(router: AdminRouter, query: string): Promise<{ status: number; doc: Record<string, unknown> }> {
  const route = router.route('GET', FILTER_CONFIG_PATH)!;
  const request: AdminRequest = { method: 'GET', path: FILTER_CONFIG_PATH, query: new URLSearchParams(query), headers: {}, body: Buffer.alloc(0) };
  const r = await route.handle(request);
  return { status: r.status, doc: (typeof r.body === 'string' ? JSON.parse(r.body) : r.body) as Record<string, unknown> };
}

function served(set: PolicySet, enforced?: EnforcedDenies): AdminRouter {
  const store = new FilterConfigStore({});
  const router = new AdminRouter();
  registerFilterConfigRoute(router, store);
  const wiring = new PolicyServerWiring();
  wiring.onApplied({ set, errors: new Map() } as never, set.effectiveFor({ namespace: MESH }));
  wiring.serveFilterTables(store, 60_000, enforced);
  return router;
}

const denies = (doc: Record<string, unknown>): string[] => (doc.deny as { identities: string[] }).identities;

test('each namespace gets its effective policy\'s tables: identity denies, sampling, selectors by labels', async () => {
  const set = new PolicySet(MESH, [
    policy(MESH, 'default', { mode: 'monitor', sampling: { bodyRate: 0.05 } }),
    policy('payments', 'payments', { mode: 'enforce', callGraph: { deny: [{ from: EVE }] }, sampling: { bodyRate: 0.5 } }),
    policy('shop', 'shop', { mode: 'enforce', callGraph: { deny: [{ from: MALLORY }] } }),
    policy('shop', 'ledger-only', { mode: 'enforce', selector: { matchLabels: { app: 'ledger' } }, callGraph: { deny: [{ from: EVE }] } }),
  ]);
  const router = served(set);
  const mesh = await refresh(router, '');
  assert.equal(mesh.status, 200);
  assert.deepEqual(denies(mesh.doc), [], 'monitor default: nothing denied mesh-wide');
  assert.equal((mesh.doc.sampling as { percent: number }).percent, 5);

  const payments = await refresh(router, 'namespace=payments');
  assert.deepEqual(denies(payments.doc), [EVE]);
  assert.equal((payments.doc.sampling as { percent: number }).percent, 50);
  assert.deepEqual(denies((await refresh(router, 'namespace=shop')).doc), [MALLORY]);
  assert.deepEqual(denies((await refresh(router, 'namespace=shop&labels=app%3Dledger%2Cversion%3Dv1')).doc), [EVE], 'the selector wins for its workload');
  assert.deepEqual(denies((await refresh(router, 'namespace=other')).doc), [], 'a namespace without policy gets the mesh default');
  for (const q of ['namespace=payments', 'namespace=shop&labels=app%3Dledger']) assert.ok(validateTables((await refresh(router, q)).doc).ok);
  assert.notEqual((await refresh(router, 'namespace=payments')).doc.version, mesh.doc.version, 'versioned by content');
});

test('a malformed workload query gets 400 with the reason, never another namespace\'s tables', async () => {
  const router = served(new PolicySet(MESH, []));
  for (const [q, why] of [
    ['namespace=Bad_NS', /namespace/],
    ['namespace=', /namespace/],
    [`namespace=${'a'.repeat(64)}`, /namespace/],
    ['labels=app%3Dx', /labels needs namespace/],
    ['namespace=ok&labels=novalue', /labels must be/],
    ['namespace=ok&labels=a%3Db%3Dc', /labels must be/],
    [`namespace=ok&labels=${'a%3Db%2C'.repeat(600)}`, /longer than/],
  ] as const) {
    const r = await refresh(router, q);
    assert.equal(r.status, 400, q);
    assert.match(String(r.doc.detail), why, q);
  }
  assert.deepEqual(workloadOfQuery(new URLSearchParams('namespace=ok&labels=app%3Dx%2Ck8s.io%2Fname%3D')), { namespace: 'ok', labels: { app: 'x', 'k8s.io/name': '' } });
  fc.assert(fc.property(fc.string({ maxLength: 300 }), fc.string({ maxLength: 300 }), (ns, labels) => {
    const w = workloadOfQuery(new URLSearchParams({ namespace: ns, labels }));
    assert.ok(w instanceof Error || (w !== undefined && w.namespace === ns));
  }));
});

const finding = (over: Partial<Finding>): Finding => ({
  category: 'API1:2023-BOLA', detector: 'bola', severity: 'high', caller: EVE, operation: 'GET orders.shop /orders/{id}',
  requestId: 'r1', time: 0, summary: 's', evidence: {}, enforcement: 'deny', ...over,
});
const request = (namespace?: string): RequestEvent => ({
  requestId: 'r1', time: 0, caller: { mtls: true, identitySource: 'filter', workload: EVE }, method: 'GET', authority: 'orders.shop',
  path: '/orders/7', headers: new Map(), ...(namespace ? { sidecarWorkload: { namespace } } : {}),
});

test('which decisions become entries: the enforced finding\'s caller x operation, the whole caller for lateral movement', () => {
  const record = (decision: DecisionRecord['decision'], findings: Finding[]): DecisionRecord => ({ request: request('shop'), decision, findings });
  const bola = finding({});
  assert.deepEqual(enforcedEntryOf(record({ action: 'deny', status: 403, reason: bola.category, rule: 'bola' }, [bola])),
    { identity: EVE, operation: bola.operation, status: 403, reason: 'API1:2023-BOLA', rule: 'bola' });
  const flood = finding({ category: 'API4:2023-UnrestrictedResourceConsumption', detector: 'resource-consumption', enforcement: 'rate-limit' });
  assert.equal(enforcedEntryOf(record({ action: 'deny', status: 429, reason: flood.category, rule: flood.detector }, [bola, flood]))?.status, 429);
  const lateral = finding({ category: 'LATERAL-Movement', detector: 'lateral-movement' });
  assert.equal(enforcedEntryOf(record({ action: 'deny', status: 403, reason: lateral.category, rule: lateral.detector }, [lateral]))?.operation, undefined);
  assert.equal(enforcedEntryOf(record({ action: 'allow' }, [bola])), undefined, 'monitor mode: the finding was not enforced');
  assert.equal(enforcedEntryOf(record({ action: 'deny', status: 403, reason: 'identity-denied', rule: 'static-rule' }, [])), undefined, 'static rules are tables already');
  assert.equal(enforcedEntryOf({ ...record({ action: 'deny', status: 403, reason: bola.category, rule: 'bola' }, [bola]), phase: 'response' }), undefined,
    'a stopped response (an upstream\'s answer) never becomes a deny of the caller');
});

test('enforced entries: only in their namespace\'s tables, expire after the TTL, oldest evicted beyond the cap', async () => {
  let now = 1_700_000_000_000;
  const enforced = new EnforcedDenies({ ttlMs: 60_000, maxEntries: 3, now: () => now });
  const router = served(new PolicySet(MESH, []), enforced);
  const before = await refresh(router, 'namespace=shop');
  enforced.add('shop', { identity: EVE, operation: 'GET orders.shop /orders/{id}', status: 403, reason: 'API1:2023-BOLA', rule: 'bola' });
  const shop = await refresh(router, 'namespace=shop');
  assert.deepEqual(shop.doc.enforced, [{ identity: EVE, operation: 'GET orders.shop /orders/{id}', status: 403, reason: 'API1:2023-BOLA', rule: 'bola', expiresAtMs: now + 60_000 }]);
  assert.notEqual(shop.doc.version, before.doc.version);
  assert.equal((await refresh(router, 'namespace=payments')).doc.enforced, undefined);
  assert.equal((await refresh(router, '')).doc.enforced, undefined);
  now += 59_999;
  assert.equal(((await refresh(router, 'namespace=shop')).doc.enforced as unknown[]).length, 1);
  now += 1;
  assert.equal((await refresh(router, 'namespace=shop')).doc.enforced, undefined, 'expired: gone from the tables');
  assert.equal((await refresh(router, 'namespace=shop')).doc.version, before.doc.version);

  for (let i = 0; i < 5; i++) { enforced.add('shop', { identity: `${EVE}${i}`, status: 403, reason: 'r', rule: 'x' }); now += 1; }
  const kept = ((await refresh(router, 'namespace=shop')).doc.enforced as { identity: string }[]).map((e) => e.identity);
  assert.deepEqual(kept, [`${EVE}2`, `${EVE}3`, `${EVE}4`], 'bounded: the oldest were evicted');
});

test('an engine in enforce mode feeds the table through the recorder; monitor mode adds nothing', () => {
  const denies = new EnforcedDenies();
  const walker: Detector = { name: 'bola', onRequest: (x) => [finding({ caller: x.callerKey, operation: x.operation, requestId: x.request.requestId })] };
  for (const mode of ['monitor', 'enforce'] as const) {
    const engine = new Engine({ denyRules: [], mode, detectors: () => [walker] });
    engine.addObserver(enforcementRecorder(denies));
    const decision = engine.decide(request('shop'));
    assert.equal(decision.action, mode === 'enforce' ? 'deny' : 'allow');
    assert.equal(denies.entriesFor('shop').length, mode === 'enforce' ? 1 : 0, mode);
  }
  const [entry] = denies.entriesFor('shop');
  assert.equal(entry?.identity, EVE);
  assert.equal(entry?.operation, 'GET orders.shop /orders/{id}');
  assert.equal(denies.entriesFor('payments').length, 0);
});

test('bad TTLs are refused at construction', () => {
  for (const ttlMs of [0, 999, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => new EnforcedDenies({ ttlMs }), /TTL/);
});

test('the publisher keeps serving the last good tables when a workload\'s document cannot be built', async () => {
  const store = new FilterConfigStore({});
  const router = new AdminRouter();
  registerFilterConfigRoute(router, store);
  const publisher = new FilterTablesPublisher(store);
  publisher.setPolicy({ denyIdentities: [EVE] }, (w) => (w.namespace === 'broken' ? { denyIdentities: [''] } : { denyIdentities: [MALLORY] }));
  assert.deepEqual(denies((await refresh(router, 'namespace=shop')).doc), [MALLORY]);
  const broken = await refresh(router, 'namespace=broken');
  assert.equal(broken.status, 200);
  assert.deepEqual(denies(broken.doc), [EVE], 'falls back to the mesh-wide document');
});

test('meshward serve refuses a bad --enforced-deny-seconds with exit 2 and the expected range', () => {
  const cli = path.resolve(import.meta.dirname, '../../extproc/src/cli.ts');
  for (const value of ['0', 'soon', '100000']) {
    const r = spawnSync(process.execPath, [cli, 'serve', '--enforced-deny-seconds', value], { encoding: 'utf8' });
    assert.equal(r.status, 2, value);
    assert.match(r.stderr, /--enforced-deny-seconds must be a number of seconds between 1 and 86400/);
  }
});
