// Enforced findings become temporary entries in the filter's tables (issue #4): once the engine has
// refused a caller in enforce mode, the sidecars of that namespace refuse the caller's next requests
// themselves (same status and reason) without an ext_proc round trip, until the entry expires.
// The engine knows nothing of this: an observer turns its decisions into entries here.
import { LRUCache } from 'lru-cache';
import type { DecisionRecord, EngineObserver } from '../engine/engine.ts';
import type { Finding } from '../engine/finding.ts';
import type { EnforcedEntry } from './schema.ts';

/** How long an entry stays when no other TTL is given. */
export const DEFAULT_ENFORCED_TTL_MS = 5 * 60_000;
/** Entries kept over all namespaces; the oldest is evicted beyond it (the filter's schema allows 10,000 per table). */
export const MAX_ENFORCED_ENTRIES = 5_000;

/** Findings about the caller as a whole rather than one operation: the entry covers every operation. */
const WHOLE_CALLER_CATEGORIES: ReadonlySet<Finding['category']> = new Set(['LATERAL-Movement']);

interface Stored { namespace: string; entry: EnforcedEntry }

export interface EnforcedDeniesOptions {
  ttlMs?: number;
  maxEntries?: number;
  /** Wall clock in milliseconds (tests move it). */
  now?: () => number;
}

export class EnforcedDenies {
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #entries: LRUCache<string, Stored>;
  readonly #listeners: (() => void)[] = [];

  constructor(options: EnforcedDeniesOptions = {}) {
    this.#ttlMs = options.ttlMs ?? DEFAULT_ENFORCED_TTL_MS;
    if (!(Number.isFinite(this.#ttlMs) && this.#ttlMs >= 1000)) throw new Error('enforced deny TTL must be at least 1000 ms');
    this.#now = options.now ?? Date.now;
    this.#entries = new LRUCache<string, Stored>({ max: options.maxEntries ?? MAX_ENFORCED_ENTRIES });
  }

  /** Adds (or renews) an entry for the sidecars of `namespace` ('' = sidecars without one). */
  add(namespace: string, entry: Omit<EnforcedEntry, 'expiresAtMs'>): EnforcedEntry {
    const full: EnforcedEntry = { ...entry, expiresAtMs: this.#now() + this.#ttlMs };
    this.#entries.set(`${namespace}\n${entry.identity}\n${entry.operation ?? ''}`, { namespace, entry: full });
    for (const l of this.#listeners) l();
    return full;
  }

  /** Unexpired entries of one namespace; expired ones are dropped on the way. */
  entriesFor(namespace: string): EnforcedEntry[] {
    const now = this.#now();
    const out: EnforcedEntry[] = [];
    for (const [key, stored] of this.#entries.entries()) {
      if (stored.entry.expiresAtMs <= now) this.#entries.delete(key);
      else if (stored.namespace === namespace) out.push(stored.entry);
    }
    return out;
  }

  get size(): number { return this.#entries.size; }

  /** The clock entries expire by (Unix milliseconds). */
  now(): number { return this.#now(); }

  /** Called after every add (the publisher rebuilds the namespace's document). */
  onChange(listener: () => void): void { this.#listeners.push(listener); }
}

/** The entry an enforced decision asks for: the finding that caused it, against its caller and
 *  operation (or the caller as a whole); undefined for allows and static-rule denies. */
export function enforcedEntryOf(record: DecisionRecord): Omit<EnforcedEntry, 'expiresAtMs'> | undefined {
  const d = record.decision;
  // A stopped response judges the upstream's answer, not the caller: never a deny of the caller.
  if (record.phase === 'response' || d.action !== 'deny' || (d.status !== 403 && d.status !== 429)) return undefined;
  const cause = record.findings?.find((f) => f.detector === d.rule && f.category === d.reason && f.enforcement !== 'none');
  if (cause === undefined || cause.caller.length === 0 || cause.caller.length > 2048 || cause.operation.length > 2048) return undefined;
  const wholeCaller = WHOLE_CALLER_CATEGORIES.has(cause.category) || cause.operation.length === 0;
  return { identity: cause.caller, ...(wholeCaller ? {} : { operation: cause.operation }), status: d.status, reason: d.reason, rule: d.rule };
}

/** Engine observer: every enforced finding adds an entry for the namespace of the sidecar that asked. */
export function enforcementRecorder(denies: EnforcedDenies): EngineObserver {
  return {
    onDecision: (record) => {
      const entry = enforcedEntryOf(record);
      if (entry !== undefined) denies.add(record.request.sidecarWorkload?.namespace ?? '', entry);
    },
  };
}
