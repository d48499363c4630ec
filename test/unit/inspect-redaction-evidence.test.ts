// Redaction evidence reaches every sink: a finding is handed to observers (logs, OTel) only after
// the response verdict has written what was redacted, so a sink that serialises the finding when it
// is emitted (as the log and OTel exporters do) sees the final evidence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../extproc/src/engine/engine.ts';
import { PolicyServerWiring } from '../../extproc/src/policy/server-wiring.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';

const JSON_TYPE = new Map([['content-type', ['application/json']]]);

function engineSnapshottingFindings() {
  const wiring = new PolicyServerWiring(undefined, {}, ['card-number']);
  const engine = new Engine({ denyRules: [], mode: 'enforce', detectors: wiring.detectors });
  const emitted: Record<string, unknown>[] = [];
  engine.addObserver({ onFinding: (f) => { if (f.detector === 'content-exposure') emitted.push(JSON.parse(JSON.stringify(f.evidence))); } });
  let n = 0;
  const respond = (body: string, bodyComplete: boolean) => {
    const request: RequestEvent = {
      requestId: `r${n++}`, time: 1_000_000 + n, caller: { workload: 'spiffe://td/ns/shop/sa/web', mtls: true, identitySource: 'filter' },
      method: 'GET', authority: 'api.shop', path: '/wallet', headers: new Map(),
    };
    engine.decide(request);
    return engine.observeResponse(request, { requestId: request.requestId, time: request.time + 1, status: 200, headers: JSON_TYPE, body: Buffer.from(body), bodyComplete });
  };
  return { emitted, respond };
}

test('the emitted finding already says the response was redacted', () => {
  const { emitted, respond } = engineSnapshottingFindings();
  const verdict = respond(JSON.stringify({ id: 1, card: '4111111111111111' }), true);
  assert.equal(verdict.action, 'redact');
  assert.equal(emitted.length, 1);
  assert.equal(emitted[0]!.redaction, 'redacted');
});

test('the emitted finding says when redaction was not possible (body cut)', () => {
  const { emitted, respond } = engineSnapshottingFindings();
  const verdict = respond(JSON.stringify({ id: 1, card: '4111111111111111' }), false);
  assert.equal(verdict.action, 'continue');
  assert.equal(emitted.length, 1);
  assert.match(String(emitted[0]!.redaction), /not possible/);
});
