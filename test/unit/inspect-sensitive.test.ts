// Sensitive-data recognizers (issue #6, API3 response exposure): emails, phones, Luhn-checked cards,
// national IDs with their check digits, IBAN, JWTs, cloud keys, private keys, password hashes and
// credential fields; each with a near-miss that must not match.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpfValid, dniValid, ibanValid, luhnValid, scanSensitive, tokensOf } from '../../extproc/src/inspect/sensitive.ts';

const kinds = (value: string, key = ''): string[] => scanSensitive(value, key).map((h) => h.kind).sort();

const positives: [string, string, string][] = [
  ['email', 'contact me at ann.lee+x@mail.example.org today', ''],
  ['phone', '+1 415 555 0100', ''],
  ['phone', '(415) 555-0100', ''],
  ['card-number', '4111 1111 1111 1111', ''],
  ['card-number', 'card: 5500-0000-0000-0004.', ''],
  ['card-number', '378282246310005', ''],
  ['national-id', 'SSN 123-45-6789', ''],
  ['national-id', '529.982.247-25', ''],
  ['national-id', '12345678Z', ''],
  ['iban', 'GB82 WEST 1234 5698 7654 32', ''],
  ['jwt', 'Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJuYW1lMSJ9.n17N4AxTbL4_z65-NR46meoytauPDjImUxrLiUMSTQw', ''],
  ['cloud-key', 'aws_access_key_id=AKIAIOSFODNN7EXAMPLE', ''],
  ['cloud-key', 'ghp_abcdefghijklmnopqrstuvwxyz0123456789', ''],
  ['private-key', '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA', ''],
  ['private-key', '-----BEGIN PRIVATE KEY-----', ''],
  ['password-hash', '$2b$12$KIXQJp6hV7h1C1dQ4hZ7WeM3iN0o5p8n3q2r1s0t9u8v7w6x5y4z.', ''],
  ['password-hash', '$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG', ''],
  ['password-hash', '5f4dcc3b5aa765d61d8327deb882cf99', 'password_hash'],
  ['credential', 'hunter2', 'password'],
  ['credential', 'Adm1n!x', 'passwd'],
];

for (const [kind, value, key] of positives) {
  test(`recognizes ${kind}: ${JSON.stringify(value.slice(0, 40))}`, () => {
    assert.ok(kinds(value, key).includes(kind), `got ${kinds(value, key).join(',') || 'nothing'}`);
  });
}

const negatives: [string, string][] = [
  ['user@', ''],
  ['@handle', ''],
  ['2024-01-01', ''],
  ['version 1.2.3', ''],
  ['550e8400-e29b-41d4-a716-446655440000', ''],
  ['4111 1111 1111 1112', ''], // Luhn fails
  ['1234567890123456', ''], // no issuer prefix
  ['000-12-3456', ''], // SSN area 000 never issued
  ['666-12-3456', ''],
  ['529.982.247-26', ''], // CPF check digit wrong
  ['12345678A', ''], // DNI letter wrong
  ['GB82 WEST 1234 5698 7654 31', ''], // IBAN mod-97 fails
  ['eyJhbGciOiJIUzI1NiJ9', ''], // header only
  ['AKIA1234', ''],
  ['5f4dcc3b5aa765d61d8327deb882cf99', 'etag'], // a hex digest outside a password field
  ['1234567', ''], // bare digits are not a phone number
  ['', 'password'],
];

for (const [value, key] of negatives) {
  test(`does not flag ${JSON.stringify(value.slice(0, 40))}${key ? ` in "${key}"` : ''}`, () => {
    const k = kinds(value, key);
    assert.deepEqual(k, [], `got ${k.join(',')}`);
  });
}

test('check-digit algorithms', () => {
  assert.equal(luhnValid('79927398713'), true);
  assert.equal(luhnValid('79927398710'), false);
  assert.equal(cpfValid('111.111.111-11'), false, 'repeated digits are invalid CPFs');
  assert.equal(dniValid('00000000', 't'), true);
  assert.equal(ibanValid('DE89370400440532013000'), true);
  assert.equal(ibanValid('DE89370400440532013001'), false);
});

test('tokens split at anything that cannot be part of an email or JWT', () => {
  assert.deepEqual(tokensOf('a b<c@d.e>"f.g"'), ['a', 'b', 'c@d.e', 'f.g']);
});

test('regex-hostile values finish and find nothing', () => {
  const hostile = ['a'.repeat(100_000), `${'a@'.repeat(50_000)}`, `eyJ${'a'.repeat(50_000)}.`, `${'1-'.repeat(50_000)}`, `$2b$12$${'.'.repeat(100_000)}`, `${'-----BEGIN '.repeat(5000)}`];
  for (const h of hostile) assert.doesNotThrow(() => scanSensitive(h, 'password_hash'));
  assert.deepEqual(kinds('a'.repeat(100_000)), []);
});
