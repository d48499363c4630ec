// The README's main command: the demo runs three services behind real Envoy sidecars, plays benign
// users and one attack campaign per detector, and reports what meshward found, blocked and added.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runDemo } from '../../extproc/src/cli/demo.ts';
import type { DemoMesh } from '../../extproc/src/local/demo-mesh.ts';
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
};

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };

test('meshward demo: campaigns are detected and blocked, benign users pass, the report is complete', async () => {
  const outDir = mkdtempSync(path.join(os.tmpdir(), 'meshward-demo-test-'));
  let mesh: DemoMesh | undefined;
  const lines: string[] = [];
  const { report, files } = await runDemo({
    learnMs: 6000, attackMs: 1500, latencySamples: 30, thinkMs: 40, outDir, progress: 'none',
    out: (s) => lines.push(s), onStarted: (m) => { mesh = m; },
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
  assert.ok(report.blocked.every((b) => b.status === 403 || b.status === 429));
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
