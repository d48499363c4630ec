// The server-wide body budget (issue #10) through real Envoy: an ext_proc server with a 1 MiB
// budget, bursts of 20 sampled ~250 KiB bodies in flight at once, requests and responses. Every
// exchange gets the outcome spec.content.overload defines (open: 200 and the body intact at the app
// or client; closed in enforce mode: 403 for a request body, 502 for a response body that did not
// fit, 200 for the rest), the held bytes return to 0 and the server keeps answering.
// The app holds its answers (AppHandler promise) until every request of a burst has reached it or
// been answered by meshward, so the bursts really are in flight at once and the counts are exact.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import type { AppAnswer, AppRequest } from '../../extproc/src/local/upstream-app.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { createContentDetectors } from '../../extproc/src/engine/detectors/content.ts';
import { createContentContext, type ContentSettings } from '../../extproc/src/inspect/settings.ts';
import { closeBodyPool } from '../../extproc/src/inspect/body-pool.ts';
import { rawRequest, type RawResponse } from '../support/raw-http.ts';
import { waitFor } from '../support/wait-for.ts';

const CLIENT = 'web/frontend';
const HOST = 'files.shop';
const BUDGET_BYTES = 1024 * 1024;
const BODY_BYTES = 250 * 1024;
/** Bodies that fit the budget at once: the rest of a burst held at once is over it. */
const FITTING = Math.floor(BUDGET_BYTES / BODY_BYTES);
const BURST = 20;
const JSON_TYPE: [string, string] = ['content-type', 'application/json'];

/** A distinct JSON document of exactly BODY_BYTES bytes. */
function document(tag: string): string {
  const head = `{"tag":"${tag}","pad":"`;
  return head + 'x'.repeat(BODY_BYTES - head.length - 2) + '"}';
}

/** Opens once every request of a burst has either reached the app or been answered without it. */
function burstGate(size: number) {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => { open = resolve; });
  let settled = 0;
  return { opened, settle: () => { if (++settled === size) open(); } };
}

after(() => closeBodyPool());

for (const overload of ['open', 'closed'] as const satisfies readonly ContentSettings['overload'][]) {
  describe(`spec.content.overload ${overload}, 1 MiB server body budget`, () => {
    let mesh: LocalMesh;
    const findings: Finding[] = [];
    /** What the app does with /hold, /upload and /download requests (set per test). */
    let answer: (request: AppRequest) => AppAnswer | Promise<AppAnswer> = () => ({ status: 200, headers: [JSON_TYPE], body: Buffer.from('{"ok":true}') });

    before(async () => {
      const content = createContentContext({ overload });
      mesh = await startLocalMesh({
        callers: [CLIENT],
        pluginConfig: { version: `e2e-budget-${overload}`, sampling: { percent: 100, seed: 'budget' } },
        engine: { denyRules: [], mode: 'enforce', detectors: (c) => createContentDetectors(c, content) },
        maxBufferedBodyMib: BUDGET_BYTES / (1024 * 1024),
        // Two shared cores: room for the off-thread decodes of a burst (a missed timeout would be Envoy's 500, not the budget's outcome).
        messageTimeoutSeconds: 2,
        appHandler: (request) => answer(request),
      });
      mesh.engine.addObserver({ onFinding: (f) => { if (f.detector === 'content-body') findings.push(f); } });
    });

    after(async () => { await mesh?.stop(); });

    const counters = () => mesh.extProcCounters()!;
    const send = (path: string, body?: string): Promise<RawResponse> =>
      rawRequest(mesh.urlFor(CLIENT), { method: body === undefined ? 'GET' : 'POST', path, headers: [['host', HOST], JSON_TYPE], ...(body === undefined ? {} : { body }) });
    const uninspected = (direction: string) => findings.filter((f) => f.evidence.direction === direction);
    const allReleased = () => waitFor('every body to leave the budget', () => counters().bodyBytesHeld === 0 && counters().streamsActive === 0);

    test(`${BURST} request bodies in flight at once: ${FITTING} are held and inspected, the rest follow the overload policy`, { timeout: 90_000 }, async () => {
      findings.length = 0;
      mesh.app.received.length = 0;
      const overBefore = counters().bodiesOverBudget;
      const gate = burstGate(BURST);
      let heldAtPeak = -1;
      void gate.opened.then(() => { heldAtPeak = counters().bodyBytesHeld; });
      answer = (request) => {
        gate.settle();
        return gate.opened.then(() => ({ status: 200, headers: [JSON_TYPE], body: Buffer.from(JSON.stringify({ got: request.body.length })) }));
      };
      const bodies = Array.from({ length: BURST }, (_, i) => document(`upload-${i}`));
      const results = await Promise.all(bodies.map((body, i) => send(`/upload/${i}`, body).then((res) => {
        if (res.status !== 200) gate.settle();
        return res;
      })));

      const over = BURST - FITTING;
      assert.equal(heldAtPeak, FITTING * BODY_BYTES, 'with every request in flight, the budget holds exactly the bodies that fit');
      assert.equal(counters().bodiesOverBudget - overBefore, over);
      assert.equal(uninspected('request').length, over, 'one finding per request body not inspected');
      const statuses = results.map((r) => r.status);
      if (overload === 'open') {
        assert.deepEqual(statuses, bodies.map(() => 200));
        assert.ok(uninspected('request').every((f) => f.severity === 'info' && f.enforcement === 'none'));
        assert.equal(mesh.app.received.length, BURST);
        for (const [i, body] of bodies.entries()) {
          assert.equal(mesh.app.received.find((r) => r.path === `/upload/${i}`)?.body, body, `request ${i} reached the app intact`);
        }
      } else {
        assert.equal(statuses.filter((s) => s === 403).length, over, JSON.stringify(statuses));
        assert.equal(statuses.filter((s) => s === 200).length, FITTING, JSON.stringify(statuses));
        for (const r of results.filter((x) => x.status === 403)) assert.equal(JSON.parse(r.body).reason, 'API4:2023-UnrestrictedResourceConsumption');
        assert.equal(mesh.app.received.length, FITTING, 'refused bodies never reached the app');
        for (const r of mesh.app.received) assert.equal(r.body, bodies[Number(r.path.split('/')[2])], 'the inspected ones reached it intact');
      }
      await allReleased();
    });

    test(`${BURST} response bodies in flight while the budget is full: every one follows the overload policy`, { timeout: 90_000 }, async () => {
      findings.length = 0;
      const overBefore = counters().bodiesOverBudget;
      // FITTING requests whose bodies the server holds until the app answers them: the budget is full.
      const holdGate = burstGate(FITTING);
      let releaseHolders!: () => void;
      const holdersReleased = new Promise<void>((resolve) => { releaseHolders = resolve; });
      answer = (request) => {
        if (request.path.startsWith('/hold/')) {
          holdGate.settle();
          return holdersReleased.then(() => ({ status: 200, headers: [JSON_TYPE], body: Buffer.from('{"held":true}') }));
        }
        return { status: 200, headers: [JSON_TYPE], body: Buffer.from(document(request.path)) };
      };
      const holders = Array.from({ length: FITTING }, (_, i) => send(`/hold/${i}`, document(`hold-${i}`)));
      await holdGate.opened;
      assert.equal(counters().bodyBytesHeld, FITTING * BODY_BYTES);

      const results = await Promise.all(Array.from({ length: BURST }, (_, i) => send(`/download/${i}`)));
      releaseHolders();
      assert.deepEqual((await Promise.all(holders)).map((r) => r.status), Array(FITTING).fill(200), 'the held requests complete');

      assert.equal(counters().bodiesOverBudget - overBefore, BURST, 'no response body fitted beside the held ones');
      assert.equal(uninspected('response').length, BURST);
      assert.match(uninspected('response')[0]!.summary, /server body budget full/);
      if (overload === 'open') {
        for (const [i, r] of results.entries()) {
          assert.equal(r.status, 200);
          assert.equal(r.body, document(`/download/${i}`), `response ${i} reached the client intact`);
        }
      } else {
        for (const r of results) {
          assert.equal(r.status, 502);
          assert.equal(JSON.parse(r.body).reason, 'API4:2023-UnrestrictedResourceConsumption');
        }
      }
      await allReleased();
    });

    test(`${BURST} response bodies at once with the budget free: inspected while they fit, the rest as the policy says; then the server answers on`, { timeout: 90_000 }, async (t) => {
      findings.length = 0;
      const overBefore = counters().bodiesOverBudget;
      answer = (request) => ({ status: 200, headers: [JSON_TYPE], body: Buffer.from(document(request.path)) });
      const results = await Promise.all(Array.from({ length: BURST }, (_, i) => send(`/download/${i}`)));
      const over = counters().bodiesOverBudget - overBefore;
      t.diagnostic(`${over} of ${BURST} response bodies did not fit beside the ones being inspected`);
      assert.equal(uninspected('response').length, over, 'every response body over the budget has its finding');
      for (const [i, r] of results.entries()) {
        const refused = overload === 'closed' && r.status === 502;
        if (!refused) assert.equal(r.body, document(`/download/${i}`), `response ${i}: ${r.status}`);
      }
      assert.equal(results.filter((r) => r.status === 502).length, overload === 'closed' ? over : 0);
      await allReleased();

      findings.length = 0;
      const small = '{"name":"after the bursts"}';
      const res = await send('/upload/after', small);
      assert.equal(res.status, 200);
      assert.equal(mesh.app.received.at(-1)?.body, small);
      assert.equal(findings.length, 0, 'a body that fits is inspected again');
      await allReleased();
    });
  });
}
