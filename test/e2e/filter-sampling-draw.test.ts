// The filter's sampling percentage in real Envoy: by default a private draw seeded from Envoy's
// random source (WASI random_get), so a caller who knows the seed (any meshed pod can read the plugin
// configuration) and picks its own x-request-id still cannot choose "unsampled"; with
// sampling.consistent a keyed hash of x-request-id gives every hop the same answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalMesh } from '../../extproc/src/local/mesh.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import { rawRequest } from '../support/raw-http.ts';

const CLIENT = 'default/client';
const HOST = 'orders.shop';
const SENT = 60;

async function sampledWithOneRequestId(sampling: object): Promise<{ sampled: number; log: string }> {
  const mesh = await startLocalMesh({ callers: [CLIENT], pluginConfig: { sampling } });
  try {
    const events: RequestEvent[] = [];
    mesh.engine.addObserver({ onDecision: (r) => events.push(r.request) });
    for (let i = 0; i < SENT; i++) {
      const res = await rawRequest(mesh.urlFor(CLIENT), { path: '/orders/1', headers: [['host', HOST], ['x-request-id', 'chosen-by-the-caller']] });
      assert.equal(res.status, 200);
    }
    assert.equal(events.length, SENT);
    return { sampled: events.filter((e) => e.sampled === true).length, log: await mesh.serverSidecar.logTail(400) };
  } finally {
    await mesh.stop();
  }
}

test('default: one request id sent again and again is sampled at the percentage, from Envoy\'s random source', async () => {
  const { sampled, log } = await sampledWithOneRequestId({ percent: 50, seed: 'known-to-everyone' });
  // Binomial(60, 0.5): sd 3.9; 15..45 is more than 3.8 sd either side.
  assert.ok(sampled >= 15 && sampled <= 45, `${sampled} of ${SENT} sampled`);
  assert.doesNotMatch(log, /no random source/, 'Envoy provides WASI random_get');
});

test('consistent: the same request id gets the same answer every time', async () => {
  const { sampled } = await sampledWithOneRequestId({ percent: 50, seed: 'known-to-everyone', consistent: true });
  assert.ok(sampled === 0 || sampled === SENT, `${sampled} of ${SENT} sampled`);
});
