// A finding: something a detector saw that a security engineer should know about, with the
// evidence that lets them judge it (what was seen, the baseline, the threshold crossed).

/** OWASP API Security Top 10 (2023) categories, plus the protocol-abuse and lateral-movement
 *  classes meshward reports beside them. */
export type FindingCategory =
  | 'API1:2023-BOLA'
  | 'API2:2023-BrokenAuthentication'
  | 'API3:2023-BrokenObjectPropertyLevelAuthorization'
  | 'API4:2023-UnrestrictedResourceConsumption'
  | 'API5:2023-BFLA'
  | 'API6:2023-SensitiveBusinessFlows'
  | 'API7:2023-SSRF'
  | 'API8:2023-SecurityMisconfiguration'
  | 'API9:2023-ImproperInventoryManagement'
  | 'API10:2023-UnsafeConsumption'
  | 'GRAPHQL-Abuse'
  | 'GRPC-Abuse'
  | 'WEBSOCKET-Abuse'
  | 'LATERAL-Movement';

export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';

export interface Finding {
  category: FindingCategory;
  /** Name of the detector that produced it (one detector = one module). */
  detector: string;
  severity: Severity;
  /** Stable caller key (see engine/exchange.ts callerKey): who did it. */
  caller: string;
  /** Operation id: "METHOD host template". */
  operation: string;
  requestId: string;
  /** Milliseconds since the epoch. */
  time: number;
  /** One sentence a person can read. */
  summary: string;
  /** What was seen, the baseline, the threshold crossed. Never raw secrets: hash them. */
  evidence: Record<string, unknown>;
  /** What enforce mode does about it: deny the request (403), rate-limit it (429), or nothing. */
  enforcement: 'deny' | 'rate-limit' | 'none';
  /** A response finding that, in enforce mode, stops the response before the client receives it
   *  (502). Only findings that judge the answer itself set it (unsafe third-party responses, or one
   *  left uninspected under a closed overload policy): the request already ran, so stopping its
   *  answer is all enforcement can still do. */
  blocksResponse?: boolean;
  /** JSON paths of response values enforce mode replaces with "[redacted]" (sensitive data). */
  redact?: (string | number)[][];
}
