// Persistence of the inventory in a local SQLite file (node:sqlite). Changes are collected in
// memory and written in one transaction every flush interval (default 5 s) and on close.
//
// What a crash can lose: the process killed (SIGKILL, OOM, panic) loses only the observations made
// since the last completed flush, i.e. at most one flush interval; every flush is one transaction,
// so the file is never half-written. The database runs in WAL mode with synchronous=NORMAL: a power
// loss or kernel crash (not a process crash) may also lose the last flushes before it.
import { DatabaseSync } from 'node:sqlite';
import type { Inventory, InventorySink } from './inventory.ts';
import type { OperationRecord } from './record.ts';
import { PathLearner, type SerializedNode } from './templating.ts';

export const DEFAULT_FLUSH_INTERVAL_MS = 5_000;
const SCHEMA_VERSION = 1;

export interface StoreOptions {
  flushIntervalMs?: number;
  /** Open for reading only (CLI next to a running server); nothing is written. */
  readOnly?: boolean;
}

/** Other state kept in the same file (detector baselines): loaded when attached, saved inside every
 *  flush's transaction and on close. */
export interface StoreSection {
  load(db: DatabaseSync): void;
  /** Called before each timed flush: slow preparation here runs without blocking the event loop. */
  prepare?(): Promise<void>;
  save(db: DatabaseSync): void;
}

export interface LoadResult {
  operations: number;
  services: number;
  /** Rows that could not be read back (corrupt JSON); they are skipped, not fatal. */
  skipped: number;
}

export class InventoryStore implements InventorySink {
  readonly file: string;
  readonly #db: DatabaseSync;
  readonly #inventory: Inventory;
  readonly #readOnly: boolean;
  readonly #records = new Map<string, { service: string; key: string }>();
  readonly #learners = new Set<string>();
  readonly #sections: StoreSection[] = [];
  #timer: NodeJS.Timeout | undefined;
  #preparing = false;
  #flushes = 0;

  private constructor(file: string, inventory: Inventory, options: StoreOptions) {
    this.file = file;
    this.#inventory = inventory;
    this.#readOnly = options.readOnly ?? false;
    this.#db = new DatabaseSync(file, { readOnly: this.#readOnly, timeout: 2_000 });
    if (!this.#readOnly) {
      this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
      this.#db.exec(`
        CREATE TABLE IF NOT EXISTS operations (service TEXT NOT NULL, key TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (service, key));
        CREATE TABLE IF NOT EXISTS learners (service TEXT PRIMARY KEY, tree TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);`);
      this.#db.prepare('INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)').run('schema_version', String(SCHEMA_VERSION));
    }
  }

  /** Opens (creating when needed) the file, loads it into the inventory and starts flushing. */
  static open(file: string, inventory: Inventory, options: StoreOptions = {}): { store: InventoryStore; loaded: LoadResult } {
    const store = new InventoryStore(file, inventory, options);
    const loaded = store.#load();
    if (!store.#readOnly) {
      inventory.setSink(store);
      const interval = options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
      store.#timer = setInterval(() => void store.#timedFlush(), interval);
      store.#timer.unref();
    }
    return { store, loaded };
  }

  /** Sections prepare first (asynchronously), then everything is written in one transaction. */
  async #timedFlush(): Promise<void> {
    if (this.#preparing) return;
    this.#preparing = true;
    try {
      await Promise.all(this.#sections.map((s) => s.prepare?.()));
      if (this.#timer !== undefined) this.flush(); // not if closed meanwhile (close flushed)
    } finally {
      this.#preparing = false;
    }
  }

  get flushes(): number {
    return this.#flushes;
  }

  #load(): LoadResult {
    const result: LoadResult = { operations: 0, services: 0, skipped: 0 };
    const hasTable = this.#db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'operations'").get();
    if (!hasTable) return result;
    const byService = new Map<string, OperationRecord[]>();
    for (const row of this.#db.prepare('SELECT service, record FROM operations').iterate()) {
      try {
        const record = JSON.parse(String(row.record)) as OperationRecord;
        if (typeof record.template !== 'string' || typeof record.method !== 'string') throw new Error('not a record');
        byService.set(String(row.service), [...(byService.get(String(row.service)) ?? []), record]);
        result.operations++;
      } catch {
        result.skipped++;
      }
    }
    const learners = new Map<string, PathLearner>();
    for (const row of this.#db.prepare('SELECT service, tree FROM learners').iterate()) {
      try {
        learners.set(String(row.service), PathLearner.deserialize(JSON.parse(String(row.tree)) as SerializedNode));
      } catch {
        result.skipped++;
      }
    }
    for (const service of new Set([...byService.keys(), ...learners.keys()])) {
      this.#inventory.restore(service, byService.get(service) ?? [], learners.get(service));
      result.services++;
    }
    return result;
  }

  /** Loads the section from the file now and saves it with every flush from here on. */
  attach(section: StoreSection): void {
    section.load(this.#db);
    if (!this.#readOnly) this.#sections.push(section);
  }

  recordChanged(service: string, key: string): void {
    this.#records.set(`${service}\u0000${key}`, { service, key });
  }

  learnerChanged(service: string): void {
    this.#learners.add(service);
  }

  /** Writes every change since the last flush in one transaction. */
  flush(): void {
    if (this.#readOnly || (this.#records.size === 0 && this.#learners.size === 0 && this.#sections.length === 0)) return;
    const upsert = this.#db.prepare('INSERT OR REPLACE INTO operations (service, key, record) VALUES (?, ?, ?)');
    const remove = this.#db.prepare('DELETE FROM operations WHERE service = ? AND key = ?');
    const saveLearner = this.#db.prepare('INSERT OR REPLACE INTO learners (service, tree) VALUES (?, ?)');
    this.#db.exec('BEGIN');
    try {
      for (const { service, key } of this.#records.values()) {
        const record = this.#inventory.state(service)?.records.get(key);
        if (record) upsert.run(service, key, JSON.stringify(record));
        else remove.run(service, key);
      }
      for (const service of this.#learners) {
        const learner = this.#inventory.state(service)?.learner;
        if (learner) saveLearner.run(service, JSON.stringify(learner.serialize()));
      }
      for (const section of this.#sections) section.save(this.#db);
      this.#db.exec('COMMIT');
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
    this.#records.clear();
    this.#learners.clear();
    this.#flushes++;
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    try {
      this.flush();
    } finally {
      if (!this.#readOnly) this.#inventory.setSink(undefined);
      this.#db.close();
    }
  }
}
