// Filter configuration: strict validation (the filter and the server's JSON schema agree), refresh
// over HTTP on tick, adoption across worker VMs through shared data, last good kept on bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProxyWasmHost, SharedData, requestHeaders, DEFAULT_PROPERTIES } from '../support/proxy-wasm-host.ts';
import { validatePluginConfig, validateTables } from '../../extproc/src/filter-config/schema.ts';
import { buildFilterTables, templatesFromOpenApiPaths } from '../../extproc/src/filter-config/build.ts';

const ALICE = 'spiffe://cluster.local/ns/default/sa/alice';
const asAlice = { ...DEFAULT_PROPERTIES, 'connection\0uri_san_peer_certificate': ALICE };
const REFRESH = { cluster: 'meshward_config', path: '/v1/filter-config', authority: 'meshward', token: 'tok-0123456789abcdef', intervalMs: 500 };
const ERROR = 4;

const INVALID_PLUGIN_CONFIGS: [string, string][] = [
  ['not JSON', '{"deny":'],
  ['not an object', '[1,2]'],
  ['unknown top-level key', '{"denny":{}}'],
  ['unknown nested key', '{"deny":{"identity":["a"]}}'],
  ['wrong type', '{"deny":{"identities":"a"}}'],
  ['empty identity', '{"deny":{"identities":[""]}}'],
  ['rate out of range', '{"limits":[{"identity":"a","operation":"GET h /","ratePerSecond":0,"burst":1}]}'],
  ['burst missing', '{"limits":[{"identity":"a","operation":"GET h /","ratePerSecond":1}]}'],
  ['percent over 100', '{"sampling":{"percent":150}}'],
  ['template without leading slash', '{"templates":[{"template":"users/{id}"}]}'],
  ['bad role', '{"role":"sideways"}'],
  ['refresh without cluster', '{"refresh":{"path":"/c","intervalMs":1000}}'],
  ['refresh interval too small', '{"refresh":{"cluster":"c","path":"/c","intervalMs":5}}'],
  ['nesting too deep', '{"version":' + '['.repeat(100) + ']'.repeat(100) + '}'],
  ['trailing garbage', '{} x'],
];

test('invalid plugin configuration is refused with a clear log line, and the server schema refuses it too', async () => {
  for (const [name, text] of INVALID_PLUGIN_CONFIGS) {
    const host = await ProxyWasmHost.load();
    assert.equal(host.configure(text), false, `${name}: proxy_on_configure must refuse`);
    const line = host.logs.find((l) => l.level === ERROR)?.message ?? '';
    assert.match(line, /^meshward filter: invalid configuration refused: .+/, name);
    assert.equal(host.counter('meshward_filter_config_rejected_total'), 1, name);
    let parsed: unknown;
    try { parsed = JSON.parse(text); } catch { continue; }
    assert.equal(validatePluginConfig(parsed).ok, false, `${name}: server schema must refuse too`);
  }
});

test('valid documents are accepted by both the filter and the server schema', async () => {
  const docs = [
    {},
    { role: 'outbound', self: 'spiffe://x/ns/a/sa/b', refresh: REFRESH },
    buildFilterTables({
      denyIdentities: [ALICE], denyOperations: [{ identity: ALICE, operation: 'DELETE h /x/{id}' }],
      limits: [{ identity: ALICE, operation: 'GET h /x', ratePerSecond: 5 }],
      templates: templatesFromOpenApiPaths({ '/users/{id}': { get: {}, parameters: [] }, '/users/me': { post: {} } }, '/api/'),
      sampling: { percent: 12.5, seed: 's', flaggedOperations: ['POST h /x'], suspectIdentities: ['ip:10.0.0.1'] },
    }),
  ];
  for (const doc of docs) {
    assert.equal(validatePluginConfig(doc).ok, true, JSON.stringify(doc));
    const host = await ProxyWasmHost.load();
    assert.equal(host.configure(doc), true, JSON.stringify(doc));
  }
});

test('the built tables put specific templates first and are versioned by content', () => {
  const a = buildFilterTables({ templates: [{ template: '/users/{id}' }, { method: 'get', template: '/users/me' }] });
  assert.deepEqual(a.templates, [{ method: 'GET', template: '/users/me' }, { template: '/users/{id}' }]);
  assert.equal(validateTables(a).ok, true);
  assert.equal(buildFilterTables({ templates: [{ method: 'GET', template: '/users/me' }, { template: '/users/{id}' }] }).version, a.version);
  assert.notEqual(buildFilterTables({ denyIdentities: ['x'] }).version, a.version);
  assert.throws(() => buildFilterTables({ limits: [{ identity: 'a', operation: 'o', ratePerSecond: -1 }] }), /filter configuration is invalid/);
});

test('refresh: one worker fetches per interval with the bearer token; a valid document is applied', async () => {
  const shared = new SharedData();
  const w1 = await ProxyWasmHost.load(undefined, shared);
  const w2 = await ProxyWasmHost.load(undefined, shared);
  assert.equal(w1.configure({ refresh: REFRESH }), true);
  assert.equal(w2.configure({ refresh: REFRESH }), true);
  assert.equal(w1.tickPeriodMs, 500);
  w2.nowNanos = w1.nowNanos;
  w1.tick();
  w2.tick();
  assert.equal(w1.httpCalls.length + w2.httpCalls.length, 1, 'exactly one VM claims the interval');
  const call = w1.httpCalls[0]!;
  assert.equal(call.cluster, 'meshward_config');
  assert.deepEqual(Object.fromEntries(call.headers), { ':method': 'GET', ':path': '/v1/filter-config', ':authority': 'meshward', authorization: 'Bearer tok-0123456789abcdef' });

  const doc = buildFilterTables({ denyIdentities: [ALICE] });
  assert.equal(w1.request({ headers: requestHeaders('GET', '/'), properties: asAlice }).localResponse, undefined);
  w1.respond(call, 200, JSON.stringify(doc));
  assert.equal(w1.request({ headers: requestHeaders('GET', '/'), properties: asAlice }).localResponse?.status, 403);
  // The other VM adopts it from shared data on its next tick, without a call of its own.
  assert.equal(w2.request({ headers: requestHeaders('GET', '/'), properties: asAlice }).localResponse, undefined);
  w2.tick();
  assert.equal(w2.httpCalls.length, 0);
  assert.equal(w2.request({ headers: requestHeaders('GET', '/'), properties: asAlice }).localResponse?.status, 403);
  // Within the interval nobody fetches again; after it, one VM does.
  w1.tick(); w2.tick();
  assert.equal(w1.httpCalls.length + w2.httpCalls.length, 1);
  w1.nowNanos += 600_000_000n;
  w1.tick();
  assert.equal(w1.httpCalls.length, 2);
});

test('refresh: an invalid or failed refresh is refused with a log line and the last good configuration stays', async () => {
  const host = await ProxyWasmHost.load();
  assert.equal(host.configure({ refresh: REFRESH, deny: { identities: [ALICE] }, version: 'v1' }), true);
  const deniedAlice = () => host.request({ headers: requestHeaders('GET', '/'), properties: asAlice }).localResponse?.status;
  const refresh = (status: number | undefined, body: string): void => {
    host.nowNanos += 1_000_000_000n;
    host.tick();
    host.respond(host.httpCalls.at(-1)!, status, body);
  };
  refresh(200, '{"deny":{"identities":[1]}}');
  assert.match(host.logs.at(-1)!.message, /^meshward filter: refreshed configuration refused \(deny\.identities\[0\]: must be string, got number\); keeping version "v1"$/);
  assert.equal(deniedAlice(), 403);
  refresh(200, JSON.stringify({ refresh: REFRESH })); // a refresh cannot redirect the refresh itself
  assert.match(host.logs.at(-1)!.message, /unknown key "refresh"/);
  refresh(503, 'unavailable');
  refresh(undefined, '');
  assert.equal(deniedAlice(), 403);
  assert.equal(host.counter('meshward_filter_config_rejected_total'), 2);
  assert.equal(host.counter('meshward_filter_config_refresh_failed_total'), 2);
  refresh(200, JSON.stringify({ version: 'v2' }));
  assert.equal(deniedAlice(), undefined, 'a valid refresh replaces the tables');
  assert.ok(host.logs.some((l) => l.message === 'meshward filter: configuration version "v2" applied'));
});

test('metric names are fixed: no path, identity or operation in any metric name', async () => {
  const host = await ProxyWasmHost.load();
  host.configure({ deny: { identities: [ALICE] }, sampling: { percent: 100 } });
  for (let i = 0; i < 50; i++) host.request({ headers: requestHeaders('GET', `/users/${i}/x${i}`), properties: i % 2 ? asAlice : DEFAULT_PROPERTIES });
  assert.deepEqual([...host.metricNames].sort(), [
    'meshward_filter_capture_errors_total',
    'meshward_filter_config_applied_total',
    'meshward_filter_config_refresh_failed_total',
    'meshward_filter_config_rejected_total',
    'meshward_filter_connection_reads_total',
    'meshward_filter_jwt_malformed_total',
    'meshward_filter_local_denies_total',
    'meshward_filter_local_limits_total',
    'meshward_filter_local_reply_errors_total',
    'meshward_filter_requests_total',
    'meshward_filter_sampled_total',
    'meshward_filter_vm0_wasm_memory_bytes',
    'meshward_filter_wasm_memory_bytes',
  ]);
  assert.equal(host.counter('meshward_filter_requests_total'), 50);
  assert.equal(host.counter('meshward_filter_local_denies_total'), 25);
});
