// Issue #10, item 5: the ext_proc server crashes (SIGKILL) and restarts under steady load through real
// Envoy. Fail-open listener: no benign request fails. Fail-closed listener: only 200 and Envoy's
// fail-closed 500 appear. After the restart the inventory comes back from its SQLite file with at
// most one flush interval (5 s) of observations lost, and so do the detector baselines: the call
// graph learned before the crash is still known (no lateral-movement finding for its edge) and a
// new edge is reported at once, without a new learning period.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import { freePort } from '../../extproc/src/local/ports.ts';
import { DEFAULT_FLUSH_INTERVAL_MS } from '../../extproc/src/inventory/store.ts';
import { defaultDetectorSettings } from '../../extproc/src/engine/policy-settings.ts';
import { startServe, type ServeChild } from '../support/serve-child.ts';
import { startLoad, unexpectedOutcomes } from '../support/load.ts';

const HOST = 'orders.shop';
const CLIENT = 'web/frontend';
/** Calls the service for the first time after the restart: a new call-graph edge. */
const NEWCOMER = 'jobs/batch';
/** The service must be past its learning period before the crash for "new" to mean anything. */
const LEARNING_MS = defaultDetectorSettings().learning.minDurationMs;
const TOKEN = 'restart-admin-token-0123456789abcdef';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let mesh: LocalMesh;
let dir: string;
const serves: ServeChild[] = [];

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-restart-'));
  writeFileSync(path.join(dir, 'token'), TOKEN);
  mesh = await startLocalMesh({
    callers: [CLIENT, NEWCOMER], server: 'shop/orders',
    inbound: [{ name: 'closed', failureModeAllow: false }, { name: 'open', failureModeAllow: true }],
    pluginConfig: { role: 'inbound', sampling: { percent: 10, seed: 'restart' } },
  });
  await mesh.stopExtProc();
});
after(async () => {
  for (const s of serves) s.kill();
  await mesh?.stop();
});

async function serveOnce(): Promise<ServeChild> {
  const s = await startServe(['--port', String(mesh.extProcPort), '--admin-token-file', path.join(dir, 'token'), '--inventory-db', path.join(dir, 'inventory.db')],
    await freePort(), { MESHWARD_LOG_LEVEL: 'warn' });
  serves.push(s);
  return s;
}

async function markerCount(serve: ServeChild): Promise<number> {
  const inv = await (await serve.admin('/inventory', TOKEN)).json() as { services: { operations: { path: string; count: number }[] }[] };
  return inv.services.flatMap((s) => s.operations).filter((o) => o.path === '/marker').reduce((n, o) => n + o.count, 0);
}

interface LateralFinding { detector: string; evidence: { workload?: string; service?: string } }

/** GET with a Host header (fetch() drops it: a forbidden header name). Resolves with the status. */
function getWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers: { host } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); }).on('error', reject);
  });
}

async function lateralFindings(serve: ServeChild): Promise<LateralFinding[]> {
  const res = await (await serve.admin('/findings?detector=lateral-movement', TOKEN)).json() as { findings: LateralFinding[] };
  return res.findings;
}

test('SIGKILL and restart under load: fail-open never fails, fail-closed only 500, inventory and baselines back from SQLite', async () => {
  const first = await serveOnce();
  const load = startLoad(['closed', 'open'].map((l) => ({ name: l, baseUrl: mesh.urlFor(CLIENT, l), host: HOST })), 30);
  // Markers: one observation of a dedicated operation every 100 ms, with the time it was answered.
  const acked: number[] = [];
  let marking = true;
  const markers = (async () => {
    while (marking) {
      const res = await fetch(`${mesh.urlFor(CLIENT, 'open')}/marker`).catch(() => undefined);
      if (res?.status === 200) acked.push(Date.now());
      await res?.text();
      await sleep(100);
    }
  })();
  // Long enough for the service to finish learning its call graph, and for a flush after that.
  await sleep(Math.max(DEFAULT_FLUSH_INTERVAL_MS, LEARNING_MS) + DEFAULT_FLUSH_INTERVAL_MS + 2000);
  marking = false;
  await markers;
  const killedAt = Date.now();
  first.child.kill('SIGKILL');
  await first.exited;
  await sleep(1500); // load goes on with the server down
  const second = await serveOnce();
  const restored = await markerCount(second);
  await sleep(3000);
  // The load has kept calling as CLIENT since the restart: its edge is known. The newcomer's is not.
  const newcomer = await getWithHost(`${mesh.urlFor(NEWCOMER, 'open')}/orders/1`, HOST);
  const counts = await load.stop();
  const lateral = await lateralFindings(second);

  const unexpected = unexpectedOutcomes(counts, (target, status) => status === 200 || (target === 'closed' && status === 500));
  assert.deepEqual(unexpected, {}, `only the expected statuses: ${JSON.stringify(Object.fromEntries(counts.outcomes))}`);
  assert.ok((counts.outcomes.get('closed 500') ?? 0) > 0, 'fail-closed answered 500 while the server was down');
  assert.ok((counts.outcomes.get('open 200') ?? 0) > 0 && (counts.outcomes.get('closed 200') ?? 0) > 0);
  const mustSurvive = acked.filter((t) => t < killedAt - DEFAULT_FLUSH_INTERVAL_MS).length;
  assert.ok(mustSurvive > 0, 'markers older than one flush interval exist');
  assert.ok(restored >= mustSurvive && restored <= acked.length, `restored ${restored} marker observations; ${mustSurvive} older than one flush interval, ${acked.length} in all`);
  assert.equal(newcomer, 200, 'monitor mode: the new edge is reported, not blocked');
  assert.deepEqual(lateral.map((f) => f.evidence.workload), ['spiffe://cluster.local/ns/jobs/sa/batch'],
    `only the new edge is a lateral-movement finding after the restart: ${JSON.stringify(lateral)}`);
  assert.equal(lateral[0]!.evidence.service, HOST);
  console.log(`# restart: ${JSON.stringify({ outcomes: Object.fromEntries(counts.outcomes), markers: acked.length, restored, lostAtMost: acked.length - restored, lateralAfterRestart: lateral.length })}`);
  second.child.kill('SIGTERM');
  assert.equal(await second.exited, 0);
});
