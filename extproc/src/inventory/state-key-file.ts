// The installation's state key (engine/keyed-hash.ts): kept in its own file, never in the SQLite
// file it protects, so a copy of the state file alone reveals no object ID. Created on first start
// (32 random bytes, base64url, mode 0600, never overwritten); an existing file is read as it is.
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { STATE_KEY_BYTES } from '../engine/keyed-hash.ts';

export interface StateKey {
  key: Buffer;
  created: boolean;
  /** Set when the file is readable by group or others (it should be 0600 or a mounted secret). */
  warning?: string;
}

/** Where the key lives when no --state-key-file is given: beside the state file. */
export function defaultStateKeyFile(stateFile: string): string {
  return `${stateFile}.key`;
}

/** Reads the key file, or creates it when absent. Throws a clear error for anything else. */
export function loadOrCreateStateKey(file: string): StateKey {
  try {
    writeFileSync(file, `${randomBytes(STATE_KEY_BYTES).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    return { key: readKey(file), created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`meshward: cannot create the state key file ${file}: ${(err as Error).message}`);
  }
  const key = readKey(file);
  const mode = statSync(file).mode & 0o777;
  return { key, created: false, ...(mode & 0o077 ? { warning: `state key file ${file} is readable by others (mode ${mode.toString(8)}); it should be 0600` } : {}) };
}

function readKey(file: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new Error(`meshward: cannot read the state key file ${file}: ${(err as Error).message}`);
  }
  const key = /^[A-Za-z0-9_-]+$/.test(text) ? Buffer.from(text, 'base64url') : Buffer.alloc(0);
  if (key.length < STATE_KEY_BYTES) throw new Error(`meshward: ${file} is not a state key (expected at least ${STATE_KEY_BYTES} random bytes, base64url-encoded on one line)`);
  return key;
}
