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

/** What the engine decided about a response whose body it inspected (enforce mode only changes it):
 *  let it through, stop it before the client receives it (a third-party answer meshward must not
 *  let the app consume), or replace the body with one whose sensitive values are redacted. */
export type ResponseVerdict =
  | { action: 'continue' }
  | { action: 'deny'; decision: DenyDecision }
  | { action: 'redact'; body: Buffer; redacted: number };

export const CONTINUE_RESPONSE: ResponseVerdict = Object.freeze({ action: 'continue' });
