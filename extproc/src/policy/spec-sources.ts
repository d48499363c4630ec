// Loads the OpenAPI/GraphQL specs policies reference (spec.apiSpecs) into the inventory's
// SpecRegistry, which classifies traffic and feeds the content detectors' contracts. Three sources:
// a file (reloaded when its mtime or size changes), a URL (re-fetched every urlRefreshMs with a
// timeout, a size cap and If-None-Match / If-Modified-Since), and a ConfigMap key in the policy's
// namespace (re-read every configMapRefreshMs; Kubernetes mode only). Content that did not change is
// not parsed again. A spec that fails to load or to be read is reported (status, log) and the service
// keeps its last good spec (SpecRegistry's rule). Service = the entry's `host`, else its `name`.
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { Logger } from '../log.ts';
import { serviceOf } from '../inventory/facts.ts';
import type { SpecRegistry, SpecSource } from '../inventory/spec-registry.ts';
import { fetchSpecText, type SpecValidators } from '../inventory/spec.ts';
import type { ConfigMapReader } from './configmap-reader.ts';
import type { PolicySet } from './precedence.ts';
import { PolicySyncQueue } from './sync-queue.ts';
import type { ApiSecurityPolicy, ApiSpecSource } from './types.ts';
import { policyKey } from './types.ts';

export const DEFAULT_URL_REFRESH_MS = 5 * 60_000;
export const DEFAULT_CONFIGMAP_REFRESH_MS = 30_000;
/** A URL that could not be fetched is tried again after this long, when its refresh interval is longer. */
export const URL_RETRY_MS = 30_000;

/** Why a spec is not in force: its content is not a usable spec, its source could not be read, or
 *  another policy already names a spec for the same service. */
export type SpecProblem = 'invalid' | 'unavailable' | 'conflict';

export interface PolicySpecStatus {
  /** "namespace/policy: spec name". */
  reference: string;
  /** "namespace/policy". */
  policy: string;
  /** Generation of the policy version these apiSpecs come from. */
  generation?: number;
  /** The apiSpecs entry's name. */
  name: string;
  /** Where the spec comes from: "file F", "URL U", "ConfigMap NS/NAME, key K". */
  place: string;
  service: string;
  /** The source's current content is the spec in force. */
  loaded: boolean;
  /** The spec in force for the service (a last good one when this load failed). */
  inForce?: string;
  error?: string;
  problem?: SpecProblem;
}

export interface PolicySpecLoaderOptions {
  /** Reads ConfigMaps (Kubernetes mode); without it a configMapRef is reported as not available. */
  configMaps?: ConfigMapReader;
  urlRefreshMs?: number;
  urlTimeoutMs?: number;
  configMapRefreshMs?: number;
  /** Size cap for fetched specs (default: the spec parser's, 5 MiB). */
  maxBytes?: number;
  /** Runs after every sync with the new status (e.g. to write it into the policies' status). */
  onStatus?: (status: PolicySpecStatus[]) => void;
  now?: () => number;
}

/** A policy's spec reference as a SpecRegistry source that loads once (no refresh, no validators);
 *  undefined for ConfigMaps and GraphQL URLs. The loader reads URLs and ConfigMaps itself. */
export function specSourceOf(s: ApiSpecSource): SpecSource | undefined {
  if (s.format === 'graphql') return s.file !== undefined ? { kind: 'graphql-introspection-file', file: s.file } : undefined;
  if (s.file !== undefined) return { kind: 'openapi-file', file: s.file };
  if (s.url !== undefined) return { kind: 'openapi-url', url: s.url };
  return undefined;
}

/** A URL as reports show it: without credentials and query (either may carry a token). */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?<query hidden>' : ''}`;
  } catch {
    return '<malformed URL>';
  }
}

export function placeOf(s: ApiSpecSource, namespace: string): string {
  if (s.file !== undefined) return `file ${s.file}`;
  if (s.url !== undefined) return `URL ${displayUrl(s.url)}`;
  if (s.configMapRef) return `ConfigMap ${namespace}/${s.configMapRef.name}, key ${s.configMapRef.key}`;
  return 'no source';
}

/** Per service: the reference it follows and what was read from it. */
interface SourceState {
  reference: string;
  /** The source's identity (where), so a changed reference starts over. */
  where: string;
  /** Content version in force from this source / of the last content that failed to load. */
  loaded?: string;
  failed?: string;
  /** Last fetch or read of a URL or ConfigMap (ms), for the refresh interval. */
  checkedAt: number;
  validators: SpecValidators;
  /** Why the last load of content failed / why the source could not be read last time. */
  invalid?: string;
  unavailable?: string;
}

/** `read: false`: not due for a check; `changed: false`: read, and the same as last time (HTTP 304). */
type Read = { read: false } | { read: true; changed: false } | { read: true; changed: true; version: string; source: SpecSource };

class SourceUnavailable extends Error {}

export class PolicySpecLoader {
  readonly #registry: SpecRegistry;
  readonly #log: Logger | undefined;
  readonly #onLoaded: () => void;
  readonly #options: PolicySpecLoaderOptions;
  readonly #now: () => number;
  #configMaps: ConfigMapReader | undefined;
  readonly #sources = new Map<string, SourceState>();
  #status: PolicySpecStatus[] = [];
  readonly #syncs = new PolicySyncQueue((set) => this.#sync(set));

  /** `onLoaded` runs after every sync that loaded at least one spec (e.g. to refresh resolvers). */
  constructor(registry: SpecRegistry, onLoaded: () => void = () => {}, log?: Logger, options: PolicySpecLoaderOptions = {}) {
    this.#registry = registry;
    this.#onLoaded = onLoaded;
    this.#log = log;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#configMaps = options.configMaps;
  }

  /** Starts reading ConfigMap references (once the Kubernetes client exists) and reloads. */
  useConfigMaps(reader: ConfigMapReader): Promise<void> {
    this.#configMaps = reader;
    // Entries that failed for want of a reader are read at once.
    for (const st of this.#sources.values()) if (st.where.startsWith('ConfigMap ')) st.checkedAt = -Infinity;
    return this.recheck();
  }

  /** Loads what `set` references and was not loaded yet; syncs run one after another. */
  sync(set: PolicySet): Promise<void> {
    return this.#syncs.sync(set);
  }

  /** Reloads changed files, and re-fetches URLs and ConfigMaps whose refresh interval has passed. */
  recheck(): Promise<void> {
    return this.#syncs.recheck();
  }

  status(): PolicySpecStatus[] {
    return [...this.#status];
  }

  async #sync(set: PolicySet): Promise<void> {
    const wanted = new Map<string, { policy: ApiSecurityPolicy; entry: ApiSpecSource; reference: string }>();
    const status: PolicySpecStatus[] = [];
    for (const policy of set.policies()) {
      for (const entry of policy.spec.apiSpecs ?? []) {
        const service = entry.host ?? entry.name;
        const reference = `${policyKey(policy)}: ${entry.name}`;
        const other = wanted.get(service);
        if (other) {
          this.#log?.warn({ service, used: other.reference, ignored: reference }, 'two policies name a spec for one service; the first is used');
          status.push({
            ...this.#describe(policy, entry, service), loaded: false, problem: 'conflict',
            error: `service ${service} already takes its spec from ${other.reference}; this entry is ignored`,
          });
          continue;
        }
        wanted.set(service, { policy, entry, reference });
      }
    }
    for (const service of this.#sources.keys()) if (!wanted.has(service)) this.#sources.delete(service);
    let loadedAny = false;
    for (const [service, { policy, entry, reference }] of wanted) {
      const described = this.#describe(policy, entry, service);
      const namespace = policy.metadata.namespace ?? 'default';
      let st = this.#sources.get(service);
      if (!st || st.where !== described.place || st.reference !== reference) {
        st = { reference, where: described.place, checkedAt: -Infinity, validators: {} };
        this.#sources.set(service, st);
      }
      try {
        const read = await this.#read(entry, namespace, st);
        if (read.read) delete st.unavailable;
        if (read.read && read.changed && read.version !== st.loaded && read.version !== st.failed) {
          const result = await this.#registry.load(service, read.source);
          if (result.ok) {
            st.loaded = read.version;
            delete st.failed;
            delete st.invalid;
            loadedAny = true;
            this.#log?.info({ service, spec: result.name, reference, place: described.place }, 'policy spec loaded');
          } else {
            st.failed = read.version;
            st.invalid = result.error.message;
            this.#log?.warn({ service, reference, place: described.place, spec: result.error.spec, at: result.error.place, error: result.error.message, inForce: result.inForce ?? null }, 'policy spec not loaded; the service keeps its last good spec');
          }
        } else if (read.read && read.changed && read.version === st.loaded) {
          delete st.invalid;
        }
      } catch (err) {
        const message = err instanceof SourceUnavailable ? err.message : `${described.place}: ${(err as Error).message}`;
        if (st.unavailable !== message) this.#log?.warn({ service, reference, place: described.place, error: message }, 'policy spec source not readable; the service keeps its last good spec');
        st.unavailable = message;
      }
      const inForce = this.#registry.status().find((s) => s.service === serviceOf(service))?.inForce;
      const error = st.unavailable !== undefined ? { error: st.unavailable, problem: 'unavailable' as const }
        : st.invalid !== undefined ? { error: st.invalid, problem: 'invalid' as const } : {};
      status.push({
        ...described,
        loaded: st.loaded !== undefined && st.unavailable === undefined && st.invalid === undefined,
        ...(inForce !== undefined ? { inForce } : {}),
        ...error,
      });
    }
    this.#status = status.sort((a, b) => a.reference.localeCompare(b.reference));
    if (loadedAny) this.#onLoaded();
    this.#options.onStatus?.(this.status());
  }

  #describe(policy: ApiSecurityPolicy, entry: ApiSpecSource, service: string): Omit<PolicySpecStatus, 'loaded'> {
    const key = policyKey(policy);
    return {
      reference: `${key}: ${entry.name}`, policy: key, name: entry.name, service,
      place: placeOf(entry, policy.metadata.namespace ?? 'default'),
      ...(policy.metadata.generation !== undefined ? { generation: policy.metadata.generation } : {}),
    };
  }

  /** The source's current content, when it changed or is due for a check. */
  async #read(entry: ApiSpecSource, namespace: string, st: SourceState): Promise<Read> {
    const graphql = entry.format === 'graphql';
    if (entry.file !== undefined) {
      // The registry reads the file; its version is its modification time and size.
      const version = await stat(entry.file).then((s) => `${s.mtimeMs}:${s.size}`, (err: NodeJS.ErrnoException) => {
        throw new SourceUnavailable(`file ${entry.file}: cannot read it (${err.code ?? err.message})`);
      });
      return { read: true, changed: true, version, source: graphql ? { kind: 'graphql-introspection-file', file: entry.file } : { kind: 'openapi-file', file: entry.file } };
    }
    const textSource = (name: string, text: string): Read => ({
      read: true,
      changed: true,
      version: createHash('sha256').update(text).digest('hex'),
      source: graphql ? { kind: 'graphql-introspection-text', name, text } : { kind: 'openapi-text', name, text },
    });
    const now = this.#now();
    if (entry.url !== undefined) {
      const refreshMs = this.#options.urlRefreshMs ?? DEFAULT_URL_REFRESH_MS;
      if (now - st.checkedAt < (st.unavailable !== undefined ? Math.min(refreshMs, URL_RETRY_MS) : refreshMs)) return { read: false };
      st.checkedAt = now;
      const name = displayUrl(entry.url);
      const fetched = await fetchSpecText(entry.url, {
        name, previous: st.validators,
        ...(this.#options.urlTimeoutMs !== undefined ? { timeoutMs: this.#options.urlTimeoutMs } : {}),
        ...(this.#options.maxBytes !== undefined ? { maxBytes: this.#options.maxBytes } : {}),
      }).catch((err: Error) => { throw new SourceUnavailable(err.message); });
      // Not modified: the content is the last one read, already loaded or already failed.
      if (!fetched.modified) return { read: true, changed: false };
      st.validators = { ...(fetched.etag ? { etag: fetched.etag } : {}), ...(fetched.lastModified ? { lastModified: fetched.lastModified } : {}) };
      return textSource(name, fetched.text);
    }
    if (entry.configMapRef) {
      const { name, key } = entry.configMapRef;
      if (!this.#configMaps) {
        throw new SourceUnavailable(`ConfigMap ${namespace}/${name}, key ${key}: not available: ConfigMaps are read only with --policy-source kubernetes (with files, mount the ConfigMap and use apiSpecs[].file)`);
      }
      if (now - st.checkedAt < (this.#options.configMapRefreshMs ?? DEFAULT_CONFIGMAP_REFRESH_MS)) return { read: false };
      st.checkedAt = now;
      const cm = await this.#configMaps.read(namespace, name, key).catch((err: Error) => { throw new SourceUnavailable(err.message); });
      return textSource(`ConfigMap ${namespace}/${name}, key ${key}`, cm.text);
    }
    throw new SourceUnavailable('no file, url or configMapRef');
  }
}
