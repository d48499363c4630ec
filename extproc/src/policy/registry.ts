// The policies in force, fed by a source (files or Kubernetes). An invalid update never replaces
// the last good version of the same policy; the built-in default is always under everything, so the
// server is never without a policy.
import { PolicySet } from './precedence.ts';
import type { PolicyError } from './validate.ts';
import type { ApiSecurityPolicy } from './types.ts';
import { policyKey } from './types.ts';

export interface PolicyUpdate {
  set: PolicySet;
  /** Current errors per origin (a file, or a Kubernetes object "namespace/name"); empty when all are valid. */
  errors: ReadonlyMap<string, readonly PolicyError[]>;
}

export type PolicyListener = (update: PolicyUpdate) => void;

export class PolicyRegistry {
  readonly #meshNamespace: string;
  readonly #listener: PolicyListener;
  /** origin -> its last good policies. */
  readonly #good = new Map<string, ApiSecurityPolicy[]>();
  readonly #errors = new Map<string, PolicyError[]>();
  #set: PolicySet;

  constructor(meshNamespace: string, listener: PolicyListener) {
    this.#meshNamespace = meshNamespace;
    this.#listener = listener;
    this.#set = new PolicySet(meshNamespace, []);
  }

  get current(): PolicySet { return this.#set; }
  get errors(): ReadonlyMap<string, readonly PolicyError[]> { return this.#errors; }

  /** Every origin with policies or errors. */
  origins(): string[] { return [...new Set([...this.#good.keys(), ...this.#errors.keys()])]; }

  /** The last good policies of one origin, when it has any. */
  lastGood(origin: string): readonly ApiSecurityPolicy[] | undefined { return this.#good.get(origin); }

  /**
   * Applies what an origin now holds. With errors, the origin keeps its last good policies (or
   * none, when it never had a valid one) and the errors are reported.
   */
  update(origin: string, policies: readonly ApiSecurityPolicy[], errors: readonly PolicyError[]): void {
    if (errors.length > 0) this.#errors.set(origin, [...errors]);
    else {
      this.#errors.delete(origin);
      // A policy file without a namespace belongs to meshward's own namespace.
      this.#good.set(origin, policies.map((p) => (p.metadata.namespace ? p : { ...p, metadata: { ...p.metadata, namespace: this.#meshNamespace } })));
    }
    this.#publish();
  }

  remove(origin: string): void {
    const had = this.#good.delete(origin) || this.#errors.delete(origin);
    this.#errors.delete(origin);
    if (had) this.#publish();
  }

  #publish(): void {
    const byKey = new Map<string, ApiSecurityPolicy>();
    for (const list of this.#good.values()) for (const p of list) byKey.set(policyKey(p), p);
    this.#set = new PolicySet(this.#meshNamespace, [...byKey.values()]);
    this.#listener({ set: this.#set, errors: this.#errors });
  }
}
