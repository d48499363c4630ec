// No raw object ID reaches the persisted state (issue #4): whatever IDs a caller creates, is shown,
// reads by path (user names too) or query, or sends in a create body, the snapshot a restart would restore from holds
// only keyed hashes of them (engine/keyed-hash.ts), in every persisted map.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Harness, T0, WEB, bearer } from '../unit/detectors/harness.ts';
import { fuzzRuns } from './fuzz-runs.ts';

const ID_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:+@-'.split('');
/** IDs as APIs mint them (letters and digits, often with separators), long enough that no template,
 *  field name or number in the state contains one by chance. */
const objectId = fc.tuple(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'.split('')), fc.array(fc.constantFrom(...ID_CHARS), { minLength: 8, maxLength: 40 }), fc.integer({ min: 0, max: 9 }))
  .map(([first, rest, digit]) => `${first}${rest.join('')}${digit}`);

/** Letters only (user names in paths): static-looking until their position is known to hold IDs. */
const nameId = fc.array(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'.split('')), { minLength: 10, maxLength: 20 }).map((cs) => cs.join(''));

type Step = { kind: 'create' | 'list' | 'path' | 'query' | 'create-body' | 'update-body' | 'name-path'; id: string; caller: string };
const caller = fc.constantFrom('alice', 'bob', 'mallory');
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constantFrom('create', 'list', 'path', 'query', 'create-body', 'update-body') as fc.Arbitrary<Step['kind']>, id: objectId, caller }),
  fc.record({ kind: fc.constant('name-path' as const), id: nameId, caller }),
);

function send(h: Harness, s: Step, time: number): void {
  const headers = bearer({ sub: s.caller });
  const id = encodeURIComponent(s.id);
  switch (s.kind) {
    case 'create': h.send({ time, method: 'POST', path: '/orders', workload: WEB, headers, body: { item: 'x' }, status: 201, responseBody: { id: s.id } }); break;
    case 'list': h.send({ time, path: '/orders', workload: WEB, headers, responseBody: { orders: [{ id: s.id, owner: s.caller }] } }); break;
    case 'path': h.send({ time, path: `/orders/${id}`, workload: WEB, headers, responseBody: { id: s.id, owner: 'alice' } }); break;
    case 'query': h.send({ time, path: `/invoices?invoice_id=${id}`, workload: WEB, headers, responseBody: { invoice_id: s.id } }); break;
    case 'create-body': h.send({ time, method: 'POST', path: '/transfers', workload: WEB, headers, body: { reference: s.id }, status: 201, responseBody: {} }); break;
    case 'name-path': h.send({ time, path: `/users/${id}/orders`, workload: WEB, headers, responseBody: { orders: [] } }); break;
    case 'update-body': h.send({ time, method: 'PUT', path: '/profile', workload: WEB, headers, body: { account_id: s.id }, responseBody: { account_id: s.id } }); break;
  }
}

test('property: the serialised state never holds a raw object ID, however the IDs travelled', () => {
  fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 40 }), (steps) => {
    const h = new Harness();
    steps.forEach((s, i) => send(h, s, T0 + i * 250));
    const rows = h.engine.state.snapshot();
    assert.ok(rows.some((r) => r.name === 'bola.ownership'));
    for (const row of rows) {
      // A user name in a path is part of the operation (METHOD host /users/alice/orders) until the
      // collection learner knows its position holds IDs, so maps keyed by operation hold it then
      // (as the inventory does); the object maps never do.
      const objectMap = row.name === 'bola.ownership' || row.name === 'objects.collections';
      for (const s of steps) if (s.kind !== 'name-path' || objectMap) assert.ok(!row.state.includes(s.id), `${s.id} (${s.kind}) raw in ${row.name}`);
    }
  }), { numRuns: fuzzRuns(60) });
});
