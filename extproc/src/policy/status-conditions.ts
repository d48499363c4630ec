// Policy status conditions other than Accepted, reported by the parts that act on a policy (today:
// the spec loader's SpecsLoaded). The Kubernetes source writes them beside Accepted; a listener hears
// which policy's conditions changed so only that object's status is rewritten.
import type { PolicyCondition } from './types.ts';
import type { PolicySpecStatus } from './spec-sources.ts';

export const SPECS_LOADED = 'SpecsLoaded';
const MAX_MESSAGE = 32_000;

export class PolicyConditions {
  readonly #byPolicy = new Map<string, PolicyCondition[]>();
  readonly #listeners = new Set<(policy: string) => void>();

  /** Extra conditions of a policy ("namespace/name"). */
  get(policy: string): PolicyCondition[] {
    return this.#byPolicy.get(policy) ?? [];
  }

  /** Replaces every policy's conditions; listeners hear each policy whose conditions changed
   *  (a condition's time alone is not a change). */
  replaceAll(next: ReadonlyMap<string, PolicyCondition[]>): void {
    const changed: string[] = [];
    for (const policy of new Set([...this.#byPolicy.keys(), ...next.keys()])) {
      const after = next.get(policy) ?? [];
      if (fingerprint(this.get(policy)) === fingerprint(after)) continue;
      if (after.length) this.#byPolicy.set(policy, after);
      else this.#byPolicy.delete(policy);
      changed.push(policy);
    }
    for (const policy of changed) for (const listener of this.#listeners) listener(policy);
  }

  onChange(listener: (policy: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

function fingerprint(conditions: readonly PolicyCondition[]): string {
  return JSON.stringify(conditions.map((c) => [c.type, c.status, c.reason, c.message, c.observedGeneration]));
}

/** SpecsLoaded per policy with apiSpecs: True when every spec's current content is in force; else
 *  False naming each failing spec, where it comes from and why (reason SpecInvalid when a spec's
 *  content is unusable, SpecUnavailable when a source could not be read, Conflicting when another
 *  policy names a spec for the same service). */
export function specConditions(status: readonly PolicySpecStatus[], time = new Date().toISOString()): Map<string, PolicyCondition[]> {
  const byPolicy = new Map<string, PolicySpecStatus[]>();
  for (const s of status) byPolicy.set(s.policy, [...(byPolicy.get(s.policy) ?? []), s]);
  const out = new Map<string, PolicyCondition[]>();
  for (const [policy, specs] of byPolicy) {
    const failing = specs.filter((s) => !s.loaded);
    const generation = specs.find((s) => s.generation !== undefined)?.generation;
    const describe = (s: PolicySpecStatus): string => `${s.name} (${s.place})`;
    const message = failing.length === 0
      ? `loaded: ${specs.map(describe).join(', ')}`
      : [
          ...failing.map((s) => `${describe(s)}: ${s.error ?? 'not loaded yet'}${s.inForce !== undefined ? `; service ${s.service} keeps its last good spec ${s.inForce}` : ''}`),
          ...(failing.length < specs.length ? [`loaded: ${specs.filter((s) => s.loaded).map(describe).join(', ')}`] : []),
        ].join('; ');
    const reason = failing.length === 0 ? 'Loaded'
      : failing.some((s) => s.problem === 'invalid') ? 'SpecInvalid'
      : failing.some((s) => s.problem === 'unavailable') ? 'SpecUnavailable'
      : failing.some((s) => s.problem === 'conflict') ? 'Conflicting' : 'Pending';
    out.set(policy, [{
      type: SPECS_LOADED,
      status: failing.length === 0 ? 'True' : 'False',
      reason,
      message: message.slice(0, MAX_MESSAGE),
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      lastTransitionTime: time,
    }]);
  }
  return out;
}
