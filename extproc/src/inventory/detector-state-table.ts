// The detectors' learned state (engine/state-snapshot.ts) in the inventory's SQLite file: one row
// per persisted map plus the event clock, rewritten in the inventory's flush transaction every flush
// interval, so a crash loses at most one interval (plus the time the snapshot took to build). Rows that cannot be restored (another format
// version, corrupt JSON) are logged and skipped: that map starts empty, the server starts anyway.
import type { DatabaseSync } from 'node:sqlite';
import type { StateRegistry, StateRow } from '../engine/state-snapshot.ts';
import type { StoreSection } from './store.ts';
import type { Logger } from '../log.ts';

export interface DetectorStateLoad {
  rows: number;
  restored: number;
  skipped: number;
}

export class DetectorStateTable implements StoreSection {
  readonly #registry: StateRegistry;
  readonly #log: Logger | undefined;
  #loaded: DetectorStateLoad = { rows: 0, restored: 0, skipped: 0 };
  #prepared: StateRow[] | undefined;

  constructor(registry: StateRegistry, log?: Logger) {
    this.#registry = registry;
    this.#log = log;
    registry.onSkipped = (row) => log?.warn({ map: row.name, reason: row.reason }, 'detector state skipped');
  }

  get loaded(): DetectorStateLoad { return this.#loaded; }

  load(db: DatabaseSync): void {
    const hasTable = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'detector_state'").get();
    if (!hasTable) return;
    const rows: StateRow[] = [];
    for (const r of db.prepare('SELECT name, version, state FROM detector_state').iterate()) {
      rows.push({ name: String(r.name), version: Number(r.version), state: String(r.state) });
    }
    const result = this.#registry.restore(rows);
    this.#loaded = { rows: rows.length, restored: result.restored, skipped: result.skipped.length };
    this.#log?.info(this.#loaded, 'detector state restored');
  }

  /** Takes the snapshot in slices, off the decision path, for the next save. */
  async prepare(): Promise<void> {
    this.#prepared = await this.#registry.snapshotAsync();
  }

  /** Replaces the table with the prepared snapshot, or one taken now (on close); the caller holds
   *  the transaction. */
  save(db: DatabaseSync): void {
    db.exec('CREATE TABLE IF NOT EXISTS detector_state (name TEXT PRIMARY KEY, version INTEGER NOT NULL, state TEXT NOT NULL, saved_at INTEGER NOT NULL)');
    db.exec('DELETE FROM detector_state');
    const insert = db.prepare('INSERT INTO detector_state (name, version, state, saved_at) VALUES (?, ?, ?, ?)');
    const savedAt = Date.now();
    const rows = this.#prepared ?? this.#registry.snapshot();
    this.#prepared = undefined;
    for (const row of rows) insert.run(row.name, row.version, row.state, savedAt);
  }
}
