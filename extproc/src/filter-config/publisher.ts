// Keeps the tables the server serves to the Wasm filters (GET /v1/filter-config) in step with what
// the server knows: the operator's --filter-tables file as the base, the policy's fast-path part
// (policy/filter-mapping.ts) and the exact route templates the inventory's specs declare and its
// traffic taught. The store is set only when the built document changed, so a filter's refresh keeps
// seeing the same version (and does not re-parse) until something really changed.
import type { Inventory } from '../inventory/inventory.ts';
import { filterTemplateEntries } from '../inventory/templating.ts';
import type { Logger } from '../log.ts';
import { buildFilterTables, templatesFromOpenApiPaths, type FilterPolicy } from './build.ts';
import type { FilterConfigStore } from './route.ts';
import type { FilterTables, TemplateEntry } from './schema.ts';

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

export class FilterTablesPublisher {
  readonly #store: FilterConfigStore;
  readonly #base: FilterTables;
  readonly #log: Logger | undefined;
  #policy: FilterPolicy = {};
  #templates: readonly TemplateEntry[] = [];

  /** `base`: the operator's tables (the store's document at start). */
  constructor(store: FilterConfigStore, log?: Logger) {
    this.#store = store;
    this.#base = store.current;
    this.#log = log;
  }

  /** The policy's fast-path part; true when the served document changed. */
  setPolicy(policy: FilterPolicy): boolean {
    this.#policy = policy;
    return this.#publish();
  }

  /** The exact templates to push; true when the served document changed. */
  setTemplates(templates: readonly TemplateEntry[]): boolean {
    this.#templates = templates;
    return this.#publish();
  }

  #publish(): boolean {
    let next: FilterTables;
    try {
      // Nothing to add: the operator's document is served exactly as written.
      next = isEmptyPolicy(this.#policy) && this.#templates.length === 0 ? this.#base : mergeFilterTables(this.#base, this.#policy, this.#templates);
    } catch (err) {
      this.#log?.warn({ error: (err as Error).message }, 'filter tables not updated; the filters keep the last good version');
      return false;
    }
    if (JSON.stringify(next) === this.#store.text) return false;
    this.#store.set(next);
    this.#log?.info({ version: next.version, templates: next.templates?.length ?? 0, denyIdentities: next.deny?.identities?.length ?? 0, samplingPercent: next.sampling?.percent }, 'filter tables updated');
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
