// What every detector is built with (settings and the event clock its bounded state ages by), and
// the one way detectors turn an observation into a Finding.
import type { Exchange } from './exchange.ts';
import type { Finding } from './finding.ts';
import type { DetectorSettings, LearningSettings } from './policy-settings.ts';
import { historyCovers, type EventClock, type LearningTracker } from './state.ts';
import type { StateRegistry } from './state-snapshot.ts';
import { graphqlOf } from './body.ts';

export interface DetectorContext {
  settings: DetectorSettings;
  clock: EventClock;
  /** Per-service history (first seen, requests), observed once per request by the engine (absent
   *  outside one); each detector judges it against its own learning period. */
  learning?: LearningTracker;
  /** Where long-term maps register to be persisted across restarts (absent outside an engine). */
  state?: StateRegistry;
}

/** Whether the exchange's service has been observed for the learning period (judgements about
 *  "new" behaviour wait for it); the detector's own period (learningFor) or the engine-wide one. The
 *  engine records the service's history on the exchange once per request. */
export function serviceLearned(exchange: Exchange, context: DetectorContext, period: LearningSettings = context.settings.learning): boolean {
  return historyCovers(exchange.serviceHistory ?? context.learning?.history(exchange.request.authority), exchange.request.time, period);
}

export type FindingFields = Pick<Finding, 'category' | 'severity' | 'summary' | 'evidence' | 'enforcement'> & Partial<Pick<Finding, 'blocksResponse' | 'redact'>>;

export function findingFor(detector: string, exchange: Exchange, fields: FindingFields): Finding {
  return {
    ...fields,
    detector,
    caller: exchange.callerKey,
    operation: exchange.operation,
    requestId: exchange.request.requestId,
    time: exchange.request.time,
  };
}

export function isSuccess(status: number | undefined): boolean {
  return status !== undefined && status >= 200 && status < 300;
}

/** Regular expressions from policy, compiled once; an invalid one is a configuration error. */
export function compilePattern(source: string, what: string, flags = 'i'): RegExp {
  try {
    return new RegExp(source, flags);
  } catch (err) {
    throw new Error(`meshward: invalid regular expression for ${what}: ${(err as Error).message}`);
  }
}

/** What an exchange does, by name: the static path segments of its template (REST) or its root
 *  GraphQL calls. Flow and privilege rules match these. */
export function actionNames(exchange: Exchange): readonly string[] {
  if (exchange.actions !== undefined) return exchange.actions;
  const graphql = graphqlOf(exchange.request);
  const names = exchange.template.split('/').filter((s) => s !== '' && !s.startsWith('{'));
  if (graphql !== undefined) names.push(...graphql.calls.keys());
  exchange.actions = names;
  return names;
}
