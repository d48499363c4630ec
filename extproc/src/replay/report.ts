// Scores a replay against the labels: request-level precision and recall per class on attack rows,
// campaign-level recall (was the campaign flagged, after how many of its requests), the benign
// false-positive rate, and what enforce mode would have blocked. "Flagged" means a finding of
// severity low or above; info findings are observations, not alerts.
import type { Finding } from '../engine/finding.ts';
import type { RowOutcome } from './run.ts';

export interface ClassScore {
  class: string;
  attackRows: number;
  /** Attack rows with any finding. */
  flagged: number;
  /** Attack rows with a finding of the class's own category. */
  flaggedAsClass: number;
  recall: number;
  recallAsClass: number;
  /** Rows (not setup) carrying a finding of this class's category, and how many are labelled this class. */
  categoryFlags: number;
  precision: number;
  /** Attack rows enforce mode would have blocked. */
  blocked: number;
}

export interface CampaignScore {
  campaign: string;
  class: string;
  requests: number;
  flagged: boolean;
  flaggedAsClass: boolean;
  /** 1-based position of the first flagged request among the campaign's rows (undefined: never). */
  firstFlaggedAt?: number;
  flaggedRequests: number;
  detectors: string[];
}

export interface ReplayReport {
  rows: number;
  benignRows: number;
  benignFlagged: number;
  benignFalsePositiveRate: number;
  benignBlocked: number;
  classes: ClassScore[];
  campaigns: CampaignScore[];
  falsePositives: { id: string; detector: string; category: string; summary: string }[];
}

/** The finding category that answers a label class, or undefined when meshward has none for it. */
export function categoryPrefixOf(labelClass: string): string | undefined {
  const m = /^API(\d+)-/.exec(labelClass);
  if (m) return `API${m[1]}:`;
  if (labelClass === 'GRAPHQL') return 'GRAPHQL-';
  if (labelClass === 'LATERAL') return 'LATERAL-';
  return undefined;
}

const SEVERITY_RANK: Record<Finding['severity'], number> = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };
export const isAlert = (f: Finding): boolean => SEVERITY_RANK[f.severity] >= SEVERITY_RANK.low;

const ratio = (a: number, b: number): number => (b === 0 ? NaN : a / b);

export function scoreReplay(outcomes: readonly RowOutcome[]): ReplayReport {
  const classes = new Map<string, ClassScore>();
  const campaigns = new Map<string, CampaignScore & { seen: number }>();
  let benignRows = 0;
  let benignFlagged = 0;
  let benignBlocked = 0;
  const falsePositives: ReplayReport['falsePositives'] = [];
  const alertsOf = (o: RowOutcome): Finding[] => o.findings.filter(isAlert);

  const classScore = (name: string): ClassScore => {
    let s = classes.get(name);
    if (!s) {
      s = { class: name, attackRows: 0, flagged: 0, flaggedAsClass: 0, recall: NaN, recallAsClass: NaN, categoryFlags: 0, precision: NaN, blocked: 0 };
      classes.set(name, s);
    }
    return s;
  };

  for (const o of outcomes) {
    const label = o.record.label;
    const cls = label?.class ?? 'unlabelled';
    const alerts = alertsOf(o);
    const phase = label?.phase ?? (cls === 'benign' ? null : 'attack');
    if (cls === 'benign') {
      benignRows++;
      if (alerts.length > 0) {
        benignFlagged++;
        for (const f of alerts) falsePositives.push({ id: o.record.id, detector: f.detector, category: f.category, summary: f.summary });
      }
      if (o.blockable) benignBlocked++;
    } else if (phase === 'attack') {
      const s = classScore(cls);
      const prefix = categoryPrefixOf(cls);
      s.attackRows++;
      if (alerts.length > 0) s.flagged++;
      if (prefix !== undefined && alerts.some((f) => f.category.startsWith(prefix))) s.flaggedAsClass++;
      if (o.blockable) s.blocked++;
    }
    const campaign = label?.campaign;
    if (campaign) {
      let c = campaigns.get(campaign);
      if (!c) {
        c = { campaign, class: cls, requests: 0, flagged: false, flaggedAsClass: false, flaggedRequests: 0, detectors: [], seen: 0 };
        campaigns.set(campaign, c);
      }
      c.requests++;
      c.seen++;
      if (alerts.length > 0) {
        c.flaggedRequests++;
        if (!c.flagged) c.firstFlaggedAt = c.seen;
        c.flagged = true;
        const prefix = categoryPrefixOf(cls);
        if (prefix !== undefined && alerts.some((f) => f.category.startsWith(prefix))) c.flaggedAsClass = true;
        for (const f of alerts) if (!c.detectors.includes(f.detector)) c.detectors.push(f.detector);
      }
    }
  }

  // Second pass for precision numerators (classes are known only after the first pass).
  for (const c of classes.values()) {
    const prefix = categoryPrefixOf(c.class);
    let flaggedRows = 0;
    let correct = 0;
    if (prefix !== undefined) {
      for (const o of outcomes) {
        const phase = o.record.label?.phase;
        if (phase === 'setup') continue;
        if (!alertsOf(o).some((f) => f.category.startsWith(prefix))) continue;
        flaggedRows++;
        if (o.record.label?.class === c.class) correct++;
      }
    }
    c.categoryFlags = flaggedRows;
    c.precision = ratio(correct, flaggedRows);
    c.recall = ratio(c.flagged, c.attackRows);
    c.recallAsClass = ratio(c.flaggedAsClass, c.attackRows);
  }

  return {
    rows: outcomes.length,
    benignRows,
    benignFlagged,
    benignFalsePositiveRate: ratio(benignFlagged, benignRows),
    benignBlocked,
    classes: [...classes.values()].sort((a, b) => a.class.localeCompare(b.class)),
    campaigns: [...campaigns.values()].map(({ seen: _seen, ...c }) => c).sort((a, b) => a.campaign.localeCompare(b.campaign)),
    falsePositives,
  };
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const pct = (x: number): string => (Number.isNaN(x) ? '-' : `${(100 * x).toFixed(1)}%`);

export function formatReport(report: ReplayReport): string {
  const classRows = report.classes.map((c) => [c.class, String(c.attackRows), pct(c.recall), pct(c.recallAsClass), pct(c.precision), String(c.categoryFlags), String(c.blocked)]);
  const campaignRows = report.campaigns.map((c) => [c.campaign, c.class, String(c.requests), c.flagged ? 'yes' : 'no', c.flaggedAsClass ? 'yes' : 'no', c.firstFlaggedAt === undefined ? '-' : String(c.firstFlaggedAt), String(c.flaggedRequests), c.detectors.join(',')]);
  return [
    table(['class', 'attack rows', 'recall (any)', 'recall (own category)', 'precision', 'rows flagged as class', 'enforce blocks'], classRows),
    '',
    table(['campaign', 'class', 'requests', 'flagged', 'as class', 'first flag at', 'flagged requests', 'detectors'], campaignRows),
    '',
    `benign: ${report.benignRows} rows, ${report.benignFlagged} flagged (${pct(report.benignFalsePositiveRate)} false positives), ${report.benignBlocked} enforce would block`,
    ...report.falsePositives.slice(0, 20).map((f) => `  false positive ${f.id}: ${f.detector} ${f.category}: ${f.summary}`),
  ].join('\n');
}
