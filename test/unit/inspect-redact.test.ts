// redactJsonBody: only existing string leaves are replaced, own properties only, never through a
// prototype; encoded or invalid bodies are refused (undefined) rather than guessed at.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REDACTED, redactJsonBody } from '../../extproc/src/inspect/redact.ts';

const JSON_HEADERS = new Map([['content-type', ['application/json']]]);

test('replaces the listed string values and nothing else', () => {
  const body = Buffer.from(JSON.stringify({ a: { card: '4111111111111111', n: 5 }, list: ['x', 'secret'] }));
  const out = redactJsonBody(body, JSON_HEADERS, [['a', 'card'], ['list', 1], ['a', 'n'], ['missing', 'x']]);
  assert.ok(out);
  assert.equal(out.redacted, 2);
  assert.deepEqual(JSON.parse(out.body.toString()), { a: { card: REDACTED, n: 5 }, list: ['x', REDACTED] });
});

test('a "__proto__" key is data: redacted in place, Object.prototype untouched', () => {
  const body = Buffer.from('{"__proto__":{"polluted":"4111111111111111"}}');
  const out = redactJsonBody(body, JSON_HEADERS, [['__proto__', 'polluted']]);
  assert.ok(out);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.match(out.body.toString(), /"__proto__":\{"polluted":"\[redacted\]"\}/);
});

test('encoded, invalid or unmatched bodies are not rewritten', () => {
  const body = Buffer.from('{"card":"4111111111111111"}');
  assert.equal(redactJsonBody(body, new Map([['content-encoding', ['gzip']]]), [['card']]), undefined);
  assert.equal(redactJsonBody(Buffer.from('{"card":'), JSON_HEADERS, [['card']]), undefined);
  assert.equal(redactJsonBody(body, JSON_HEADERS, [['other']]), undefined);
});
