// What every detector is built with (settings and the event clock its bounded state ages by), and
// the one way detectors turn an observation into a Finding.
import type { Exchange } from './exchange.ts';
import type { Finding } from './finding.ts';
import type { DetectorSettings } from './policy-settings.ts';
import type { EventClock, LearningTracker } from './state.ts';
import type { StateRegistry } from './state-snapshot.ts';
import { graphqlOf } from './body.ts';

export interface DetectorContext {
  settings: DetectorSettings;
  clock: EventClock;
  /** Per-service learning period, observed once per request by the engine (absent outside one). */
  learning?: LearningTracker;
  /** Where long-term maps register to be persisted across restarts (absent outside an engine). */
  state?: StateRegistry;
}

/** Whether the exchange's service has finished its learning period (judgements about "new"
 *  behaviour wait for it). The engine records it on the exchange once per request. */
export function serviceLearned(exchange: Exchange, context: DetectorContext): boolean {
  return exchange.serviceLearned ?? context.learning?.learned(exchange.request.authority, exchange.request.time) ?? false;
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
