// A JWKS fetched from policy's jwksUri (spec.jwt.issuers[].jwksUri): fetched on first use and
// refreshed when older than `refreshMs`, again on an unknown key id (at most once per
// `unknownKidIntervalMs`), each fetch bounded in time and size. A failed fetch keeps the last good
// key set. Detectors stay synchronous: they read the current set and trigger refreshes that land
// later; before the first fetch has succeeded there is no set (signatures are then not judged).
import { LRUCache } from 'lru-cache';
import { Jwks } from './jwt.ts';

export interface RemoteJwksOptions {
  timeoutMs: number;
  maxBytes: number;
  refreshMs: number;
  unknownKidIntervalMs: number;
  /** Keys kept from one document at most. */
  maxKeys: number;
  /** Wall clock (milliseconds); fetch cadence is real time, not the engine's event clock. */
  now: () => number;
}

export const DEFAULT_REMOTE_JWKS_OPTIONS: Readonly<RemoteJwksOptions> = Object.freeze({
  timeoutMs: 5_000,
  maxBytes: 256 * 1024,
  refreshMs: 10 * 60_000,
  unknownKidIntervalMs: 60_000,
  maxKeys: 100,
  now: Date.now,
});

/** An http(s) URL: the only kind fetched. */
export function isFetchableJwksUri(uri: string): boolean {
  const url = URL.parse(uri);
  return url !== null && (url.protocol === 'https:' || url.protocol === 'http:');
}

export class RemoteJwks {
  readonly uri: string;
  readonly #options: RemoteJwksOptions;
  #current: Jwks | undefined;
  /** Bumped on every successful fetch (verdicts cached per version). */
  #version = 0;
  #fetchedAt = -Infinity;
  #attemptedAt = -Infinity;
  #inflight: Promise<void> | undefined;
  #lastError: string | undefined;

  constructor(uri: string, options: Partial<RemoteJwksOptions> = {}) {
    if (!isFetchableJwksUri(uri)) throw new Error(`jwksUri ${uri}: only https and http URLs are fetched`);
    this.uri = uri;
    this.#options = { ...DEFAULT_REMOTE_JWKS_OPTIONS, ...options };
  }

  /** The last good key set (undefined until a fetch succeeded); starts a refresh when it is due. */
  current(): Jwks | undefined {
    if (this.#options.now() - this.#fetchedAt >= this.#options.refreshMs) this.#refresh();
    return this.#current;
  }

  get version(): number { return this.#version; }
  get lastError(): string | undefined { return this.#lastError; }

  /** A token named a key the set lacks (rotation): refetch, at most once per unknownKidIntervalMs. */
  unknownKey(): void {
    if (this.#options.now() - this.#attemptedAt >= this.#options.unknownKidIntervalMs) this.#refresh(true);
  }

  /** Resolves when the fetch in flight (if any) has ended. */
  settled(): Promise<void> { return this.#inflight ?? Promise.resolve(); }

  #refresh(force = false): void {
    if (this.#inflight !== undefined) return;
    // After a failure, wait as long as for an unknown kid before trying again (not on every request).
    if (!force && this.#options.now() - this.#attemptedAt < this.#options.unknownKidIntervalMs) return;
    this.#attemptedAt = this.#options.now();
    this.#inflight = this.#fetch().then(
      (jwks) => { this.#current = jwks; this.#version++; this.#fetchedAt = this.#options.now(); this.#lastError = undefined; },
      (err: unknown) => { this.#lastError = err instanceof Error ? err.message : String(err); },
    ).finally(() => { this.#inflight = undefined; });
  }

  async #fetch(): Promise<Jwks> {
    const { timeoutMs, maxBytes, maxKeys } = this.#options;
    const signal = AbortSignal.timeout(timeoutMs);
    const response = await fetch(this.uri, { signal, redirect: 'error', headers: { accept: 'application/json' } });
    if (!response.ok) { await response.body?.cancel(); throw new Error(`jwksUri ${this.uri}: HTTP ${response.status}`); }
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (declared > maxBytes) { await response.body?.cancel(); throw new Error(`jwksUri ${this.uri}: ${declared} bytes, above the ${maxBytes}-byte cap`); }
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of response.body ?? []) {
      size += chunk.length;
      if (size > maxBytes) throw new Error(`jwksUri ${this.uri}: body above the ${maxBytes}-byte cap`);
      chunks.push(chunk);
    }
    let doc: unknown;
    try { doc = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { throw new Error(`jwksUri ${this.uri}: not JSON`); }
    const keys = (doc as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys) || keys.some((k) => k === null || typeof k !== 'object' || Array.isArray(k))) throw new Error(`jwksUri ${this.uri}: not a JWKS (no "keys" array of objects)`);
    return new Jwks({ keys: keys.slice(0, maxKeys) as Record<string, unknown>[] });
  }
}

/** One RemoteJwks per URI for the process (`options` apply when it is first created), so rebuilding detectors (policy reloads, per-namespace
 *  profiles) neither refetches nor forgets the last good set. */
const shared = new LRUCache<string, RemoteJwks>({ max: 256 });

export function remoteJwksFor(uri: string, options?: Partial<RemoteJwksOptions>): RemoteJwks {
  let remote = shared.get(uri);
  if (remote === undefined) { remote = new RemoteJwks(uri, options); shared.set(uri, remote); }
  return remote;
}
