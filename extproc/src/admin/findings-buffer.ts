// The most recent findings (a fixed-size ring: memory stays bounded however many arrive) and
// running totals by category, severity and detector over everything since start. The admin API's
// GET /findings, the demo and the report read it.
import type { Engine } from '../engine/engine.ts';
import type { Finding, Severity } from '../engine/finding.ts';

export const DEFAULT_FINDINGS_CAPACITY = 1000;

export interface FindingTotals {
  total: number;
  byCategory: Record<string, number>;
  bySeverity: Partial<Record<Severity, number>>;
  byDetector: Record<string, number>;
  /** category -> severity -> count. */
  byCategorySeverity: Record<string, Partial<Record<Severity, number>>>;
}

export interface FindingQuery {
  limit?: number;
  category?: string;
  severity?: Severity;
  detector?: string;
  caller?: string;
}

export class FindingsBuffer {
  readonly capacity: number;
  readonly #ring: (Finding | undefined)[];
  #next = 0;
  #totals: FindingTotals = { total: 0, byCategory: {}, bySeverity: {}, byDetector: {}, byCategorySeverity: {} };

  constructor(capacity = DEFAULT_FINDINGS_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`findings buffer capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.#ring = new Array<Finding | undefined>(capacity);
  }

  add(finding: Finding): void {
    this.#ring[this.#next % this.capacity] = finding;
    this.#next++;
    const t = this.#totals;
    t.total++;
    t.byCategory[finding.category] = (t.byCategory[finding.category] ?? 0) + 1;
    t.bySeverity[finding.severity] = (t.bySeverity[finding.severity] ?? 0) + 1;
    t.byDetector[finding.detector] = (t.byDetector[finding.detector] ?? 0) + 1;
    const cs = (t.byCategorySeverity[finding.category] ??= {});
    cs[finding.severity] = (cs[finding.severity] ?? 0) + 1;
  }

  /** Subscribes to an engine's findings; returns the unsubscribe function. */
  attach(engine: Engine): () => void {
    return engine.addObserver({ onFinding: (f) => this.add(f) });
  }

  get totals(): Readonly<FindingTotals> { return this.#totals; }

  /** Held findings, newest first, filtered. */
  recent(query: FindingQuery = {}): Finding[] {
    const out: Finding[] = [];
    const limit = Math.max(0, Math.min(query.limit ?? this.capacity, this.capacity));
    const held = Math.min(this.#next, this.capacity);
    for (let i = 1; i <= held && out.length < limit; i++) {
      const f = this.#ring[(this.#next - i) % this.capacity]!;
      if (query.category !== undefined && f.category !== query.category) continue;
      if (query.severity !== undefined && f.severity !== query.severity) continue;
      if (query.detector !== undefined && f.detector !== query.detector) continue;
      if (query.caller !== undefined && f.caller !== query.caller) continue;
      out.push(f);
    }
    return out;
  }
}
