// Parameter pollution (API1): one object reference given twice with different values, in the path
// and the query, a header or the JSON body, or as a repeated query key or header. Names match after
// normalisation; path parameters take the spec's name or the singularised collection before them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalName, findPollution, singular } from '../../extproc/src/engine/parameter-pollution.ts';
import { toExchange } from '../../extproc/src/engine/exchange.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import { Harness, T0, WEB, bearer, ofDetector } from './detectors/harness.ts';

function exchangeOf(method: string, path: string, options: { headers?: Record<string, string | string[]>; body?: unknown; template?: string } = {}) {
  const headers = new Map<string, string[]>();
  for (const [k, v] of Object.entries(options.headers ?? {})) headers.set(k.toLowerCase(), Array.isArray(v) ? v : [v]);
  const request: RequestEvent = {
    requestId: 'r1', time: T0, caller: { workload: WEB, mtls: true, identitySource: 'filter' }, method, authority: 'shop.svc', path, headers,
    ...(options.body !== undefined ? { body: Buffer.from(JSON.stringify(options.body)) } : {}),
    ...(options.template !== undefined ? { template: options.template } : {}),
  };
  return toExchange(request);
}

test('names normalise across spellings and collections singularise', () => {
  for (const n of ['userId', 'user_id', 'user-id', 'X-User-Id', 'USER.ID']) assert.equal(canonicalName(n), 'userid', n);
  assert.deepEqual(['users', 'categories', 'addresses', 'boxes', 'status', 'items', 'data', 'branches'].map(singular),
    ['user', 'category', 'address', 'box', 'status', 'item', 'data', 'branch']);
});

test('path vs query, header and body: different values are pollution, equal ones are not', () => {
  const cases: [string, ReturnType<typeof exchangeOf>, string | undefined][] = [
    ['path/query', exchangeOf('GET', '/users/5?user_id=7'), 'query'],
    ['path/query camelCase', exchangeOf('GET', '/users/5?userId=7'), 'query'],
    ['bare id names the object the path ends with', exchangeOf('GET', '/users/5?id=7'), 'query'],
    ['path/header', exchangeOf('GET', '/accounts/5', { headers: { 'X-Account-Id': '7' } }), 'header'],
    ['version segment skipped', exchangeOf('GET', '/books/v1/5?book_id=6'), 'query'],
    ['plural -ies', exchangeOf('GET', '/categories/3?category-id=4'), 'query'],
    ['PUT body', exchangeOf('PUT', '/users/5', { body: { user_id: 7, name: 'x' } }), 'body'],
    ['PATCH body bare id', exchangeOf('PATCH', '/users/5', { body: { id: '7' } }), 'body'],
    ['nested collection', exchangeOf('PUT', '/users/5/address', { body: { userId: 9, street: 'a' } }), 'body'],
    ['equal values', exchangeOf('GET', '/users/5?user_id=5'), undefined],
    ['leading zeros', exchangeOf('GET', '/users/0005?user_id=5'), undefined],
    ['case-insensitive', exchangeOf('GET', '/users/AB12?user_id=ab12'), undefined],
    ['another object\'s field', exchangeOf('GET', '/users/5/orders?order_id=9'), undefined],
    ['bare id in the body of a sub-resource names that sub-resource', exchangeOf('PUT', '/users/5/address', { body: { id: 9 } }), undefined],
    ['GET carries no body references', exchangeOf('GET', '/users/5', { body: { user_id: 7 } }), undefined],
    ['tracing header', exchangeOf('GET', '/requests/5', { headers: { 'x-request-id': 'abc' } }), undefined],
    ['session header is never an object reference', exchangeOf('GET', '/sessions/5', { headers: { 'x-session-id': 'secret-session' } }), undefined],
  ];
  for (const [name, exchange, where] of cases) {
    const found = findPollution(exchange);
    assert.equal(found?.second.where, where, name);
    if (where !== undefined) assert.equal(found?.first.where, 'path', name);
  }
});

test('repeated query keys and headers, and query vs body, conflict by normalised name', () => {
  assert.deepEqual(findPollution(exchangeOf('GET', '/search?id=5&id=7'))?.second, { where: 'query', name: 'id', value: '7' });
  assert.equal(findPollution(exchangeOf('GET', '/account?user_id=5&userId=7'))?.field, 'userid');
  assert.equal(findPollution(exchangeOf('GET', '/account', { headers: { 'x-tenant-id': ['a', 'b'] } }))?.field, 'tenantid');
  assert.equal(findPollution(exchangeOf('POST', '/transfer?account_id=1', { body: { accountId: 2, amount: 5 } }))?.field, 'accountid');
  assert.equal(findPollution(exchangeOf('GET', '/search?id=5&id=5')), undefined);
  // A JSON array is a list of IDs, not the same field twice.
  assert.equal(findPollution(exchangeOf('PUT', '/groups', { body: { member_ids: [1, 2], id: 3 } })), undefined);
});

test('the spec\'s parameter name, when the route template carries one, names the path parameter', () => {
  const spec = { template: '/members/{accountId}' };
  assert.equal(findPollution(exchangeOf('GET', '/members/5?account_id=7', spec))?.field, 'accountid');
  // Without the spec the position is a member id, and account_id names something else.
  assert.equal(findPollution(exchangeOf('GET', '/members/5?account_id=7')), undefined);
  assert.equal(findPollution(exchangeOf('GET', '/members/5?member_id=7'))?.field, 'memberid');
});

test('bad input: 10 KB IDs and hostile header names stay bounded in the evidence', () => {
  const h = new Harness();
  const huge = 'x'.repeat(10_000);
  const r = h.send({ time: T0, path: `/users/${huge}?user_id=${huge}y`, workload: WEB, client: '10.9.9.1' });
  const [f] = ofDetector(r.requestFindings, 'bola');
  assert.ok(f !== undefined, 'two different 10 KB IDs still conflict (compared as hashes)');
  for (const p of f.evidence.places as { value: string; name: string }[]) assert.ok(p.value.length <= 64 && p.name.length <= 64);
  const name = `x-${'a'.repeat(5000)}-id`;
  const r2 = h.send({ time: T0 + 1, path: '/x', workload: WEB, client: '10.9.9.2', headers: { [name]: '1', [`${name.toUpperCase()}x`]: '2' } });
  assert.ok(JSON.stringify(r2.findings).length < 4000);
});

test('engine: pollution is a request-time BOLA finding with both places and values', () => {
  const h = new Harness();
  const r = h.send({ time: T0, path: '/accounts/5', workload: WEB, headers: { ...bearer({ sub: 'eve', exp: T0 / 1000 + 60 }), 'X-Account-Id': '7' } });
  const [f] = ofDetector(r.requestFindings, 'bola');
  assert.equal(f?.category, 'API1:2023-BOLA');
  assert.match(f!.summary, /parameter pollution/);
  assert.deepEqual(f!.evidence, { kind: 'parameter-pollution', field: 'accountid', places: [{ where: 'path', name: '{}', value: '5' }, { where: 'header', name: 'x-account-id', value: '7' }] });
});

test('a header repeating the caller\'s own identity is identity propagation, not a second reference', () => {
  const jwt = bearer({ sub: '7', exp: T0 / 1000 + 60 });
  assert.equal(findPollution(exchangeOf('POST', '/admin/users/42/disable', { headers: { ...jwt, 'X-User-Id': '7' } })), undefined);
  assert.equal(findPollution(exchangeOf('POST', '/admin/users/42/disable', { headers: { ...jwt, 'X-User-Id': '8' } }))?.second.where, 'header');
  // The query is the API's own contract: the caller's identity there still conflicts.
  assert.equal(findPollution(exchangeOf('GET', '/users/42?user_id=7', { headers: jwt }))?.second.where, 'query');
});

test('engine: a conflict several established callers make is how the API works; one caller repeating it is not', () => {
  const h = new Harness();
  let t = T0;
  const who = (n: number) => ({ workload: WEB, client: `10.8.0.${n}` });
  // Each caller first reads a couple of objects (established), then follows user 5.
  const follow = (n: number) => {
    for (const id of [`a${n}x1`, `a${n}x2`]) h.send({ time: (t += 100), path: `/posts/${id}`, ...who(n), responseBody: { id } });
    return ofDetector(h.send({ time: (t += 100), method: 'POST', path: `/users/u${n}5/follow?user_id=u${n}7`, ...who(n) }).requestFindings, 'bola').length;
  };
  // One established caller repeating the conflict does not make it normal ...
  for (const id of ['b1x1', 'b1x2']) h.send({ time: (t += 100), path: `/posts/${id}`, ...who(99), responseBody: { id } });
  const repeated = Array.from({ length: 4 }, () => ofDetector(h.send({ time: (t += 100), method: 'POST', path: '/users/u15/follow?user_id=u17', ...who(99) }).requestFindings, 'bola').length);
  assert.deepEqual(repeated, [1, 1, 1, 1]);
  // ... three distinct established callers do (it counted as the first).
  assert.deepEqual([1, 2, 3, 4].map(follow), [1, 1, 0, 0]);
  // Callers that never made an object request (one-shot identities) do not count.
  const oneShot = [50, 51, 52, 53].map((n) => ofDetector(h.send({ time: (t += 100), method: 'PUT', path: `/users/u${n}5?user_id=u${n}7`, ...who(n) }).requestFindings, 'bola').length);
  assert.deepEqual(oneShot, [1, 1, 1, 1]);
});
