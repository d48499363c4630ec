// Detector baselines in the inventory's SQLite file (inventory/detector-state-table.ts): saved in
// every flush's transaction, restored when attached; what was learned after the last flush is what a
// crash loses; unreadable rows are logged and skipped and the server starts anyway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { DatabaseSync } from 'node:sqlite';
import { pino } from 'pino';
import { Inventory } from '../../extproc/src/inventory/inventory.ts';
import { InventoryStore } from '../../extproc/src/inventory/store.ts';
import { DetectorStateTable } from '../../extproc/src/inventory/detector-state-table.ts';
import { STATE_FORMAT_VERSION } from '../../extproc/src/engine/state-snapshot.ts';
import { Harness, T0, WEB, QUICK_LEARNING, ofDetector } from './detectors/harness.ts';

const SETTINGS = { learning: QUICK_LEARNING };
const WORKER = 'spiffe://cluster.local/ns/payments/sa/payment-worker';
const BATCH = 'spiffe://cluster.local/ns/jobs/sa/batch';

function capturingLogger(): { log: pino.Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { out.push(chunk.toString()); done(); } });
  return { log: pino({ level: 'info' }, sink), lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** A server's engine and store on `file`, baselines attached the way `meshward serve` attaches them. */
function open(file: string, log?: pino.Logger): { h: Harness; store: InventoryStore; table: DetectorStateTable } {
  const h = new Harness(SETTINGS);
  const { store } = InventoryStore.open(file, new Inventory(), { flushIntervalMs: 3_600_000 });
  const table = new DetectorStateTable(h.engine.state, log);
  store.attach(table);
  return { h, store, table };
}

const lateral = (h: Harness, time: number, workload: string) => ofDetector(h.send({ time, path: '/orders', workload }).requestFindings, 'lateral-movement').length;

test('baselines flushed to SQLite come back in a new server; what came after the last flush is lost', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'meshward-state-')), 'inventory.db');
  const first = open(file);
  for (let i = 0; i < 20; i++) first.h.send({ time: T0 + i * 100, path: '/orders', workload: WEB });
  first.store.flush();
  // Learned after the last flush, then the process dies without closing (SIGKILL): lost.
  assert.equal(lateral(first.h, T0 + 5000, BATCH), 1);

  const second = open(file);
  assert.equal(second.table.loaded.skipped, 0);
  assert.ok(second.table.loaded.restored >= 3, `rows restored: ${JSON.stringify(second.table.loaded)}`);
  assert.equal(lateral(second.h, T0 + 6000, WEB), 0, 'an edge flushed before the crash is known');
  assert.equal(lateral(second.h, T0 + 6001, WORKER), 1, 'a new edge is reported at once: no new learning period');
  assert.equal(lateral(second.h, T0 + 6002, BATCH), 1, 'the edge learned after the last flush was lost (one flush interval)');
  second.store.close(); // close flushes
  // (the first store is never closed: its process "died"; closing it would flush what it learned)

  const third = open(file);
  assert.equal(lateral(third.h, T0 + 7000, WORKER), 0, 'closing saved what the second server learned');
  third.store.close();
  const db = new DatabaseSync(file, { readOnly: true });
  const rows = db.prepare('SELECT name, version, saved_at FROM detector_state').all();
  db.close();
  assert.ok(rows.some((r) => r.name === 'lateral.edges' && r.version === STATE_FORMAT_VERSION && Number(r.saved_at) > 0));
  assert.equal(new Set(rows.map((r) => r.name)).size, rows.length, 'one row per map');
});

test('rows of another version or with corrupt JSON are logged and skipped; the rest restores', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'meshward-state-')), 'inventory.db');
  const first = open(file);
  for (let i = 0; i < 20; i++) first.h.send({ time: T0 + i * 100, path: '/orders', workload: WEB });
  first.store.close();
  const db = new DatabaseSync(file);
  db.prepare("UPDATE detector_state SET version = 99 WHERE name = 'lateral.edges'").run();
  db.prepare("UPDATE detector_state SET state = '{not json' WHERE name = 'learning.first-seen'").run();
  db.close();

  const { log, lines } = capturingLogger();
  const second = open(file, log);
  assert.equal(second.table.loaded.skipped, 2);
  const skipped = lines().filter((l) => l.msg === 'detector state skipped');
  assert.deepEqual(skipped.map((l) => l.map).sort(), ['lateral.edges', 'learning.first-seen']);
  assert.match(String(skipped.find((l) => l.map === 'lateral.edges')!.reason), /format version 99/);
  assert.match(String(skipped.find((l) => l.map === 'learning.first-seen')!.reason), /corrupt JSON/);
  assert.ok(lines().some((l) => l.msg === 'detector state restored' && l.skipped === 2));
  // Both skipped maps start empty: the service learns again, and WEB's edge is learned afresh.
  assert.equal(lateral(second.h, T0 + 6000, WORKER), 0, 'learning again: nothing is new yet');
  second.store.close();
});

test('a file without the table (an older inventory) starts empty, and gets the table on the first flush', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'meshward-state-')), 'inventory.db');
  const { store } = InventoryStore.open(file, new Inventory());
  store.close();
  const first = open(file);
  assert.deepEqual(first.table.loaded, { rows: 0, restored: 0, skipped: 0 });
  first.store.flush();
  const db = new DatabaseSync(file, { readOnly: true });
  assert.ok(db.prepare('SELECT count(*) AS n FROM detector_state').get()!.n as number >= 1, 'the clock row at least');
  db.close();
  first.store.close();
});

test('timed flushes build the snapshot in slices, the event loop turning in between, and write it', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'meshward-state-')), 'inventory.db');
  const h = new Harness(SETTINGS);
  for (let i = 0; i < 300; i++) h.send({ time: T0 + i * 10, path: `/orders/${i}`, workload: `spiffe://cluster.local/ns/n${i}/sa/s` });
  // Slices of 0 ms: a pause after every entry. Other work runs during the snapshot...
  let turns = 0;
  let spinning = true;
  const spin = (): void => { turns++; if (spinning) setImmediate(spin); };
  setImmediate(spin);
  const sliced = await h.engine.state.snapshotAsync(0);
  spinning = false;
  assert.ok(turns > 300, `the event loop turned ${turns} times during the snapshot`);
  // ...and the result is the synchronous snapshot's.
  assert.deepEqual(sliced, h.engine.state.snapshot());

  const { store } = InventoryStore.open(file, new Inventory(), { flushIntervalMs: 20 });
  store.attach(new DetectorStateTable(h.engine.state));
  while (store.flushes === 0) await new Promise((r) => setTimeout(r, 10));
  const db = new DatabaseSync(file, { readOnly: true });
  const edges = db.prepare("SELECT state FROM detector_state WHERE name = 'lateral.edges'").get();
  db.close();
  store.close();
  assert.equal((JSON.parse(String(edges!.state)) as unknown[]).length, 300, 'every edge written by the timed flush');
});
