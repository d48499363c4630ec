// BOLA's object positions and the inventory's route templates agree: a path position the request's
// template (the sidecar filter's, from the exact table the server pushes: learned inventory templates
// and specs) marks as a parameter is an object ID for the engine too, before its own collection
// learner has seen enough distinct values; without a template the learner decides alone as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EventClock } from '../../extproc/src/engine/state.ts';
import { CollectionLearner } from '../../extproc/src/engine/objects.ts';

const CAPS = { maxEntries: 1000, maxBytes: 10_000_000 };

test('a letter-only user name is an ID when the template says the position is a parameter', () => {
  const learner = new CollectionLearner(new EventClock(), CAPS);
  // Without a template a first, letter-only segment is not an ID (nothing says so yet).
  assert.deepEqual(learner.resolve('users.shop', '/users/alice/profile', true), { template: '/users/alice/profile', ids: [] });
  // The inventory learned /users/{user}/profile and pushed it: the filter's template says so.
  assert.deepEqual(learner.resolve('users.shop', '/users/bob/profile', true, '/users/{user}/profile'), { template: '/users/{}/profile', ids: ['bob'] });
});

test('literals in the template never turn an ID into a static segment; mismatched templates are ignored', () => {
  const learner = new CollectionLearner(new EventClock(), CAPS);
  // The baseline rules call 12345 an ID; a template that (wrongly) holds it literally does not overrule that.
  assert.deepEqual(learner.resolve('orders.shop', '/orders/12345', true, '/orders/12345'), { template: '/orders/{}', ids: ['12345'] });
  // A template of another shape (segment count differs) is not applied position by position.
  assert.deepEqual(learner.resolve('users.shop', '/users/carol', true, '/users/{user}/profile'), { template: '/users/carol', ids: [] });
});

test('property: with a template, every parameter position yields exactly its segment as an ID', () => {
  const segment = fc.stringMatching(/^[a-z]{3,12}$/);
  fc.assert(fc.property(fc.array(fc.tuple(segment, fc.boolean()), { minLength: 1, maxLength: 6 }), (parts) => {
    const learner = new CollectionLearner(new EventClock(), CAPS);
    const path = `/${parts.map(([s]) => s).join('/')}`;
    const template = `/${parts.map(([s, param], i) => (param ? `{p${i}}` : s)).join('/')}`;
    const { ids } = learner.resolve('svc', path, false, template);
    assert.deepEqual(ids, parts.filter(([, param]) => param).map(([s]) => s));
  }), { numRuns: 300 });
});
