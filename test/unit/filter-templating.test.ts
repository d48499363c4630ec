// The filter's route templating must agree with the engine's baseline rules (extproc/src/engine/
// operation.ts): both derive the operation id, and a disagreement would split one operation in two.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProxyWasmHost, requestHeaders } from '../support/proxy-wasm-host.ts';
import { parseCaptureRecord } from '../../extproc/src/wire/capture-record.ts';
import { templatePath } from '../../extproc/src/engine/operation.ts';
import { pathOnly } from '../../extproc/src/engine/exchange.ts';

async function filterWith(config: object = {}): Promise<ProxyWasmHost> {
  const host = await ProxyWasmHost.load();
  assert.equal(host.configure(config), true);
  return host;
}

function captured(host: ProxyWasmHost, method: string, path: string): { template?: string; operation?: string } {
  const r = parseCaptureRecord(host.request({ headers: requestHeaders(method, path) }).record);
  assert.ok(r, 'capture record present and well-formed');
  return { template: r.template, operation: r.operation };
}

const KNOWN_PATHS = [
  '/', '', '/users/8123/orders/f47ac10b-58cc-4372-a567-0e02b2c3d479', '/users/8123?expand=1', '/a//b/', '/v1/hex/0123456789abcdef0',
  '/v1/words/deadbeefdeadbeefdead', '/mail/alice@example.com', '/mail/a@b.c', '/mail/@example.com', '/d/2024-01-31',
  '/d/2024-01-31T10:20', '/d/2024-01-31T10:20:30.123Z', '/d/2024-01-31 10:20:30+02:00', '/d/2024-01-31T10:20+0200', '/d/2024-13-1',
  '/t/eyJhbGciOiJIUzI1NiJ9abc', '/t/aB3aaaaaaaaaaaaaaaaa', '/t/getAccountInformation', '/t/abcdefghij1234567890',
  '/F47AC10B-58CC-4372-A567-0E02B2C3D479', '/x/%2F..%2F/etc', '/x/../y/./z', '/x/%E2%82%AC', '/users/12/', '/ü/123',
];

test('filter templates equal operation.ts templates for a fixed path list', async () => {
  const host = await filterWith();
  for (const p of KNOWN_PATHS) {
    const { template, operation } = captured(host, 'GET', p);
    const expected = templatePath(pathOnly(p));
    assert.equal(template ?? '', expected, `template of ${JSON.stringify(p)}`);
    assert.equal(operation, `GET orders.shop ${expected}`);
  }
});

const hex = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: min, maxLength: max });
const segment = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'abcxyz-_.~'), maxLength: 12 }),
  fc.nat().map(String),
  fc.uuid(),
  hex(14, 40),
  fc.emailAddress().filter((e) => !e.includes('/') && !e.includes('?')),
  fc.date({ min: new Date('1900-01-01'), max: new Date('2200-01-01'), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.date({ noInvalidDate: true, min: new Date('1000-01-01'), max: new Date('9999-01-01') }).map((d) => d.toISOString().slice(0, 10)),
  fc.base64String({ minLength: 16, maxLength: 48 }).map((s) => s.replace(/\//g, '_')),
  fc.string({ unit: fc.constantFrom(...'aA0+=_-'), minLength: 18, maxLength: 24 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 10 }).map((s) => s.replace(/[/?#]/g, '')),
);

test('filter and operation.ts agree on generated paths (property)', async () => {
  const host = await filterWith();
  fc.assert(fc.property(fc.array(segment, { maxLength: 8 }), fc.boolean(), (segs, query) => {
    const p = `/${segs.join('/')}${query ? '?q=1/2' : ''}`;
    const { template } = captured(host, 'GET', p);
    assert.equal(template ?? '', templatePath(pathOnly(p)), `template of ${JSON.stringify(p)}`);
  }), { numRuns: 600 });
});

test('an exact template pushed by the server wins over the heuristics; most specific entry first', async () => {
  const host = await filterWith({
    templates: [
      { template: '/users/me/orders' },
      { method: 'POST', template: '/users/{userId}/orders' },
      { template: '/users/{userId}/orders/{orderId}' },
    ],
  });
  assert.equal(captured(host, 'GET', '/users/me/orders').template, '/users/me/orders');
  assert.equal(captured(host, 'POST', '/users/42/orders?x=1').template, '/users/{userId}/orders');
  // Method-specific entry does not match GET: the heuristic applies.
  assert.equal(captured(host, 'GET', '/users/42/orders').template, '/users/{id}/orders');
  assert.equal(captured(host, 'GET', '/users/alice/orders/7').template, '/users/{userId}/orders/{orderId}');
  // Parameters never match empty segments; segment counts must agree.
  assert.equal(captured(host, 'GET', '/users//orders/7').template, '/users//orders/{id}');
  assert.equal(captured(host, 'GET', '/users/alice/orders/7/x').template, '/users/alice/orders/{id}/x');
  assert.equal(captured(host, 'POST', '/users/alice/orders').operation, 'POST orders.shop /users/{userId}/orders');
});
