// The decision engine: takes normalized events, returns decisions, and reports what it saw to
// observers (logs, telemetry, the demo). It knows nothing of Envoy.
import type { RequestEvent, ResponseEvent } from './event.ts';
import type { Decision } from './decision.ts';
import { DenyRules, type DenyRule } from './rules.ts';

export interface EngineConfig {
  denyRules: readonly DenyRule[];
}

export interface DecisionRecord {
  request: RequestEvent;
  decision: Decision;
}

export interface EngineObserver {
  onDecision?(record: DecisionRecord): void;
  onResponse?(request: RequestEvent, response: ResponseEvent): void;
}

export class Engine {
  #rules: DenyRules;
  readonly #observers: EngineObserver[] = [];

  constructor(config: EngineConfig) {
    this.#rules = new DenyRules(config.denyRules);
  }

  /** Replaces the rule set; in-flight streams keep the decision they already got. */
  reconfigure(config: EngineConfig): void {
    this.#rules = new DenyRules(config.denyRules);
  }

  addObserver(observer: EngineObserver): () => void {
    this.#observers.push(observer);
    return () => {
      const i = this.#observers.indexOf(observer);
      if (i !== -1) this.#observers.splice(i, 1);
    };
  }

  decide(request: RequestEvent): Decision {
    const decision = this.#rules.evaluate(request);
    for (const o of this.#observers) o.onDecision?.({ request, decision });
    return decision;
  }

  observeResponse(request: RequestEvent, response: ResponseEvent): void {
    for (const o of this.#observers) o.onResponse?.(request, response);
  }
}
