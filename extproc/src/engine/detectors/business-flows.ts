// API6 sensitive business flows (declared in policy; signup, password reset, checkout and coupons
// recognised by name otherwise): per-source rates, flow-wide surges against the learned per-window
// baseline (catches bots rotating addresses), machine-regular inter-arrival times, and required
// step order (a step reached without the steps the flow requires before it).
import type { LRUCache } from 'lru-cache';
import type { Detector } from '../detector.ts';
import { operationKey, type Exchange } from '../exchange.ts';
import type { Finding } from '../finding.ts';
import { actionNames, compilePattern, findingFor, isSuccess, type DetectorContext } from '../detector-context.ts';
import { boundedMap, WindowBaseline, WindowCount } from '../state.ts';
import { graphqlOf } from '../body.ts';
import type { BusinessFlow, DeclaredFlow, FlowSettings } from '../policy-settings.ts';

export const FLOWS_DETECTOR = 'business-flows';

interface CompiledFlow {
  flow: BusinessFlow;
  match: RegExp;
  methods: Set<string> | undefined;
  requires: RegExp[];
}

interface CompiledDeclaredFlow { flow: DeclaredFlow; steps: RegExp[] }
/** One caller's pass through a declared flow: when its first step was, and calls per step since. */
interface FlowRun { start: number; counts: number[] }

interface FlowState { baseline: WindowBaseline; gaps: number[]; last: number; flaggedUntil: number }

function coefficientOfVariation(values: readonly number[]): number {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  if (mean <= 0) return 0;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return Math.sqrt(variance) / mean;
}

/** What a request does as a flow step: its GraphQL root calls, else the last static path segment
 *  (the action: /users/v1/register, /rest/basket/{id}/checkout, POST /api/Users). */
function flowNames(exchange: Exchange): readonly string[] {
  const graphql = graphqlOf(exchange.request);
  if (graphql !== undefined) return [...graphql.calls.keys()];
  const names = actionNames(exchange);
  const resource = exchange.resource ?? exchange.template;
  // A learned parameter after the last static segment means the action is on one object, not the collection.
  const last = resource.split('/').filter((s) => s !== '').pop();
  return names.length > 0 && last !== undefined && !last.startsWith('{') ? [names[names.length - 1]!] : [];
}

export class BusinessFlowDetector implements Detector {
  readonly name = FLOWS_DETECTOR;
  readonly #settings: FlowSettings;
  readonly #flows: CompiledFlow[];
  readonly #perSource: LRUCache<string, WindowCount>;
  readonly #global: LRUCache<string, FlowState>;
  readonly #steps: LRUCache<string, true>;
  readonly #declared: CompiledDeclaredFlow[];
  readonly #runs: LRUCache<string, FlowRun>;

  constructor(context: DetectorContext) {
    const { settings, clock } = context;
    this.#settings = settings.flows;
    this.#flows = settings.flows.flows.map((flow) => ({
      flow,
      match: compilePattern(flow.match, `flow ${flow.name}`),
      methods: flow.methods ? new Set(flow.methods.map((m) => m.toUpperCase())) : undefined,
      requires: (flow.requires ?? []).map((r, i) => compilePattern(r.match, `flow ${flow.name} step ${i}`)),
    }));
    this.#declared = settings.flows.declared.map((flow) => ({ flow, steps: flow.steps.map((st, i) => compilePattern(st.operation, `declared flow ${flow.name} step ${i}`)) }));
    this.#runs = boundedMap(clock, { caps: settings.caps, ttlMs: Math.max(60_000, ...settings.flows.declared.map((f) => f.withinMs)), sizeOf: (k, v) => 128 + k.length * 2 + 8 * (v as FlowRun).counts.length });
    const longest = Math.max(60_000, ...settings.flows.flows.map((f) => f.windowMs));
    // Per-source windows are minutes long: not persisted.
    this.#perSource = boundedMap(clock, { caps: settings.caps, ttlMs: 2 * longest, sizeOf: (k) => 256 + k.length * 2 });
    this.#global = boundedMap(clock, { caps: { ...settings.caps, maxEntries: Math.min(settings.caps.maxEntries, 10_000) }, ttlMs: 7 * 24 * 3600_000, persist: { registry: context.state, name: 'flows.global' } });
    this.#steps = boundedMap(clock, { caps: settings.caps, ttlMs: 3600_000, persist: { registry: context.state, name: 'flows.steps' } }); // persisted: a flow begun before a restart is not out of order after it
  }

  #finding(exchange: Exchange, flow: string, severity: Finding['severity'], summary: string, evidence: Record<string, unknown>, enforcement: Finding['enforcement'] = 'rate-limit'): Finding {
    return findingFor(this.name, exchange, { category: 'API6:2023-SensitiveBusinessFlows', severity, summary, evidence: { flow, ...evidence }, enforcement });
  }

  /** Declared flows and the step index this request is of each (first matching step). */
  #declaredSteps(exchange: Exchange): { flow: CompiledDeclaredFlow; step: number }[] {
    if (this.#declared.length === 0) return [];
    const op = operationKey(exchange);
    const out: { flow: CompiledDeclaredFlow; step: number }[] = [];
    for (const flow of this.#declared) {
      const step = flow.steps.findIndex((p) => p.test(exchange.operation) || p.test(op));
      if (step !== -1) out.push({ flow, step });
    }
    return out;
  }

  /** Declared flows: required order within the flow's window, and calls per step per run. */
  #judgeDeclared(exchange: Exchange, steps: { flow: CompiledDeclaredFlow; step: number }[], findings: Finding[]): void {
    const now = exchange.request.time;
    for (const { flow: { flow }, step } of steps) {
      const key = `${exchange.callerKey}\u0000${flow.name}`;
      let run = this.#runs.get(key);
      const active = run !== undefined && now - run.start <= flow.withinMs;
      if (step === 0 && !active) run = { start: now, counts: flow.steps.map(() => 0) };
      if (run === undefined || (step > 0 && !active)) run = undefined;
      const missing = flow.steps.slice(0, step).filter((_, j) => run === undefined || run.counts[j] === 0).map((st) => st.operation);
      if (missing.length > 0) {
        findings.push(this.#finding(exchange, flow.name, 'medium', `step ${step + 1} of declared flow "${flow.name}" without its earlier steps within ${flow.withinMs / 1000} s`,
          { step: flow.steps[step]!.operation, missing, withinMs: flow.withinMs }, 'deny'));
      }
      if (run === undefined) continue;
      const count = ++run.counts[step]!;
      this.#runs.set(key, run);
      const max = flow.steps[step]!.maxPerFlow;
      if (max !== undefined && count > max) {
        findings.push(this.#finding(exchange, flow.name, 'medium', `step ${step + 1} of declared flow "${flow.name}" done ${count} times in one run (max ${max})`,
          { step: flow.steps[step]!.operation, count, maxPerFlow: max, withinMs: flow.withinMs }));
      }
    }
  }

  #matching(exchange: Exchange): CompiledFlow[] {
    // Declared flows take precedence: a request that is one of their steps is judged by them only.
    if (this.#declaredSteps(exchange).length > 0) return [];
    const names = flowNames(exchange);
    return this.#flows.filter((f) => (f.methods === undefined || f.methods.has(exchange.request.method)) && names.some((n) => f.match.test(n)));
  }

  onRequest(exchange: Exchange): Finding[] | undefined {
    const now = exchange.request.time;
    const findings: Finding[] = [];
    const names = actionNames(exchange);
    const source = exchange.source ?? exchange.callerKey;
    const declared = this.#declaredSteps(exchange);
    this.#judgeDeclared(exchange, declared, findings);
    for (const f of declared.length > 0 ? [] : this.#matching(exchange)) {
      const { flow } = f;
      // Required order: every earlier step must have been done by this caller.
      const missing = f.requires.filter((_, i) => !this.#steps.has(`${exchange.callerKey}\u0000${flow.name}\u0000${i}`));
      if (missing.length > 0) {
        findings.push(this.#finding(exchange, flow.name, 'medium', `flow step reached without its required earlier steps`,
          { missing: missing.map((m) => m.source) }, 'deny'));
      }
      const key = `${flow.name}\u0000${exchange.request.authority}`;
      let g = this.#global.get(key);
      if (g === undefined) { g = { baseline: new WindowBaseline(flow.windowMs), gaps: [], last: -1, flaggedUntil: 0 }; this.#global.set(key, g); }
      if (g.flaggedUntil > now) {
        findings.push(this.#finding(exchange, flow.name, 'high', 'flow is under automated abuse (surge or machine-regular timing)', { flaggedUntil: g.flaggedUntil }));
      }
      let s = this.#perSource.get(`${key}\u0000${source}`);
      if (s === undefined) { s = new WindowCount(flow.windowMs); this.#perSource.set(`${key}\u0000${source}`, s); }
      const perSource = s.add(now);
      if (perSource > flow.perSourceLimit) {
        findings.push(this.#finding(exchange, flow.name, 'medium', `${perSource} ${flow.name} requests from one source in the window`,
          { source, count: perSource, limit: flow.perSourceLimit, windowMs: flow.windowMs }));
      }
    }
    // Remember which required steps this request performs, for later steps of any flow.
    for (const f of this.#flows) {
      f.requires.forEach((r, i) => {
        if (r.test(exchange.operation) || names.some((n) => r.test(n))) this.#steps.set(`${exchange.callerKey}\u0000${f.flow.name}\u0000${i}`, true);
      });
    }
    return findings;
  }

  onResponse(exchange: Exchange): Finding[] | undefined {
    if (!isSuccess(exchange.response?.status)) return undefined;
    const now = exchange.request.time;
    const findings: Finding[] = [];
    for (const { flow } of this.#matching(exchange)) {
      const g = this.#global.get(`${flow.name}\u0000${exchange.request.authority}`);
      if (g === undefined) continue;
      const mean = g.baseline.mean;
      const sd = g.baseline.stddev;
      const current = g.baseline.add(now);
      const threshold = Math.max(flow.globalFloor, flow.globalFactor * mean + 3 * sd);
      const wasFlagged = g.flaggedUntil > now;
      if (current >= threshold) g.baseline.excludeCurrentWindow();
      if (!wasFlagged && current >= threshold) {
        g.flaggedUntil = now + flow.windowMs;
        findings.push(this.#finding(exchange, flow.name, 'high', `${current} successful ${flow.name} completions in the window, far above baseline ${mean.toFixed(1)}`,
          { count: current, baselineMean: mean, baselineStddev: sd, threshold, windowMs: flow.windowMs }));
      }
      if (g.last >= 0) {
        g.gaps.push(now - g.last);
        if (g.gaps.length > this.#settings.regularitySamples) g.gaps.shift();
      }
      g.last = now;
      if (!wasFlagged && g.flaggedUntil <= now && g.gaps.length >= this.#settings.regularitySamples) {
        const cv = coefficientOfVariation(g.gaps);
        const meanGap = g.gaps.reduce((a, b) => a + b, 0) / g.gaps.length;
        if (cv < this.#settings.regularityCv && meanGap < flow.windowMs / this.#settings.regularitySamples) {
          g.flaggedUntil = now + flow.windowMs;
          findings.push(this.#finding(exchange, flow.name, 'high', `${flow.name} completions arrive machine-regularly (inter-arrival CV ${cv.toFixed(2)})`,
            { coefficientOfVariation: cv, meanGapMs: meanGap, samples: g.gaps.length, threshold: this.#settings.regularityCv }));
        }
      }
    }
    return findings;
  }
}
