// API5 BFLA: privileged operations (by name or from policy) and who calls them: once the service's
// baseline is learned, a caller outside the learned set of a privileged operation is a finding.
// Method tampering: a write method on a resource that was only ever read (learned per resource).
import type { LRUCache } from 'lru-cache';
import type { Detector } from '../detector.ts';
import { operationKey, type Exchange } from '../exchange.ts';
import type { Finding } from '../finding.ts';
import { actionNames, compilePattern, findingFor, serviceLearned, type DetectorContext } from '../detector-context.ts';
import { boundedMap } from '../state.ts';
import { graphqlOf } from '../body.ts';
import { learningFor, type BflaSettings, type LearningSettings } from '../policy-settings.ts';

export const BFLA_DETECTOR = 'bfla';

const WRITE_METHODS = new Set(['PUT', 'PATCH', 'DELETE']);
const MAX_CALLERS_PER_OPERATION = 256;
/** Distinct callers that make a write method on a resource established (not tampering). */
const ESTABLISHED_WRITERS = 3;
/** Calls of a privileged operation before its caller set can have converged. */
const MIN_CALLS_FOR_CONVERGENCE = 20;
/** Estimated chance that the next call comes from a new caller, at or below which the set has converged. */
const MAX_NEW_CALLER_CHANCE = 0.1;

interface ResourceMethods { reads: number; writers: Map<string, Set<string>>; learnedWrites: Set<string> }

export class BflaDetector implements Detector {
  readonly name = BFLA_DETECTOR;
  readonly #settings: BflaSettings;
  readonly #privileged: RegExp;
  readonly #privilegedOperations: RegExp[];
  readonly #callers: LRUCache<string, { calls: Map<string, number>; total: number }>;
  readonly #resources: LRUCache<string, ResourceMethods>;
  readonly #context: DetectorContext;
  readonly #learningPeriod: LearningSettings;

  constructor(context: DetectorContext) {
    const { settings, clock } = context;
    this.#settings = settings.bfla;
    // Case-sensitive on purpose: the pattern's camelCase prefixes (adminX, systemY) need it.
    this.#privileged = compilePattern(settings.bfla.privilegedPattern, 'privileged operations', '');
    this.#privilegedOperations = settings.bfla.privilegedOperations.map((p, i) => compilePattern(p, `privileged operation ${i}`));
    this.#callers = boundedMap(clock, { caps: settings.caps, ttlMs: 7 * 24 * 3600_000, sizeOf: (k) => 4096 + k.length * 2, persist: { registry: context.state, name: 'bfla.callers' } });
    this.#resources = boundedMap(clock, { caps: settings.caps, ttlMs: 7 * 24 * 3600_000, sizeOf: (k) => 1024 + k.length * 2, persist: { registry: context.state, name: 'bfla.resources' } });
    this.#context = context;
    this.#learningPeriod = learningFor(settings, 'bfla');
  }

  #finding(exchange: Exchange, summary: string, evidence: Record<string, unknown>): Finding {
    return findingFor(this.name, exchange, { category: 'API5:2023-BFLA', severity: 'high', summary, evidence, enforcement: 'deny' });
  }

  /** Names that make this exchange privileged (empty: not privileged). */
  privilegedBy(exchange: Exchange): string[] {
    const op = operationKey(exchange);
    const byPolicy = this.#privilegedOperations.some((p) => p.test(exchange.operation) || p.test(op));
    const names = actionNames(exchange).filter((n) => this.#privileged.test(n) || this.#privileged.test(n.toLowerCase()));
    return byPolicy ? ['(policy)', ...names] : names;
  }

  onRequest(exchange: Exchange): Finding[] | undefined {
    const now = exchange.request.time;
    const learned = serviceLearned(exchange, this.#context, this.#learningPeriod);
    const findings: Finding[] = [];
    const privileged = this.privilegedBy(exchange);
    if (privileged.length > 0) {
      // Callers are learned per privileged area of a service (e.g. everything named "admin"), not per
      // operation: a role's members use its operations interchangeably, and the area sees enough
      // calls to converge where a single rare operation would not.
      const op = privileged.includes('(policy)') ? `${operationKey(exchange)}\u0000(policy)` : `${exchange.request.authority}\u0000${privileged.join(',')}`;
      let callers = this.#callers.get(op);
      if (callers === undefined) { callers = { calls: new Map(), total: 0 }; this.#callers.set(op, callers); }
      const known = callers.calls.get(exchange.callerKey);
      if (known === undefined) {
        // Good-Turing: the share of calls made by callers seen once estimates how likely the next
        // call comes from a new caller (add-one smoothed, so few calls never look converged). Only
        // once the set has converged is a new caller surprising.
        let singletons = 0;
        for (const n of callers.calls.values()) if (n === 1) singletons++;
        const newCallerChance = (singletons + 1) / (callers.total + 1);
        if (learned && callers.total >= MIN_CALLS_FOR_CONVERGENCE && newCallerChance <= MAX_NEW_CALLER_CHANCE) {
          findings.push(this.#finding(exchange, 'privileged operation called by a caller outside its learned set',
            { privileged, knownCallers: callers.calls.size, learnedCalls: callers.total, newCallerChance }));
          return this.#withTampering(exchange, learned, findings);
        }
        if (callers.calls.size < MAX_CALLERS_PER_OPERATION) callers.calls.set(exchange.callerKey, 1);
      } else callers.calls.set(exchange.callerKey, known + 1);
      callers.total++;
    }
    return this.#withTampering(exchange, learned, findings);
  }

  #withTampering(exchange: Exchange, learned: boolean, findings: Finding[]): Finding[] {
    const tampering = this.#methodTampering(exchange, learned);
    if (tampering !== undefined) findings.push(tampering);
    return findings;
  }

  #methodTampering(exchange: Exchange, learned: boolean): Finding | undefined {
    if (graphqlOf(exchange.request) !== undefined) return undefined;
    const { method } = exchange.request;
    const op = operationKey(exchange);
    const resource = op.slice(op.indexOf(' ') + 1);
    let r = this.#resources.get(resource);
    if (r === undefined) { r = { reads: 0, writers: new Map(), learnedWrites: new Set() }; this.#resources.set(resource, r); }
    if (method === 'GET' || method === 'HEAD') { r.reads++; return undefined; }
    if (!WRITE_METHODS.has(method)) return undefined;
    if (!learned) { r.learnedWrites.add(method); return undefined; }
    let writers = r.writers.get(method);
    if (writers === undefined) { writers = new Set(); r.writers.set(method, writers); }
    const established = r.learnedWrites.has(method) || writers.size >= ESTABLISHED_WRITERS;
    if (writers.size < ESTABLISHED_WRITERS) writers.add(exchange.callerKey);
    if (established || r.reads < this.#settings.minReadsBeforeTampering) return undefined;
    return this.#finding(exchange, `${method} on a resource only ever read (method tampering)`,
      { method, reads: r.reads, threshold: this.#settings.minReadsBeforeTampering });
  }
}
