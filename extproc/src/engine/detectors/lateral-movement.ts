// East-west zero trust: the learned call graph (calling workload -> callee service). After the
// service's learning period, a new edge is a lateral-movement finding. Non-human and AI-agent
// identities given least-privilege scopes in policy are held to them from the first request.
import type { LRUCache } from 'lru-cache';
import type { Detector } from '../detector.ts';
import { operationKey, workloadKeyOf, type Exchange } from '../exchange.ts';
import type { Finding } from '../finding.ts';
import { compilePattern, findingFor, serviceLearned, type DetectorContext } from '../detector-context.ts';
import { boundedMap } from '../state.ts';
import { learningFor, type LearningSettings } from '../policy-settings.ts';

export const LATERAL_DETECTOR = 'lateral-movement';

interface Scope { identity: string; prefix: boolean; allow: RegExp[] }

export class LateralMovementDetector implements Detector {
  readonly name = LATERAL_DETECTOR;
  readonly #edges: LRUCache<string, { first: number; requests: number }>;
  readonly #context: DetectorContext;
  readonly #learningPeriod: LearningSettings;
  readonly #scopes: Scope[];

  constructor(context: DetectorContext) {
    const { settings, clock } = context;
    this.#edges = boundedMap(clock, { caps: settings.caps, ttlMs: 30 * 24 * 3600_000, persist: { registry: context.state, name: 'lateral.edges' } });
    this.#context = context;
    this.#learningPeriod = learningFor(settings, 'lateral');
    this.#scopes = settings.lateral.scopes.map((s, i) => ({
      identity: s.identity.endsWith('*') ? s.identity.slice(0, -1) : s.identity,
      prefix: s.identity.endsWith('*'),
      allow: s.allow.map((a, j) => compilePattern(a, `scope ${i} allow ${j}`)),
    }));
  }

  onRequest(exchange: Exchange): Finding[] | undefined {
    const now = exchange.request.time;
    const service = exchange.request.authority;
    const learned = serviceLearned(exchange, this.#context, this.#learningPeriod);
    const workload = workloadKeyOf(exchange.request);
    const findings: Finding[] = [];

    const scope = this.#scopes.find((s) => (s.prefix ? workload.startsWith(s.identity) : workload === s.identity));
    if (scope !== undefined) {
      const op = operationKey(exchange);
      if (!scope.allow.some((a) => a.test(exchange.operation) || a.test(op))) {
        findings.push(findingFor(this.name, exchange, {
          category: 'LATERAL-Movement', severity: 'high', enforcement: 'deny',
          summary: 'identity called an operation outside its least-privilege scope',
          evidence: { workload, scope: scope.identity + (scope.prefix ? '*' : ''), operation: exchange.operation },
        }));
      }
    }

    const edge = `${workload}\u0000${service}`;
    const known = this.#edges.get(edge);
    if (known === undefined) {
      this.#edges.set(edge, { first: now, requests: 1 });
      if (learned) {
        findings.push(findingFor(this.name, exchange, {
          category: 'LATERAL-Movement', severity: 'medium', enforcement: 'none',
          summary: 'new call-graph edge: this workload never called this service during or since learning',
          evidence: { workload, service },
        }));
      }
    } else known.requests++;
    return findings;
  }
}
