// Server-side JWT peek: decode a bearer token without trusting it, so detectors can key on the end
// user and check alg/exp/nbf/iss. Sizes are bounded; the raw token is never kept, only its hash.
// Signature verification happens only against a JWKS that policy configures (node:crypto).
import { constants, createHash, createPublicKey, createSecretKey, verify as cryptoVerify, createHmac, timingSafeEqual, type JsonWebKey, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Headers } from './event.ts';

/** Tokens longer than this are not decoded (reported as malformed). */
export const MAX_TOKEN_BYTES = 8192;

export interface JwtPeek {
  /** sha256 of the raw token, hex, first 32 chars: the only form of the token meshward keeps. */
  tokenHash: string;
  /** False when the token is not three base64url JSON parts (nothing below is then set). */
  wellFormed: boolean;
  /** Why it is malformed, for evidence. */
  problem?: string;
  alg?: string;
  kid?: string;
  iss?: string;
  sub?: string;
  /** Seconds since the epoch, as in the token. */
  exp?: number;
  nbf?: number;
  iat?: number;
  /** Other short string claims that name the user (preferred_username, email, name, identity...). */
  names: string[];
  /** True when the signature part is empty. */
  unsigned: boolean;
  /** header.payload and signature, kept only while the exchange lives, for JWKS verification. */
  signingInput?: string;
  signature?: Buffer;
}

const NAME_CLAIMS = ['preferred_username', 'username', 'user_name', 'email', 'name', 'identity', 'user', 'uid', 'user_id', 'login'];

export function sha256Hex(value: string, chars = 32): string {
  return createHash('sha256').update(value).digest('hex').slice(0, chars);
}

function decodeJsonPart(part: string): Record<string, unknown> | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(part)) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}

const str = (v: unknown, max = 512): string | undefined => (typeof v === 'string' && v.length > 0 && v.length <= max ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Recent tokens' peeks: a token is reused for many requests, and decoding plus hashing it is a
 *  large share of a header-only decision. Bounded (about 1 KB an entry); in memory only, like the
 *  request itself. */
const recentPeeks = new LRUCache<string, JwtPeek>({ max: 10_000 });

/** Decodes a compact JWT (no verification). The result is shared between requests: read only. */
export function peekJwt(token: string): JwtPeek {
  let peek = recentPeeks.get(token);
  if (peek === undefined) {
    peek = decodeJwt(token);
    if (token.length <= MAX_TOKEN_BYTES) recentPeeks.set(token, peek);
  }
  return peek;
}

function decodeJwt(token: string): JwtPeek {
  const tokenHash = sha256Hex(token);
  const bad = (problem: string): JwtPeek => ({ tokenHash, wellFormed: false, problem, names: [], unsigned: false });
  if (token.length > MAX_TOKEN_BYTES) return bad(`token longer than ${MAX_TOKEN_BYTES} bytes`);
  const parts = token.split('.');
  if (parts.length !== 3) return bad(`token has ${parts.length} parts, a JWS has 3`);
  const header = decodeJsonPart(parts[0]!);
  const payload = decodeJsonPart(parts[1]!);
  if (header === undefined) return bad('header is not base64url JSON');
  if (payload === undefined) return bad('payload is not base64url JSON');
  const names: string[] = [];
  // Claims that name the user, at the top level or (as some apps sign their user record) under "data"/"user".
  for (const holder of [payload, payload.data, payload.user]) {
    if (holder === null || typeof holder !== 'object' || Array.isArray(holder)) continue;
    const h = holder as Record<string, unknown>;
    for (const c of holder === payload ? NAME_CLAIMS : [...NAME_CLAIMS, 'id']) {
      const v = str(h[c], 256) ?? (typeof h[c] === 'number' && Number.isFinite(h[c]) ? String(h[c]) : undefined);
      if (v !== undefined && !names.includes(v)) names.push(v);
    }
  }
  const signature = parts[2]!;
  return {
    tokenHash,
    wellFormed: true,
    alg: str(header.alg, 32),
    kid: str(header.kid, 256),
    iss: str(payload.iss),
    sub: str(payload.sub, 256) ?? (typeof payload.sub === 'number' ? String(payload.sub) : undefined),
    exp: num(payload.exp),
    nbf: num(payload.nbf),
    iat: num(payload.iat),
    names,
    unsigned: signature.length === 0,
    signingInput: `${parts[0]}.${parts[1]}`,
    signature: /^[A-Za-z0-9_-]*$/.test(signature) ? Buffer.from(signature, 'base64url') : Buffer.alloc(0),
  };
}

/** The bearer token of a request: the first Authorization header with the Bearer scheme. */
export function bearerToken(headers: Headers): string | undefined {
  for (const value of headers.get('authorization') ?? []) {
    const m = /^\s*bearer\s+(\S+)\s*$/i.exec(value.length > MAX_TOKEN_BYTES + 64 ? value.slice(0, MAX_TOKEN_BYTES + 64) : value);
    if (m) return m[1];
  }
  return undefined;
}

export type JwksVerdict = 'valid' | 'invalid' | 'no-key' | 'unsupported-alg';

const ALGS: Record<string, { hash: string; kind: 'rsa' | 'rsa-pss' | 'ec' | 'hmac' | 'eddsa' }> = {
  RS256: { hash: 'sha256', kind: 'rsa' }, RS384: { hash: 'sha384', kind: 'rsa' }, RS512: { hash: 'sha512', kind: 'rsa' },
  PS256: { hash: 'sha256', kind: 'rsa-pss' }, PS384: { hash: 'sha384', kind: 'rsa-pss' }, PS512: { hash: 'sha512', kind: 'rsa-pss' },
  ES256: { hash: 'sha256', kind: 'ec' }, ES384: { hash: 'sha384', kind: 'ec' }, ES512: { hash: 'sha512', kind: 'ec' },
  HS256: { hash: 'sha256', kind: 'hmac' }, HS384: { hash: 'sha384', kind: 'hmac' }, HS512: { hash: 'sha512', kind: 'hmac' },
  EdDSA: { hash: '', kind: 'eddsa' },
};

/** A JWKS turned into node KeyObjects once, looked up by kid (or tried in turn when there is none). */
export class Jwks {
  readonly #keys: { kid?: string; key: KeyObject; symmetric: boolean }[] = [];

  constructor(jwks: { keys: Record<string, unknown>[] }) {
    for (const jwk of jwks.keys ?? []) {
      try {
        const symmetric = jwk.kty === 'oct';
        const key = symmetric
          ? createSecretKey(Buffer.from(String(jwk.k ?? ''), 'base64url'))
          : createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
        this.#keys.push({ ...(typeof jwk.kid === 'string' ? { kid: jwk.kid } : {}), key, symmetric });
      } catch {
        // A key node cannot import is skipped; tokens signed only by it then verify as "no-key".
      }
    }
  }

  verify(peek: JwtPeek): JwksVerdict {
    if (!peek.wellFormed || peek.signingInput === undefined || peek.signature === undefined) return 'invalid';
    const alg = peek.alg === undefined ? undefined : ALGS[peek.alg];
    if (alg === undefined) return 'unsupported-alg';
    const candidates = this.#keys.filter((k) => (peek.kid === undefined || k.kid === undefined || k.kid === peek.kid) && k.symmetric === (alg.kind === 'hmac'));
    if (candidates.length === 0) return 'no-key';
    const data = Buffer.from(peek.signingInput);
    for (const { key } of candidates) {
      try {
        if (alg.kind === 'hmac') {
          const mac = createHmac(alg.hash, key).update(data).digest();
          if (mac.length === peek.signature.length && timingSafeEqual(mac, peek.signature)) return 'valid';
        } else if (alg.kind === 'eddsa') {
          if (cryptoVerify(null, data, key, peek.signature)) return 'valid';
        } else {
          const options = alg.kind === 'ec' ? { key, dsaEncoding: 'ieee-p1363' as const }
            : alg.kind === 'rsa-pss' ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
            : { key };
          if (cryptoVerify(alg.hash, data, options, peek.signature)) return 'valid';
        }
      } catch {
        // Wrong key type for this alg: try the next key.
      }
    }
    return 'invalid';
  }
}
