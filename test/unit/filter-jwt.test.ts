// JWT peek and credential hashing in the filter, under the Node proxy-wasm host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { ProxyWasmHost, requestHeaders } from '../support/proxy-wasm-host.ts';
import { parseCaptureRecord, type CaptureRecord } from '../../extproc/src/wire/capture-record.ts';

const b64 = (o: unknown): string => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
const sha256 = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
const NOW_SECONDS = 1_700_000_000;

async function filter(): Promise<ProxyWasmHost> {
  const host = await ProxyWasmHost.load();
  assert.equal(host.configure({}), true);
  host.nowNanos = BigInt(NOW_SECONDS) * 1_000_000_000n;
  return host;
}

function withAuth(host: ProxyWasmHost, authorization: string | Buffer, extra: [string, string][] = []): { record: CaptureRecord; raw: string } {
  const result = host.request({ headers: requestHeaders('GET', '/x', [['authorization', authorization], ...extra]) });
  assert.equal(result.action, 0, 'request continues');
  const record = parseCaptureRecord(result.record);
  assert.ok(record, 'record present and well-formed');
  return { record, raw: result.record! };
}

test('claims of a signed token are captured; no flags; raw token never in the record', async () => {
  const host = await filter();
  const token = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ sub: 'alice', iss: 'https://idp.example', aud: ['orders', 'billing'], scope: 'orders:read orders:write', exp: NOW_SECONDS + 60, nbf: NOW_SECONDS - 60 })}.c2lnbmF0dXJl`;
  const { record, raw } = withAuth(host, `Bearer ${token}`);
  assert.deepEqual(record.user, {
    alg: 'RS256', sub: 'alice', iss: 'https://idp.example', aud: 'orders billing', scope: 'orders:read orders:write',
    exp: NOW_SECONDS + 60, nbf: NOW_SECONDS - 60, flags: [],
  });
  assert.equal(record.tokenHash, sha256(token));
  assert.ok(!raw.includes(token.split('.')[1]!), 'payload segment not in the record');
  assert.ok(!raw.includes('c2lnbmF0dXJl'), 'signature not in the record');
});

test('alg none, unsigned, expired and not-yet-valid tokens are flagged', async () => {
  const host = await filter();
  const none = withAuth(host, `bearer ${b64({ alg: 'none' })}.${b64({ sub: 'mallory', exp: NOW_SECONDS - 1 })}.`).record.user;
  assert.deepEqual(new Set(none?.flags), new Set(['alg_none', 'unsigned', 'expired']));
  assert.equal(none?.sub, 'mallory');
  const future = withAuth(host, `Bearer ${b64({ alg: 'HS256' })}.${b64({ sub: 'bob', nbf: NOW_SECONDS + 3600, scp: ['a', 'b'] })}.sig`).record.user;
  assert.deepEqual(future?.flags, ['not_yet_valid']);
  assert.equal(future?.scope, 'a b');
});

test('malformed tokens are flagged, never decoded into claims, never a trap', async () => {
  const host = await filter();
  const header = b64({ alg: 'HS256' });
  const cases: [string, string][] = [
    ['one segment', 'abc'],
    ['two segments', `${header}.${b64({ sub: 'x' })}`],
    ['four segments', `${header}.${b64({ sub: 'x' })}.s.t`],
    ['bad base64 in payload', `${header}.%%%%.sig`],
    ['bad base64 length', `${header}.abcde.sig`],
    ['payload not JSON', `${header}.${b64('not json')}.sig`],
    ['payload JSON array', `${header}.${b64([1, 2])}.sig`],
    ['header not JSON', `${b64('{')}.${b64({ sub: 'x' })}.sig`],
    ['deeply nested payload', `${header}.${b64('['.repeat(5000) + ']'.repeat(5000))}.sig`],
    ['empty', ''],
  ];
  for (const [name, token] of cases) {
    const user = withAuth(host, `Bearer ${token}`).record.user;
    assert.deepEqual(user?.flags, ['malformed'], name);
    assert.equal(user?.sub, undefined, name);
  }
  assert.equal(host.counter('meshward_filter_jwt_malformed_total'), cases.length);
});

test('a 1 MB token is flagged oversize and neither decoded nor hashed', async () => {
  const host = await filter();
  const token = `${b64({ alg: 'HS256' })}.${b64({ sub: 'x', pad: 'A'.repeat(1024 * 1024) })}.sig`;
  const { record } = withAuth(host, `Bearer ${token}`);
  assert.deepEqual(record.user?.flags, ['oversize']);
  assert.equal(record.tokenHash, undefined);
});

test('x-api-key is captured as its SHA-256 only', async () => {
  const host = await filter();
  const { record, raw } = withAuth(host, 'Basic dXNlcjpwYXNz', [['x-api-key', 'sk_live_123456']]);
  assert.equal(record.apiKeyHash, sha256('sk_live_123456'));
  assert.equal(record.user, undefined, 'non-bearer authorization is not a JWT');
  assert.ok(!raw.includes('sk_live_123456'));
});

test('the filter SHA-256 equals node:crypto for arbitrary keys (property)', async () => {
  const host = await filter();
  fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), (bytes) => {
    const key = Buffer.from(bytes);
    const r = parseCaptureRecord(host.request({ headers: requestHeaders('GET', '/', [['x-api-key', key]]) }).record);
    assert.equal(r?.apiKeyHash, sha256(key));
  }), { numRuns: 300 });
});

test('random bearer values never trap and always yield a well-formed record (property)', async () => {
  const host = await filter();
  fc.assert(fc.property(fc.oneof(
    fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.concat([Buffer.from('Bearer '), Buffer.from(b)])),
    fc.array(fc.base64String({ maxLength: 60 }), { maxLength: 5 }).map((segs) => Buffer.from(`Bearer ${segs.join('.')}`)),
  ), (value) => {
    const result = host.request({ headers: requestHeaders('GET', '/', [['authorization', value]]) });
    assert.equal(result.action, 0);
    assert.ok(parseCaptureRecord(result.record));
  }), { numRuns: 400 });
});
