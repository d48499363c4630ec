// The inventory as the server runs it: attached to the engine as an observer, persisted to SQLite
// when a file is given, with specs loaded per service. One call for `meshward serve` to make.
import type { Engine } from '../engine/engine.ts';
import { Inventory, type InventoryLimits } from './inventory.ts';
import { SpecRegistry, type SpecSource, type SpecLoadResult } from './spec-registry.ts';
import { InventoryStore, type LoadResult } from './store.ts';

export interface InventoryRuntimeOptions {
  /** SQLite file; absent = in memory only. */
  dbFile?: string;
  flushIntervalMs?: number;
  specs?: readonly { service: string; source: SpecSource }[];
  limits?: Partial<InventoryLimits>;
}

export interface InventoryRuntime {
  inventory: Inventory;
  specs: SpecRegistry;
  loaded?: LoadResult;
  /** The SQLite store, when a file is given (other state can attach to it). */
  store?: InventoryStore;
  /** Spec loads that failed at start (the service then runs without that spec). */
  specErrors: Extract<SpecLoadResult, { ok: false }>[];
  /** Detaches from the engine, flushes and closes the file. */
  close(): void;
}

export async function startInventory(engine: Engine, options: InventoryRuntimeOptions = {}): Promise<InventoryRuntime> {
  const inventory = new Inventory(options.limits);
  const opened = options.dbFile
    ? InventoryStore.open(options.dbFile, inventory, options.flushIntervalMs !== undefined ? { flushIntervalMs: options.flushIntervalMs } : {})
    : undefined;
  const specs = new SpecRegistry(inventory);
  const specErrors: Extract<SpecLoadResult, { ok: false }>[] = [];
  for (const { service, source } of options.specs ?? []) {
    const result = await specs.load(service, source);
    if (!result.ok) specErrors.push(result);
  }
  const detach = engine.addObserver(inventory.observer());
  return {
    inventory, specs, specErrors,
    ...(opened ? { loaded: opened.loaded, store: opened.store } : {}),
    close: () => {
      detach();
      opened?.store.close();
    },
  };
}
