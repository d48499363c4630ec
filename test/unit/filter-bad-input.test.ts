// Bad input the filter must survive without a trap, with bounded output and memory: invalid UTF-8,
// 1000 headers, 64 KB values, encoded slashes, dot segments, 10,000 path segments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProxyWasmHost, requestHeaders } from '../support/proxy-wasm-host.ts';
import { parseCaptureRecord } from '../../extproc/src/wire/capture-record.ts';
import { templatePath } from '../../extproc/src/engine/operation.ts';
import fc from 'fast-check';

async function filter(): Promise<ProxyWasmHost> {
  const host = await ProxyWasmHost.load();
  assert.equal(host.configure({ sampling: { percent: 100 } }), true);
  return host;
}

test('invalid UTF-8 in header values and the path: escaped in the record, decoded as U+FFFD, no trap', async () => {
  const host = await filter();
  const bad = Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x0a, 0x0d, 0x25]);
  const result = host.request({ headers: [
    [':method', 'GET'], [':path', Buffer.concat([Buffer.from('/p/'), bad])], [':authority', bad], ['authorization', Buffer.concat([Buffer.from('Bearer '), bad])],
  ] });
  assert.equal(result.action, 0);
  assert.ok(/^[\x20-\x7e\n]*$/.test(result.record!), 'record is printable ASCII lines only');
  const r = parseCaptureRecord(result.record);
  assert.equal(r?.path, Buffer.concat([Buffer.from('/p/'), bad]).toString('utf8'));
  assert.deepEqual(r?.user?.flags, ['malformed']);
  assert.equal(r?.fields.size, [...r!.fields.keys()].length);
  assert.ok(!r?.fields.has(''), 'no value became a field of its own');
});

test('1000 headers and 64 KB values: the record stays bounded and parseable', async () => {
  const host = await filter();
  const big = 'v'.repeat(64 * 1024);
  const headers = requestHeaders('GET', `/${'a'.repeat(64 * 1024)}`, [
    ...Array.from({ length: 1000 }, (_, i): [string, string] => [`x-h-${i}`, big]),
    ['x-api-key', big], ['authorization', `Bearer ${big}`],
  ], 'h'.repeat(64 * 1024));
  const result = host.request({ headers });
  assert.equal(result.action, 0);
  assert.ok(result.record!.length < 64 * 1024, `record is ${result.record!.length} bytes`);
  const r = parseCaptureRecord(result.record);
  assert.ok(r);
  assert.deepEqual([...r.truncated].sort(), ['authority', 'op', 'path', 'template']);
  assert.equal(r.template, undefined, 'a cut template is not trusted');
  assert.equal(r.operation, undefined);
  assert.deepEqual(r.user?.flags, ['oversize']);
  assert.equal(r.apiKeyHash, undefined, '64 KB api key is over the hashing bound');
});

test('encoded slashes and dot segments are templated as received, never decoded or normalised', async () => {
  const host = await filter();
  for (const p of ['/a/%2F..%2F/123', '/a/../b/./123', '/..%2f..%2f/etc/passwd', '/%2e%2e/%2e/1', '//..//']) {
    const r = parseCaptureRecord(host.request({ headers: requestHeaders('GET', p) }).record);
    assert.equal(r?.template, templatePath(p), p);
  }
});

test('10,000 path segments: templated in full (linear), no trap, record bounded', async () => {
  const host = await filter();
  const p = '/' + Array.from({ length: 10_000 }, (_, i) => (i % 2 ? String(i) : 'seg')).join('/');
  const r = parseCaptureRecord(host.request({ headers: requestHeaders('GET', p) }).record);
  assert.ok(r);
  assert.ok(r.truncated.includes('path'));
  assert.equal(r.template, undefined);
});

test('memory does not grow with the number of requests once buffers reached their working size', async () => {
  const host = await filter();
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const token = `${b64({ alg: 'RS256' })}.${b64({ sub: 'u', iss: 'i', aud: ['a'], exp: 1 })}.sig`;
  const run = (n: number): void => {
    for (let i = 0; i < n; i++) {
      host.request({ headers: requestHeaders('POST', `/users/${i}/orders/${i * 31}?q=${i}`, [['authorization', `Bearer ${token}`], ['x-request-id', `id-${i}`]]) });
    }
  };
  run(2000);
  const after2k = host.memoryBytes;
  run(20_000);
  assert.equal(host.memoryBytes, after2k, 'linear memory unchanged over 20,000 more requests');
});

test('arbitrary bytes in method, path, authority and credentials never trap (property)', async () => {
  const host = await ProxyWasmHost.load();
  assert.equal(host.configure({
    deny: { identities: ['spiffe://cluster.local/ns/default/sa/nobody'] },
    limits: [{ identity: 'ip:10.0.0.1', operation: 'GET h /', ratePerSecond: 1, burst: 1 }],
    templates: [{ template: '/a/{x}' }, { method: 'POST', template: '/{p}/{q}' }],
    sampling: { percent: 50, seed: 's', alwaysOperations: ['POST h /a/{x}'], suspectIdentities: ['ip:10.0.0.2'] },
  }), true);
  const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((b) => Buffer.from(b));
  fc.assert(fc.property(bytes(12), bytes(300), bytes(40), bytes(200), bytes(60), fc.option(bytes(30)), (method, path, authority, auth, apiKey, source) => {
    const result = host.request({
      headers: [[':method', method], [':path', path], [':authority', authority], ['authorization', Buffer.concat([Buffer.from('Bearer '), auth])], ['x-api-key', apiKey]],
      properties: source === null ? {} : { 'source\0address': source },
    });
    assert.ok(result.action === 0 || result.localResponse !== undefined);
    assert.ok(parseCaptureRecord(result.record), 'record parses');
  }), { numRuns: 1500 });
});
