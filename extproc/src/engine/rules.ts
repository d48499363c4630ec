// Static deny rules: an identity, or an identity x method x path. The first rule set of meshward;
// behavioural detectors (issue #4) sit beside it behind the same Decision type.
import type { RequestEvent } from './event.ts';
import type { Decision } from './decision.ts';
import { ALLOW } from './decision.ts';

export interface DenyRule {
  /** Rule name, reported in decisions and logs. */
  name: string;
  /** SPIFFE ID of the caller, exact or a prefix ending in "*". */
  identity: string;
  /** Optional HTTP method (upper-case); absent = any method. */
  method?: string;
  /** Optional path (without query); exact match, or prefix match when it ends with "*". */
  path?: string;
}

export function pathWithoutQuery(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

/** Exact path, or prefix when the pattern ends with "*". */
export function pathMatches(pattern: string, path: string): boolean {
  return pattern.endsWith('*') ? path.startsWith(pattern.slice(0, -1)) : path === pattern;
}

/** Exact SPIFFE ID, or prefix when the pattern ends with "*". */
export function identityMatches(pattern: string, identity: string): boolean {
  return pattern.endsWith('*') ? identity.startsWith(pattern.slice(0, -1)) : identity === pattern;
}

export class DenyRules {
  readonly #byIdentity = new Map<string, DenyRule[]>();
  /** Rules whose identity is a prefix (few; checked in turn). */
  readonly #byPrefix: { prefix: string; rule: DenyRule }[] = [];

  constructor(rules: readonly DenyRule[]) {
    for (const rule of rules) {
      if (rule.identity.endsWith('*')) { this.#byPrefix.push({ prefix: rule.identity.slice(0, -1), rule }); continue; }
      const list = this.#byIdentity.get(rule.identity) ?? [];
      list.push(rule);
      this.#byIdentity.set(rule.identity, list);
    }
  }

  evaluate(event: RequestEvent): Decision {
    const workload = event.caller.workload;
    if (workload === undefined) return ALLOW;
    const exact = this.#byIdentity.get(workload);
    const prefixed = this.#byPrefix.length === 0 ? [] : this.#byPrefix.filter((p) => workload.startsWith(p.prefix)).map((p) => p.rule);
    if (exact === undefined && prefixed.length === 0) return ALLOW;
    const rules = exact === undefined ? prefixed : [...exact, ...prefixed];
    const path = pathWithoutQuery(event.path);
    for (const rule of rules) {
      if (rule.method !== undefined && rule.method !== event.method) continue;
      if (rule.path !== undefined && !pathMatches(rule.path, path)) continue;
      return { action: 'deny', status: 403, reason: 'identity-denied', rule: rule.name };
    }
    return ALLOW;
  }
}
