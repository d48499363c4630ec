// Every regular expression of content inspection that sees client or server data is checked for
// catastrophic backtracking with recheck (automaton + fuzz ReDoS checker), and the scanners are fed
// the adversarial strings recheck would build plus classic ReDoS shapes: they must finish without
// error (no timing assertions here; bench/ measures speed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkSync } from 'recheck';
import { SENSITIVE_PATTERNS, scanSensitive } from '../../extproc/src/inspect/sensitive.ts';
import { VERBOSE_ERROR_SIGNATURES, VERSION_IN_BANNER, verboseErrorSignatures } from '../../extproc/src/inspect/misconfig.ts';
import { INJECTION_SIGNATURES, injectionSignatures } from '../../extproc/src/inspect/injection.ts';
import { ARRAY_INDEX_SEGMENT } from '../../extproc/src/inspect/json.ts';
import { SCHEME_PATTERNS, analyzeUrlValue } from '../../extproc/src/inspect/ssrf.ts';
import { PRIVILEGED_PROPERTY } from '../../extproc/src/inspect/learned-contract.ts';

const PATTERNS: [string, RegExp][] = [
  ...Object.entries(SENSITIVE_PATTERNS).map(([k, re]) => [`sensitive.${k}`, re] as [string, RegExp]),
  ...VERBOSE_ERROR_SIGNATURES.map((s) => [`verbose-error.${s.name}`, s.pattern] as [string, RegExp]),
  ...INJECTION_SIGNATURES.map((s) => [`injection.${s.name}`, s.pattern] as [string, RegExp]),
  ['misconfig.version-banner', VERSION_IN_BANNER],
  ['json.array-index-segment', ARRAY_INDEX_SEGMENT],
  ['ssrf.scheme-first', SCHEME_PATTERNS.first],
  ['ssrf.scheme-rest', SCHEME_PATTERNS.rest],
  ['learned-contract.privileged-property', PRIVILEGED_PROPERTY],
];

for (const [name, re] of PATTERNS) {
  test(`${name} is safe from catastrophic backtracking`, () => {
    const result = checkSync(re.source, re.flags.replace('g', ''), { timeout: 30_000 });
    assert.equal(result.status, 'safe', `${name}: ${JSON.stringify(result.status === 'vulnerable' ? result.complexity : result)}`);
  });
}

test('scanners finish on adversarial inputs (classic ReDoS shapes, 100k characters)', () => {
  const n = 100_000;
  const inputs = [
    'a'.repeat(n), ' '.repeat(n), '\n    at '.repeat(n / 10), '$2b$'.repeat(n / 4), '@'.repeat(n), 'a@a.'.repeat(n / 4),
    `${'eyJ'.repeat(n / 3)}`, `{{${' '.repeat(n)}`, `<${'a'.repeat(n)}`, `'${' '.repeat(n)}or`, '../'.repeat(n / 3), '0'.repeat(n),
    `File "${'x'.repeat(n)}`, `at ${'a.'.repeat(n / 2)}(`, '1 '.repeat(n / 2), '-'.repeat(n),
  ];
  for (const input of inputs) {
    scanSensitive(input, 'password');
    verboseErrorSignatures(input);
    injectionSignatures(input);
    analyzeUrlValue(input, 'url');
  }
  assert.ok(true);
});
