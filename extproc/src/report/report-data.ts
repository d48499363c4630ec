// The report meshward renders (terminal tables, HTML): what the demo saves as JSON and what the
// server's admin API answers on GET /report. One shape, so `meshward report` renders either.
import type { Finding, Severity } from '../engine/finding.ts';
import type { FindingsBuffer } from '../admin/findings-buffer.ts';
import type { ServiceReport } from '../inventory/report.ts';

export const REPORT_KIND = 'meshward-report';
export const REPORT_VERSION = 1;
export const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'info'];

export interface FindingExample {
  detector: string;
  severity: Severity;
  summary: string;
  caller: string;
  operation: string;
  time: number;
  enforcement: Finding['enforcement'];
  evidence: Record<string, unknown>;
}

export interface CategoryGroup {
  category: string;
  count: number;
  bySeverity: Partial<Record<Severity, number>>;
  detectors: string[];
  /** A few recent findings with their evidence (one per detector first). */
  examples: FindingExample[];
}

export interface BlockedRequest {
  time: number;
  caller: string;
  method: string;
  authority: string;
  path: string;
  status: number;
  rule: string;
  reason: string;
  /** The demo campaign that sent it, or "benign" (a false positive). */
  campaign?: string;
}

export interface Percentiles { p50: number; p90: number; p99: number; mean: number }

export interface LatencyReport {
  /** What was measured, in words. */
  method: string;
  samples: number;
  bareMs: Percentiles;
  meshwardMs: Percentiles;
  /** meshward minus bare, per percentile. */
  addedMs: Percentiles;
}

export interface CampaignResult {
  name: string;
  detector: string;
  description: string;
  requests: number;
  blocked: number;
  findings: number;
  /** Categories its requests were reported under. */
  categories: string[];
}

export interface TimelinePoint { second: number; requests: number; findings: number; blocked: number }

export interface ServiceInfo { name: string; host: string; spiffeId: string; spec?: string }

export interface ReportData {
  kind: typeof REPORT_KIND;
  version: typeof REPORT_VERSION;
  source: 'demo' | 'serve';
  generatedAt: string;
  durationMs?: number;
  mode: string;
  detectors: string[];
  totals: { requests?: number; findings: number; blocked: number; benignRequests?: number; benignBlocked?: number };
  findings: CategoryGroup[];
  blocked: BlockedRequest[];
  inventory: ServiceReport[];
  services?: ServiceInfo[];
  campaigns?: CampaignResult[];
  latency?: LatencyReport;
  timeline?: TimelinePoint[];
  notes?: string[];
}

export function exampleOf(f: Finding): FindingExample {
  return { detector: f.detector, severity: f.severity, summary: f.summary, caller: f.caller, operation: f.operation, time: f.time, enforcement: f.enforcement, evidence: f.evidence };
}

/** Findings grouped by category, most first, with up to `examples` recent ones each (distinct
 *  detectors first, then distinct summaries, so one noisy rule does not hide the others). */
export function groupFindings(buffer: FindingsBuffer, examples = 3): CategoryGroup[] {
  const totals = buffer.totals;
  const recent = buffer.recent();
  return Object.entries(totals.byCategory).sort((a, b) => b[1] - a[1]).map(([category, count]) => {
    const mine = recent.filter((f) => f.category === category);
    const picked: Finding[] = [];
    for (const f of mine) if (picked.length < examples && !picked.some((p) => p.detector === f.detector)) picked.push(f);
    for (const f of mine) if (picked.length < examples && !picked.some((p) => p.summary === f.summary)) picked.push(f);
    for (const f of mine) if (picked.length < examples && !picked.includes(f)) picked.push(f);
    return {
      category, count,
      bySeverity: totals.byCategorySeverity[category] ?? {},
      detectors: [...new Set(mine.map((f) => f.detector))].sort(),
      examples: picked.map(exampleOf),
    };
  });
}

export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { p50: 0, p90: 0, p99: 0, mean: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  const round = (v: number): number => Math.round(v * 1000) / 1000;
  return { p50: round(at(0.5)), p90: round(at(0.9)), p99: round(at(0.99)), mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length) };
}

/** Checks that `doc` is a report this version renders; the error says what is wrong and what to do. */
export function parseReport(doc: unknown, source: string): ReportData {
  const fail = (why: string): never => {
    throw new Error(`${source}: not a meshward report (${why}); pass the JSON that \`meshward demo\` saves or the admin API's GET /report returns`);
  };
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) fail('expected a JSON object');
  const r = doc as Record<string, unknown>;
  if (r.kind !== REPORT_KIND) fail(`"kind" must be "${REPORT_KIND}"`);
  if (r.version !== REPORT_VERSION) fail(`report version ${JSON.stringify(r.version)}; this meshward reads version ${REPORT_VERSION}`);
  for (const key of ['findings', 'blocked', 'inventory', 'detectors'] as const) if (!Array.isArray(r[key])) fail(`"${key}" must be an array`);
  if (r.totals === null || typeof r.totals !== 'object') fail('"totals" must be an object');
  return doc as ReportData;
}
