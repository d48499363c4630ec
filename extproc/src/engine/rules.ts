// Static deny rules: an identity, or an identity x method x path. The first rule set of meshward;
// behavioural detectors (issue #4) sit beside it behind the same Decision type.
import type { RequestEvent } from './event.ts';
import type { Decision } from './decision.ts';
import { ALLOW } from './decision.ts';

export interface DenyRule {
  /** Rule name, reported in decisions and logs. */
  name: string;
  /** Exact SPIFFE ID of the caller. */
  identity: string;
  /** Optional HTTP method (upper-case); absent = any method. */
  method?: string;
  /** Optional path (without query); exact match, or prefix match when it ends with "*". */
  path?: string;
}

function pathWithoutQuery(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

function pathMatches(pattern: string, path: string): boolean {
  return pattern.endsWith('*') ? path.startsWith(pattern.slice(0, -1)) : path === pattern;
}

export class DenyRules {
  readonly #byIdentity = new Map<string, DenyRule[]>();

  constructor(rules: readonly DenyRule[]) {
    for (const rule of rules) {
      const list = this.#byIdentity.get(rule.identity) ?? [];
      list.push(rule);
      this.#byIdentity.set(rule.identity, list);
    }
  }

  evaluate(event: RequestEvent): Decision {
    const workload = event.caller.workload;
    if (workload === undefined) return ALLOW;
    const rules = this.#byIdentity.get(workload);
    if (rules === undefined) return ALLOW;
    const path = pathWithoutQuery(event.path);
    for (const rule of rules) {
      if (rule.method !== undefined && rule.method !== event.method) continue;
      if (rule.path !== undefined && !pathMatches(rule.path, path)) continue;
      return { action: 'deny', status: 403, reason: 'identity-denied', rule: rule.name };
    }
    return ALLOW;
  }
}
