// Loads the OpenAPI/GraphQL specs policies reference (spec.apiSpecs) into the inventory's
// SpecRegistry, which classifies traffic and feeds the content detectors' contracts. A reference is
// (re)loaded when it is new or changed, or its file changed; a spec that fails to load is reported
// and the service keeps its last good spec (SpecRegistry's rule). Service = the entry's `host`, else
// its `name`.
import { stat } from 'node:fs/promises';
import type { Logger } from '../log.ts';
import { serviceOf } from '../inventory/facts.ts';
import type { SpecRegistry, SpecSource } from '../inventory/spec-registry.ts';
import type { PolicySet } from './precedence.ts';
import type { ApiSpecSource } from './types.ts';
import { policyKey } from './types.ts';

export interface PolicySpecStatus {
  /** "namespace/policy: spec name". */
  reference: string;
  service: string;
  loaded: boolean;
  error?: string;
}

/** A policy's spec reference as a SpecRegistry source; undefined for ConfigMaps (the server has no
 *  ConfigMap access: mount the ConfigMap and name the file). */
export function specSourceOf(s: ApiSpecSource): SpecSource | undefined {
  if (s.format === 'graphql') return s.file !== undefined ? { kind: 'graphql-introspection-file', file: s.file } : undefined;
  if (s.file !== undefined) return { kind: 'openapi-file', file: s.file };
  if (s.url !== undefined) return { kind: 'openapi-url', url: s.url };
  return undefined;
}

export class PolicySpecLoader {
  readonly #registry: SpecRegistry;
  readonly #log: Logger | undefined;
  readonly #onLoaded: () => void;
  /** service -> fingerprint (reference and file version) of the spec in force / of the last failed load. */
  readonly #loaded = new Map<string, string>();
  readonly #failed = new Map<string, string>();
  #lastSet: PolicySet | undefined;
  readonly #status = new Map<string, PolicySpecStatus>();
  #queue: Promise<void> = Promise.resolve();

  /** `onLoaded` runs after every sync that loaded at least one spec (e.g. to refresh resolvers). */
  constructor(registry: SpecRegistry, onLoaded: () => void = () => {}, log?: Logger) {
    this.#registry = registry;
    this.#onLoaded = onLoaded;
    this.#log = log;
  }

  /** Loads what `set` references and was not loaded yet; syncs run one after another. */
  sync(set: PolicySet): Promise<void> {
    this.#lastSet = set;
    this.#queue = this.#queue.then(() => this.#sync(set), () => this.#sync(set));
    return this.#queue;
  }

  /** Reloads spec files whose content changed since their last load (a ConfigMap mount updated). */
  recheck(): Promise<void> {
    return this.#lastSet ? this.sync(this.#lastSet) : Promise.resolve();
  }

  status(): PolicySpecStatus[] {
    return [...this.#status.values()].sort((a, b) => a.reference.localeCompare(b.reference));
  }

  async #sync(set: PolicySet): Promise<void> {
    const wanted = new Map<string, { reference: string; source: SpecSource | undefined }>();
    for (const p of set.policies()) {
      for (const s of p.spec.apiSpecs ?? []) {
        const service = s.host ?? s.name;
        const reference = `${policyKey(p)}: ${s.name}`;
        const other = wanted.get(service);
        if (other) {
          this.#log?.warn({ service, used: other.reference, ignored: reference }, 'two policies name a spec for one service; the first is used');
          continue;
        }
        wanted.set(service, { reference, source: specSourceOf(s) });
      }
    }
    let loadedAny = false;
    this.#status.clear();
    for (const [service, { reference, source }] of wanted) {
      if (source === undefined) {
        this.#status.set(reference, { reference, service, loaded: false, error: 'configMapRef specs are not read by the server: mount the ConfigMap and reference the file' });
        continue;
      }
      const fingerprint = await fingerprintOf(source);
      // New or changed references and files load; a failed one is retried once it changes.
      if (this.#loaded.get(service) !== fingerprint && this.#failed.get(service) !== fingerprint) {
        const result = await this.#registry.load(service, source);
        if (result.ok) {
          this.#loaded.set(service, fingerprint);
          this.#failed.delete(service);
          loadedAny = true;
          this.#log?.info({ service, spec: result.name, reference }, 'policy spec loaded');
        } else {
          this.#loaded.delete(service);
          this.#failed.set(service, fingerprint);
          this.#log?.warn({ service, reference, spec: result.error.spec, place: result.error.place, error: result.error.message, inForce: result.inForce ?? null }, 'policy spec not loaded; the service keeps its last good spec');
        }
      }
      const inRegistry = this.#registry.status().find((s) => s.service === serviceOf(service));
      this.#status.set(reference, {
        reference, service,
        loaded: this.#loaded.get(service) === fingerprint,
        ...(inRegistry?.lastError ? { error: inRegistry.lastError } : {}),
      });
    }
    if (loadedAny) this.#onLoaded();
  }
}

/** The reference plus, for files, their modification time and size (so an edited file reloads). */
async function fingerprintOf(source: SpecSource): Promise<string> {
  if (source.kind !== 'openapi-file' && source.kind !== 'graphql-introspection-file') return JSON.stringify(source);
  const version = await stat(source.file).then((st) => `${st.mtimeMs}:${st.size}`, () => 'missing');
  return `${JSON.stringify(source)}@${version}`;
}
