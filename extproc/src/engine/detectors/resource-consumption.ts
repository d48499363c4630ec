// API4 unrestricted resource consumption: hard rate limits from policy per caller x operation
// (enforced as 429), learned per caller x operation rate baselines (EWMA mean and variance of
// per-window counts; reported as proposed limits, enforced only when policy allows), abusive
// page-size / limit parameters, and oversized request bodies.
import type { LRUCache } from 'lru-cache';
import type { Detector } from '../detector.ts';
import { operationKey, type Exchange } from '../exchange.ts';
import type { Finding } from '../finding.ts';
import { compilePattern, findingFor, type DetectorContext } from '../detector-context.ts';
import { boundedMap, Ewma, WindowBaseline, WindowCount } from '../state.ts';
import { graphqlLiteralArgs, graphqlOf, headerValue, queryParams, scalarFields } from '../body.ts';
import type { ResourceSettings } from '../policy-settings.ts';
import { identityMatches } from '../rules.ts';
import { TokenBucket } from '../token-bucket.ts';

export const RESOURCE_DETECTOR = 'resource-consumption';

const PAGE_SIZE_NAME = /^(limit|size|page_?size|pagesize|per_?page|perpage|count|first|last|top|take|max|max_?results|maxresults|rows|n)$/i;

interface RateState { baseline: WindowBaseline; reportedWindow: number; windowIndex: number; windowCount: number }
/** Per-caller window counts seen on an operation before its norm is used for callers without history. */
const MIN_OPERATION_SAMPLES = 10;

export class ResourceConsumptionDetector implements Detector {
  readonly name = RESOURCE_DETECTOR;
  readonly #settings: ResourceSettings;
  readonly #limits: { rule: ResourceSettings['limits'][number]; pattern: RegExp }[];
  readonly #hard: LRUCache<string, WindowCount>;
  /** Limits with a burst: one token bucket per rule x caller x operation. */
  readonly #buckets: LRUCache<string, TokenBucket>;
  readonly #rates: LRUCache<string, RateState>;
  /** Per operation: what one caller's window count usually is, for judging callers without history. */
  readonly #operationNorms: LRUCache<string, Ewma>;

  constructor(context: DetectorContext) {
    const { settings, clock } = context;
    this.#settings = settings.resource;
    this.#limits = settings.resource.limits.map((rule) => ({ rule, pattern: compilePattern(rule.operation, `rate limit ${rule.name}`) }));
    const longest = Math.max(settings.resource.baselineWindowMs, ...settings.resource.limits.map((l) => l.windowMs));
    // Hard-limit windows (seconds to minutes) are not persisted: a restart only restarts them.
    this.#hard = boundedMap(clock, { caps: settings.caps, ttlMs: 2 * longest, sizeOf: (k) => 256 + k.length * 2 });
    // A bucket idle for its refill time (burst / limit windows) is full again: forgetting it changes nothing.
    this.#buckets = boundedMap(clock, { caps: settings.caps, ttlMs: 2 * longest * (1 + Math.max(0, ...settings.resource.limits.map((l) => (l.burst ?? 0) / l.limit))), sizeOf: (k) => 96 + k.length * 2 });
    this.#rates = boundedMap(clock, { caps: settings.caps, ttlMs: 24 * 3600_000, sizeOf: (k) => 128 + k.length * 2, persist: { registry: context.state, name: 'resource.rates' } });
    this.#operationNorms = boundedMap(clock, { caps: settings.caps, ttlMs: 7 * 24 * 3600_000, persist: { registry: context.state, name: 'resource.operation-norms' } });
  }

  #finding(exchange: Exchange, severity: Finding['severity'], summary: string, evidence: Record<string, unknown>, enforcement: Finding['enforcement']): Finding {
    return findingFor(this.name, exchange, { category: 'API4:2023-UnrestrictedResourceConsumption', severity, summary, evidence, enforcement });
  }

  onRequest(exchange: Exchange): Finding[] | undefined {
    const findings: Finding[] = [];
    const now = exchange.request.time;
    const op = operationKey(exchange);
    const key = `${exchange.callerKey}\u0000${op}`;

    for (const { rule, pattern } of this.#limits) {
      if (!pattern.test(exchange.operation) && !pattern.test(op)) continue;
      if (rule.caller !== undefined && !identityMatches(rule.caller, exchange.request.caller.workload ?? '')) continue;
      const k = `${rule.name}\u0000${key}`;
      if (rule.burst !== undefined) {
        let bucket = this.#buckets.get(k);
        bucket ??= new TokenBucket(rule.burst, rule.limit / rule.windowMs, now);
        this.#buckets.set(k, bucket); // every use restarts its TTL: only an idle (refilled) bucket expires
        if (!bucket.take(now)) {
          findings.push(this.#finding(exchange, 'medium', `rate limit "${rule.name}" exceeded: token bucket empty (${rule.limit} per ${rule.windowMs} ms, burst ${rule.burst})`,
            { rule: rule.name, limit: rule.limit, windowMs: rule.windowMs, burst: rule.burst, ...(rule.caller ? { caller: rule.caller } : {}) }, 'rate-limit'));
        }
        continue;
      }
      let w = this.#hard.get(k);
      if (w === undefined) { w = new WindowCount(rule.windowMs); this.#hard.set(k, w); }
      const count = w.add(now);
      if (count > rule.limit) {
        findings.push(this.#finding(exchange, 'medium', `rate limit "${rule.name}" exceeded: ${count} requests in the window`,
          { rule: rule.name, count, limit: rule.limit, windowMs: rule.windowMs, ...(rule.caller ? { caller: rule.caller } : {}) }, 'rate-limit'));
      }
    }

    const windowMs = this.#settings.baselineWindowMs;
    const windowIndex = Math.floor(now / windowMs);
    let rate = this.#rates.get(key);
    if (rate === undefined) { rate = { baseline: new WindowBaseline(windowMs), reportedWindow: -1, windowIndex, windowCount: 0 }; this.#rates.set(key, rate); }
    let norm = this.#operationNorms.get(op);
    if (norm === undefined) { norm = new Ewma(0.05); this.#operationNorms.set(op, norm); }
    if (rate.windowIndex !== windowIndex) {
      // The caller's previous window closed: it is one sample of what a caller does on this operation.
      if (rate.reportedWindow !== rate.windowIndex) norm.add(rate.windowCount);
      rate.windowIndex = windowIndex;
      rate.windowCount = 0;
    }
    rate.windowCount++;
    const { mean, stddev, windows } = rate.baseline;
    const current = rate.baseline.add(now);
    const sigmas = this.#settings.baselineSigmas;
    // A caller with its own history is judged against it; a new caller against the operation's norm.
    const own = windows >= this.#settings.baselineMinWindows;
    const byOperation = !own && norm.samples >= MIN_OPERATION_SAMPLES;
    const base = own ? { mean, sd: stddev } : byOperation ? { mean: norm.mean, sd: norm.stddev } : { mean: 0, sd: 0 };
    const proposed = Math.ceil(Math.max(this.#settings.baselineMinCount, base.mean + sigmas * Math.max(base.sd, 1)));
    if (current > proposed) {
      rate.baseline.excludeCurrentWindow();
      const enforce = this.#settings.enforceLearned;
      if (enforce || rate.reportedWindow !== windowIndex) {
        rate.reportedWindow = windowIndex;
        findings.push(this.#finding(exchange, enforce ? 'medium' : 'low',
          `${current} requests in the window, above the ${own ? "caller's learned baseline" : byOperation ? "operation's usual per-caller rate" : 'minimum'} (proposed limit ${proposed})`,
          { count: current, baselineMean: base.mean, baselineStddev: base.sd, baseline: own ? 'caller' : byOperation ? 'operation' : 'floor', proposedLimit: proposed, windowMs, learnedWindows: windows },
          enforce ? 'rate-limit' : 'none'));
      }
    }

    const page = this.#pageSize(exchange);
    if (page !== undefined && page.value > this.#settings.maxPageSize) {
      findings.push(this.#finding(exchange, 'medium', `page size parameter "${page.name}" = ${page.value} above ${this.#settings.maxPageSize}`,
        { parameter: page.name, value: page.value, max: this.#settings.maxPageSize }, 'deny'));
    }

    const declared = Number(headerValue(exchange.request.headers, 'content-length') ?? NaN);
    const size = Math.max(Number.isFinite(declared) ? declared : 0, exchange.request.body?.length ?? 0);
    if (size > this.#settings.maxBodyBytes) {
      findings.push(this.#finding(exchange, 'medium', `request body of ${size} bytes above ${this.#settings.maxBodyBytes}`,
        { bytes: size, max: this.#settings.maxBodyBytes }, 'deny'));
    }
    return findings;
  }

  #pageSize(exchange: Exchange): { name: string; value: number } | undefined {
    let worst: { name: string; value: number } | undefined;
    const consider = (name: string, raw: string): void => {
      if (!PAGE_SIZE_NAME.test(name) || !/^-?\d{1,15}$/.test(raw.trim())) return;
      const value = Number(raw);
      if (worst === undefined || value > worst.value) worst = { name, value };
    };
    for (const [k, v] of queryParams(exchange.request.path)) consider(k, v);
    const graphql = graphqlOf(exchange.request);
    if (graphql !== undefined) {
      for (const [k, v] of graphqlLiteralArgs(graphql.queries)) consider(k, v);
      for (const vars of graphql.variables) for (const f of scalarFields(vars, 64)) consider(f.key, f.value);
    }
    return worst;
  }
}
