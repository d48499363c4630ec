// Issue #10, item 3: 1M distinct paths (static-looking segments the baseline rules do not fold, and
// distinct query strings) through the engine, its detectors and the inventory with its learned
// templating, interleaved with benign traffic and a real ID walk. The inventory and the learner stay
// within their caps, heap stays flat once they are full, benign operations are still inventoried and
// the concurrent attack is still detected. MESHWARD_CARDINALITY sets the count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { Inventory, DEFAULT_INVENTORY_LIMITS } from '../../extproc/src/inventory/inventory.ts';

v8.setFlagsFromString('--expose-gc');
const forceGc = vm.runInNewContext('gc') as () => void;

// 250k keeps the suite bounded (about 40 s); the full 1M run: MESHWARD_CARDINALITY=1000000 (about 150 s).
const DISTINCT = Number(process.env.MESHWARD_CARDINALITY ?? 250_000);
const SERVICE = 'shop.svc';
const WEB = 'spiffe://cluster.local/ns/web/sa/frontend';
const ATTACKER = '172.16.66.6';
const T0 = Date.UTC(2026, 10, 27, 12, 0, 0);
const NO_HEADERS = new Map<string, string[]>();

test(`${DISTINCT.toLocaleString('en')} distinct paths: inventory and templating stay within caps, heap flat, attack still detected`, () => {
  const engine = new Engine({ denyRules: [], mode: 'enforce' });
  const inventory = new Inventory();
  engine.addObserver(inventory.observer());
  const attackFindings: Finding[] = [];
  engine.addObserver({ onFinding: (f) => { if (f.caller.includes(ATTACKER)) attackFindings.push(f); } });
  const request = (i: number, path: string, xff: string): RequestEvent => ({
    requestId: `r${i}`, time: T0 + i, method: 'GET', authority: SERVICE, path,
    headers: new Map([['x-forwarded-for', [xff]]]), caller: { workload: WEB, mtls: true, identitySource: 'filter' },
  });
  const respond = (r: RequestEvent): void => { engine.observeResponse(r, { requestId: r.requestId, time: r.time, status: 200, headers: NO_HEADERS }); };

  let heapAtFifth = 0;
  let attackNext = 5_000_000;
  let attackSent = 0;
  let attackDenied = 0;
  for (let i = 0; i < DISTINCT; i++) {
    // Two flood shapes: a fresh word at the root, and fresh words two levels deep with a fresh query.
    const word = `w${i.toString(36)}x`;
    const path = i % 2 === 0 ? `/${word}` : `/catalog/${word}/detail?${word}=1`;
    const r = request(i, path, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    engine.decide(r);
    if (i % 3 === 0) respond(r);
    if (i % 100 === 50) {
      // Benign traffic on a real operation goes on during the flood.
      const b = request(i, `/orders/${1 + (i % 7)}`, '10.200.0.1');
      engine.decide(b);
      respond(b);
    }
    if (i % 1000 === 500) {
      attackSent++;
      const a = request(i, `/orders/${attackNext++}`, ATTACKER);
      if (engine.decide(a).action === 'deny') attackDenied++;
      else respond(a);
    }
    if (i === Math.floor(DISTINCT / 5)) { forceGc(); heapAtFifth = process.memoryUsage().heapUsed; }
  }
  forceGc();
  const heapEnd = process.memoryUsage().heapUsed;

  const stats = inventory.stats();
  const state = inventory.state(SERVICE)!;
  assert.ok(state.records.size <= DEFAULT_INVENTORY_LIMITS.maxOperationsPerService, `operations ${state.records.size}`);
  assert.ok(state.learner.nodeCount <= DEFAULT_INVENTORY_LIMITS.learner.maxNodes, `learner nodes ${state.learner.nodeCount}`);
  assert.ok(inventory.operations(SERVICE).some((o) => o.method === 'GET' && /^\/orders\/\{[^}]+\}$/.test(o.template)), 'the benign operation is still in the inventory');
  assert.ok(attackFindings.some((f) => f.detector === 'bola'), 'the concurrent ID walk was detected');
  assert.ok(attackDenied >= attackSent - 10, `enforce denied ${attackDenied} of ${attackSent} attack requests`);
  const growthMb = (heapEnd - heapAtFifth) / 1e6;
  console.log(`# paths ${DISTINCT}: heap at 20% ${(heapAtFifth / 1e6).toFixed(0)} MB, at 100% ${(heapEnd / 1e6).toFixed(0)} MB; inventory ${JSON.stringify(stats)}, learner nodes ${state.learner.nodeCount}; attack ${attackDenied}/${attackSent} denied`);
  assert.ok(growthMb < 50, `heap grew ${growthMb.toFixed(0)} MB after the caps filled`);
});
