// Keyed hashes for values that learned state must compare but never hold raw (object IDs from
// bodies and paths, which can be passwords, card numbers or tokens). HMAC-SHA256 under a
// per-installation key kept outside the state file: a stolen file alone cannot be brute-forced for
// short values, and restored entries match new observations only under the same key.
import { hash, randomBytes } from 'node:crypto';

/** Bytes of a state key (the key file holds them base64url-encoded). */
export const STATE_KEY_BYTES = 32;
/** Bytes of HMAC kept: 128 bits, collisions are out of reach for any cache size. */
const DIGEST_BYTES = 16;

/** SHA-256's block size: HMAC pads its key to it. */
const BLOCK_BYTES = 64;

export class KeyedHash {
  #inner!: Buffer;
  #outer!: Buffer;

  /** Without a key: a random one for this process (nothing hashed outlives it usefully). */
  constructor(key: Buffer = randomBytes(STATE_KEY_BYTES)) {
    this.useKey(key);
  }

  /** Replaces the key (before any traffic: values hashed under the old key stop matching). */
  useKey(key: Buffer): void {
    if (key.length < STATE_KEY_BYTES) throw new Error(`meshward: a state key needs at least ${STATE_KEY_BYTES} bytes (got ${key.length})`);
    const padded = Buffer.alloc(BLOCK_BYTES);
    (key.length > BLOCK_BYTES ? hash('sha256', key, 'buffer') : key).copy(padded);
    this.#inner = Buffer.from(padded.map((b) => b ^ 0x36));
    this.#outer = Buffer.from(padded.map((b) => b ^ 0x5c));
  }

  /** The value's keyed hash: HMAC-SHA256 (RFC 2104) cut to 16 bytes, base64url (22 characters).
   *  Built from one-shot hashes over the precomputed key pads: createHmac() sets up a key object
   *  per call and costs several times more, on every object reference the engine judges. */
  of(value: string): string {
    const inner = hash('sha256', Buffer.concat([this.#inner, Buffer.from(value)]), 'buffer');
    return hash('sha256', Buffer.concat([this.#outer, inner]), 'buffer').subarray(0, DIGEST_BYTES).toString('base64url');
  }
}
