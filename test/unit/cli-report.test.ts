// `meshward report`: renders a saved report as tables, HTML (escaped, self-contained) or JSON, and
// refuses files that are not reports with exit 2 and what to pass instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FindingsBuffer } from '../../extproc/src/admin/findings-buffer.ts';
import { groupFindings, percentiles, REPORT_KIND, REPORT_VERSION, type ReportData } from '../../extproc/src/report/report-data.ts';
import { renderReportHtml } from '../../extproc/src/report/html.ts';

const CLI = path.resolve(import.meta.dirname, '../../extproc/src/cli.ts');
const HOSTILE = '<script>alert(1)</script>';

function sampleReport(): ReportData {
  const findings = new FindingsBuffer(10);
  findings.add({ category: 'API1:2023-BOLA', detector: 'bola', severity: 'high', caller: `spiffe://cluster.local/ns/web/sa/${HOSTILE}`, operation: 'GET orders /v2/orders/{id}',
    requestId: 'r1', time: 1, summary: `sequential ID walk ${HOSTILE}`, evidence: { run: 5, threshold: 5 }, enforcement: 'deny' });
  findings.add({ category: 'API7:2023-SSRF', detector: 'content-ssrf', severity: 'critical', caller: 'c', operation: 'POST orders /v2/orders',
    requestId: 'r2', time: 2, summary: 'metadata URL', evidence: {}, enforcement: 'deny' });
  const bare = [1, 1.2, 1.4, 2];
  const meshward = [2, 2.5, 3, 4];
  return {
    kind: REPORT_KIND, version: REPORT_VERSION, source: 'demo', generatedAt: '2026-01-01T00:00:00.000Z', mode: 'enforce', detectors: ['bola', 'content-ssrf'],
    totals: { requests: 10, findings: findings.totals.total, blocked: 1 },
    findings: groupFindings(findings),
    blocked: [{ time: 1, caller: 'c', method: 'GET', authority: 'orders', path: `/v2/orders/1001${HOSTILE}`, status: 403, rule: 'bola', reason: 'API1:2023-BOLA', campaign: 'walk' }],
    inventory: [],
    latency: { method: 'alternating', samples: 4, bareMs: percentiles(bare), meshwardMs: percentiles(meshward), addedMs: percentiles([1, 1.3, 1.6, 2]) },
    timeline: [{ second: 0, requests: 5, findings: 1, blocked: 0 }, { second: 1, requests: 5, findings: 1, blocked: 1 }],
  };
}

test('renders tables, writes self-contained escaped HTML, and --json round-trips', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-report-'));
  const file = path.join(dir, 'report.json');
  const report = sampleReport();
  writeFileSync(file, JSON.stringify(report));
  const html = path.join(dir, 'report.html');
  const r = spawnSync(process.execPath, [CLI, 'report', file, '--html', html], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /API1:2023-BOLA\s+1\s+0\s+1/, 'category row with severity counts');
  assert.match(r.stdout, /API7:2023-SSRF/);
  assert.match(r.stdout, /bola\s+403\s+API1:2023-BOLA\s+1\s+walk/, 'what was blocked, by rule and campaign');
  const page = readFileSync(html, 'utf8');
  assert.ok(!page.includes(HOSTILE), 'traffic-derived text is escaped');
  assert.ok(page.includes('&lt;script&gt;'));
  assert.doesNotMatch(page, /<script|\s(src|href)=/i);
  assert.equal((page.match(/<svg/g) ?? []).length, 3, 'timeline, findings and latency charts');
  const j = spawnSync(process.execPath, [CLI, 'report', file, '--json'], { encoding: 'utf8' });
  assert.equal(j.status, 0);
  assert.deepEqual(JSON.parse(j.stdout), report);
  assert.equal(renderReportHtml(report), page, 'the CLI writes exactly the renderer output');
});

test('not a report, not JSON, or no file: exit 2 with what to do', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-report-bad-'));
  const notReport = path.join(dir, 'x.json');
  writeFileSync(notReport, JSON.stringify({ kind: REPORT_KIND, version: 99 }));
  const v = spawnSync(process.execPath, [CLI, 'report', notReport], { encoding: 'utf8' });
  assert.equal(v.status, 2);
  assert.match(v.stderr, /report version 99; this meshward reads version 1/);
  const notJson = path.join(dir, 'y.json');
  writeFileSync(notJson, 'kind: meshward-report');
  const n = spawnSync(process.execPath, [CLI, 'report', notJson], { encoding: 'utf8' });
  assert.equal(n.status, 2);
  assert.match(n.stderr, /not JSON/);
  const m = spawnSync(process.execPath, [CLI, 'report', path.join(dir, 'missing.json')], { encoding: 'utf8' });
  assert.equal(m.status, 2);
  assert.match(m.stderr, /no such file \(run `meshward demo` first/);
});
