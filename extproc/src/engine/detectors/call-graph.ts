// The call graph policy allows (ApiSecurityPolicy spec.callGraph): which callers may call the
// workload. With `default: deny` only callers an allow rule names pass (LATERAL-Movement for a
// caller no rule names, API5 BFLA for a named caller on a method or path its rules do not cover);
// deny rules (exact SPIFFE IDs or prefixes) apply either way. Findings ask for deny: enforce mode
// answers 403, monitor mode reports. Outbound requests are the workload's own calls: not judged here.
import type { Detector } from '../detector.ts';
import type { Exchange } from '../exchange.ts';
import type { Finding } from '../finding.ts';
import { findingFor, type DetectorContext } from '../detector-context.ts';
import { identityMatches, pathMatches, pathWithoutQuery } from '../rules.ts';
import type { CallGraphSettings, CallRule } from '../policy-settings.ts';

export const CALL_GRAPH_DETECTOR = 'call-graph';

/** The rule's methods and paths cover the request (absent or empty = all). */
function covers(rule: CallRule, method: string, path: string): boolean {
  return (!rule.methods?.length || rule.methods.includes(method)) && (!rule.paths?.length || rule.paths.some((p) => pathMatches(p, path)));
}

export class CallGraphDetector implements Detector {
  readonly name = CALL_GRAPH_DETECTOR;
  readonly #graph: CallGraphSettings;

  constructor(context: DetectorContext) {
    this.#graph = context.settings.lateral.callGraph;
  }

  onRequest(exchange: Exchange): Finding[] | undefined {
    const graph = this.#graph;
    const { request } = exchange;
    if (request.direction === 'outbound' || (graph.default === 'allow' && graph.deny.length === 0)) return undefined;
    const workload = request.caller.workload ?? '';
    const path = pathWithoutQuery(request.path);
    const finding = (category: Finding['category'], summary: string, evidence: Record<string, unknown>): Finding[] =>
      [findingFor(this.name, exchange, { category, severity: 'high', enforcement: 'deny', summary, evidence: { workload: workload || null, method: request.method, path, ...evidence } })];

    const denied = graph.deny.findIndex((r) => workload !== '' && identityMatches(r.from, workload) && covers(r, request.method, path));
    if (denied !== -1) return finding('LATERAL-Movement', 'call denied by the policy call graph', { rule: `callGraph.deny[${denied}]`, from: graph.deny[denied]!.from });
    if (graph.default !== 'deny') return undefined;
    const named = workload === '' ? [] : graph.allow.filter((r) => identityMatches(r.from, workload));
    if (named.length === 0) {
      return finding('LATERAL-Movement', workload === '' ? 'caller without a workload identity; the policy call graph allows listed callers only' : 'caller not in the call graph the policy allows', { default: 'deny' });
    }
    if (!named.some((r) => covers(r, request.method, path))) {
      return finding('API5:2023-BFLA', 'caller allowed by the policy call graph, but not for this method or path', { allowedBy: named.map((r) => r.from) });
    }
    return undefined;
  }
}
