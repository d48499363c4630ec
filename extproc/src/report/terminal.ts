// The report as terminal tables: campaigns, findings by OWASP category with evidence, what enforce
// mode blocked, the latency meshward added, and the inventory with shadow / zombie / orphan.
import { renderInventoryTable, renderTable } from '../inventory/report.ts';
import { SEVERITIES, type ReportData } from './report-data.ts';

const MAX_EVIDENCE_CHARS = 160;

function evidenceText(evidence: Record<string, unknown>): string {
  const s = Object.entries(evidence).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
  return s.length > MAX_EVIDENCE_CHARS ? `${s.slice(0, MAX_EVIDENCE_CHARS - 1)}…` : s;
}

function heading(title: string): string {
  return `\n${title}\n${'='.repeat(title.length)}`;
}

const ms = (v: number): string => v.toFixed(2);

export function renderReportText(r: ReportData): string {
  const out: string[] = [];
  const t = r.totals;
  out.push(`meshward report (${r.source}, ${r.generatedAt}${r.durationMs !== undefined ? `, ${(r.durationMs / 1000).toFixed(1)} s` : ''}), mode ${r.mode}`);
  out.push(`${t.requests !== undefined ? `${t.requests} requests, ` : ''}${t.findings} findings, ${t.blocked} blocked` +
    (t.benignRequests !== undefined ? `; benign traffic: ${t.benignRequests} requests, ${t.benignBlocked ?? 0} blocked (false positives)` : ''));

  if (r.services && r.services.length > 0) {
    out.push(heading('Services'));
    out.push(renderTable([['service', 'host', 'SPIFFE identity', 'spec'], ...r.services.map((s) => [s.name, s.host, s.spiffeId, s.spec ?? '-'])]));
  }

  if (r.campaigns && r.campaigns.length > 0) {
    out.push(heading('Attack campaigns'));
    out.push(renderTable([['campaign', 'detector', 'requests', 'findings', 'blocked', 'reported as'],
      ...r.campaigns.map((c) => [c.name, c.detector, String(c.requests), String(c.findings), String(c.blocked), c.categories.join(', ') || '-'])]));
  }

  out.push(heading('Findings by OWASP API Security Top 10 (2023) category'));
  if (r.findings.length === 0) out.push('(none)');
  else {
    out.push(renderTable([['category', 'findings', ...SEVERITIES, 'detectors'],
      ...r.findings.map((g) => [g.category, String(g.count), ...SEVERITIES.map((s) => String(g.bySeverity[s] ?? 0)), g.detectors.join(', ')])]));
    for (const g of r.findings) {
      out.push('', `${g.category}:`);
      for (const e of g.examples) {
        out.push(`  [${e.severity}] ${e.summary}`, `      ${e.caller} -> ${e.operation}`, `      evidence: ${evidenceText(e.evidence)}`);
      }
    }
  }

  out.push(heading('Blocked in enforce mode'));
  if (r.blocked.length === 0) out.push(r.mode === 'enforce' ? '(nothing)' : `(nothing: mode is ${r.mode})`);
  else {
    const byRule = new Map<string, { rule: string; n: number; status: number; reason: string; campaigns: Set<string> }>();
    for (const b of r.blocked) {
      const key = `${b.rule}\u0000${b.status}`;
      const e = byRule.get(key) ?? { rule: b.rule, n: 0, status: b.status, reason: b.reason, campaigns: new Set<string>() };
      e.n++;
      if (b.campaign) e.campaigns.add(b.campaign);
      byRule.set(key, e);
    }
    out.push(renderTable([['rule / detector', 'status', 'reason', 'blocked', 'campaigns'],
      ...[...byRule.values()].map((e) => [e.rule, String(e.status), e.reason, String(e.n), [...e.campaigns].join(', ') || '-'])]));
  }

  if (r.latency) {
    const l = r.latency;
    out.push(heading('Latency meshward added'));
    out.push(renderTable([['path', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms'],
      ['without meshward', ms(l.bareMs.p50), ms(l.bareMs.p90), ms(l.bareMs.p99), ms(l.bareMs.mean)],
      ['with meshward', ms(l.meshwardMs.p50), ms(l.meshwardMs.p90), ms(l.meshwardMs.p99), ms(l.meshwardMs.mean)],
      ['added', ms(l.addedMs.p50), ms(l.addedMs.p90), ms(l.addedMs.p99), ms(l.addedMs.mean)]]));
    out.push(`(${l.samples} samples per path; ${l.method})`);
  }

  out.push(heading('API inventory'));
  out.push(r.inventory.length === 0 ? '(no traffic recorded)' : renderInventoryTable(r.inventory).trimEnd());
  for (const n of r.notes ?? []) out.push(`note: ${n}`);
  return out.join('\n');
}
