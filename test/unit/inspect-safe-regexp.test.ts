// Spec `pattern` regexes go through meshward's regexp engine (extproc/src/inspect/safe-regexp.ts):
// linear-compatible patterns are enforced at once (V8 reruns excessive backtracking on its linear
// engine); others only after recheck finds them safe; vulnerable ones are never enforced and are
// listed. No timing assertions: the hostile inputs below would hang a plain RegExp for minutes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ContractValidator, type OpenApiOperation } from '../../extproc/src/inspect/contract.ts';
import { patternChecksSettled, safeRegExp, unenforcedPatterns } from '../../extproc/src/inspect/safe-regexp.ts';
import { decodeBody } from '../../extproc/src/inspect/body.ts';

function jsonBody(value: unknown) {
  return decodeBody(Buffer.from(JSON.stringify(value)), new Map([['content-type', ['application/json']]]));
}

function opWithPattern(pattern: string): OpenApiOperation {
  return { operationId: 'p', requestBody: { content: { 'application/json': { schema: { type: 'object', properties: { name: { type: 'string', pattern } } } } } } };
}

test('a linear-compatible pattern is enforced at once, and a hostile input against a nested quantifier finishes', () => {
  const v = new ContractValidator();
  const op = opWithPattern('^([a-z]+)+$');
  assert.deepEqual(v.validateRequest(op, jsonBody({ name: 'abc' }), []), []);
  const bad = v.validateRequest(op, jsonBody({ name: 'abc1' }), []);
  assert.equal(bad[0]?.kind, 'out-of-range');
  // 30,000 letters then a digit: exponential for a backtracking engine, linear after the fallback.
  const hostile = v.validateRequest(op, jsonBody({ name: 'a'.repeat(30_000) + '1' }), []);
  assert.equal(hostile[0]?.kind, 'out-of-range');
});

test('a pattern the linear engine cannot run is enforced once recheck finds it safe', async () => {
  const re = safeRegExp('^[a-z]{1,64}$', 'u');
  assert.equal(re.test('A'), true, 'not enforced while the check is pending');
  await patternChecksSettled();
  assert.equal(re.test('A'), false);
  assert.equal(re.test('abc'), true);
  assert.ok(!unenforcedPatterns().some((p) => p.pattern === '^[a-z]{1,64}$'));
});

test('a vulnerable pattern (backreference, not linear-compatible) is never enforced and is listed with the reason', async () => {
  const pattern = '^(\\w+\\s?)*\\1$';
  const re = safeRegExp(pattern, 'u');
  await patternChecksSettled();
  const listed = unenforcedPatterns().find((p) => p.pattern === pattern);
  assert.ok(listed, 'listed as unenforced');
  assert.match(listed.verdict, /vulnerable|unknown/);
  assert.equal(re.test('a '.repeat(20_000) + '!'), true, 'hostile input passes without running the regex');
});

test('an invalid pattern is a compile error of that schema, not a crash', () => {
  const v = new ContractValidator();
  assert.deepEqual(v.validateRequest(opWithPattern('^(unclosed'), jsonBody({ name: 'x' }), []), []);
  assert.equal(v.compileErrors.length, 1);
  assert.match(v.compileErrors[0]!, /unclosed|Invalid|pattern/i);
});
