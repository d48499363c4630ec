// The policy of the workload a request arrived at: its namespace and labels come from its sidecar's
// own node metadata, carried in the filter's capture record (RequestEvent.sidecarWorkload), which no
// client can set. It decides the request's mode (EngineConfig.modeFor) and, when it differs from the
// mesh-wide default, its deny rules and detector settings (EngineConfig.profileFor). Requests without
// a workload (an older filter, a sidecar without node metadata) get the engine's own: the mesh default.
import { LRUCache } from 'lru-cache';
import type { EngineProfile, PolicyMode } from '../engine/engine.ts';
import type { RequestEvent, SidecarWorkload } from '../engine/event.ts';
import type { Exchange } from '../engine/exchange.ts';
import type { DenyRule } from '../engine/rules.ts';
import { engineSettingsFor } from './engine-mapping.ts';
import type { EffectivePolicy, PolicySet } from './precedence.ts';
import type { ConfigMapDescriptorSets } from './descriptor-set-sources.ts';

/** Distinct (namespace, labels) combinations remembered between policy changes. */
const MAX_CACHED_WORKLOADS = 1_000;

interface WorkloadDecision {
  effective: EffectivePolicy;
  mode: PolicyMode;
  /** Undefined when the workload's rules and settings are the mesh default's. */
  profile: EngineProfile | undefined;
}

function workloadKey(namespace: string, labels: Readonly<Record<string, string>> | undefined): string {
  const entries = Object.entries(labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${namespace}\n${entries.map(([k, v]) => `${k}=${v}`).join(',')}`;
}

export class WorkloadPolicies {
  readonly #staticDenyRules: readonly DenyRule[];
  readonly #descriptorSets: ConfigMapDescriptorSets | undefined;
  #set: PolicySet | undefined;
  #meshProfileKey = '';
  readonly #cache = new LRUCache<string, WorkloadDecision>({ max: MAX_CACHED_WORKLOADS });

  /** `staticDenyRules`: the server configuration's rules, in force for every workload;
   *  `descriptorSets`: gRPC descriptor sets read from ConfigMaps. */
  constructor(staticDenyRules: readonly DenyRule[] = [], descriptorSets?: ConfigMapDescriptorSets) {
    this.#staticDenyRules = staticDenyRules;
    this.#descriptorSets = descriptorSets;
  }

  /** Takes the policies now in force (every accepted change). */
  update(set: PolicySet): void {
    this.#set = set;
    this.#cache.clear();
    this.#meshProfileKey = this.#profileOf(set.effectiveFor({ namespace: set.meshNamespace })).key;
  }

  /** The profiles the policies in force define (each policy's namespace, with its selector's labels),
   *  other than the mesh default's: what the engine should build before requests need them. */
  knownProfiles(): EngineProfile[] {
    if (this.#set === undefined) return [];
    const out = new Map<string, EngineProfile>();
    for (const p of this.#set.policies()) {
      const labels = p.spec.selector?.matchLabels;
      const profile = this.#profileOf(this.#set.effectiveFor({ namespace: p.metadata.namespace ?? 'default', ...(labels ? { labels } : {}) }));
      if (profile.key !== this.#meshProfileKey) out.set(profile.key, profile);
    }
    return [...out.values()];
  }

  #profileOf(effective: EffectivePolicy): EngineProfile {
    const settings = engineSettingsFor(effective.spec, this.#descriptorSets?.methodsIn(effective.contentNamespace));
    const denyRules = [...this.#staticDenyRules, ...settings.engine.denyRules];
    const { detectorModes, maxBodyBytes } = settings.engine;
    return {
      key: JSON.stringify({ denyRules, settings: settings.detectors, detectorModes, maxBodyBytes }), denyRules, settings: settings.detectors,
      ...(detectorModes ? { detectorModes } : {}), ...(maxBodyBytes !== undefined ? { maxBodyBytes } : {}),
    };
  }

  #decisionFor(workload: SidecarWorkload | undefined): WorkloadDecision | undefined {
    if (this.#set === undefined || workload?.namespace === undefined) return undefined;
    const key = workloadKey(workload.namespace, workload.labels);
    let decision = this.#cache.get(key);
    if (decision === undefined) {
      const effective = this.#set.effectiveFor({ namespace: workload.namespace, ...(workload.labels ? { labels: workload.labels } : {}) });
      const profile = this.#profileOf(effective);
      decision = { effective, mode: effective.spec.mode === 'enforce' ? 'enforce' : 'monitor', profile: profile.key === this.#meshProfileKey ? undefined : profile };
      this.#cache.set(key, decision);
    }
    return decision;
  }

  /** The effective policy of a workload; undefined without policies or without its namespace. */
  effectiveFor(workload: SidecarWorkload | undefined): EffectivePolicy | undefined {
    return this.#decisionFor(workload)?.effective;
  }

  /** The engine's per-exchange mode hook (EngineConfig.modeFor); one stable function. */
  readonly modeFor = (exchange: Exchange): PolicyMode | undefined => this.#decisionFor(exchange.request.sidecarWorkload)?.mode;

  /** The engine's per-request rules and settings hook (EngineConfig.profileFor); one stable function. */
  readonly profileFor = (request: RequestEvent): EngineProfile | undefined => this.#decisionFor(request.sidecarWorkload)?.profile;
}
