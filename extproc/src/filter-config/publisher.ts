// Keeps the tables the server serves to the Wasm filters (GET /v1/filter-config) in step with what
// the server knows: the operator's --filter-tables file as the base, the policy's fast-path part
// (policy/filter-mapping.ts) and the exact route templates the inventory's specs declare and its
// traffic taught. The store is set only when the built document changed, so a filter's refresh keeps
// seeing the same version (and does not re-parse) until something really changed.
import type { Inventory } from '../inventory/inventory.ts';
import { filterTemplateEntries } from '../inventory/templating.ts';
import type { Logger } from '../log.ts';
import { buildFilterTables, templatesFromOpenApiPaths, type FilterPolicy } from './build.ts';
import { LRUCache } from 'lru-cache';
import type { FilterConfigStore, FilterWorkload, ServedTables } from './route.ts';
import type { FilterTables, TemplateEntry } from './schema.ts';
import type { EnforcedDenies } from './enforced.ts';

/** Templates pushed to the filter, over every service (the table is mesh-wide; the schema allows 10,000). */
export const MAX_PUSHED_TEMPLATES = 5_000;
export const DEFAULT_TEMPLATE_SYNC_MS = 10_000;

/** A tables document as the builder's input, so policy and templates can be merged over it. */
function policyOfTables(t: FilterTables): FilterPolicy {
  return {
    ...(t.deny?.identities ? { denyIdentities: t.deny.identities } : {}),
    ...(t.deny?.operations ? { denyOperations: t.deny.operations } : {}),
    ...(t.limits ? { limits: t.limits } : {}),
    ...(t.templates ? { templates: t.templates } : {}),
    ...(t.sampling ? {
      sampling: {
        ...(t.sampling.percent !== undefined ? { percent: t.sampling.percent } : {}),
        ...(t.sampling.seed !== undefined ? { seed: t.sampling.seed } : {}),
        ...(t.sampling.consistent !== undefined ? { consistent: t.sampling.consistent } : {}),
        ...(t.sampling.alwaysOperations ? { flaggedOperations: t.sampling.alwaysOperations } : {}),
        ...(t.sampling.suspectIdentities ? { suspectIdentities: t.sampling.suspectIdentities } : {}),
      },
    } : {}),
  };
}

/** The tables for `base` with `policy` and `templates` added: identities and templates are
 *  unions; the policy's sampling percent replaces the file's. */
export function mergeFilterTables(base: FilterTables, policy: FilterPolicy, templates: readonly TemplateEntry[]): FilterTables {
  const b = policyOfTables(base);
  return buildFilterTables({
    ...b,
    denyIdentities: [...(b.denyIdentities ?? []), ...(policy.denyIdentities ?? [])],
    denyOperations: [...(b.denyOperations ?? []), ...(policy.denyOperations ?? [])],
    limits: [...(b.limits ?? []), ...(policy.limits ?? [])],
    templates: [...(b.templates ?? []), ...(policy.templates ?? []), ...templates],
    enforced: [...(base.enforced ?? []), ...(policy.enforced ?? [])],
    sampling: { ...b.sampling, ...policy.sampling },
  });
}

/** Exact templates from the inventory: every spec's paths (per method, under each server base
 *  path), then the learned tables per service; services in name order, at most `max` entries. */
export function inventoryTemplates(inventory: Inventory, max = MAX_PUSHED_TEMPLATES): TemplateEntry[] {
  const out: TemplateEntry[] = [];
  const services = inventory.services().sort();
  for (const service of services) {
    const spec = inventory.state(service)?.spec;
    const paths = spec?.document.paths;
    if (spec === undefined || paths === null || typeof paths !== 'object') continue;
    for (const base of spec.basePaths) out.push(...templatesFromOpenApiPaths(paths as Record<string, unknown>, base));
  }
  const learned = inventory.learnedTemplates();
  for (const service of Object.keys(learned.services).sort()) out.push(...filterTemplateEntries(learned, service));
  return out.slice(0, max);
}

const isEmptyPolicy = (p: FilterPolicy): boolean => Object.keys(p).length === 0;

/** Per-workload documents remembered until something changes (each is built and validated once). */
const MAX_CACHED_DOCUMENTS = 1_000;

function workloadKey(w: FilterWorkload | undefined): string {
  if (w === undefined) return '';
  const labels = Object.entries(w.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${w.namespace}\n${labels.map(([k, v]) => `${k}=${v}`).join(',')}`;
}

interface CachedDocument extends ServedTables {
  /** When its first enforced entry expires (the document must drop it then). */
  validUntilMs: number;
}

export class FilterTablesPublisher {
  readonly #store: FilterConfigStore;
  readonly #base: FilterTables;
  readonly #log: Logger | undefined;
  readonly #enforced: EnforcedDenies | undefined;
  #policy: FilterPolicy = {};
  #policyFor: ((workload: FilterWorkload) => FilterPolicy) | undefined;
  #templates: readonly TemplateEntry[] = [];
  readonly #documents = new LRUCache<string, CachedDocument>({ max: MAX_CACHED_DOCUMENTS });

  /** `base`: the operator's tables (the store's document at start). `enforced`: temporary denies
   *  from enforced findings, served to the namespace they were made in. */
  constructor(store: FilterConfigStore, log?: Logger, enforced?: EnforcedDenies) {
    this.#store = store;
    this.#base = store.current;
    this.#log = log;
    this.#enforced = enforced;
    enforced?.onChange(() => this.#documents.clear());
    store.resolveWith((workload) => this.documentFor(workload));
  }

  /** The policy's fast-path part: the mesh default's, and per workload (its effective policy's)
   *  when `policyFor` is given; true when the document of sidecars without a namespace changed. */
  setPolicy(policy: FilterPolicy, policyFor?: (workload: FilterWorkload) => FilterPolicy): boolean {
    this.#policy = policy;
    this.#policyFor = policyFor;
    return this.#publish();
  }

  /** The exact templates to push; true when the served document changed. */
  setTemplates(templates: readonly TemplateEntry[]): boolean {
    this.#templates = templates;
    return this.#publish();
  }

  /** The tables a sidecar of `workload` gets (undefined: one without node metadata, the mesh default's). */
  documentFor(workload: FilterWorkload | undefined): ServedTables {
    const key = workloadKey(workload);
    const cached = this.#documents.get(key);
    const now = this.#enforced?.now() ?? 0;
    if (cached !== undefined && now < cached.validUntilMs) return cached;
    const enforced = this.#enforced?.entriesFor(workload?.namespace ?? '') ?? [];
    const policy = workload !== undefined && this.#policyFor !== undefined ? this.#policyFor(workload) : this.#policy;
    let doc: FilterTables;
    try {
      // Nothing to add: the operator's document is served exactly as written.
      doc = isEmptyPolicy(policy) && this.#templates.length === 0 && enforced.length === 0
        ? this.#base : mergeFilterTables(this.#base, { ...policy, ...(enforced.length > 0 ? { enforced } : {}) }, this.#templates);
    } catch (err) {
      this.#log?.warn({ error: (err as Error).message, namespace: workload?.namespace }, 'filter tables not updated; the filters keep the last good version');
      // Not cached: the next refresh tries again. The mesh-wide document is the last good one.
      return cached ?? (workload === undefined ? { doc: this.#store.current, text: this.#store.text } : this.documentFor(undefined));
    }
    const built: CachedDocument = { doc, text: JSON.stringify(doc), validUntilMs: Math.min(Infinity, ...enforced.map((e) => e.expiresAtMs)) };
    this.#documents.set(key, built);
    return built;
  }

  #publish(): boolean {
    this.#documents.clear();
    const next = this.documentFor(undefined);
    if (next.text === this.#store.text) return false;
    this.#store.set(next.doc);
    this.#log?.info({ version: next.doc.version, templates: next.doc.templates?.length ?? 0, denyIdentities: next.doc.deny?.identities?.length ?? 0, samplingPercent: next.doc.sampling?.percent }, 'filter tables updated');
    return true;
  }
}

/** Pushes the inventory's templates every `intervalMs` (and once now); returns the stop function. */
export function syncInventoryTemplates(publisher: FilterTablesPublisher, inventory: Inventory, intervalMs = DEFAULT_TEMPLATE_SYNC_MS): () => void {
  const push = (): void => { publisher.setTemplates(inventoryTemplates(inventory)); };
  push();
  const timer = setInterval(push, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
