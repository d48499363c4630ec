// Learning periods set by policy in enforce mode, through the real stack (issue #4). Three namespaces
// on one engine: `shop` learns lateral movement and BFLA for 2 s and 5 requests
// (spec.detectors[].learning), `lab` for an hour, `gate` for 2 s but 1,000 requests. After the short
// period a workload calling for the first time is a new call-graph edge in shop and a write on a
// resource only ever read is refused there; lab and gate judge neither, so each namespace's policy
// (period and request count), not a global default, governs. New edges are reported, never refused
// (their finding asks for no enforcement: the learned graph is a heuristic; refusing callers is what
// `callGraph` is for), so the refusal is shown with BFLA.
// policy-learning-periods.test.ts covers the same periods in monitor mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalMesh } from '../../extproc/src/local/mesh.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import { LATERAL_DETECTOR } from '../../extproc/src/engine/detectors/lateral-movement.ts';
import { BFLA_DETECTOR } from '../../extproc/src/engine/detectors/bfla.ts';
import { PolicyServerWiring } from '../../extproc/src/policy/server-wiring.ts';
import { createLogger } from '../../extproc/src/log.ts';
import { rawRequest } from '../support/raw-http.ts';
import { startFilePolicies } from '../support/file-policies.ts';

const HOST = 'orders.shop';
const [WORKLOAD_A, WORKLOAD_B] = ['default/web', 'default/newcomer'];

const policyLearning = (periodSeconds: number, minRequests: number) => `  mode: enforce
  detectors:
    - { name: lateral, learning: { periodSeconds: ${periodSeconds}, minRequests: ${minRequests} } }
    - { name: bfla, learning: { periodSeconds: ${periodSeconds}, minRequests: ${minRequests} } }`;

test('enforce mode: a 2 s learning period in one namespace judges a new workload, an hour or 1,000 requests in others do not; the learned workload keeps 200', async () => {
  const wiring = new PolicyServerWiring(createLogger('silent'));
  const engine = new Engine({ denyRules: [], detectors: wiring.detectors });
  const policies = await startFilePolicies(engine, {
    'meshward/mesh-default': '  mode: monitor',
    'shop/shop': policyLearning(2, 5),
    'lab/lab': policyLearning(3600, 5),
    'gate/gate': policyLearning(2, 1000),
  }, wiring);
  const findings: Finding[] = [];
  const seen: RequestEvent[] = [];
  engine.addObserver({ onFinding: (f) => { findings.push(f); }, onDecision: ({ request }) => { seen.push(request); } });
  const meshes: Awaited<ReturnType<typeof startLocalMesh>>[] = [];
  const meshIn = async (namespace: string) => {
    const mesh = await startLocalMesh({ callers: [WORKLOAD_A, WORKLOAD_B], server: `${namespace}/orders`, engine, serverNodeMetadata: { NAMESPACE: namespace, WORKLOAD_NAME: 'orders' } });
    meshes.push(mesh);
    return mesh;
  };
  try {
    const [shop, lab, gate] = [await meshIn('shop'), await meshIn('lab'), await meshIn('gate')];
    assert.equal(policies.policies.last?.errors.size, 0, 'the policies are valid');
    const call = async (mesh: typeof shop, caller: string, method = 'GET') =>
      (await rawRequest(mesh.urlFor(caller), { method, path: '/orders/7', headers: [['host', HOST]] })).status;
    const namespaceOf = (f: Finding) => seen.find((r) => r.requestId === f.requestId)?.sidecarWorkload?.namespace;
    const judged = (namespace: string, detector: string) => findings.filter((f) => f.detector === detector && namespaceOf(f) === namespace);

    // Learning: A reads from every service for longer than 2 s, with more than 5 requests each.
    const start = Date.now();
    let calls = 0;
    while (Date.now() - start < 2500 || calls <= 5) {
      for (const mesh of [shop, lab, gate]) assert.equal(await call(mesh, WORKLOAD_A), 200, 'A is allowed while learning');
      calls++;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(calls < 1000, `fewer requests than gate's minRequests (${calls})`);
    assert.deepEqual(findings.map((f) => `${namespaceOf(f)} ${f.detector}`), [], 'nothing judged while learning');

    // B calls for the first time: a new edge in shop (learned), nothing in lab or gate (still learning).
    assert.equal(await call(shop, WORKLOAD_B), 200, 'a new edge is reported, not refused');
    assert.equal(await call(lab, WORKLOAD_B), 200);
    const edges = judged('shop', LATERAL_DETECTOR);
    assert.equal(edges.length, 1, JSON.stringify(edges.map((f) => f.summary)));
    assert.match(edges[0]!.summary, /new call-graph edge/);
    assert.deepEqual(edges[0]!.evidence, { workload: shop.spiffeIdOf(WORKLOAD_B), service: HOST });
    assert.equal(edges[0]!.enforcement, 'none');
    assert.equal(judged('lab', LATERAL_DETECTOR).length, 0, 'lab is still within its hour of learning');
    assert.equal(await call(gate, WORKLOAD_B), 200);
    assert.equal(judged('gate', LATERAL_DETECTOR).length, 0, 'gate has not seen 1,000 requests yet');

    // B writes to a resource only ever read: refused in shop with the enforce status, passed in lab and gate.
    assert.equal(await call(shop, WORKLOAD_B, 'DELETE'), 403, 'shop enforces the learned methods');
    assert.equal(await call(lab, WORKLOAD_B, 'DELETE'), 200, 'lab has not learned yet');
    assert.equal(await call(gate, WORKLOAD_B, 'DELETE'), 200, 'gate has not learned yet');
    const tampering = judged('shop', BFLA_DETECTOR);
    assert.equal(tampering.length, 1, JSON.stringify(tampering.map((f) => f.summary)));
    assert.match(tampering[0]!.summary, /DELETE on a resource only ever read/);
    assert.equal(tampering[0]!.caller, shop.spiffeIdOf(WORKLOAD_B));
    assert.deepEqual([judged('lab', BFLA_DETECTOR).length, judged('gate', BFLA_DETECTOR).length], [0, 0]);

    // A, learned during the period, keeps getting 200 and is never judged; B's edge is reported once.
    assert.equal(await call(shop, WORKLOAD_A), 200);
    assert.equal(await call(lab, WORKLOAD_A), 200);
    assert.equal(await call(gate, WORKLOAD_A), 200);
    assert.equal(await call(shop, WORKLOAD_B), 200);
    assert.equal(judged('shop', LATERAL_DETECTOR).length, 1);
    assert.deepEqual(findings.filter((f) => f.caller === shop.spiffeIdOf(WORKLOAD_A)).map((f) => f.summary), []);
    assert.deepEqual(findings.map((f) => namespaceOf(f)).filter((n) => n !== 'shop'), [], 'lab and gate judged nothing');
  } finally {
    for (const mesh of meshes) await mesh.stop();
    await policies.stop();
    wiring.stop();
  }
});
