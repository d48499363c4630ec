// Keeps the running engine on the policy in force: starts the chosen source (files or Kubernetes),
// and on every change reconfigures the engine. Reconfiguring swaps the rule set between requests;
// in-flight ext_proc streams keep the decision they already got, so nothing is dropped.
// The engine's own deny rules and detector settings are the mesh-wide default's (precedence level 2);
// per request, the policy of the workload the request arrived at decides the mode and, where it
// differs, the rules and settings (workload-policy.ts). Listeners (filter tables, specs) get every
// accepted change.
import type { Engine, EngineConfig } from '../engine/engine.ts';
import type { DenyRule } from '../engine/rules.ts';
import type { Logger } from '../log.ts';
import { engineSettingsFor } from './engine-mapping.ts';
import type { PolicyUpdate } from './registry.ts';
import type { EffectivePolicy } from './precedence.ts';
import { WorkloadPolicies } from './workload-policy.ts';
import { formatPolicyError } from './validate.ts';
import { startFilePolicySource } from './file-source.ts';
import { policyKey } from './types.ts';
import type { PolicyConditions } from './status-conditions.ts';
import type { ConfigMapReader } from './configmap-reader.ts';
import type { ConfigMapDescriptorSets } from './descriptor-set-sources.ts';

export interface PolicyRuntimeOptions {
  source: 'file' | 'kubernetes' | 'none';
  files?: string[];
  /** meshward's namespace (where the mesh-wide default lives). */
  namespace: string;
  resyncSeconds?: number;
  engine: Engine;
  /** Deny rules from the server config file; they stay in force beside the policy's. */
  staticDenyRules?: readonly DenyRule[];
  log: Logger;
  /** The engine's detector factory (EngineConfig.detectors), kept across reconfigurations. */
  detectors?: EngineConfig['detectors'];
  /** Called after every update the source accepts, with the mesh-wide effective policy. */
  onApplied?: (update: PolicyUpdate, meshDefault: EffectivePolicy) => void;
  /** Conditions written into the policies' status beside Accepted (Kubernetes source). */
  conditions?: PolicyConditions;
  /** gRPC descriptor sets read from ConfigMaps; the policy is applied again when they change. */
  descriptorSets?: ConfigMapDescriptorSets;
}

export interface PolicyRuntime {
  /** The last update applied (undefined until the source has loaded once). */
  readonly last: PolicyUpdate | undefined;
  /** Effective policy per workload (namespace, labels), as requests use it. */
  readonly workloads: WorkloadPolicies;
  /** Reads policies' ConfigMaps (Kubernetes source only). */
  readonly configMaps?: ConfigMapReader;
  stop(): Promise<void>;
}

export async function startPolicyRuntime(o: PolicyRuntimeOptions): Promise<PolicyRuntime> {
  let last: PolicyUpdate | undefined;
  let applied = '';
  const workloads = new WorkloadPolicies(o.staticDenyRules, o.descriptorSets);
  const apply = (update: PolicyUpdate): void => {
    last = update;
    workloads.update(update.set);
    for (const errors of update.errors.values()) for (const e of errors) o.log.warn({ error: formatPolicyError(e) }, 'policy rejected');
    for (const [policy, winner] of update.set.shadowed()) o.log.warn({ policy, winner }, 'policy shadowed by another with the same namespace and selector');
    const effective = update.set.effectiveFor({ namespace: o.namespace });
    const settings = engineSettingsFor(effective.spec, o.descriptorSets?.methodsIn(effective.contentNamespace));
    const config = { ...settings.engine, denyRules: [...(o.staticDenyRules ?? []), ...settings.engine.denyRules], modeFor: workloads.modeFor, profileFor: workloads.profileFor, ...(o.detectors ? { detectors: o.detectors } : {}) };
    try {
      o.onApplied?.(update, effective);
    } catch (err) {
      o.log.error({ err }, 'policy listener failed');
    }
    // Reconfiguring restarts detector state (learned baselines): only do it when something changed,
    // not on every resync or unrelated namespace edit.
    const fingerprint = JSON.stringify(config);
    const changed = fingerprint !== applied;
    if (changed) {
      applied = fingerprint;
      o.engine.reconfigure(config);
    }
    try {
      o.engine.prepareProfiles(workloads.knownProfiles());
    } catch (err) {
      o.log.error({ err }, 'building the detectors of a policy profile failed; they are built on first use');
    }
    if (!changed) return;
    o.log.info({ from: effective.from, mode: config.mode, denyRules: config.denyRules.length, notApplied: settings.notApplied.map((n) => n.path) }, 'policy applied');
  };
  // A descriptor set read (or lost) changes the settings: the last update is applied again.
  const unsubscribe = o.descriptorSets?.onChange(() => { if (last) apply(last); }) ?? (() => {});
  if (o.source === 'none') return { get last() { return last; }, workloads, stop: async () => { unsubscribe(); } };
  if (o.source === 'file') {
    const source = await startFilePolicySource({ files: o.files ?? [], meshNamespace: o.namespace, onChange: apply });
    return { get last() { return last; }, workloads, stop: async () => { unsubscribe(); source.close(); } };
  }
  // Loaded only here: the Kubernetes client is large, and no other command needs it.
  const k8s = await import('@kubernetes/client-node');
  const { startKubernetesPolicySource } = await import('./kubernetes-source.ts');
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromDefault();
  const source = startKubernetesPolicySource({
    kubeConfig, meshNamespace: o.namespace, onChange: apply, log: o.log,
    ...(o.conditions ? { conditions: o.conditions } : {}),
    ...(o.resyncSeconds ? { resyncMs: o.resyncSeconds * 1000 } : {}),
    acceptedNote: (p) => {
      const notes = engineSettingsFor(p.spec).notApplied;
      return notes.length ? `accepted (${policyKey(p)}); not applied yet: ${notes.map((n) => `${n.path} (${n.reason})`).join('; ')}` : undefined;
    },
  });
  const { kubernetesConfigMapReader } = await import('./configmap-reader.ts');
  return { get last() { return last; }, workloads, configMaps: kubernetesConfigMapReader(kubeConfig), stop: () => { unsubscribe(); return source.stop(); } };
}
