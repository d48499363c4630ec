// Body decoding under caps (issue #6, "Bodies" and "Bad input"): JSON, form, multipart fields,
// gzip/deflate/br, and what happens for each kind of bad input: 100k-deep JSON, 10 MB bodies,
// invalid UTF-8, __proto__/constructor keys, decompression bombs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { BodyDecoder, decodeBody, parseMediaType } from '../../extproc/src/inspect/body.ts';
import { DEFAULT_BODY_LIMITS } from '../../extproc/src/inspect/limits.ts';
import { parseJsonBounded, prototypePollutionKeys, walkJsonStrings } from '../../extproc/src/inspect/json.ts';

const h = (entries: Record<string, string>): Map<string, string[]> => new Map(Object.entries(entries).map(([k, v]) => [k, [v]]));
const codes = (problems: { code: string }[]): string[] => problems.map((p) => p.code);

test('JSON body is parsed; its strings are walked with their paths', () => {
  const d = decodeBody(Buffer.from('{"user":{"name":"ann","tags":["a",2]}}'), h({ 'content-type': 'application/json; charset=utf-8' }));
  assert.equal(d.content.kind, 'json');
  assert.deepEqual(d.problems, []);
  const leaves = [...walkJsonStrings(d.content.kind === 'json' ? d.content.value : null, 100)].map((v) => `${v.path.join('.')}=${v.value}`);
  assert.deepEqual(leaves, ['user.name=ann', 'user.tags.0=a', 'user.tags.1=2']);
});

test('+json media types are JSON; an unlabelled body that starts like JSON is tried as JSON', () => {
  assert.equal(decodeBody(Buffer.from('{"a":1}'), h({ 'content-type': 'application/problem+json' })).content.kind, 'json');
  assert.equal(decodeBody(Buffer.from(' [1,2]'), h({})).content.kind, 'json');
  assert.equal(decodeBody(Buffer.from('hello'), h({})).content.kind, 'text');
});

test('urlencoded form fields are decoded, and capped in number with a reason', () => {
  const d = decodeBody(Buffer.from('a=1&b=x%20y&a=2'), h({ 'content-type': 'application/x-www-form-urlencoded' }));
  assert.deepEqual(d.content.kind === 'form' ? d.content.fields : [], [['a', '1'], ['b', 'x y'], ['a', '2']]);
  const many = Array.from({ length: 50 }, (_, i) => `f${i}=v`).join('&');
  const capped = decodeBody(Buffer.from(many), h({ 'content-type': 'application/x-www-form-urlencoded' }), { ...DEFAULT_BODY_LIMITS, maxFields: 10 });
  assert.equal(capped.content.kind === 'form' ? capped.content.fields.length : -1, 10);
  assert.deepEqual(codes(capped.problems), ['too-many-fields']);
});

test('multipart: fields are read, file parts are only counted', () => {
  const body = [
    '--XyZ', 'Content-Disposition: form-data; name="title"', '', 'hello', '--XyZ',
    'Content-Disposition: form-data; name="upload"; filename="a.bin"', 'Content-Type: application/octet-stream', '', '\u0000\u0001secret-bytes', '--XyZ',
    'Content-Disposition: form-data; name="role"', '', 'admin', '--XyZ--', '',
  ].join('\r\n');
  const d = decodeBody(Buffer.from(body, 'latin1'), h({ 'content-type': 'multipart/form-data; boundary=XyZ' }));
  assert.equal(d.content.kind, 'multipart');
  if (d.content.kind !== 'multipart') return;
  assert.deepEqual(d.content.fields, [['title', 'hello'], ['role', 'admin']]);
  assert.equal(d.content.files, 1);
  assert.ok(!JSON.stringify(d).includes('secret-bytes'), 'file content is never decoded into the result');
});

test('multipart without a boundary, or whose boundary never appears, is reported, not thrown', () => {
  assert.deepEqual(codes(decodeBody(Buffer.from('x'), h({ 'content-type': 'multipart/form-data' })).problems), ['malformed-multipart']);
  assert.deepEqual(codes(decodeBody(Buffer.from('x'), h({ 'content-type': 'multipart/form-data; boundary=q' })).problems), ['malformed-multipart']);
});

for (const [coding, compress] of [['gzip', zlib.gzipSync], ['deflate', zlib.deflateSync], ['br', zlib.brotliCompressSync]] as const) {
  test(`content-encoding ${coding} is undone before parsing`, () => {
    const d = decodeBody(compress(Buffer.from('{"role":"admin"}')), h({ 'content-type': 'application/json', 'content-encoding': coding }));
    assert.deepEqual(d.content.kind === 'json' ? d.content.value : undefined, { role: 'admin' });
  });
}

test('raw deflate (no zlib header), which some servers send as "deflate", is accepted', () => {
  const d = decodeBody(zlib.deflateRawSync(Buffer.from('{"a":1}')), h({ 'content-type': 'application/json', 'content-encoding': 'deflate' }));
  assert.deepEqual(d.content.kind === 'json' ? d.content.value : undefined, { a: 1 });
});

test('a gzip bomb stops at the decompressed-size cap with a clear reason', () => {
  const bomb = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024)); // 64 MiB of zeros in ~64 KB
  assert.ok(bomb.length < 200_000);
  const d = decodeBody(bomb, h({ 'content-type': 'application/json', 'content-encoding': 'gzip' }), { ...DEFAULT_BODY_LIMITS, maxDecompressedBytes: 1024 * 1024 });
  assert.deepEqual(codes(d.problems), ['decompression-bomb']);
  assert.match(d.problems[0]!.detail, /expands beyond 1048576 bytes.*stopped at the cap/);
  assert.equal(d.content.kind, 'binary');
});

test('corrupt compressed data and unknown encodings are reasons, not exceptions', () => {
  assert.deepEqual(codes(decodeBody(Buffer.from('not gzip'), h({ 'content-encoding': 'gzip' })).problems), ['decompression-failed']);
  assert.deepEqual(codes(decodeBody(Buffer.from('x'), h({ 'content-encoding': 'zstd' })).problems), ['unsupported-encoding']);
  assert.deepEqual(codes(decodeBody(Buffer.from('x'), h({ 'content-encoding': 'gzip,gzip,gzip,gzip,gzip' })).problems), ['unsupported-encoding']);
});

test('a 10 MB body is inspected up to the cap and says so', () => {
  const big = Buffer.from(`{"note":"${'a'.repeat(10 * 1024 * 1024)}"}`);
  const d = decodeBody(big, h({ 'content-type': 'application/json' }));
  assert.deepEqual(codes(d.problems), ['truncated']);
  assert.match(d.problems[0]!.detail, new RegExp(`body of ${big.length} bytes inspected up to the ${DEFAULT_BODY_LIMITS.maxBodyBytes}-byte cap`));
  assert.equal(d.text.length, DEFAULT_BODY_LIMITS.maxBodyBytes);
  assert.equal(d.wireBytes, big.length);
});

test('100k-deep JSON is refused by the linear pre-scan, before JSON.parse recurses', () => {
  const deep = '['.repeat(100_000) + ']'.repeat(100_000);
  const d = decodeBody(Buffer.from(deep), h({ 'content-type': 'application/json' }));
  assert.deepEqual(codes(d.problems), ['json-too-deep']);
  assert.match(d.problems[0]!.detail, /deeper than 64 levels/);
  const objects = '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000);
  assert.equal(parseJsonBounded(objects, 64, 100_000).ok, false);
});

test('brackets inside strings do not count towards depth; escaped quotes do not end strings', () => {
  const r = parseJsonBounded(JSON.stringify({ s: '[[[[[[[[[[\\"{{{{{{{{' }), 3, 100);
  assert.equal(r.ok, true);
});

test('too many JSON values is refused with a reason', () => {
  const r = parseJsonBounded(JSON.stringify(Array.from({ length: 1000 }, () => 1)), 64, 100);
  assert.equal(r.ok ? '' : r.problem.code, 'json-too-large');
});

test('invalid UTF-8 is reported and decoded with replacement characters', () => {
  const d = decodeBody(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), h({ 'content-type': 'application/json' }));
  assert.deepEqual(codes(d.problems), ['invalid-utf8']);
  assert.deepEqual(d.content.kind === 'json' ? d.content.value : undefined, { a: '\ufffd\ufffd' });
});

test('__proto__ and constructor keys stay plain data: nothing is polluted, and they are reported', () => {
  const d = decodeBody(Buffer.from('{"__proto__":{"polluted":true},"a":{"constructor":{"prototype":{"polluted":true}}}}'), h({ 'content-type': 'application/json' }));
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
  const value = d.content.kind === 'json' ? d.content.value : undefined;
  assert.deepEqual(prototypePollutionKeys(value, 1000).sort(), ['/__proto__', '/a/constructor', '/a/constructor/prototype']);
});

test('invalid JSON under a JSON content type is a reason; a truncated JSON body is not blamed on the client', () => {
  assert.deepEqual(codes(decodeBody(Buffer.from('{"a":'), h({ 'content-type': 'application/json' })).problems), ['invalid-json']);
  const cut = decodeBody(Buffer.from(`{"a":"${'x'.repeat(100)}"}`), h({ 'content-type': 'application/json' }), { ...DEFAULT_BODY_LIMITS, maxBodyBytes: 50 });
  assert.deepEqual(codes(cut.problems), ['truncated']);
});

test('media types are parsed case-insensitively with quoted parameters', () => {
  const m = parseMediaType('Multipart/Form-Data; Boundary="a b"; charset=utf-8');
  assert.equal(m.type, 'multipart/form-data');
  assert.equal(m.params.get('boundary'), 'a b');
});

test('the shared decoder decodes each body once', () => {
  const decoder = new BodyDecoder();
  const body = Buffer.from('{"a":1}');
  const headers = h({ 'content-type': 'application/json' });
  assert.equal(decoder.decode(body, headers), decoder.decode(body, headers));
  assert.notEqual(decoder.decode(Buffer.from('{"a":1}'), headers), decoder.decode(body, headers));
});
