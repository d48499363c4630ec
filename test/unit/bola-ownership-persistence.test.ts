// BOLA object ownership survives a restart without the state holding raw IDs (issue #4): the
// persisted map is keyed by HMAC-SHA256 of caller and ID under the installation's state key, so a
// restored owner's objects are its own again only under the same key; values the sensitive-data
// scanner recognises (card numbers, passwords) are never recorded. Learned path collections are
// saved with hashed segments the same way. Also the key file and its serve options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Harness, T0, WEB, bearer, ofDetector } from './detectors/harness.ts';
import { StateRegistry, type StateRow } from '../../extproc/src/engine/state-snapshot.ts';
import { EventClock } from '../../extproc/src/engine/state.ts';
import { CollectionLearner } from '../../extproc/src/engine/objects.ts';
import { defaultStateKeyFile, loadOrCreateStateKey } from '../../extproc/src/inventory/state-key-file.ts';
import { KeyedHash } from '../../extproc/src/engine/keyed-hash.ts';

const ALICE = bearer({ sub: 'alice' });
const MALLORY = bearer({ sub: 'mallory' });
const ORDERS = Array.from({ length: 10 }, () => `ord-${randomBytes(5).toString('hex')}`);

function engineWithKey(key: Buffer): Harness {
  const h = new Harness();
  h.engine.state.ids.useKey(key);
  return h;
}

/** Alice creates ten orders (the API answers each create with its ID); the snapshot at the end. */
function aliceCreates(key: Buffer): StateRow[] {
  const h = engineWithKey(key);
  ORDERS.forEach((id, i) => h.send({ time: T0 + i * 1000, method: 'POST', path: '/orders', workload: WEB, headers: ALICE, body: { item: 'book' }, status: 201, responseBody: { id, item: 'book' } }));
  return h.engine.state.snapshot();
}

/** Reads of every order after the restart; BOLA findings per reader. */
function readsAfterRestart(h: Harness, who: Record<string, string>, start: number): number {
  let found = 0;
  ORDERS.forEach((id, i) => { found += ofDetector(h.send({ time: start + i * 1000, path: `/orders/${id}`, workload: WEB, headers: who, responseBody: { id, item: 'book' } }).findings, 'bola').length; });
  return found;
}

test('restored ownership: the owner reads its objects quietly after a restart; another caller reading them is a finding', () => {
  const key = randomBytes(32);
  const rows = aliceCreates(key);
  const restart = T0 + 3600_000;

  const restored = engineWithKey(key);
  assert.deepEqual(restored.engine.state.restore(rows).skipped, []);
  assert.equal(readsAfterRestart(restored, ALICE, restart), 0, 'alice created them before the restart');
  assert.ok(readsAfterRestart(restored, MALLORY, restart + 60_000) >= 1, 'mallory neither created nor was shown them');

  // Without the restored state, or under another key, alice's own reads are unexplained.
  assert.ok(readsAfterRestart(engineWithKey(key), ALICE, restart) >= 1, 'a fresh engine does not know they are hers');
  const otherKey = engineWithKey(randomBytes(32));
  otherKey.engine.state.restore(rows);
  assert.ok(readsAfterRestart(otherKey, ALICE, restart) >= 1, 'hashes under another key match nothing');
});

test('the persisted ownership holds keyed hashes only: no raw ID, no caller, and no sensitive value recorded', () => {
  const key = randomBytes(32);
  const h = engineWithKey(key);
  const card = '4111111111111111';
  const password = `Pw-${randomBytes(6).toString('hex')}`;
  h.send({ time: T0, method: 'POST', path: '/orders', workload: WEB, headers: ALICE, body: { item: 'book' }, status: 201, responseBody: { id: ORDERS[0] } });
  const before = ownershipEntries(h.engine.state.snapshot());
  assert.equal(before.length, 2, 'the created ID and the value sent to create it');
  // A create whose body holds a card number, a password and one plain value: only the plain value is recorded.
  h.send({ time: T0 + 1000, method: 'POST', path: '/payments', workload: WEB, headers: ALICE, body: { card, password, note: 'gift' }, status: 201, responseBody: {} });
  const rows = h.engine.state.snapshot();
  const after = ownershipEntries(rows);
  assert.equal(after.length, before.length + 1, 'the note only');
  const ids = new KeyedHash(key);
  const keys = after.map((e) => e[0]);
  for (const secret of [card, password]) assert.ok(!keys.some((k) => k.length !== 22 || k === ids.of(secret)), 'never recorded, not even hashed');
  const text = rows.map((r) => r.state).join('\n');
  for (const raw of [ORDERS[0]!, card, password]) assert.ok(!text.includes(raw), `${raw} in the snapshot`);
  assert.ok(!rows.find((r) => r.name === 'bola.ownership')!.state.includes('alice'), 'callers are inside the hash too');
});

function ownershipEntries(rows: StateRow[]): [string, unknown][] {
  const row = rows.find((r) => r.name === 'bola.ownership');
  assert.ok(row, 'ownership is persisted');
  return JSON.parse(row.state) as [string, unknown][];
}

test('state key file: created 0600 beside the state file, read back unchanged, bad files rejected clearly', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-key-'));
  const file = defaultStateKeyFile(path.join(dir, 'inventory.db'));
  assert.equal(file, path.join(dir, 'inventory.db.key'));
  const created = loadOrCreateStateKey(file);
  assert.equal(created.created, true);
  assert.equal(created.key.length, 32);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const again = loadOrCreateStateKey(file);
  assert.equal(again.created, false);
  assert.ok(again.key.equals(created.key), 'the same key after a restart');
  assert.equal(again.warning, undefined);
  chmodSync(file, 0o644);
  assert.match(loadOrCreateStateKey(file).warning ?? '', /readable by others \(mode 644\)/);

  const short = path.join(dir, 'short.key');
  writeFileSync(short, Buffer.alloc(8).toString('base64url'));
  assert.throws(() => loadOrCreateStateKey(short), /short\.key is not a state key \(expected at least 32 random bytes/);
  const garbage = path.join(dir, 'garbage.key');
  writeFileSync(garbage, 'not base64 !!\n'.repeat(3));
  assert.throws(() => loadOrCreateStateKey(garbage), /garbage\.key is not a state key/);
  assert.throws(() => loadOrCreateStateKey(path.join(dir, 'missing-dir', 'x.key')), /cannot create the state key file/);
  assert.throws(() => new KeyedHash(Buffer.alloc(16)), /at least 32 bytes/);
});

test('meshward serve: --state-key-file needs --inventory-db, and a bad key file stops the start with a clear error', () => {
  const cli = path.resolve(import.meta.dirname, '../../extproc/src/cli.ts');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-key-cli-'));
  const alone = spawnSync(process.execPath, [cli, 'serve', '--port', '0', '--state-key-file', path.join(dir, 'k')], { encoding: 'utf8' });
  assert.equal(alone.status, 2);
  assert.match(alone.stderr, /--state-key-file needs --inventory-db/);
  const bad = path.join(dir, 'bad.key');
  writeFileSync(bad, 'short\n');
  const r = spawnSync(process.execPath, [cli, 'serve', '--port', '0', '--inventory-db', path.join(dir, 'inv.db'), '--state-key-file', bad], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bad\.key is not a state key/);
});

test('learned path collections come back keyed by hashed segments and template as before the restart', () => {
  const caps = { maxEntries: 100, maxBytes: 1_000_000 };
  const names = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy'];
  const key = randomBytes(32);
  const learner = (k: Buffer, rows?: StateRow[]) => {
    const clock = new EventClock();
    clock.advance(T0);
    const registry = new StateRegistry(clock);
    registry.ids.useKey(k);
    if (rows) registry.restore(rows);
    return { registry, collections: new CollectionLearner(clock, caps, registry) };
  };
  const first = learner(key);
  for (const n of names) first.collections.resolve('shop.svc', `/users/${n}/orders`, true);
  for (let i = 0; i < 4; i++) first.collections.resolve('shop.svc', '/users/me/orders', true);
  assert.equal(first.collections.resolve('shop.svc', '/users/me', false).template, '/users/me', 'a recurring child stays static');
  assert.equal(first.collections.resolve('shop.svc', '/users/zoe', false).template, '/users/{}', 'the position holds IDs');
  const rows = first.registry.snapshot();
  const text = rows.map((r) => r.state).join('\n');
  for (const n of names) assert.ok(!text.includes(n), `${n} saved raw`);

  const restored = learner(key, rows);
  assert.equal(restored.collections.resolve('shop.svc', '/users/me', false).template, '/users/me');
  assert.deepEqual(restored.collections.resolve('shop.svc', '/users/zoe', false), { template: '/users/{}', ids: ['zoe'] });
  const otherKey = learner(randomBytes(32), rows);
  assert.equal(otherKey.collections.resolve('shop.svc', '/users/zoe', false).template, '/users/zoe', 'under another key nothing restored is found: the position is unknown again');
});
