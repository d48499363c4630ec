// Whatever arrives, the engine decides it: arbitrary paths, headers (duplicated, conflicting),
// bodies (invalid UTF-8, deep JSON, huge IDs) and responses never throw, and every decision is a
// well-formed allow or a 403/429 deny. Plus model checks of the window helpers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import { WindowDistinct } from '../../extproc/src/engine/state.ts';
import { SMALL_CAPS, T0, makeJwt } from '../unit/detectors/harness.ts';

const segment = fc.oneof(fc.string({ maxLength: 12 }), fc.integer({ min: 0, max: 200 }).map(String), fc.constantFrom('admin', 'login', 'register', 'users', 'v1', '%ZZ', '..', 'x'.repeat(10_000)));
const path = fc.tuple(fc.array(segment, { maxLength: 6 }), fc.option(fc.string({ maxLength: 40 }))).map(([s, q]) => `/${s.join('/')}${q === null ? '' : `?${q}`}`);
const headerValue = fc.oneof(fc.string({ maxLength: 30 }), fc.constant(`Bearer ${makeJwt({ sub: 'a', exp: 1 }, { alg: 'none' })}`), fc.constant('Bearer a.b'), fc.constant('10.0.0.1, 1.2.3.4'));
const headerName = fc.constantFrom('authorization', 'x-forwarded-for', 'content-length', 'content-type', 'x-api-key', 'cookie', 'x-other');
const jsonBody = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v))),
  fc.constant(Buffer.from(`${'['.repeat(100_000)}${']'.repeat(100_000)}`)),
  fc.constant(Buffer.from(JSON.stringify({ query: `mutation { ${'l: login(username: "a", password: "b") { t } '.repeat(200)} }` }))),
  fc.constant(Buffer.from(JSON.stringify({ id: 'i'.repeat(10_000), user_id: ['a', 'b'] }))),
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
  fc.constant(Buffer.from([0xff, 0xfe, 0x7b, 0x22, 0xc3, 0x28])),
);

const exchange = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'BREW', ''),
  authority: fc.constantFrom('svc', '', 'other.svc'),
  path,
  headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 6 }),
  body: fc.option(jsonBody),
  workload: fc.option(fc.constantFrom('spiffe://cluster.local/ns/a/sa/b', 'spiffe://x/'.padEnd(2000, 'y'))),
  status: fc.integer({ min: 0, max: 999 }),
  responseBody: fc.option(jsonBody),
  dt: fc.integer({ min: -5000, max: 60_000 }),
});

test('arbitrary exchanges never throw and always get a well-formed decision', () => {
  for (const mode of ['monitor', 'enforce'] as const) {
    const engine = new Engine({ denyRules: [], mode, settings: { caps: SMALL_CAPS, learning: { minDurationMs: 0, minRequests: 5 } } });
    engine.addObserver({ onDetectorError: (d, e) => { throw new Error(`${d}: ${(e as Error).stack}`); } });
    let t = T0;
    let n = 0;
    fc.assert(fc.property(fc.array(exchange, { minLength: 1, maxLength: 8 }), (xs) => {
      for (const x of xs) {
        t += x.dt;
        const headers = new Map<string, string[]>();
        for (const [k, v] of x.headers) headers.set(k, [...(headers.get(k) ?? []), v]);
        const request: RequestEvent = {
          requestId: `p${++n}`, time: t, method: x.method, authority: x.authority, path: x.path, headers,
          caller: x.workload === null ? { mtls: false, identitySource: 'none' } : { workload: x.workload, mtls: true, identitySource: 'filter' },
          ...(x.body === null ? {} : { body: x.body }),
        };
        const d = engine.decide(request);
        assert.ok(d.action === 'allow' || (d.action === 'deny' && (d.status === 403 || d.status === 429) && d.reason.length > 0));
        if (mode === 'monitor') assert.equal(d.action, 'allow');
        engine.observeResponse(request, { requestId: request.requestId, time: t, status: x.status, headers: new Map(), ...(x.responseBody === null ? {} : { body: x.responseBody }) });
      }
    }), { numRuns: 150 });
  }
});

test('a response for a request the engine never saw is observed without error', () => {
  const engine = new Engine({ denyRules: [], settings: { caps: SMALL_CAPS } });
  const request: RequestEvent = { requestId: 'ghost', time: T0, method: 'GET', authority: 'svc', path: '/x/1', headers: new Map(), caller: { mtls: false, identitySource: 'none' } };
  assert.doesNotThrow(() => engine.observeResponse(request, { requestId: 'ghost', time: T0, status: 200, headers: new Map() }));
});

test('WindowDistinct agrees with a naive model (distinct values last seen inside the window)', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd', 'e'), fc.integer({ min: 0, max: 3000 })), { maxLength: 40 }), (events) => {
    const d = new WindowDistinct(5000, 1000);
    const last = new Map<string, number>();
    let t = 0;
    for (const [v, dt] of events) {
      t += dt;
      const got = d.add(v, t);
      last.set(v, t);
      const expected = [...last.values()].filter((s) => s > t - 5000).length;
      assert.equal(got, expected);
    }
  }));
});
