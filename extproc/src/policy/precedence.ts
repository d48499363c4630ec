// Which policy applies to a workload. Precedence (documented in istio/README.md):
//   1. in the workload's namespace, the policy whose selector matches it with the most labels;
//      else that namespace's policy without a selector;
//   2. under it, the mesh-wide default: the policy without a selector in meshward's own namespace;
//   3. under that, the built-in default (mode monitor, failure mode open).
// A namespace policy overrides the default field by field at the top of spec; detectors merge by name.
// Ties (two policies at the same level) go to the alphabetically first name; the others are reported
// as shadowed so their status can say so.
import type { ApiSecurityPolicy, DetectorSettings, PolicySpec } from './types.ts';
import { policyKey } from './types.ts';

export const BUILTIN_DEFAULT_SPEC: Readonly<PolicySpec> = Object.freeze({ mode: 'monitor', failureMode: 'open' });

export interface Workload {
  namespace: string;
  labels?: Readonly<Record<string, string>>;
}

export interface EffectivePolicy {
  spec: PolicySpec;
  /** Keys ("namespace/name") of the policies that contributed, most general first. */
  from: string[];
  /** Namespace of the policy whose spec.content is in force: its ConfigMap references are read there. */
  contentNamespace?: string;
}

function selectorSize(p: ApiSecurityPolicy): number {
  return Object.keys(p.spec.selector?.matchLabels ?? {}).length;
}

function matches(p: ApiSecurityPolicy, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(p.spec.selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

function byName(a: ApiSecurityPolicy, b: ApiSecurityPolicy): number {
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

/** The namespace-level winner for a workload (most specific matching selector, then name). */
function mostSpecific(candidates: ApiSecurityPolicy[], labels: Readonly<Record<string, string>>): ApiSecurityPolicy | undefined {
  return candidates
    .filter((p) => matches(p, labels))
    .sort((a, b) => selectorSize(b) - selectorSize(a) || byName(a, b))[0];
}

function mergeDetectors(base: DetectorSettings[] = [], over: DetectorSettings[] = []): DetectorSettings[] {
  const byName = new Map(base.map((d) => [d.name, d]));
  for (const d of over) {
    const b = byName.get(d.name);
    const learning = b?.learning || d.learning ? { learning: { ...b?.learning, ...d.learning } } : {};
    byName.set(d.name, { ...b, ...d, thresholds: { ...b?.thresholds, ...d.thresholds }, ...learning });
  }
  return [...byName.values()];
}

/** `over`'s top-level fields replace `base`'s; detectors merge by name; selector is never inherited. */
export function overrideSpec(base: PolicySpec, over: PolicySpec): PolicySpec {
  const { selector: _ignored, ...baseRest } = base;
  const merged: PolicySpec = { ...baseRest, ...over };
  if (base.detectors || over.detectors) merged.detectors = mergeDetectors(base.detectors, over.detectors);
  return merged;
}

export class PolicySet {
  readonly #meshNamespace: string;
  readonly #byNamespace = new Map<string, ApiSecurityPolicy[]>();

  constructor(meshNamespace: string, policies: readonly ApiSecurityPolicy[]) {
    this.#meshNamespace = meshNamespace;
    for (const p of policies) {
      const ns = p.metadata.namespace ?? meshNamespace;
      const list = this.#byNamespace.get(ns) ?? [];
      list.push(p);
      this.#byNamespace.set(ns, list);
    }
  }

  get meshNamespace(): string { return this.#meshNamespace; }

  /** Every policy in the set, by namespace then name. */
  policies(): ApiSecurityPolicy[] {
    return [...this.#byNamespace.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).flatMap(([, list]) => [...list].sort(byName));
  }

  /** The mesh-wide default policy, if any. */
  meshDefault(): ApiSecurityPolicy | undefined {
    return (this.#byNamespace.get(this.#meshNamespace) ?? []).filter((p) => selectorSize(p) === 0).sort(byName)[0];
  }

  effectiveFor(workload: Workload): EffectivePolicy {
    let spec: PolicySpec = { ...BUILTIN_DEFAULT_SPEC };
    const from: string[] = [];
    let contentNamespace: string | undefined;
    const apply = (p: ApiSecurityPolicy): void => {
      spec = overrideSpec(spec, p.spec);
      from.push(policyKey(p));
      if (p.spec.content !== undefined) contentNamespace = p.metadata.namespace ?? this.#meshNamespace;
    };
    const def = this.meshDefault();
    if (def) apply(def);
    const own = mostSpecific(this.#byNamespace.get(workload.namespace) ?? [], workload.labels ?? {});
    if (own && own !== def) apply(own);
    return { spec, from, ...(contentNamespace !== undefined ? { contentNamespace } : {}) };
  }

  /** Policies that can never apply because another one in the same namespace has the same selector and an earlier name. */
  shadowed(): Map<string, string> {
    const out = new Map<string, string>();
    for (const list of this.#byNamespace.values()) {
      const seen = new Map<string, ApiSecurityPolicy>();
      for (const p of [...list].sort(byName)) {
        const sel = JSON.stringify(Object.entries(p.spec.selector?.matchLabels ?? {}).sort());
        const winner = seen.get(sel);
        if (winner) out.set(policyKey(p), policyKey(winner));
        else seen.set(sel, p);
      }
    }
    return out;
  }
}
