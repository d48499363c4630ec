// Policies from the Kubernetes API: an informer (list + watch, which reconnects with backoff by
// itself) over ApiSecurityPolicy in every namespace, a periodic resync (full re-list), and a watchdog
// that restarts the informer when it has not connected for too long. Each object's verdict is written
// back to its status (condition Accepted, observedGeneration, plus the conditions other parts report,
// such as SpecsLoaded); an invalid object keeps its last good version in force.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { PolicyRegistry, type PolicyListener } from './registry.ts';
import { formatPolicyError, validatePolicyObject, type PolicyError } from './validate.ts';
import { POLICY_GROUP, POLICY_PLURAL, POLICY_VERSION, type ApiSecurityPolicy, type PolicyCondition } from './types.ts';
import type { PolicyConditions } from './status-conditions.ts';

export interface KubernetesPolicySourceOptions {
  kubeConfig: k8s.KubeConfig;
  meshNamespace: string;
  onChange: PolicyListener;
  log: Logger;
  /** Full re-list period (default 5 minutes). */
  resyncMs?: number;
  /** Restart the informer when it has not (re)connected for this long (default 2 x resync). */
  watchdogMs?: number;
  /** Pause before retrying after an informer error (default 2 s). */
  errorRetryMs?: number;
  /** Extra policy-independent notes for the Accepted message (e.g. fields not applied yet). */
  acceptedNote?: (policy: ApiSecurityPolicy) => string | undefined;
  /** Conditions written beside Accepted (e.g. SpecsLoaded); a change rewrites that policy's status. */
  conditions?: PolicyConditions;
}

export interface KubernetesPolicySource {
  readonly registry: PolicyRegistry;
  /** Resolves once the first list has been applied. */
  readonly synced: Promise<void>;
  stop(): Promise<void>;
}

type PolicyObject = ApiSecurityPolicy & k8s.KubernetesObject;

const MAX_STATUS_MESSAGE = 32_000;

export function acceptedCondition(generation: number | undefined, errors: readonly PolicyError[], note?: string): PolicyCondition {
  const message = errors.length > 0 ? errors.map((e) => `${e.path}: ${e.reason}`).join('; ') : (note ?? 'policy is in force');
  return {
    type: 'Accepted',
    status: errors.length > 0 ? 'False' : 'True',
    reason: errors.length > 0 ? 'Invalid' : 'Accepted',
    message: message.slice(0, MAX_STATUS_MESSAGE),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    lastTransitionTime: new Date().toISOString(),
  };
}

function keyOf(o: k8s.KubernetesObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

export function startKubernetesPolicySource(options: KubernetesPolicySourceOptions): KubernetesPolicySource {
  const { kubeConfig, log } = options;
  const registry = new PolicyRegistry(options.meshNamespace, options.onChange);
  const api = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  const resyncMs = options.resyncMs ?? 5 * 60_000;
  const watchdogMs = options.watchdogMs ?? 2 * resyncMs;
  const errorRetryMs = options.errorRetryMs ?? 2000;
  const listPath = `/apis/${POLICY_GROUP}/${POLICY_VERSION}/${POLICY_PLURAL}`;
  let lastContact = Date.now();
  let resolveSynced!: () => void;
  const synced = new Promise<void>((resolve) => { resolveSynced = resolve; });
  const listFn = async (): Promise<k8s.KubernetesListObject<PolicyObject>> => {
    const list = await api.listClusterCustomObject({ group: POLICY_GROUP, version: POLICY_VERSION, plural: POLICY_PLURAL }) as k8s.KubernetesListObject<PolicyObject>;
    lastContact = Date.now();
    // After the informer has applied this list (adds/updates run right after we return), drop
    // policies deleted while no watch was open (e.g. across an informer restart).
    setImmediate(() => {
      const present = new Set(list.items.map(keyOf));
      for (const origin of registry.origins()) if (!present.has(origin)) registry.remove(origin);
      resolveSynced();
    });
    return list;
  };

  /** What was last written per object ("namespace/name" -> generation + verdict), to skip repeats. */
  const written = new Map<string, string>();
  const writeStatus = async (obj: PolicyObject, accepted: PolicyCondition): Promise<void> => {
    // A merge patch replaces the conditions list: write Accepted and the extra ones together.
    const conditions = [accepted, ...(options.conditions?.get(keyOf(obj)) ?? []).map((c) => ({ ...c }))];
    const previous = (type: string): PolicyCondition | undefined => obj.status?.conditions?.find((c) => c.type === type);
    const gen = obj.metadata.generation;
    const verdict = `${gen} ${conditions.map((c) => `${c.type} ${c.status} ${c.reason} ${c.observedGeneration} ${c.message}`).join('\n')}`;
    // Our own status writes come back as watch events: skip when nothing would change.
    if (written.get(keyOf(obj)) === verdict) return;
    const unchanged = (c: PolicyCondition): boolean => {
      const prev = previous(c.type);
      return prev !== undefined && prev.status === c.status && prev.reason === c.reason && prev.message === c.message && (c.type === 'Accepted' || prev.observedGeneration === c.observedGeneration);
    };
    if (obj.status?.observedGeneration === gen && (obj.status?.conditions?.length ?? 0) === conditions.length && conditions.every(unchanged)) return;
    for (const c of conditions) {
      const prev = previous(c.type);
      if (prev && prev.status === c.status) c.lastTransitionTime = prev.lastTransitionTime;
    }
    written.set(keyOf(obj), verdict);
    try {
      await api.patchNamespacedCustomObjectStatus({
        group: POLICY_GROUP, version: POLICY_VERSION, plural: POLICY_PLURAL,
        namespace: obj.metadata.namespace!, name: obj.metadata.name,
        body: { status: { ...(gen !== undefined ? { observedGeneration: gen } : {}), conditions } },
      }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    } catch (err) {
      written.delete(keyOf(obj));
      log.warn({ policy: keyOf(obj), err: (err as Error).message }, 'could not write policy status');
    }
  };

  /** The verdict on one object, from what the registry now holds (errors, or shadowed by a sibling). */
  const conditionFor = (obj: PolicyObject): PolicyCondition => {
    const key = keyOf(obj);
    const errors = registry.errors.get(key) ?? [];
    const winner = errors.length === 0 ? registry.current.shadowed().get(key) : undefined;
    if (winner) {
      return { ...acceptedCondition(obj.metadata.generation, []), status: 'False', reason: 'Conflicting', message: `shadowed by ${winner}: same namespace and selector, and its name sorts first` };
    }
    const policy = registry.lastGood(key)?.[0];
    const condition = acceptedCondition(obj.metadata.generation, errors, errors.length === 0 && policy ? options.acceptedNote?.(policy) : undefined);
    if (errors.length > 0 && policy) condition.message = `${condition.message}; generation ${policy.metadata.generation ?? '?'} stays in force`.slice(0, MAX_STATUS_MESSAGE);
    return condition;
  };

  /** After any change, every object's status is brought up to date (a deletion can un-shadow a sibling). */
  const refreshStatuses = (): void => {
    for (const obj of informer.list()) void writeStatus(obj, conditionFor(obj));
  };

  const apply = (obj: PolicyObject): void => {
    const key = keyOf(obj);
    const r = validatePolicyObject(obj);
    const errors: PolicyError[] = r.errors.map((e) => ({ source: key, ...e }));
    registry.update(key, r.policy ? [r.policy] : [], errors);
    if (errors.length > 0) log.warn({ policy: key, errors: errors.map(formatPolicyError) }, registry.lastGood(key) ? 'invalid policy rejected; its last good version stays in force' : 'invalid policy rejected');
    refreshStatuses();
  };

  let stopped = false;
  let informer = makePolicyInformer();

  function makePolicyInformer(): k8s.Informer<PolicyObject> & k8s.ObjectCache<PolicyObject> {
    const inf = k8s.makeInformer<PolicyObject>(kubeConfig, listPath, listFn);
    inf.on('add', apply);
    inf.on('update', apply);
    inf.on('delete', (obj) => {
      registry.remove(keyOf(obj));
      written.delete(keyOf(obj));
      refreshStatuses();
    });
    inf.on('connect', () => { lastContact = Date.now(); });
    inf.on('error', (err) => {
      // ListWatch stops on errors it does not retry by itself (e.g. the API server is down): retry
      // after a pause. The policies in force stay as they are meanwhile.
      log.warn({ err: (err as Error | undefined)?.message }, 'policy informer error; retrying');
      setTimeout(() => { if (!stopped && informer === inf) void inf.start().catch(() => {}); }, errorRetryMs).unref();
    });
    return inf;
  }

  const restart = async (why: string): Promise<void> => {
    log.info({ why }, 'restarting policy informer');
    await informer.stop().catch(() => {});
    informer = makePolicyInformer();
    await informer.start().catch((err: Error) => log.warn({ err: err.message }, 'policy informer start failed'));
  };

  const stopConditions = options.conditions?.onChange((policy) => {
    const obj = informer.list().find((o) => keyOf(o) === policy);
    if (obj) void writeStatus(obj, conditionFor(obj));
  });

  void informer.start().catch((err: Error) => log.warn({ err: err.message }, 'policy informer start failed'));
  const resync = setInterval(() => { void restart('resync'); }, resyncMs);
  const watchdog = setInterval(() => {
    if (Date.now() - lastContact > watchdogMs) void restart(`no contact with the API server for ${Date.now() - lastContact} ms`);
  }, Math.max(1000, Math.floor(watchdogMs / 4)));
  resync.unref();
  watchdog.unref();

  return {
    registry,
    synced,
    stop: async () => {
      stopped = true;
      stopConditions?.();
      clearInterval(resync);
      clearInterval(watchdog);
      await informer.stop().catch(() => {});
    },
  };
}
