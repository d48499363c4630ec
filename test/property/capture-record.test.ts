// The capture record format (filter/assembly/record.ts -> extproc/src/wire/capture-record.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseCaptureRecord } from '../../extproc/src/wire/capture-record.ts';

/** The record encoding as specified in filter/assembly/record.ts (percent-encode %, controls, >= 0x7f). */
function encodeValue(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    out += b < 0x20 || b === 0x25 || b >= 0x7f ? '%' + b.toString(16).toUpperCase().padStart(2, '0') : String.fromCharCode(b);
  }
  return out;
}

test('any UTF-8 value survives the record encoding exactly', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (peer, path) => {
    const text = `mw1\npeer=${encodeValue(Buffer.from(peer, 'utf8'))}\nmtls=1\npath=${encodeValue(Buffer.from(path, 'utf8'))}\n`;
    const rec = parseCaptureRecord(text);
    assert.ok(rec);
    assert.equal(rec.peer, peer.length ? peer : undefined);
    assert.equal(rec.path, path.length ? path : undefined);
    assert.equal(rec.mtls, true);
  }));
});

test('an encoded value can never inject another field', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary' }), (evil) => {
    const text = `mw1\npath=${encodeValue(Buffer.from(evil, 'utf8'))}\nmtls=0\n`;
    const rec = parseCaptureRecord(text);
    assert.ok(rec);
    assert.equal(rec.peer, undefined, 'no peer field appears from a path value');
    assert.equal(rec.mtls, false);
    assert.deepEqual([...rec.fields.keys()].sort(), ['mtls', 'path']);
  }));
});

test('arbitrary text never throws; it parses or is rejected as null', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
    const rec = parseCaptureRecord(text);
    if (!text.startsWith('mw1\n') && text !== 'mw1') assert.equal(rec, null);
  }));
});

test('malformed records are rejected as a whole', () => {
  assert.equal(parseCaptureRecord(undefined), null);
  assert.equal(parseCaptureRecord(''), null);
  assert.equal(parseCaptureRecord('mw2\npeer=x\n'), null, 'unknown version');
  assert.equal(parseCaptureRecord('mw1\nno-equals-sign\n'), null);
  assert.equal(parseCaptureRecord('mw1\n=value\n'), null, 'empty key');
  assert.equal(parseCaptureRecord('mw1\npath=' + 'a'.repeat(300 * 1024)), null, 'oversized record');
  const partial = parseCaptureRecord('mw1\npath=%4');
  assert.equal(partial?.path, '%4', 'a truncated escape is kept literally');
});
