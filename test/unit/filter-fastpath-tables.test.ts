// The filter's per-namespace refresh, enforced (TTL'd) deny entries and bounded token-bucket slots,
// run in the compiled module under the Node test host (real Envoy: test/e2e/filter-tables.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProxyWasmHost, SharedData, DEFAULT_PROPERTIES, propertyPairs, requestHeaders } from '../support/proxy-wasm-host.ts';
import fc from 'fast-check';
import { buildFilterTables } from '../../extproc/src/filter-config/build.ts';
import { validateTables } from '../../extproc/src/filter-config/schema.ts';

const ALICE = 'spiffe://cluster.local/ns/default/sa/alice';
const BOB = 'spiffe://cluster.local/ns/default/sa/bob';
const as = (who: string) => ({ ...DEFAULT_PROPERTIES, 'connection\0uri_san_peer_certificate': who });
const REFRESH = { cluster: 'meshward_config', path: '/v1/filter-config', token: 't0123456789abcdef', intervalMs: 1000 };
const NODE = {
  'xds\0node\0metadata\0NAMESPACE': 'payments',
  'xds\0node\0metadata\0LABELS': propertyPairs({ app: 'ledger', 'security.istio.io/tlsMode': 'istio' }),
};

async function filter(config: object, shared = new SharedData(), root?: Record<string, string | Buffer>): Promise<ProxyWasmHost> {
  const host = await ProxyWasmHost.load(undefined, shared);
  assert.equal(host.configure(config, root), true);
  return host;
}

const pathOf = (host: ProxyWasmHost): string | undefined => host.httpCalls.at(-1)?.headers.find(([k]) => k === ':path')?.[1];

test('refresh asks for the tables of the sidecar\'s own namespace and labels (node metadata), encoded', async () => {
  const host = await filter({ refresh: REFRESH }, new SharedData(), NODE);
  host.tick();
  assert.equal(pathOf(host), '/v1/filter-config?namespace=payments&labels=app%3Dledger%2Csecurity.istio.io%2FtlsMode%3Distio');
  const parsed = new URL(`http://x${pathOf(host)!}`).searchParams;
  assert.equal(parsed.get('labels'), 'app=ledger,security.istio.io/tlsMode=istio');

  const withQuery = await filter({ refresh: { ...REFRESH, path: '/v1/filter-config?x=1' } }, new SharedData(), { 'xds\0node\0metadata\0NAMESPACE': 'a b&c' });
  withQuery.tick();
  assert.equal(pathOf(withQuery), '/v1/filter-config?x=1&namespace=a%20b%26c', 'a path with a query gets "&"; the value cannot add parameters');

  const bare = await filter({ refresh: REFRESH });
  bare.tick();
  assert.equal(pathOf(bare), '/v1/filter-config', 'no node metadata: no query (the server serves the mesh default\'s tables)');
  // Node metadata is still read for the record when the first request brings it.
  const out = bare.request({ headers: requestHeaders('GET', '/x'), properties: { ...DEFAULT_PROPERTIES, ...NODE } });
  assert.match(out.record!, /\nnode\.namespace=payments\n/);
});

test('enforced entries: local 403/429 with the finding\'s reason, per caller x operation or whole caller, until they expire', async () => {
  const host = await filter({});
  const nowMs = Number(host.nowNanos / 1_000_000n);
  const tables = buildFilterTables({ enforced: [
    { identity: ALICE, operation: 'GET orders.shop /orders/{id}', status: 403, reason: 'API1:2023-BOLA', rule: 'bola', expiresAtMs: nowMs + 60_000 },
    { identity: BOB, status: 429, reason: 'API4:2023-UnrestrictedResourceConsumption', rule: 'resource-consumption', expiresAtMs: nowMs + 1_000 },
  ] });
  assert.equal(host.configure(tables), true);

  const aliceGet = host.request({ headers: requestHeaders('GET', '/orders/17'), properties: as(ALICE) });
  assert.equal(aliceGet.localResponse?.status, 403);
  assert.deepEqual(JSON.parse(aliceGet.localResponse!.body), { error: 'forbidden', reason: 'API1:2023-BOLA', rule: 'bola' });
  assert.ok(aliceGet.localResponse!.headers.some(([k, v]) => k === 'x-meshward-fastpath' && v === 'deny'));
  assert.equal(host.request({ headers: requestHeaders('POST', '/orders'), properties: as(ALICE) }).localResponse, undefined, 'other operations pass');

  const bobAny = host.request({ headers: requestHeaders('DELETE', '/anything/else'), properties: as(BOB) });
  assert.equal(bobAny.localResponse?.status, 429, 'a whole-caller entry covers every operation');
  assert.deepEqual(JSON.parse(bobAny.localResponse!.body), { error: 'too_many_requests', reason: 'API4:2023-UnrestrictedResourceConsumption', rule: 'resource-consumption' });
  assert.ok(bobAny.localResponse!.headers.some(([k, v]) => k === 'x-meshward-fastpath' && v === 'limit'));
  assert.equal(host.counter('meshward_filter_local_denies_total'), 1);
  assert.equal(host.counter('meshward_filter_local_limits_total'), 1);

  host.nowNanos += 1_000_000_000n; // Bob's entry expires (the filter checks it without the server)
  assert.equal(host.request({ headers: requestHeaders('DELETE', '/anything/else'), properties: as(BOB) }).localResponse, undefined);
  assert.equal(host.request({ headers: requestHeaders('GET', '/orders/18'), properties: as(ALICE) }).localResponse?.status, 403);
  host.nowNanos += 60_000_000_000n;
  assert.equal(host.request({ headers: requestHeaders('GET', '/orders/18'), properties: as(ALICE) }).localResponse, undefined);
});

test('enforced entries: reason text cannot break the response body; malformed entries are refused with a reason', async () => {
  const host = await filter({});
  const future = Number(host.nowNanos / 1_000_000n) + 60_000;
  assert.equal(host.configure({ enforced: [{ identity: ALICE, status: 403, reason: 'a"b\\c\n', expiresAtMs: future }] }), true);
  const out = host.request({ headers: requestHeaders('GET', '/x'), properties: as(ALICE) });
  assert.deepEqual(JSON.parse(out.localResponse!.body), { error: 'forbidden', reason: 'a"b\\c ' });
  const cases: [object, RegExp][] = [
    [{ identity: ALICE, status: 404, reason: 'r', expiresAtMs: future }, /enforced\[0\]\.status: must be between 403 and 429|must be 403 or 429/],
    [{ identity: ALICE, status: 410, reason: 'r', expiresAtMs: future }, /enforced\[0\]\.status: must be 403 or 429/],
    [{ identity: ALICE, status: 403, expiresAtMs: future }, /enforced\[0\]\.reason: required/],
    [{ identity: ALICE, status: 403, reason: 'r' }, /enforced\[0\]\.expiresAtMs: required/],
    [{ identity: ALICE, status: 403, reason: 'r', expiresAtMs: future, extra: 1 }, /enforced\[0\]: unknown key "extra"/],
  ];
  for (const [entry, why] of cases) {
    assert.equal(host.configure({ enforced: [entry] }), false);
    assert.match(host.logs.at(-1)!.message, why);
  }
});

/** FNV-1a 64 of the bucket name, as the filter computes it (config.ts), to place buckets on purpose. */
function bucketBase(identity: string, operation: string, role = 'in'): number {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(`${role}\n${identity}\n${operation}`)) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return Number(h % 8192n);
}

const bucketKeys = (shared: SharedData): string[] => [...shared.entries.keys()].filter((k) => k.startsWith('meshward.bucket.'));

test('token buckets use at most 8192 shared-data keys, whatever the number of identities (100,000 here)', async () => {
  const shared = new SharedData();
  const host = await ProxyWasmHost.load(undefined, shared);
  const op = 'POST orders.shop /orders';
  const batch = 10_000; // the tables' largest list
  for (let round = 0; round < 10; round++) {
    const ids = Array.from({ length: batch }, (_, i) => `spiffe://cluster.local/ns/n${round}/sa/w${i}`);
    assert.equal(host.configure({ limits: ids.map((identity) => ({ identity, operation: op, ratePerSecond: 1, burst: 2 })) }), true);
    for (const id of ids) host.request({ headers: requestHeaders('POST', '/orders'), properties: as(id) });
    host.nowNanos += 1_000_000n;
  }
  const keys = bucketKeys(shared);
  assert.ok(keys.length <= 8192, `${keys.length} bucket keys`);
  assert.ok(keys.length > 8000, 'the slots are used (hash spread)');
  assert.ok(keys.every((k) => /^meshward\.bucket\.in\.\d{1,4}$/.test(k)));
  // Limits still work after the flood: burst 2, then 429.
  assert.equal(host.configure({ limits: [{ identity: ALICE, operation: op, ratePerSecond: 0.001, burst: 2 }] }), true);
  const post = () => host.request({ headers: requestHeaders('POST', '/orders'), properties: as(ALICE) }).localResponse?.status;
  assert.deepEqual([post(), post(), post()], [undefined, undefined, 429]);
  assert.ok(bucketKeys(shared).length <= 8192);
});

test('slot collisions: four active buckets share a probe window independently; a fifth evicts the least recently used', async () => {
  const op = 'GET orders.shop /x';
  // Five identities whose buckets all start probing at the same slot.
  const byBase = new Map<number, string[]>();
  let colliding: string[] = [];
  for (let i = 0; colliding.length < 5; i++) {
    const id = `spiffe://cluster.local/ns/c/sa/w${i}`;
    const base = bucketBase(id, op);
    const list = byBase.get(base) ?? [];
    list.push(id);
    byBase.set(base, list);
    if (list.length === 5) colliding = list;
  }
  const shared = new SharedData();
  const host = await filter({ limits: colliding.map((identity) => ({ identity, operation: op, ratePerSecond: 0.001, burst: 2 })) }, shared);
  const get = (id: string) => host.request({ headers: requestHeaders('GET', '/x'), properties: as(id) }).localResponse?.status;
  const [a, b, c, d, e] = colliding as [string, string, string, string, string];
  // Each of the first four keeps its own budget: 2 pass, then 429.
  for (const id of [a, b, c, d]) { assert.equal(get(id), undefined); host.nowNanos += 1000n; }
  for (const id of [a, b, c, d]) { assert.equal(get(id), undefined); host.nowNanos += 1000n; }
  for (const id of [a, b, c, d]) { assert.equal(get(id), 429, 'no bucket was confused with another'); host.nowNanos += 1000n; }
  assert.equal(bucketKeys(shared).length, 4);
  // The fifth takes the least recently used slot (a's): it starts full, and a restarts full later.
  assert.equal(get(e), undefined);
  assert.equal(bucketKeys(shared).length, 4, 'still four slots');
  assert.equal(get(b), 429, 'b, c, d keep their state');
  assert.equal(get(e), undefined);
  assert.equal(get(e), 429);
});

test('an idle bucket (refilled to burst) gives its slot up without loss', async () => {
  const op = 'GET orders.shop /y';
  const ids: string[] = [];
  const base = bucketBase(`spiffe://cluster.local/ns/i/sa/w0`, op);
  for (let i = 0; ids.length < 5; i++) {
    const id = `spiffe://cluster.local/ns/i/sa/w${i}`;
    if (bucketBase(id, op) === base) ids.push(id);
  }
  const shared = new SharedData();
  const host = await filter({ limits: ids.map((identity) => ({ identity, operation: op, ratePerSecond: 1, burst: 1 })) }, shared);
  const get = (id: string) => host.request({ headers: requestHeaders('GET', '/y'), properties: as(id) }).localResponse?.status;
  for (const id of ids.slice(0, 4)) assert.equal(get(id), undefined);
  host.nowNanos += 2_000_000_000n; // every bucket is full again: idle
  assert.equal(get(ids[4]!), undefined);
  assert.equal(get(ids[4]!), 429);
  assert.equal(bucketKeys(shared).length, 4);
});

test('property: the filter and the server schema accept and refuse the same enforced entries', async () => {
  const host = await ProxyWasmHost.load();
  const text = fc.oneof(fc.constant(''), fc.constant(ALICE), fc.string({ maxLength: 8 }));
  const entry = fc.record({
    identity: text, operation: text, status: fc.constantFrom(403, 429, 404, 200, '403'), reason: text, rule: text,
    expiresAtMs: fc.constantFrom(0, 1.5, 1e13, -1, 1e15, 'x'), extra: fc.constant(1),
  }, { requiredKeys: [] });
  fc.assert(fc.property(fc.array(entry, { maxLength: 3 }), (enforced) => {
    const doc = { enforced };
    assert.equal(host.configure(doc), validateTables(doc).ok, JSON.stringify(doc));
  }), { numRuns: 300 });
});
