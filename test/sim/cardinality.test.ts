// Cardinality attack: 1M distinct identities each touching a distinct object (1M object IDs),
// interleaved with a real attacker. The state caps hold (memory stays flat, pending pairing
// bounded) and the concurrent attack is still detected and blocked. Default caps are used.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { BolaDetector } from '../../extproc/src/engine/detectors/bola.ts';
import { createDefaultDetectors } from '../../extproc/src/engine/detectors/index.ts';
import { defaultDetectorSettings } from '../../extproc/src/engine/policy-settings.ts';

// A heap comparison needs a full GC at both points; node --test does not pass --expose-gc, so
// enable it at run time.
v8.setFlagsFromString('--expose-gc');
const forceGc = vm.runInNewContext('gc') as () => void;

const DISTINCT = Number(process.env.MESHWARD_CARDINALITY ?? 1_000_000);
const WEB = 'spiffe://cluster.local/ns/web/sa/frontend';
const ATTACKER = '172.16.66.6';
const T0 = Date.UTC(2026, 10, 27, 12, 0, 0);

function tokenFor(i: number): string {
  // Unsigned-but-well-formed tokens are enough here: the point is a distinct end user per request.
  const payload = Buffer.from(`{"sub":"u${i}","iss":"https://idp"}`).toString('base64url');
  return `Bearer eyJhbGciOiJIUzI1NiJ9.${payload}.c2ln`;
}

test(`${DISTINCT.toLocaleString('en')} distinct identities and object IDs: caps hold and a concurrent attack is detected`, () => {
  let bola: BolaDetector | undefined;
  const engine = new Engine({
    denyRules: [],
    mode: 'enforce',
    detectors: (c) => createDefaultDetectors(c).map((d) => (d instanceof BolaDetector ? (bola = d) : d)),
  });
  const caps = defaultDetectorSettings().caps;
  const attackFindings: Finding[] = [];
  let lastFinding: Finding | undefined;
  engine.addObserver({ onFinding: (f) => { lastFinding = f; if (f.caller.includes(ATTACKER)) attackFindings.push(f); } });
  const emptyHeaders = new Map<string, string[]>();
  const respond = (r: RequestEvent, status = 200) => engine.observeResponse(r, { requestId: r.requestId, time: r.time, status, headers: emptyHeaders });

  let attackerNext = 5_000_000;
  let attackDenied = 0;
  let attackSent = 0;
  let heapAtFifth = 0;
  for (let i = 0; i < DISTINCT; i++) {
    const time = T0 + i; // 1000 requests a second
    // Every fourth identity is an end user with a JWT, the others forwarded client addresses.
    const identity: [string, string] = i % 4 === 0 ? ['authorization', tokenFor(i)] : ['x-forwarded-for', `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`];
    const r: RequestEvent = {
      requestId: `c${i}`, time, method: 'GET', authority: 'shop.svc', path: `/orders/${10_000_000 + i}`,
      headers: new Map([[identity[0], [identity[1]]]]),
      caller: { workload: WEB, mtls: true, identitySource: 'filter' },
    };
    // The flood's requests are allowed: one object each is nobody's enumeration.
    if (engine.decide(r).action !== "allow") assert.fail(`flood request ${i} denied: ${JSON.stringify(lastFinding)}`);
    if (i % 4 === 0) respond(r); // most never answered: pending pairing must stay bounded anyway
    if (i % 1000 === 500) {
      attackSent++;
      const a: RequestEvent = {
        requestId: `a${i}`, time, method: 'GET', authority: 'shop.svc', path: `/orders/${attackerNext++}`,
        headers: new Map([['x-forwarded-for', [ATTACKER]]]), caller: { workload: WEB, mtls: true, identitySource: 'filter' },
      };
      if (engine.decide(a).action === 'deny') attackDenied++;
      else respond(a);
    }
    if (i === Math.floor(DISTINCT / 5)) { forceGc(); heapAtFifth = process.memoryUsage().heapUsed; }
  }
  forceGc();
  const heapEnd = process.memoryUsage().heapUsed;

  assert.ok(attackFindings.some((f) => f.detector === 'bola'), 'the sequential walk was detected');
  assert.ok(attackDenied >= attackSent - 10, `enforce denied ${attackDenied} of ${attackSent} attack requests`);
  assert.ok(engine.pendingExchanges <= 10_000, `pending ${engine.pendingExchanges}`);
  const sizes = bola!.stateSizes;
  assert.ok(sizes.known <= caps.maxEntries && sizes.callers <= caps.maxEntries, JSON.stringify(sizes));
  // Memory after the flood is about what it was a fifth of the way in (caps full): caps, not growth.
  const growthMb = (heapEnd - heapAtFifth) / 1e6;
  console.log(`heap at 20%: ${(heapAtFifth / 1e6).toFixed(0)} MB, at 100%: ${(heapEnd / 1e6).toFixed(0)} MB; attack: ${attackDenied}/${attackSent} denied; bola state ${JSON.stringify(sizes)}`);
  assert.ok(growthMb < 50, `heap grew ${growthMb.toFixed(0)} MB after the caps filled`);
});
