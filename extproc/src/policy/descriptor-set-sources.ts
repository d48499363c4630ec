// Reads the gRPC descriptor sets policies keep in ConfigMaps (spec.content.grpc.descriptorSet
// .configMapRef, in the policy's namespace) and holds their method lists for the policy mapping
// (content-mapping.ts). Same rules as apiSpecs' ConfigMaps (spec-sources.ts): `get` only, re-read every
// configMapRefreshMs on the spec loader's ticks, Kubernetes mode only, content that did not change is
// not parsed again. Bytes go through the inline form's parser (same cap, same errors). A ConfigMap or
// key that is missing, or bytes that are not a descriptor set, leave that policy without descriptor
// methods (the gRPC check runs on knownMethods alone, or not at all), reported in the condition
// DescriptorSetLoaded and the log. Listeners hear every change of the method lists, so the policy is
// applied again.
import { createHash } from 'node:crypto';
import type { Logger } from '../log.ts';
import { methodsFromDescriptorSetBytes } from '../inspect/grpc.ts';
import { ConfigMapReadError, type ConfigMapReader } from './configmap-reader.ts';
import type { ConfigMapDescriptorMethods } from './content-mapping.ts';
import type { PolicySet } from './precedence.ts';
import { PolicySyncQueue } from './sync-queue.ts';
import { DEFAULT_CONFIGMAP_REFRESH_MS } from './spec-sources.ts';
import { policyKey, type ConfigMapKeyRef, type PolicyCondition } from './types.ts';

export const DESCRIPTOR_SET_LOADED = 'DescriptorSetLoaded';

/** What the policy mapping needs: the method lists by namespace, and word when they change. */
export interface ConfigMapDescriptorSets {
  /** The lookup for the policy (of `namespace`) that supplied spec.content. */
  methodsIn(namespace: string | undefined): ConfigMapDescriptorMethods;
  onChange(listener: () => void): () => void;
}

export interface DescriptorSetStatus {
  /** "namespace/policy". */
  policy: string;
  generation?: number;
  /** "ConfigMap NS/NAME, key K". */
  place: string;
  /** Its methods are in force. */
  loaded: boolean;
  methods?: number;
  error?: string;
  problem?: 'invalid' | 'unavailable';
}

export interface DescriptorSetLoaderOptions {
  configMaps?: ConfigMapReader;
  configMapRefreshMs?: number;
  /** Runs after every sync with the new status (e.g. to write it into the policies' status). */
  onStatus?: (status: DescriptorSetStatus[]) => void;
  now?: () => number;
}

interface Entry {
  place: string;
  /** Last read (ms), for the refresh interval. */
  checkedAt: number;
  /** sha256 of the last bytes read, so unchanged content is not parsed again. */
  digest?: string;
  methods?: readonly string[];
  invalid?: string;
  unavailable?: string;
}

const entryKey = (namespace: string, ref: ConfigMapKeyRef): string => `${namespace}\n${ref.name}\n${ref.key}`;
const placeOf = (namespace: string, ref: ConfigMapKeyRef): string => `ConfigMap ${namespace}/${ref.name}, key ${ref.key}`;
const sameMethods = (a: readonly string[] | undefined, b: readonly string[] | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.length === b.length && a.every((m, i) => m === b[i]));

export class DescriptorSetLoader implements ConfigMapDescriptorSets {
  readonly #log: Logger | undefined;
  readonly #options: DescriptorSetLoaderOptions;
  readonly #now: () => number;
  #configMaps: ConfigMapReader | undefined;
  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new Set<() => void>();
  #status: DescriptorSetStatus[] = [];
  readonly #syncs = new PolicySyncQueue((set) => this.#sync(set));

  constructor(log?: Logger, options: DescriptorSetLoaderOptions = {}) {
    this.#log = log;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#configMaps = options.configMaps;
  }

  methodsIn(namespace: string | undefined): ConfigMapDescriptorMethods {
    return (ref) => (namespace === undefined ? undefined : this.#entries.get(entryKey(namespace, ref))?.methods);
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Starts reading ConfigMaps (once the Kubernetes client exists); entries are read at once. */
  useConfigMaps(reader: ConfigMapReader): Promise<void> {
    this.#configMaps = reader;
    for (const entry of this.#entries.values()) entry.checkedAt = -Infinity;
    return this.recheck();
  }

  /** Reads what `set` references and is due; syncs run one after another. */
  sync(set: PolicySet): Promise<void> {
    return this.#syncs.sync(set);
  }

  /** Re-reads the ConfigMaps whose refresh interval has passed. */
  recheck(): Promise<void> {
    return this.#syncs.recheck();
  }

  status(): DescriptorSetStatus[] {
    return [...this.#status];
  }

  async #sync(set: PolicySet): Promise<void> {
    const wanted = new Map<string, { namespace: string; ref: ConfigMapKeyRef }>();
    const users: { policy: string; generation?: number; key: string }[] = [];
    for (const policy of set.policies()) {
      const ref = policy.spec.content?.grpc?.descriptorSet?.configMapRef;
      if (ref === undefined) continue;
      const namespace = policy.metadata.namespace ?? set.meshNamespace;
      const key = entryKey(namespace, ref);
      wanted.set(key, { namespace, ref });
      users.push({ policy: policyKey(policy), key, ...(policy.metadata.generation !== undefined ? { generation: policy.metadata.generation } : {}) });
    }
    let changed = false;
    for (const [key, entry] of this.#entries) {
      if (wanted.has(key)) continue;
      this.#entries.delete(key);
      changed ||= entry.methods !== undefined;
    }
    for (const [key, { namespace, ref }] of wanted) {
      let entry = this.#entries.get(key);
      if (!entry) this.#entries.set(key, entry = { place: placeOf(namespace, ref), checkedAt: -Infinity });
      changed = (await this.#read(entry, namespace, ref)) || changed;
    }
    this.#status = users.map(({ policy, generation, key }): DescriptorSetStatus => {
      const e = this.#entries.get(key)!;
      const problem = e.unavailable !== undefined ? { error: e.unavailable, problem: 'unavailable' as const }
        : e.invalid !== undefined ? { error: e.invalid, problem: 'invalid' as const } : {};
      return {
        policy, place: e.place, loaded: e.methods !== undefined, ...(generation !== undefined ? { generation } : {}),
        ...(e.methods !== undefined ? { methods: e.methods.length } : {}), ...problem,
      };
    });
    if (changed) for (const listener of this.#listeners) listener();
    this.#options.onStatus?.(this.status());
  }

  /** Reads one entry when due; true when its methods changed. */
  async #read(entry: Entry, namespace: string, ref: ConfigMapKeyRef): Promise<boolean> {
    const before = entry.methods;
    const fail = (kind: 'invalid' | 'unavailable', message: string): boolean => {
      const logged = kind === 'invalid' ? entry.invalid : entry.unavailable;
      if (logged !== message) this.#log?.warn({ place: entry.place, error: message }, 'gRPC descriptor set not loaded; the method check runs without it');
      delete entry.methods;
      if (kind === 'invalid') { entry.invalid = message; delete entry.unavailable; } else { entry.unavailable = message; delete entry.invalid; }
      return before !== undefined;
    };
    if (!this.#configMaps) {
      return fail('unavailable', `not available: ConfigMaps are read only with --policy-source kubernetes (with files, use descriptorSet.base64)`);
    }
    const now = this.#now();
    if (now - entry.checkedAt < (this.#options.configMapRefreshMs ?? DEFAULT_CONFIGMAP_REFRESH_MS)) return false;
    entry.checkedAt = now;
    let bytes: Buffer;
    try {
      ({ bytes } = await this.#configMaps.readBytes(namespace, ref.name, ref.key));
    } catch (err) {
      // A transient failure (network, API server 5xx) keeps the methods last read: a blip must not
      // quietly weaken the method check. Not found, no such key or forbidden drop them.
      if (err instanceof ConfigMapReadError && !err.definitive && entry.methods !== undefined) {
        const message = `${(err as Error).message} (kept the descriptor set last read)`;
        if (entry.unavailable !== message) this.#log?.warn({ place: entry.place, error: message }, 'gRPC descriptor set not re-read; the last one read stays in force');
        entry.unavailable = message;
        return false;
      }
      delete entry.digest;
      return fail('unavailable', (err as Error).message);
    }
    const digest = createHash('sha256').update(bytes).digest('hex');
    if (digest === entry.digest) return false;
    entry.digest = digest;
    let methods: readonly string[];
    try {
      methods = methodsFromDescriptorSetBytes(bytes);
    } catch (err) {
      return fail('invalid', (err as Error).message);
    }
    entry.methods = methods;
    delete entry.invalid;
    delete entry.unavailable;
    this.#log?.info({ place: entry.place, methods: methods.length }, 'gRPC descriptor set loaded');
    return !sameMethods(before, methods);
  }
}

/** DescriptorSetLoaded per policy with a descriptorSet.configMapRef: True with the method count when
 *  it is in force; else False (reason DescriptorSetInvalid or DescriptorSetUnavailable) saying why. */
export function descriptorSetConditions(status: readonly DescriptorSetStatus[], time = new Date().toISOString()): Map<string, PolicyCondition[]> {
  const out = new Map<string, PolicyCondition[]>();
  for (const s of status) {
    out.set(s.policy, [{
      type: DESCRIPTOR_SET_LOADED,
      status: s.loaded ? 'True' : 'False',
      reason: s.loaded ? 'Loaded' : s.problem === 'invalid' ? 'DescriptorSetInvalid' : s.problem === 'unavailable' ? 'DescriptorSetUnavailable' : 'Pending',
      message: s.loaded ? `${s.place}: ${s.methods} methods${s.error !== undefined ? `; last read failed: ${s.error}` : ''}` : `${s.place}: ${s.error ?? 'not read yet'}; the gRPC method check runs without it`,
      ...(s.generation !== undefined ? { observedGeneration: s.generation } : {}),
      lastTransitionTime: time,
    }]);
  }
  return out;
}
