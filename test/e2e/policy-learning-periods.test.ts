// Learning periods set by policy, through the real stack (issue #4): each namespace's policy decides
// how long its services are learned before a new call-graph edge is reported. Two namespaces in one
// run: `shop` learns lateral movement for 2 s and 5 requests, `lab` for an hour. After 2 s a workload
// calling for the first time is reported in shop and not in lab, so the policy, not a global default,
// governs; callers seen during learning never are.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalMesh } from '../../extproc/src/local/mesh.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import { PolicyServerWiring } from '../../extproc/src/policy/server-wiring.ts';
import { createLogger } from '../../extproc/src/log.ts';
import { rawRequest } from '../support/raw-http.ts';
import { startFilePolicies } from '../support/file-policies.ts';

const HOST = 'orders.shop';
const [WEB, NEWCOMER] = ['default/web', 'default/newcomer'];

test('spec.detectors[].learning for lateral: a short period in one namespace reports a new edge, a long one in another does not', async () => {
  const wiring = new PolicyServerWiring(createLogger('silent'));
  const engine = new Engine({ denyRules: [], detectors: wiring.detectors });
  const policies = await startFilePolicies(engine, {
    'meshward/mesh-default': '  mode: monitor',
    'shop/shop': '  mode: monitor\n  detectors: [{ name: lateral, learning: { periodSeconds: 2, minRequests: 5 } }]',
    'lab/lab': '  mode: monitor\n  detectors: [{ name: lateral, learning: { periodSeconds: 3600, minRequests: 5 } }]',
  }, wiring);
  const findings: Finding[] = [];
  const seen: RequestEvent[] = [];
  engine.addObserver({ onFinding: (f) => { findings.push(f); }, onDecision: ({ request }) => { seen.push(request); } });
  const shop = await startLocalMesh({ callers: [WEB, NEWCOMER], server: 'shop/orders', engine, serverNodeMetadata: { NAMESPACE: 'shop', WORKLOAD_NAME: 'orders' } });
  const lab = await startLocalMesh({ callers: [WEB, NEWCOMER], server: 'lab/orders', engine, serverNodeMetadata: { NAMESPACE: 'lab', WORKLOAD_NAME: 'orders' } });
  try {
    assert.equal(policies.policies.last?.errors.size, 0, 'the policies are valid');
    const call = (mesh: typeof shop, caller: string) => rawRequest(mesh.urlFor(caller), { path: '/orders/7', headers: [['host', HOST]] }).then((r) => r.status);
    const lateral = (namespace: string) => findings.filter((f) => f.detector === 'lateral-movement'
      && seen.find((r) => r.requestId === f.requestId)?.sidecarWorkload?.namespace === namespace);

    // Learning: web calls both services for longer than shop's period, with more than 5 requests.
    const start = Date.now();
    while (Date.now() - start < 2500) {
      assert.equal(await call(shop, WEB), 200);
      assert.equal(await call(lab, WEB), 200);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual([lateral('shop').length, lateral('lab').length], [0, 0], 'nothing reported while learning');

    // A workload calling for the first time: a new edge in shop (learned), nothing in lab (still learning).
    assert.equal(await call(shop, NEWCOMER), 200, 'monitor mode: reported, not refused');
    assert.equal(await call(lab, NEWCOMER), 200);
    const inShop = lateral('shop');
    assert.equal(inShop.length, 1, JSON.stringify(inShop.map((f) => f.summary)));
    assert.equal(inShop[0]!.evidence.workload, shop.spiffeIdOf(NEWCOMER));
    assert.match(inShop[0]!.summary, /new call-graph edge/);
    assert.equal(lateral('lab').length, 0, 'lab is still within its hour of learning');

    // web, learned during the period, is never reported; the newcomer's edge is reported once.
    assert.equal(await call(shop, WEB), 200);
    assert.equal(await call(shop, NEWCOMER), 200);
    assert.equal(lateral('shop').length, 1);
  } finally {
    await shop.stop();
    await lab.stop();
    await policies.stop();
  }
});
