// What the engine decided about one request. Wire adapters turn this into Envoy messages.

export interface AllowDecision {
  action: 'allow';
}

export interface DenyDecision {
  action: 'deny';
  /** HTTP status the caller receives (403 for policy denies, 429 for rate limits). */
  status: number;
  /** Stable machine-readable reason, e.g. "identity-denied". */
  reason: string;
  /** Which rule or detector produced it, for the response body and logs. */
  rule: string;
}

export type Decision = AllowDecision | DenyDecision;

export const ALLOW: AllowDecision = Object.freeze({ action: 'allow' });
