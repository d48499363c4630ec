// The report as one self-contained HTML file: inline CSS and SVG charts, no scripts, no external
// assets (it opens offline and can be attached to a ticket). Every value from traffic is escaped.
import { SEVERITIES, type ReportData, type TimelinePoint } from './report-data.ts';
import type { InventoryState } from '../inventory/classify.ts';

const SEVERITY_COLOURS: Record<string, string> = { critical: '#7f1d1d', high: '#dc2626', medium: '#f59e0b', low: '#3b82f6', info: '#9ca3af' };
const STATE_COLOURS: Record<InventoryState, string> = { active: '#16a34a', shadow: '#9333ea', zombie: '#ea580c', orphan: '#6b7280' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const e = (v: unknown): string => escapeHtml(String(v));

function table(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${e(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

/** Horizontal stacked bars: one row per label, segments coloured by key. */
function stackedBars(rows: { label: string; parts: { key: string; value: number }[] }[], colours: Record<string, string>, title: string): string {
  const max = Math.max(1, ...rows.map((r) => r.parts.reduce((a, p) => a + p.value, 0)));
  const labelW = Math.max(80, 8 + 7 * Math.max(...rows.map((r) => r.label.length)));
  const barW = 420;
  const rowH = 24;
  const height = rows.length * rowH + 30;
  const bars = rows.map((r, i) => {
    let x = labelW;
    const y = i * rowH + 4;
    const segs = r.parts.filter((p) => p.value > 0).map((p) => {
      const w = (p.value / max) * barW;
      const rect = `<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${colours[p.key] ?? '#888'}"><title>${e(p.key)}: ${p.value}</title></rect>`;
      x += w;
      return rect;
    }).join('');
    const total = r.parts.reduce((a, p) => a + p.value, 0);
    const shown = Number.isInteger(total) ? String(total) : total.toFixed(2);
    return `<text x="${labelW - 8}" y="${y + rowH / 2}" text-anchor="end" class="lbl">${e(r.label)}</text>${segs}<text x="${x + 6}" y="${y + rowH / 2}" class="lbl">${shown}</text>`;
  }).join('');
  let lx = labelW;
  const legend = Object.entries(colours).map(([k, c]) => {
    const item = `<rect x="${lx}" y="${rows.length * rowH + 12}" width="10" height="10" fill="${c}"/><text x="${lx + 14}" y="${rows.length * rowH + 17}" class="lbl">${e(k)}</text>`;
    lx += 30 + 7 * k.length;
    return item;
  }).join('');
  return `<svg role="img" aria-label="${e(title)}" width="${labelW + barW + 60}" height="${height}" viewBox="0 0 ${labelW + barW + 60} ${height}">${bars}${legend}</svg>`;
}

function timelineChart(points: readonly TimelinePoint[]): string {
  if (points.length < 2) return '';
  const w = 760;
  const h = 200;
  const pad = 36;
  const maxX = points[points.length - 1]!.second || 1;
  const maxY = Math.max(1, ...points.map((p) => p.requests));
  const x = (s: number): number => pad + (s / maxX) * (w - 2 * pad);
  const y = (v: number): number => h - pad + 8 - (v / maxY) * (h - 2 * pad);
  const line = (key: 'requests' | 'findings' | 'blocked', colour: string): string =>
    `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points.map((p) => `${x(p.second).toFixed(1)},${y(p[key]).toFixed(1)}`).join(' ')}"><title>${key} per second</title></polyline>`;
  const axes = `<line x1="${pad}" y1="${h - pad + 8}" x2="${w - pad}" y2="${h - pad + 8}" stroke="#999"/><line x1="${pad}" y1="12" x2="${pad}" y2="${h - pad + 8}" stroke="#999"/>` +
    `<text x="${pad - 4}" y="16" text-anchor="end" class="lbl">${maxY}</text><text x="${w - pad}" y="${h - 8}" text-anchor="end" class="lbl">${maxX} s</text>`;
  const legend = [['requests', '#2563eb'], ['findings', '#f59e0b'], ['blocked', '#dc2626']].map(([k, c], i) => `<rect x="${pad + 10 + i * 100}" y="4" width="10" height="10" fill="${c}"/><text x="${pad + 24 + i * 100}" y="13" class="lbl">${k}/s</text>`).join('');
  return `<svg role="img" aria-label="traffic over time" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">${axes}${line('requests', '#2563eb')}${line('findings', '#f59e0b')}${line('blocked', '#dc2626')}${legend}</svg>`;
}

function evidenceHtml(evidence: Record<string, unknown>): string {
  return `<code>${e(JSON.stringify(evidence).slice(0, 400))}</code>`;
}

const CSS = `body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#111;padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.6rem 0;width:100%}th,td{border:1px solid #e5e7eb;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f4f6}code{font-size:12px;word-break:break-all}.lbl{font-size:12px;fill:#333;dominant-baseline:middle}
.kpi{display:inline-block;margin:0 1.2rem .6rem 0;padding:.6rem 1rem;border:1px solid #e5e7eb;border-radius:6px}.kpi b{display:block;font-size:1.5rem}
.sev{display:inline-block;padding:0 .4rem;border-radius:3px;color:#fff;font-size:12px}.state{font-weight:600}`;

export function renderReportHtml(r: ReportData): string {
  const t = r.totals;
  const kpis = [
    ...(t.requests !== undefined ? [['requests', t.requests]] : []), ['findings', t.findings], ['blocked', t.blocked],
    ...(t.benignRequests !== undefined ? [['benign blocked (false positives)', t.benignBlocked ?? 0]] : []),
    ...(r.latency ? [['added latency p50', `${r.latency.addedMs.p50.toFixed(2)} ms`]] : []),
  ].map(([k, v]) => `<div class="kpi"><b>${e(v)}</b>${e(k)}</div>`).join('');
  const sections: string[] = [];
  if (r.services?.length) {
    sections.push(`<h2>Services</h2>${table(['service', 'host', 'SPIFFE identity', 'spec'], r.services.map((s) => [e(s.name), e(s.host), `<code>${e(s.spiffeId)}</code>`, e(s.spec ?? '-')]))}`);
  }
  if (r.timeline && r.timeline.length > 1) sections.push(`<h2>Traffic</h2>${timelineChart(r.timeline)}`);
  if (r.campaigns?.length) {
    sections.push(`<h2>Attack campaigns</h2>${table(['campaign', 'what it does', 'detector', 'requests', 'findings', 'blocked', 'reported as'],
      r.campaigns.map((c) => [e(c.name), e(c.description), e(c.detector), e(c.requests), e(c.findings), e(c.blocked), e(c.categories.join(', ') || '-')]))}`);
  }
  sections.push('<h2>Findings by OWASP API Security Top 10 (2023) category</h2>');
  if (r.findings.length === 0) sections.push('<p>No findings.</p>');
  else {
    sections.push(stackedBars(r.findings.map((g) => ({ label: g.category, parts: SEVERITIES.map((s) => ({ key: s, value: g.bySeverity[s] ?? 0 })) })), SEVERITY_COLOURS, 'findings by category and severity'));
    for (const g of r.findings) {
      sections.push(`<h3>${e(g.category)} <small>(${g.count}; ${e(g.detectors.join(', '))})</small></h3>`);
      sections.push(table(['severity', 'summary', 'caller → operation', 'evidence'], g.examples.map((x) => [
        `<span class="sev" style="background:${SEVERITY_COLOURS[x.severity] ?? '#888'}">${e(x.severity)}</span>`, e(x.summary),
        `<code>${e(x.caller)}</code> → <code>${e(x.operation)}</code>`, evidenceHtml(x.evidence)])));
    }
  }
  sections.push('<h2>Blocked in enforce mode</h2>');
  if (r.blocked.length === 0) sections.push(`<p>Nothing blocked${r.mode === 'enforce' ? '' : ` (mode ${e(r.mode)})`}.</p>`);
  else {
    sections.push(table(['time', 'campaign', 'caller', 'request', 'status', 'rule', 'reason'], r.blocked.slice(0, 100).map((b) => [
      e(new Date(b.time).toISOString().slice(11, 23)), e(b.campaign ?? '-'), `<code>${e(b.caller)}</code>`, `<code>${e(`${b.method} ${b.authority}${b.path}`)}</code>`, e(b.status), e(b.rule), e(b.reason)])));
    if (r.blocked.length > 100) sections.push(`<p>… and ${r.blocked.length - 100} more.</p>`);
  }
  if (r.latency) {
    const l = r.latency;
    const rows = (['p50', 'p90', 'p99', 'mean'] as const).map((k) => ({ label: k, parts: [{ key: 'without meshward', value: l.bareMs[k] }, { key: 'added by meshward', value: Math.max(0, l.addedMs[k]) }] }));
    sections.push(`<h2>Latency meshward added</h2><p>${e(l.method)} (${l.samples} samples per path; milliseconds).</p>`);
    sections.push(stackedBars(rows, { 'without meshward': '#93c5fd', 'added by meshward': '#dc2626' }, 'latency'));
    sections.push(table(['path', 'p50', 'p90', 'p99', 'mean'], [['without meshward', l.bareMs], ['with meshward', l.meshwardMs], ['added', l.addedMs]].map(([name, p]) => {
      const q = p as typeof l.bareMs;
      return [e(name), e(q.p50.toFixed(2)), e(q.p90.toFixed(2)), e(q.p99.toFixed(2)), e(q.mean.toFixed(2))];
    })));
  }
  sections.push('<h2>API inventory</h2>');
  if (r.inventory.length > 0) {
    sections.push(stackedBars(r.inventory.map((s) => ({ label: s.service, parts: (['active', 'shadow', 'zombie', 'orphan'] as const).map((k) => ({ key: k, value: s.counts[k] })) })), STATE_COLOURS, 'inventory states per service'));
  }
  for (const s of r.inventory) {
    sections.push(`<h3>${e(s.service)}${s.spec ? ` <small>(spec ${e(s.spec)})</small>` : ' <small>(no spec)</small>'}</h3>`);
    sections.push(table(['state', 'method', 'path', 'requests', 'callers', 'why'], s.operations.map((o) => [
      `<span class="state" style="color:${STATE_COLOURS[o.state]}">${e(o.state)}</span>`, e(o.method), `<code>${e(o.graphqlOperation ? `${o.path} ${o.graphqlOperation}` : o.path)}</code>`,
      e(o.count), e(o.callers.slice(0, 3).join(', ') || '-'), e(o.reason)])));
  }
  for (const n of r.notes ?? []) sections.push(`<p><i>Note: ${e(n)}</i></p>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>meshward report</title><style>${CSS}</style></head>
<body><h1>meshward report</h1>
<p>${e(r.source)} · ${e(r.generatedAt)}${r.durationMs !== undefined ? ` · ${(r.durationMs / 1000).toFixed(1)} s` : ''} · mode <b>${e(r.mode)}</b> · detectors: ${e(r.detectors.join(', '))}</p>
${kpis}
${sections.join('\n')}
</body></html>
`;
}
