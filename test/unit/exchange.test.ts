// The exchange every detector sees takes the operation id the sidecar filter derived (it applies the
// server-pushed exact template table) and falls back to the baseline rules without one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toExchange } from '../../extproc/src/engine/exchange.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';

const base: RequestEvent = {
  requestId: 'r1', time: 0, method: 'GET', authority: 'users.shop', path: '/users/alice/orders?page=2', headers: new Map(),
  caller: { workload: 'spiffe://cluster.local/ns/web/sa/frontend', mtls: true, identitySource: 'filter' },
};

test('uses the filter template and operation when present', () => {
  const ex = toExchange({ ...base, template: '/users/{username}/orders', operation: 'GET users.shop /users/{username}/orders' });
  assert.equal(ex.template, '/users/{username}/orders');
  assert.equal(ex.operation, 'GET users.shop /users/{username}/orders');
});

test('falls back to the baseline templating rules without them', () => {
  const ex = toExchange({ ...base, path: '/users/8123/orders?page=2' });
  assert.equal(ex.template, '/users/{id}/orders');
  assert.equal(ex.operation, 'GET users.shop /users/{id}/orders');
});
