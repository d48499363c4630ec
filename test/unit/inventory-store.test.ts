// Persistence: the inventory survives a restart (close, reopen) and a crash (SIGKILL mid-run),
// losing at most what came after the last completed flush.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Inventory } from '../../extproc/src/inventory/inventory.ts';
import { InventoryStore } from '../../extproc/src/inventory/store.ts';
import { replayFileIntoInventory } from '../../extproc/src/inventory/replay.ts';
import { DatabaseSync } from 'node:sqlite';

const dir = mkdtempSync(join(tmpdir(), 'meshward-store-'));
const VAMPI = new URL('../../../shared/corpora/dev/vampi.jsonl', import.meta.url).pathname;

test('the inventory survives a restart: same operations, same learned templates', async () => {
  const file = join(dir, 'restart.db');
  const first = new Inventory();
  const { store, loaded } = InventoryStore.open(file, first, { flushIntervalMs: 60_000 });
  assert.deepEqual(loaded, { operations: 0, services: 0, skipped: 0 });
  await replayFileIntoInventory(first, VAMPI);
  store.close(); // flushes
  const second = new Inventory();
  const reopened = InventoryStore.open(file, second, { flushIntervalMs: 60_000 });
  assert.equal(reopened.loaded.skipped, 0);
  assert.ok(reopened.loaded.operations > 0);
  assert.deepEqual(second.operations(), first.operations());
  assert.deepEqual(second.learnedTemplates(), first.learnedTemplates());
  // New traffic after the restart adds to what was there.
  const before = second.operations().find((o) => o.method === 'GET' && o.template === '/me')!.count;
  second.observeRequest({
    requestId: 'after-restart', time: Date.now(), method: 'GET', path: '/me', authority: 'vampi.shop.svc.cluster.local',
    headers: new Map(), caller: { mtls: false, identitySource: 'none' },
  });
  assert.equal(second.operations().find((o) => o.method === 'GET' && o.template === '/me')!.count, before + 1);
  reopened.store.close();
});

test('corrupt rows are skipped, not fatal', () => {
  const file = join(dir, 'corrupt.db');
  const inv = new Inventory();
  InventoryStore.open(file, inv).store.close();
  const db = new DatabaseSync(file);
  db.prepare('INSERT INTO operations (service, key, record) VALUES (?, ?, ?)').run('x.svc', 'GET /x', '{not json');
  db.prepare('INSERT INTO learners (service, tree) VALUES (?, ?)').run('y.svc', '[1,');
  db.close();
  const { loaded, store } = InventoryStore.open(file, new Inventory());
  assert.equal(loaded.skipped, 2);
  store.close();
});

test('a file that is not a database gives a clear error', () => {
  const file = join(dir, 'not-a-db.db');
  writeFileSync(file, 'hello, I am not SQLite'.repeat(100));
  assert.throws(() => InventoryStore.open(file, new Inventory()), /not a database|file is not a database/i);
});

test('killed with SIGKILL mid-run: everything flushed before the kill is there, the file is intact', async () => {
  const file = join(dir, 'killed.db');
  const child = spawn(process.execPath, [new URL('./inventory-kill-child.ts', import.meta.url).pathname, file, '50'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let lastFlushed = -1;
  let flushLines = 0;
  let lastObserved = 0;
  let buffered = '';
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const [what, n] = line.split(' ');
        if (what === 'flushed') {
          lastFlushed = Number(n);
          flushLines++;
        } else if (what === 'observed') lastObserved = Number(n);
        // Kill in the middle of a flush interval, after a few flushes completed.
        if (flushLines >= 3 && lastObserved > lastFlushed + 40) {
          child.kill('SIGKILL');
          resolve();
        }
      }
    });
  });
  assert.equal(await exited, 'SIGKILL');
  const inventory = new Inventory();
  const { loaded, store } = InventoryStore.open(file, inventory, { readOnly: true });
  store.close();
  assert.equal(loaded.skipped, 0, 'no half-written row');
  const stored = inventory.operations().reduce((n, o) => n + o.count, 0);
  console.log(`observed at least ${lastObserved} before the kill; the last flush reported covered ${lastFlushed}; the file holds ${stored}`);
  assert.ok(lastFlushed > 0);
  assert.ok(stored >= lastFlushed, 'every reported flush survived');
  assert.ok(stored % 20 === 0, 'the file holds the state at a flush boundary (whole batches), nothing partial');
  assert.ok(inventory.state('books.shop.svc')!.learner.templates().length > 0, 'the learner was persisted too');
});

test('the server runtime: engine observer in, SQLite out, back after a restart; bad specs reported, not fatal', async () => {
  const { Engine } = await import('../../extproc/src/engine/engine.ts');
  const { startInventory } = await import('../../extproc/src/inventory/runtime.ts');
  const file = join(dir, 'runtime.db');
  const badSpec = join(dir, 'bad-spec.yaml');
  writeFileSync(badSpec, 'openapi: 3.0.3\n');
  const engine = new Engine({ denyRules: [] });
  const first = await startInventory(engine, { dbFile: file, specs: [{ service: 'shop.svc', source: { kind: 'openapi-file', file: badSpec } }] });
  assert.equal(first.specErrors.length, 1);
  assert.match(first.specErrors[0]!.error.message, /bad-spec\.yaml/);
  const request = {
    requestId: 'rt1', time: Date.now(), method: 'GET', path: '/orders/7', authority: 'shop.svc', headers: new Map(),
    caller: { workload: 'spiffe://cluster.local/ns/web/sa/frontend', mtls: true, identitySource: 'filter' as const },
  };
  engine.decide(request);
  engine.observeResponse(request, { requestId: 'rt1', time: request.time, status: 200, headers: new Map() });
  first.close();
  engine.decide({ ...request, requestId: 'rt2' });
  assert.equal(first.inventory.operations()[0]!.count, 1, 'detached on close');
  const second = await startInventory(new Engine({ denyRules: [] }), { dbFile: file });
  assert.deepEqual(second.inventory.operations().map((o) => [o.template, o.count, o.statuses]), [['/orders/{id}', 1, { '200': 1 }]]);
  second.close();
});
