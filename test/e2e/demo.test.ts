// The README's main command: the demo runs three services behind real Envoy sidecars, plays benign
// users and one attack campaign per detector, and reports what meshward found, blocked and added.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runDemo } from '../../extproc/src/cli/demo.ts';
import type { DemoMesh } from '../../extproc/src/local/demo-mesh.ts';
import type { DemoApps } from '../../extproc/src/demo/apps.ts';
import { parseReport } from '../../extproc/src/report/report-data.ts';
import { renderReportText } from '../../extproc/src/report/terminal.ts';

const EXPECTED_CATEGORY: Record<string, string> = {
  bola: 'API1:2023-BOLA',
  'broken-auth': 'API2:2023-BrokenAuthentication',
  'resource-consumption': 'API4:2023-UnrestrictedResourceConsumption',
  bfla: 'API5:2023-BFLA',
  'business-flows': 'API6:2023-SensitiveBusinessFlows',
  'lateral-movement': 'LATERAL-Movement',
  'content-ssrf': 'API7:2023-SSRF',
  'content-contract': 'API3:2023-BrokenObjectPropertyLevelAuthorization',
  'content-graphql': 'GRAPHQL-Abuse',
  'content-grpc': 'GRPC-Abuse',
  'content-websocket': 'WEBSOCKET-Abuse',
  'content-unsafe-consumption': 'API10:2023-UnsafeConsumption',
};

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };

test('meshward demo: campaigns are detected and blocked, benign users pass, the report is complete', async () => {
  const outDir = mkdtempSync(path.join(os.tmpdir(), 'meshward-demo-test-'));
  let mesh: DemoMesh | undefined;
  let apps: DemoApps | undefined;
  const lines: string[] = [];
  const { report, files } = await runDemo({
    learnMs: 6000, attackMs: 1500, latencySamples: 30, thinkMs: 40, outDir, progress: 'none',
    out: (s) => lines.push(s), onStarted: (m) => { mesh = m; }, onApps: (a) => { apps = a; },
  });

  assert.ok(mesh);
  assert.equal(new Set(report.services!.map((s) => s.spiffeId)).size, 3, 'three services with distinct SPIFFE identities');
  for (const p of mesh.processes) assert.equal(alive(p.pid), false, `${p.name} stopped after the demo`);

  // One campaign per detector the engine has, each reported under its own category.
  for (const c of report.campaigns!) {
    const category = EXPECTED_CATEGORY[c.detector];
    if (!category) continue;
    assert.ok(c.requests > 0, `${c.name} sent traffic`);
    assert.ok(c.categories.includes(category), `${c.name} (${c.detector}) reported as ${category}; got ${c.categories.join(', ') || 'nothing'}`);
  }
  assert.ok(report.campaigns!.some((c) => c.detector === 'bola' && c.blocked > 0), 'enforce mode blocked the ID walk');
  for (const detector of Object.keys(EXPECTED_CATEGORY)) {
    assert.ok(report.campaigns!.some((c) => c.detector === detector), `a campaign exercises ${detector}`);
  }

  // WebSocket: the upgrades without a credential are denied (403) on the notifications pod's outbound
  // sidecar and never reach orders; the flood is rate-limited (429) once over the per-minute limit;
  // the customers' own live sockets open.
  assert.ok(apps);
  const wsBlocked = report.blocked.filter((b) => b.campaign === 'live-socket-flood');
  // Denied by content-websocket or, once it has learned that the socket is always authenticated, broken-auth.
  assert.ok(wsBlocked.filter((b) => b.status === 403).length >= 3, 'the 3 upgrades without a credential denied');
  assert.ok(wsBlocked.some((b) => b.status === 429 && b.rule === 'content-websocket'), 'the upgrade flood rate-limited');
  assert.equal(apps.liveUpgrades.unauthenticated, 0, 'no upgrade without a token reached the orders app');
  assert.ok(apps.liveUpgrades.accepted > 0, 'benign live sockets opened at the orders app');

  // Unsafe consumption: the poisoned GBP quotes are stopped on payments' outbound sidecar (API10,
  // enforce mode): the payments app got 502 instead, never the payload; the app side shows exactly
  // what it consumed.
  const supplierCampaign = report.campaigns!.find((c) => c.name === 'compromised-supplier');
  assert.ok(supplierCampaign && supplierCampaign.findings > 0, 'the poisoned quotes were reported');
  const poisoned = apps.consumedQuotes.filter((q) => q.currency === 'GBP');
  assert.ok(poisoned.length > 0 && poisoned.every((q) => q.status === 502 && !q.body.includes('<script')), `the payments app never received a poisoned quote: ${JSON.stringify(poisoned).slice(0, 300)}`);
  const clean = apps.consumedQuotes.filter((q) => q.currency !== 'GBP');
  assert.ok(clean.length > 0 && clean.every((q) => q.status === 200 && !q.body.includes('<script')), 'benign charges consumed clean quotes');
  const api10 = report.findings.find((g) => g.category === 'API10:2023-UnsafeConsumption');
  assert.equal(api10?.count, 2 * poisoned.length, 'payload and schema violation for each poisoned quote, nothing for clean ones');
  assert.ok(api10.examples.every((e) => e.caller === mesh!.spiffeIdOf('payments/payments') && e.operation === 'GET api.fx-rates.example /v1/rates'),
    'reported on payments\' outbound call to the supplier');
  assert.ok(report.blocked.every((b) => b.status === 403 || b.status === 429 || (b.status === 502 && b.rule === 'content-unsafe-consumption')), JSON.stringify(report.blocked.filter((b) => ![403, 429].includes(b.status)).slice(0, 3)));
  const benign = report.totals.benignRequests!;
  assert.ok(benign > 200, `benign traffic ran (${benign})`);
  assert.ok(report.totals.benignBlocked! <= benign * 0.02, `few benign requests blocked: ${report.totals.benignBlocked}/${benign}`);

  const orders = report.inventory.find((s) => s.service === 'orders.shop.svc.cluster.local');
  assert.ok(orders);
  const state = (method: string, p: string): string | undefined => orders.operations.find((o) => o.method === method && o.path === p)?.state;
  assert.equal(state('GET', '/v2/orders/{id}/export'), 'shadow', 'the endpoint the spec omits');
  assert.equal(state('GET', '/v1/orders/{orderId}'), 'zombie', 'the deprecated v1 endpoint still called');
  assert.equal(state('DELETE', '/v2/orders/{orderId}'), 'orphan', 'declared, never called');
  assert.equal(state('GET', '/v2/orders/{orderId}'), 'active');

  assert.equal(report.latency!.samples, 30);
  assert.ok(report.latency!.meshwardMs.p50 > 0 && report.latency!.bareMs.p50 > 0);

  // The saved JSON renders again; the HTML is self-contained.
  const saved = parseReport(JSON.parse(readFileSync(files.json!, 'utf8')), files.json!);
  assert.deepEqual(saved.totals, report.totals);
  assert.match(renderReportText(saved), /Findings by OWASP API Security Top 10/);
  const html = readFileSync(files.html!, 'utf8');
  assert.match(html, /<svg/);
  assert.doesNotMatch(html, /<script|\s(src|href)=/i, 'no scripts, no external assets');
  assert.ok(lines.join('\n').includes('Blocked in enforce mode'), 'prints the terminal report');
  assert.ok(existsSync(files.json!));
});
