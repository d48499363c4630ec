// Property tests of the content-inspection parsers (issue #6): on arbitrary input they never throw,
// never pollute prototypes, agree with the reference parsers where they should, and see through
// every numeric encoding of an internal address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { decodeBody, type BodyProblemCode } from '../../extproc/src/inspect/body.ts';
import { parseJsonBounded, prototypePollutionKeys } from '../../extproc/src/inspect/json.ts';
import { ContractValidator, type OpenApiOperation } from '../../extproc/src/inspect/contract.ts';
import { analyzeUrlValue } from '../../extproc/src/inspect/ssrf.ts';
import { analyzeGraphql } from '../../extproc/src/inspect/graphql.ts';
import { luhnValid, scanSensitive } from '../../extproc/src/inspect/sensitive.ts';

const PROBLEM_CODES: ReadonlySet<BodyProblemCode> = new Set([
  'truncated', 'decompression-bomb', 'decompression-failed', 'unsupported-encoding', 'invalid-utf8', 'invalid-json',
  'json-too-deep', 'json-too-large', 'too-many-fields', 'malformed-multipart',
]);

const contentTypes = fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=b', 'multipart/form-data', 'text/plain', 'application/octet-stream', 'application/graphql', '');
const encodings = fc.constantFrom(undefined, 'gzip', 'deflate', 'br', 'identity', 'gzip, br', 'bogus');

test('decodeBody never throws and only reports known problems, for any bytes and headers', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), contentTypes, encodings, (bytes, type, encoding) => {
    const headers = new Map<string, string[]>();
    if (type) headers.set('content-type', [type]);
    if (encoding) headers.set('content-encoding', [encoding]);
    const d = decodeBody(Buffer.from(bytes), headers, { maxBodyBytes: 1024, maxDecompressedBytes: 4096, maxJsonDepth: 8, maxJsonNodes: 200, maxFields: 20, maxFieldChars: 100 });
    for (const p of d.problems) assert.ok(PROBLEM_CODES.has(p.code) && p.detail.length > 0);
    assert.ok(d.text.length <= 4096);
  }), { numRuns: 500 });
});

test('compressed JSON decodes to the same value as the plain body', () => {
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 4 }), fc.constantFrom('gzip', 'deflate', 'br'), (value, coding) => {
    const plain = Buffer.from(JSON.stringify(value));
    const packed = coding === 'gzip' ? zlib.gzipSync(plain) : coding === 'deflate' ? zlib.deflateSync(plain) : zlib.brotliCompressSync(plain);
    const d = decodeBody(packed, new Map([['content-type', ['application/json']], ['content-encoding', [coding]]]));
    assert.deepEqual(d.content.kind === 'json' ? d.content.value : Symbol('not json'), JSON.parse(plain.toString()));
  }), { numRuns: 200 });
});

test('parseJsonBounded agrees with JSON.parse within the caps and refuses beyond them', () => {
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
    const text = JSON.stringify(value);
    const r = parseJsonBounded(text, 64, 100_000);
    assert.ok(r.ok);
    assert.deepEqual(r.value, JSON.parse(text));
  }), { numRuns: 300 });
  fc.assert(fc.property(fc.integer({ min: 9, max: 5000 }), fc.constantFrom('[', '{"k":'), (depth, open) => {
    const close = open === '[' ? ']' : '}';
    const r = parseJsonBounded(open.repeat(depth) + '1' + close.repeat(depth), 8, 100_000);
    assert.equal(r.ok ? '' : r.problem.code, 'json-too-deep');
  }), { numRuns: 50 });
});

const op: OpenApiOperation = { requestBody: { content: { 'application/json': { schema: { type: 'object', properties: { name: { type: 'string' }, nested: { type: 'object', properties: { a: { type: 'integer' } } } } } } } } };

test('no input pollutes Object.prototype, whatever __proto__/constructor/prototype keys it hides', () => {
  const validator = new ContractValidator();
  const pollutingKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'polluted', 'name', 'nested');
  const doc = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 1 }), fc.dictionary(pollutingKey, tie('node'), { maxKeys: 4 })),
  })).node;
  fc.assert(fc.property(doc, (value) => {
    // Serialise by hand so "__proto__" keys survive as JSON text (object literals would drop them).
    const text = JSON.stringify(value).replaceAll('"polluted"', '"__proto__"');
    const body = decodeBody(Buffer.from(text), new Map([['content-type', ['application/json']]]));
    validator.validateRequest(op, body, [['__proto__', 'x']]);
    if (body.content.kind === 'json') prototypePollutionKeys(body.content.value, 1000);
    assert.equal(Object.getOwnPropertyNames(Object.prototype).includes('polluted'), false);
    assert.equal(({} as Record<string, unknown>).isAdmin, undefined);
  }), { numRuns: 300 });
});

test('every numeric spelling of a loopback or metadata address is flagged', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.constantFrom('decimal', 'hex', 'octal', 'mapped', 'short'), (b, c, d, form) => {
    const n = ((127 << 24) >>> 0) + (b << 16) + (c << 8) + d;
    const host = form === 'decimal' ? String(n)
      : form === 'hex' ? `0x${n.toString(16)}`
        : form === 'octal' ? `0177.${b.toString(8).padStart(4, '0')}.${c}.${d}`
          : form === 'mapped' ? `[::ffff:127.${b}.${c}.${d}]`
            : `127.${(b << 16) + (c << 8) + d}`;
    const f = analyzeUrlValue(`http://${host}/`, 'url');
    assert.ok(f?.reasons.includes('loopback'), `${host} -> ${JSON.stringify(f)}`);
  }), { numRuns: 300 });
  assert.ok(analyzeUrlValue('http://2852039166/', 'url')?.reasons.includes('metadata'));
});

test('analyzeUrlValue and scanSensitive never throw on arbitrary strings and URLs', () => {
  fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.webUrl({ withQueryParameters: true, withFragments: true }), fc.string({ unit: 'binary', maxLength: 200 })), fc.string({ maxLength: 20 }), (value, key) => {
    analyzeUrlValue(value, key);
    scanSensitive(value, key);
  }), { numRuns: 1000 });
});

test('URLs to public IPv4 addresses, in any spelling, are not SSRF', () => {
  // First octets outside every private, loopback, link-local, CGNAT, benchmark and multicast range.
  const publicFirst = fc.oneof(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 11, max: 99 }), fc.integer({ min: 101, max: 126 }), fc.integer({ min: 128, max: 168 }), fc.integer({ min: 173, max: 191 }), fc.integer({ min: 193, max: 197 }), fc.integer({ min: 200, max: 223 }));
  const octet = fc.integer({ min: 0, max: 255 });
  fc.assert(fc.property(publicFirst, octet, octet, octet, fc.boolean(), (a, b, c, d, decimal) => {
    const host = decimal ? String(((a << 24) >>> 0) + (b << 16) + (c << 8) + d) : `${a}.${b}.${c}.${d}`;
    assert.equal(analyzeUrlValue(`https://${host}/x?y=1`, 'url'), undefined, host);
  }), { numRuns: 300 });
});

test('any Luhn-valid Visa number is recognized; changing its check digit hides it', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 14, maxLength: 14 }), (digits) => {
    const body = `4${digits.join('')}`;
    const check = [...Array(10).keys()].find((c) => luhnValid(body + c))!;
    assert.ok(scanSensitive(`card ${body}${check}`, '').some((h) => h.kind === 'card-number'));
    assert.ok(!scanSensitive(`card ${body}${(check + 1) % 10}`, '').some((h) => h.kind === 'card-number'));
  }), { numRuns: 300 });
});

test('analyzeGraphql never throws; alias count equals the aliases written', () => {
  fc.assert(fc.property(fc.string({ maxLength: 500 }), (q) => { analyzeGraphql(q, {}, 1000); }), { numRuns: 500 });
  fc.assert(fc.property(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 1, max: 5 }), (aliases, plain) => {
    const q = `{ ${Array.from({ length: aliases }, (_, i) => `a${i}: f`).join(' ')} ${Array.from({ length: plain }, (_, i) => `g${i}`).join(' ')} }`;
    const a = analyzeGraphql(q, {}, 10_000);
    assert.ok(a.ok);
    assert.equal(a.metrics.aliases, aliases);
    assert.equal(a.metrics.rootFields, aliases + plain);
  }), { numRuns: 100 });
});
