// JWT peek: decoding without trust, bounded sizes, only the hash kept; JWKS verification.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { Jwks, MAX_TOKEN_BYTES, bearerToken, peekJwt, sha256Hex } from '../../extproc/src/engine/jwt.ts';
import { makeJwt } from './detectors/harness.ts';

test('peekJwt decodes claims and keeps only a hash of the token', () => {
  const token = makeJwt({ sub: 'alice', iss: 'https://idp', exp: 2000000000, email: 'a@x.io' }, { kid: 'k9' });
  const p = peekJwt(token);
  assert.equal(p.wellFormed, true);
  assert.equal(p.sub, 'alice');
  assert.equal(p.iss, 'https://idp');
  assert.equal(p.exp, 2000000000);
  assert.equal(p.kid, 'k9');
  assert.deepEqual(p.names, ['a@x.io']);
  assert.equal(p.tokenHash, sha256Hex(token));
  assert.ok(!Object.values(p).some((v) => v === token));
});

test('malformed tokens are reported with a reason, never thrown', () => {
  for (const [token, reason] of [
    ['abc', /3/], ['a.b.c.d', /parts/], ['!!!.e30.x', /header/], [`${Buffer.from('{"alg":"HS256"}').toString('base64url')}.bm90anNvbg.x`, /payload/],
    ['x'.repeat(MAX_TOKEN_BYTES + 1), /longer/],
  ] as const) {
    const p = peekJwt(token);
    assert.equal(p.wellFormed, false, token.slice(0, 20));
    assert.match(p.problem ?? '', reason);
  }
  assert.equal(peekJwt(makeJwt({ sub: 'x' }, { alg: 'none' })).unsigned, true);
});

test('bearerToken takes the Bearer scheme only', () => {
  assert.equal(bearerToken(new Map([['authorization', ['Bearer abc.def.ghi']]])), 'abc.def.ghi');
  assert.equal(bearerToken(new Map([['authorization', ['Basic dXNlcjpwdw==']]])), undefined);
  assert.equal(bearerToken(new Map([['authorization', ['Basic x', 'bearer t.o.k']]])), 't.o.k');
});

test('Jwks verifies RS256 and ES256, rejects a wrong key, reports unknown kids and algorithms', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwks = new Jwks({ keys: [{ ...rsa.publicKey.export({ format: 'jwk' }), kid: 'r' }, { ...ec.publicKey.export({ format: 'jwk' }), kid: 'e' }] });
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const tok = (alg: string, kid: string, key: Parameters<typeof sign>[2]): string => {
    const input = `${enc({ alg, kid })}.${enc({ sub: 's' })}`;
    return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
  };
  assert.equal(jwks.verify(peekJwt(tok('RS256', 'r', rsa.privateKey))), 'valid');
  assert.equal(jwks.verify(peekJwt(tok('ES256', 'e', { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }))), 'valid');
  assert.equal(jwks.verify(peekJwt(tok('RS256', 'r', other.privateKey))), 'invalid');
  assert.equal(jwks.verify(peekJwt(tok('RS256', 'nope', rsa.privateKey))), 'no-key');
  assert.equal(jwks.verify(peekJwt(makeJwt({ sub: 's' }, { alg: 'XX999' }))), 'unsupported-alg');
  assert.doesNotThrow(() => new Jwks({ keys: [{ kty: 'RSA', n: 'garbage' }] }));
});

test('apps that sign their user record instead of "sub" still name the user (data.email, data.id)', () => {
  const p = peekJwt(makeJwt({ status: 'success', data: { id: 7, email: 'ann@shop.io', role: 'customer' }, iat: 1 }));
  assert.equal(p.sub, undefined);
  assert.deepEqual(p.names, ['ann@shop.io', '7']);
});
