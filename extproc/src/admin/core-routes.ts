// The server's own admin endpoints (bearer token, see server.ts; /healthz and /readyz are public):
//   GET /findings   recent findings, newest first (?limit=&category=&severity=&detector=&caller=), and totals
//   GET /policy     the effective policy the engine runs, where it came from, and rejected policies
//   GET /report     findings, blocks and inventory as a meshward report (`meshward report` renders it)
//   GET /posture    standing misconfiguration per operation (CORS, banners, TRACE, security headers, plaintext)
import type { AdminRequest, AdminResponse, AdminRouter } from './server.ts';
import type { FindingsBuffer, FindingQuery } from './findings-buffer.ts';
import type { Engine } from '../engine/engine.ts';
import type { Severity } from '../engine/finding.ts';
import type { RequestEvent } from '../engine/event.ts';
import type { Inventory } from '../inventory/inventory.ts';
import { inventoryReport } from '../inventory/report.ts';
import { groupFindings, REPORT_KIND, REPORT_VERSION, SEVERITIES, type BlockedRequest, type ReportData } from '../report/report-data.ts';

/** The most recent requests the engine denied (a bounded list, for GET /report and the demo). */
export class BlockedLog {
  readonly #items: BlockedRequest[] = [];
  readonly #capacity: number;
  readonly #label: ((request: RequestEvent) => string | undefined) | undefined;
  total = 0;

  /** `label` names who sent a request (the demo's campaigns). */
  constructor(capacity = 500, label?: (request: RequestEvent) => string | undefined) {
    this.#capacity = capacity;
    this.#label = label;
  }

  attach(engine: Engine): () => void {
    return engine.addObserver({
      onDecision: ({ request, decision }) => {
        if (decision.action !== 'deny') return;
        this.total++;
        const campaign = this.#label?.(request);
        this.#items.push({ time: request.time, caller: request.caller.workload ?? request.caller.sourceAddress ?? '-', method: request.method, authority: request.authority,
          path: request.path.split('?')[0]!.slice(0, 512), status: decision.status, rule: decision.rule, reason: decision.reason, ...(campaign !== undefined ? { campaign } : {}) });
        if (this.#items.length > this.#capacity) this.#items.shift();
      },
    });
  }

  get items(): readonly BlockedRequest[] { return this.#items; }
}

export interface CoreRouteOptions {
  engine: Engine;
  findings: FindingsBuffer;
  blocked: BlockedLog;
  /** The effective policy as JSON (absent: the server runs without a policy source). */
  policy?: () => unknown;
  /** The mode the engine runs in, for the report. */
  mode: () => string;
  inventory?: Inventory;
  now?: () => number;
}

function findingQuery(req: AdminRequest): FindingQuery | AdminResponse {
  const q: FindingQuery = {};
  const limit = req.query.get('limit');
  if (limit !== null) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1) return { status: 400, body: { error: 'bad_request', message: '"limit" must be a positive integer' } };
    q.limit = n;
  }
  const severity = req.query.get('severity');
  if (severity !== null) {
    if (!SEVERITIES.includes(severity as Severity)) return { status: 400, body: { error: 'bad_request', message: `"severity" must be one of ${SEVERITIES.join(', ')}` } };
    q.severity = severity as Severity;
  }
  for (const key of ['category', 'detector', 'caller'] as const) {
    const v = req.query.get(key);
    if (v !== null) q[key] = v;
  }
  return q;
}

export function registerCoreRoutes(router: AdminRouter, o: CoreRouteOptions): void {
  router.register({
    method: 'GET', path: '/findings',
    handle: (req) => {
      const q = findingQuery(req);
      if ('status' in q) return q;
      return { status: 200, body: { totals: o.findings.totals, capacity: o.findings.capacity, findings: o.findings.recent({ limit: 100, ...q }) } };
    },
  });
  router.register({
    method: 'GET', path: '/policy',
    handle: () => ({ status: 200, body: { mode: o.mode(), detectors: o.engine.detectorNames, policy: o.policy?.() ?? null } }),
  });
  router.register({
    method: 'GET', path: '/posture',
    handle: () => ({ status: 200, body: { posture: o.engine.posture() } }),
  });
  router.register({
    method: 'GET', path: '/report',
    handle: () => {
      const report: ReportData = {
        kind: REPORT_KIND, version: REPORT_VERSION, source: 'serve', generatedAt: new Date().toISOString(), mode: o.mode(), detectors: o.engine.detectorNames,
        totals: { findings: o.findings.totals.total, blocked: o.blocked.total },
        findings: groupFindings(o.findings),
        blocked: [...o.blocked.items],
        inventory: o.inventory ? inventoryReport(o.inventory, { now: (o.now ?? Date.now)() }) : [],
      };
      return { status: 200, body: report };
    },
  });
}
