// What an accepted policy change does besides reconfiguring the engine, composed once for
// `meshward serve` (and the real-Envoy tests): the mesh default's fast-path part and the inventory's
// exact templates go to the filter tables the sidecars fetch; policy apiSpecs load into the
// inventory, and every spec the inventory holds drives the content detectors' contracts; gRPC
// descriptor sets named by ConfigMap are read for the policy mapping (descriptor-set-sources.ts).
import type { EngineConfig } from '../engine/engine.ts';
import type { DetectorContext } from '../engine/detector-context.ts';
import { createDefaultDetectors } from '../engine/detectors/index.ts';
import { createContentContext, defaultContentSettings } from '../inspect/settings.ts';
import type { SensitiveKind } from '../inspect/sensitive.ts';
import { inventoryServiceSpecs, specOperationResolver, type ServiceSpec } from '../inspect/spec-resolver.ts';
import type { InventoryRuntime } from '../inventory/runtime.ts';
import type { Logger } from '../log.ts';
import type { FilterPolicy } from '../filter-config/build.ts';
import type { FilterConfigStore, FilterWorkload } from '../filter-config/route.ts';
import type { EnforcedDenies } from '../filter-config/enforced.ts';
import { DEFAULT_TEMPLATE_SYNC_MS, FilterTablesPublisher, inventoryTemplates, syncInventoryTemplates } from '../filter-config/publisher.ts';
import { filterPolicyFor } from './filter-mapping.ts';
import type { PolicyRuntimeOptions } from './runtime.ts';
import { PolicySpecLoader, type PolicySpecLoaderOptions, type PolicySpecStatus } from './spec-sources.ts';
import { PolicyConditions, specConditions } from './status-conditions.ts';
import type { ConfigMapReader } from './configmap-reader.ts';
import { DescriptorSetLoader, descriptorSetConditions } from './descriptor-set-sources.ts';
import type { PolicyCondition } from './types.ts';

/** How often remote spec sources are read again (the loader's defaults when left out). */
export type SpecRefreshOptions = Pick<PolicySpecLoaderOptions, 'urlRefreshMs' | 'urlTimeoutMs' | 'configMapRefreshMs'>;

export class PolicyServerWiring {
  readonly #log: Logger | undefined;
  readonly #specRefresh: SpecRefreshOptions;
  #configMaps: ConfigMapReader | undefined;
  readonly #serviceSpecs: ServiceSpec[] = [];
  #inventory: InventoryRuntime | undefined;
  #specLoader: PolicySpecLoader | undefined;
  #filterPolicy: FilterPolicy = {};
  #filterPolicyFor: ((workload: FilterWorkload) => FilterPolicy) | undefined;
  #publisher: FilterTablesPublisher | undefined;
  #stopTemplateSync: (() => void) | undefined;
  #stopSpecWatch: (() => void) | undefined;

  /** The engine's detector factory: the default detectors, with contracts from the inventory's specs. */
  readonly detectors: NonNullable<EngineConfig['detectors']>;

  /** Spec and descriptor set load results per policy (conditions SpecsLoaded, DescriptorSetLoaded),
   *  for the Kubernetes source to write into status. */
  readonly conditions = new PolicyConditions();
  #specConditions = new Map<string, PolicyCondition[]>();
  #descriptorConditions = new Map<string, PolicyCondition[]>();

  /** gRPC descriptor sets policies name by ConfigMap (PolicyRuntimeOptions.descriptorSets). */
  readonly descriptorSets: DescriptorSetLoader;

  /** `redact`: sensitive kinds enforce mode redacts from JSON responses (serve --redact). */
  constructor(log?: Logger, specRefresh: SpecRefreshOptions = {}, redact: readonly SensitiveKind[] = []) {
    this.#log = log;
    this.#specRefresh = specRefresh;
    this.descriptorSets = new DescriptorSetLoader(log, {
      ...(specRefresh.configMapRefreshMs !== undefined ? { configMapRefreshMs: specRefresh.configMapRefreshMs } : {}),
      onStatus: (status) => { this.#descriptorConditions = descriptorSetConditions(status); this.#publishConditions(); },
    });
    const exposure = { ...defaultContentSettings().exposure, redact: [...redact] };
    const content = createContentContext({ exposure }, specOperationResolver(this.#serviceSpecs));
    this.detectors = (context: DetectorContext) => createDefaultDetectors(Object.assign(context, { content }));
  }

  /** The inventory whose specs and templates are used; policy apiSpecs load into it from now on. */
  useInventory(inventory: InventoryRuntime): void {
    this.#inventory = inventory;
    this.#specLoader = new PolicySpecLoader(inventory.specs, () => this.#specsChanged(), this.#log, {
      ...this.#specRefresh,
      ...(this.#configMaps ? { configMaps: this.#configMaps } : {}),
      onStatus: (status) => { this.#specConditions = specConditions(status); this.#publishConditions(); },
    });
    this.#specsChanged();
  }

  /** Policies' configMapRef specs are read through `reader` from now on (Kubernetes mode). */
  useConfigMaps(reader: ConfigMapReader): Promise<void> {
    this.#configMaps = reader;
    return Promise.all([this.#specLoader?.useConfigMaps(reader), this.descriptorSets.useConfigMaps(reader)]).then(() => {});
  }

  /** For PolicyRuntimeOptions.onApplied. */
  readonly onApplied: NonNullable<PolicyRuntimeOptions['onApplied']> = (update, meshDefault) => {
    this.#filterPolicy = filterPolicyFor(meshDefault.spec);
    // A sidecar that names its workload gets its effective policy's tables (namespace and selector).
    this.#filterPolicyFor = (workload) => filterPolicyFor(update.set.effectiveFor(workload).spec);
    this.#publisher?.setPolicy(this.#filterPolicy, this.#filterPolicyFor);
    void this.#specLoader?.sync(update.set);
    void this.descriptorSets.sync(update.set);
  };

  /** Serves the filter tables through `store` (its document at this point is the operator's base);
   *  with `enforced`, the temporary denies of enforced findings go into them too. */
  serveFilterTables(store: FilterConfigStore, templateSyncMs = DEFAULT_TEMPLATE_SYNC_MS, enforced?: EnforcedDenies): void {
    this.#publisher = new FilterTablesPublisher(store, this.#log, enforced);
    this.#publisher.setPolicy(this.#filterPolicy, this.#filterPolicyFor);
    if (this.#inventory) this.#stopTemplateSync = syncInventoryTemplates(this.#publisher, this.#inventory.inventory, templateSyncMs);
  }

  /** Checks the policies' spec files every `intervalMs` and reloads the edited ones; URLs and
   *  ConfigMaps are re-read on these ticks once their own refresh interval has passed. */
  watchSpecFiles(intervalMs = DEFAULT_TEMPLATE_SYNC_MS): void {
    const timer = setInterval(() => { void this.#specLoader?.recheck(); void this.descriptorSets.recheck(); }, intervalMs);
    timer.unref();
    this.#stopSpecWatch = () => clearInterval(timer);
  }

  /** Load state of the policies' spec references (for GET /policy); undefined without an inventory. */
  specStatus(): PolicySpecStatus[] | undefined {
    return this.#specLoader?.status();
  }

  stop(): void {
    this.#stopTemplateSync?.();
    this.#stopSpecWatch?.();
  }

  #publishConditions(): void {
    const merged = new Map(this.#specConditions);
    for (const [policy, list] of this.#descriptorConditions) merged.set(policy, [...(merged.get(policy) ?? []), ...list]);
    this.conditions.replaceAll(merged);
  }

  #specsChanged(): void {
    if (!this.#inventory) return;
    this.#serviceSpecs.splice(0, this.#serviceSpecs.length, ...inventoryServiceSpecs(this.#inventory.inventory));
    this.#publisher?.setTemplates(inventoryTemplates(this.#inventory.inventory));
  }
}
