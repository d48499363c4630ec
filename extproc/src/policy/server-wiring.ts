// What an accepted policy change does besides reconfiguring the engine, composed once for
// `meshward serve` (and the real-Envoy tests): the mesh default's fast-path part and the inventory's
// exact templates go to the filter tables the sidecars fetch; policy apiSpecs load into the
// inventory, and every spec the inventory holds drives the content detectors' contracts.
import type { EngineConfig } from '../engine/engine.ts';
import type { DetectorContext } from '../engine/detector-context.ts';
import { createDefaultDetectors } from '../engine/detectors/index.ts';
import { createContentContext } from '../inspect/settings.ts';
import { inventoryServiceSpecs, specOperationResolver, type ServiceSpec } from '../inspect/spec-resolver.ts';
import type { InventoryRuntime } from '../inventory/runtime.ts';
import type { Logger } from '../log.ts';
import type { FilterPolicy } from '../filter-config/build.ts';
import type { FilterConfigStore } from '../filter-config/route.ts';
import { DEFAULT_TEMPLATE_SYNC_MS, FilterTablesPublisher, inventoryTemplates, syncInventoryTemplates } from '../filter-config/publisher.ts';
import { filterPolicyFor } from './filter-mapping.ts';
import type { PolicyRuntimeOptions } from './runtime.ts';
import { PolicySpecLoader, type PolicySpecStatus } from './spec-sources.ts';

export class PolicyServerWiring {
  readonly #log: Logger | undefined;
  readonly #serviceSpecs: ServiceSpec[] = [];
  #inventory: InventoryRuntime | undefined;
  #specLoader: PolicySpecLoader | undefined;
  #filterPolicy: FilterPolicy = {};
  #publisher: FilterTablesPublisher | undefined;
  #stopTemplateSync: (() => void) | undefined;
  #stopSpecWatch: (() => void) | undefined;

  /** The engine's detector factory: the default detectors, with contracts from the inventory's specs. */
  readonly detectors: NonNullable<EngineConfig['detectors']>;

  constructor(log?: Logger) {
    this.#log = log;
    const content = createContentContext({}, specOperationResolver(this.#serviceSpecs));
    this.detectors = (context: DetectorContext) => createDefaultDetectors(Object.assign(context, { content }));
  }

  /** The inventory whose specs and templates are used; policy apiSpecs load into it from now on. */
  useInventory(inventory: InventoryRuntime): void {
    this.#inventory = inventory;
    this.#specLoader = new PolicySpecLoader(inventory.specs, () => this.#specsChanged(), this.#log);
    this.#specsChanged();
  }

  /** For PolicyRuntimeOptions.onApplied. */
  readonly onApplied: NonNullable<PolicyRuntimeOptions['onApplied']> = (update, meshDefault) => {
    this.#filterPolicy = filterPolicyFor(meshDefault.spec);
    this.#publisher?.setPolicy(this.#filterPolicy);
    void this.#specLoader?.sync(update.set);
  };

  /** Serves the filter tables through `store` (its document at this point is the operator's base). */
  serveFilterTables(store: FilterConfigStore, templateSyncMs = DEFAULT_TEMPLATE_SYNC_MS): void {
    this.#publisher = new FilterTablesPublisher(store, this.#log);
    this.#publisher.setPolicy(this.#filterPolicy);
    if (this.#inventory) this.#stopTemplateSync = syncInventoryTemplates(this.#publisher, this.#inventory.inventory, templateSyncMs);
  }

  /** Checks the policies' spec files every `intervalMs` and reloads the edited ones. */
  watchSpecFiles(intervalMs = DEFAULT_TEMPLATE_SYNC_MS): void {
    const timer = setInterval(() => { void this.#specLoader?.recheck(); }, intervalMs);
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

  #specsChanged(): void {
    if (!this.#inventory) return;
    this.#serviceSpecs.splice(0, this.#serviceSpecs.length, ...inventoryServiceSpecs(this.#inventory.inventory));
    this.#publisher?.setTemplates(inventoryTemplates(this.#inventory.inventory));
  }
}
