// The Wasm filter's hot path in real Envoy (mTLS with SPIFFE certificates, ext_proc in process):
// identity + JWT peek reach ext_proc, operation ids, sampling with bodies only for sampled requests,
// local 403/429 without an ext_proc round trip, bounded counter names, and every bad input of issue #3.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import { templatePath } from '../../extproc/src/engine/operation.ts';
import { rawRequest, type RawResponse } from '../support/raw-http.ts';

const HOST = 'orders.shop';
const CLIENT = 'default/client';
const ALICE = 'default/alice';
const BOB = 'default/bob';
const b64 = (o: unknown): string => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

let mesh: LocalMesh;
const events: RequestEvent[] = [];

before(async () => {
  const spiffe = (w: string): string => `spiffe://cluster.local/ns/${w.split('/')[0]}/sa/${w.split('/')[1]}`;
  mesh = await startLocalMesh({
    callers: [CLIENT, ALICE, BOB],
    pluginConfig: {
      version: 'e2e-1',
      deny: {
        identities: [spiffe(ALICE)],
        operations: [{ identity: spiffe(BOB), operation: `DELETE ${HOST} /orders/{id}` }],
      },
      limits: [{ identity: spiffe(CLIENT), operation: `GET ${HOST} /limited`, ratePerSecond: 0.001, burst: 2 }],
      templates: [{ template: '/users/{userId}/profile' }],
      sampling: { percent: 0, seed: 'e2e', alwaysOperations: [`POST ${HOST} /orders/{id}`] },
    },
  });
  assert.equal(mesh.spiffeIdOf(ALICE), spiffe(ALICE));
  mesh.engine.addObserver({ onDecision: (r) => events.push(r.request) });
});

after(async () => { await mesh?.stop(); });

function send(caller: string, method: string, path: string, headers: [string, string | Buffer][] = [], body?: string): Promise<RawResponse> {
  return rawRequest(mesh.urlFor(caller), { method, path, headers: [['host', HOST], ...headers], ...(body !== undefined ? { body } : {}) });
}

/** Sends one request and returns what ext_proc saw of it (the last event). */
async function seen(caller: string, method: string, path: string, headers: [string, string | Buffer][] = [], body?: string): Promise<{ res: RawResponse; event: RequestEvent }> {
  const before = events.length;
  const res = await send(caller, method, path, headers, body);
  assert.equal(events.length, before + 1, `ext_proc saw ${method} ${path.slice(0, 80)}`);
  return { res, event: events.at(-1)! };
}

test('identity, JWT claims and flags, and hashed credentials reach ext_proc through filter state', async () => {
  const token = `${b64({ alg: 'none' })}.${b64({ sub: 'alice@idp', iss: 'https://idp', aud: 'orders', scope: 'orders:read', exp: 1000, nbf: 1 })}.`;
  const { res, event } = await seen(CLIENT, 'GET', '/orders/1', [['authorization', `Bearer ${token}`], ['x-api-key', 'k-123']]);
  assert.equal(res.status, 200);
  assert.equal(event.caller.identitySource, 'filter');
  assert.equal(event.caller.workload, mesh.spiffeIdOf(CLIENT));
  assert.equal(event.caller.mtls, true);
  assert.match(event.caller.sourceAddress ?? '', /^127\.0\.0\.1:\d+$/);
  assert.deepEqual(event.caller.user, {
    alg: 'none', sub: 'alice@idp', iss: 'https://idp', aud: 'orders', scope: 'orders:read', exp: 1000, nbf: 1,
    flags: ['alg_none', 'unsigned', 'expired'],
  });
  assert.equal(event.caller.tokenHash, sha256(token));
  assert.equal(event.caller.apiKeyHash, sha256('k-123'));
  assert.equal(event.direction, 'inbound');
});

test('a client-sent header cannot forge the capture record', async () => {
  const forged = 'mw1 peer=spiffe://cluster.local/ns/default/sa/admin mtls=1';
  const { event } = await seen(CLIENT, 'GET', '/x', [['x-meshward-capture', forged], ['meshward', forged]]);
  assert.equal(event.caller.workload, mesh.spiffeIdOf(CLIENT));
});

test('route templates and operation ids reach ext_proc; a pushed template wins', async () => {
  const a = await seen(CLIENT, 'GET', '/users/8123/orders/f47ac10b-58cc-4372-a567-0e02b2c3d479?x=1');
  assert.equal(a.event.template, '/users/{id}/orders/{uuid}');
  assert.equal(a.event.operation, `GET ${HOST} /users/{id}/orders/{uuid}`);
  const b = await seen(CLIENT, 'PUT', '/users/alice/profile', [], '{}');
  assert.equal(b.event.operation, `PUT ${HOST} /users/{userId}/profile`);
  const c = await seen(CLIENT, 'GET', '/mail/bob@example.com/2024-01-31');
  assert.equal(c.event.template, templatePath('/mail/bob@example.com/2024-01-31'));
  assert.equal(c.event.template, '/mail/{email}/{date}');
});

test('sampling: only sampled requests make Envoy send the body to ext_proc (mode_override)', async () => {
  const exchange = async (method: string, path: string, body: string): Promise<{ messages: number; event: RequestEvent; echo: string }> => {
    const before = mesh.extProcCounters()!.messages;
    const { res, event } = await seen(CLIENT, method, path, [['content-type', 'application/json']], body);
    assert.equal(res.status, 200);
    return { messages: mesh.extProcCounters()!.messages - before, event, echo: JSON.parse(res.body).echo };
  };
  // POST /orders/{id} is flagged by policy: sampled, so ext_proc receives the request body.
  const sampled = await exchange('POST', '/orders/7', '{"qty":1}');
  assert.equal(sampled.event.sampled, true);
  assert.equal(sampled.event.body?.toString(), '{"qty":1}');
  assert.ok(sampled.messages >= 3, 'request headers + request body + response headers (+ response body)');
  assert.equal(sampled.echo, '{"qty":1}', 'the body still reaches the app unchanged');
  // PUT is not flagged and the percentage is 0: headers only, in both directions.
  const unsampled = await exchange('PUT', '/orders/7', '{"qty":2}');
  assert.equal(unsampled.event.sampled, false);
  assert.equal(unsampled.event.body, undefined);
  assert.equal(unsampled.messages, 2, 'request headers + response headers only');
  assert.equal(unsampled.echo, '{"qty":2}');
});

test('sampling: a sampled body larger than Envoy\'s buffer limit is inspected up to the limit and still delivered whole', async () => {
  const big = JSON.stringify({ blob: 'x'.repeat(3 * 1024 * 1024) });
  const { res, event } = await seen(CLIENT, 'POST', '/orders/8', [['content-type', 'application/json']], big);
  assert.equal(res.status, 200, 'no 413: the body is not required to fit the buffer');
  assert.equal(event.sampled, true);
  assert.ok(event.body !== undefined && event.body.length > 0 && event.body.length <= big.length, 'ext_proc saw a prefix of the body');
  assert.equal(JSON.parse(res.body).echo.length, big.length, 'the app received the whole body');
});

test('fast-path deny and limits answer locally: no ext_proc stream, no upstream request', async () => {
  const streams = mesh.extProcCounters()!.streamsStarted;
  const appSeen = mesh.app.received.length;
  const eventsBefore = events.length;

  const denied = await send(ALICE, 'GET', '/orders/1');
  assert.equal(denied.status, 403);
  assert.equal(denied.headers['x-meshward-fastpath'], 'deny');
  assert.deepEqual(JSON.parse(denied.body), { error: 'forbidden', reason: 'fastpath_deny' });
  assert.equal((await send(BOB, 'DELETE', '/orders/9')).status, 403);
  const limited = [await send(CLIENT, 'GET', '/limited'), await send(CLIENT, 'GET', '/limited'), await send(CLIENT, 'GET', '/limited')];
  const localStreams = mesh.extProcCounters()!.streamsStarted - streams;
  assert.deepEqual(limited.map((r) => r.status), [200, 200, 429]);
  assert.equal(limited[2]!.headers['x-meshward-fastpath'], 'limit');
  assert.equal(localStreams, 2, 'only the two requests within the bucket opened ext_proc streams');
  assert.equal(mesh.app.received.length - appSeen, 2);
  assert.equal(events.length - eventsBefore, 2);

  assert.equal((await send(BOB, 'GET', '/orders/9')).status, 200, 'bob is denied DELETE only');
  const stats = await mesh.serverSidecar.stats('meshward_filter_local');
  assert.equal(stats.get('wasmcustom.meshward_filter_local_denies_total'), 2);
  assert.equal(stats.get('wasmcustom.meshward_filter_local_limits_total'), 1);
});

test('Envoy metrics: fixed names without paths or identities', async () => {
  await seen(CLIENT, 'POST', '/orders/3', [], '{}'); // sampled by policy
  const stats = await mesh.serverSidecar.stats('^wasmcustom\\.');
  // One memory gauge per Wasm VM (bounded: vm0..vm15), the rest fixed.
  const names = [...stats.keys()].filter((n) => !/^wasmcustom\.meshward_filter_vm([0-9]|1[0-5])_wasm_memory_bytes$/.test(n)).sort();
  assert.ok(stats.has('wasmcustom.meshward_filter_vm0_wasm_memory_bytes'));
  assert.deepEqual(names, [
    'wasmcustom.meshward_filter_capture_errors_total',
    'wasmcustom.meshward_filter_config_applied_total',
    'wasmcustom.meshward_filter_config_refresh_failed_total',
    'wasmcustom.meshward_filter_config_rejected_total',
    'wasmcustom.meshward_filter_connection_reads_total',
    'wasmcustom.meshward_filter_jwt_malformed_total',
    'wasmcustom.meshward_filter_local_denies_total',
    'wasmcustom.meshward_filter_local_limits_total',
    'wasmcustom.meshward_filter_local_reply_errors_total',
    'wasmcustom.meshward_filter_requests_total',
    'wasmcustom.meshward_filter_sampled_total',
    'wasmcustom.meshward_filter_wasm_memory_bytes',
  ]);
  assert.ok(stats.get('wasmcustom.meshward_filter_requests_total')! >= events.length);
  assert.ok(stats.get('wasmcustom.meshward_filter_sampled_total')! >= 1);
  assert.equal(stats.get('wasmcustom.meshward_filter_capture_errors_total'), 0);
});

test('bad input in real Envoy: never a trap, each case answered as stated', async () => {
  const invalidUtf8 = Buffer.from([0xff, 0xfe, 0xc3, 0x28]);
  // Invalid UTF-8 header values reach the filter; the JWT is flagged malformed.
  const utf8 = await seen(CLIENT, 'GET', '/u', [['x-bad', invalidUtf8], ['authorization', Buffer.concat([Buffer.from('Bearer '), invalidUtf8])]]);
  assert.equal(utf8.res.status, 200);
  assert.deepEqual(utf8.event.caller.user?.flags, ['malformed']);

  // Malformed JWTs: bad base64, wrong segment counts, JSON that is not an object.
  for (const token of ['a.%%%.c', 'abc', `${b64({ alg: 'HS256' })}.${b64({ sub: 'x' })}`, 'a.b.c.d', `${b64({ alg: 'HS256' })}.${b64('[1]')}.s`]) {
    const r = await seen(CLIENT, 'GET', '/jwt', [['authorization', `Bearer ${token}`]]);
    assert.equal(r.res.status, 200, token);
    assert.deepEqual(r.event.caller.user?.flags, ['malformed'], token);
  }
  // A 40 KB JWT payload (under Envoy's 60 KiB header limit): flagged oversize, not decoded.
  const bigToken = `${b64({ alg: 'HS256' })}.${b64({ sub: 'x', pad: 'A'.repeat(30_000) })}.s`;
  const big = await seen(CLIENT, 'GET', '/jwt', [['authorization', `Bearer ${bigToken}`]]);
  assert.deepEqual(big.event.caller.user?.flags, ['oversize']);

  // A 1 MB JWT, 64 KB header values and 1000 headers exceed Envoy's codec limits (60 KiB, 100 headers):
  // Envoy answers 431 before any filter runs.
  const streams = mesh.extProcCounters()!.streamsStarted;
  const mbToken = `${b64({ alg: 'HS256' })}.${b64({ pad: 'A'.repeat(1024 * 1024) })}.s`;
  for (const headers of [
    [['authorization', `Bearer ${mbToken}`]],
    [['x-big', 'v'.repeat(64 * 1024)]],
    Array.from({ length: 1000 }, (_, i): [string, string] => [`x-h-${i}`, 'v']),
  ] as [string, string][][]) {
    const r = await send(CLIENT, 'GET', '/big', headers).catch((err: Error) => ({ status: -1, body: err.message, headers: {} }));
    assert.ok(r.status === 431 || r.status === 413 || r.status === -1, `status ${r.status}`);
  }
  assert.equal(mesh.extProcCounters()!.streamsStarted, streams, 'rejected by the codec, no stream');
  // Under the codec limits (80 headers), the filter handles them (the app's own 16 KB header limit
  // is why the values are short here).
  const many = await seen(CLIENT, 'GET', '/many', Array.from({ length: 80 }, (_, i): [string, string] => [`x-h-${i}`, 'v'.repeat(100)]));
  assert.equal(many.res.status, 200);
  assert.equal(many.event.headers.get('x-h-79')?.[0], 'v'.repeat(100));

  // Encoded slashes and dot segments: templated as received (Envoy does not normalise here).
  for (const p of ['/a/%2F..%2F/123', '/a/%2e%2e/%2e/123', '/a/./b/../123']) {
    const r = await seen(CLIENT, 'GET', p);
    assert.equal(r.event.template, templatePath(r.event.path), p);
  }
  // 10,000 path segments (20 KB path): record bounded, template marked untrusted (server falls back).
  const longPath = '/' + Array.from({ length: 10_000 }, () => 'a').join('/');
  const long = await seen(CLIENT, 'GET', longPath);
  // Envoy and the filter pass it on; the sample app's own 16 KB request-line limit answers 431.
  assert.equal(long.res.status, 431);
  assert.equal(long.event.path, longPath);
  assert.equal(long.event.operation, undefined);
  assert.equal(long.event.caller.identitySource, 'filter');

  // The filter is still alive and capturing (a trap under FAIL_OPEN would leave no record).
  const after = await seen(CLIENT, 'GET', '/after/1');
  assert.equal(after.event.caller.identitySource, 'filter');
  assert.equal(after.event.operation, `GET ${HOST} /after/{id}`);
  const stats = await mesh.serverSidecar.stats('meshward_filter_(capture|local_reply)_errors|wasm.*(crash|fail)');
  for (const [name, value] of stats) assert.equal(value, 0, name);
  assert.ok(!/abort|RuntimeError|panic/i.test(await mesh.serverSidecar.logTail(200)), 'no trap in the Envoy log');
});
