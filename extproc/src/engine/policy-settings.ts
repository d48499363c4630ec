// Detector settings: thresholds, windows, learning periods and state caps as one typed object with
// defaults. The policy CRD (issue #7) maps its fields onto DetectorSettings; anything it leaves out
// keeps the default below. Thresholds are principles (ratios to learned baselines, counts per
// window), not numbers fitted to one application.

import type { ContentSettingsInput } from '../inspect/settings.ts';

export interface StateCaps {
  /** Entries per bounded map (per detector and kind of state). */
  maxEntries: number;
  /** Approximate bytes per bounded map; lru-cache evicts least recently used beyond it. */
  maxBytes: number;
}

export interface LearningSettings {
  /** A baseline (call graph, callers of an operation, methods of a resource) is judged only after
   *  the service has been observed this long ... */
  minDurationMs: number;
  /** ... and has answered at least this many requests. */
  minRequests: number;
}

/** A detector's own learning period, over `DetectorSettings.learning` field by field (policy
 *  spec.detectors[].learning). */
export type LearningOverride = Partial<LearningSettings>;

export interface BolaSettings {
  /** Sliding window for counting distinct objects per caller. */
  windowMs: number;
  /** Distinct objects another principal owns (owner field in the response) before a finding. */
  foreignThreshold: number;
  /** Distinct objects the caller neither created nor was shown by the API before a finding. */
  unexplainedThreshold: number;
  /** A run of this many consecutive numeric IDs is a sequential walk (guessable IDs). */
  sequentialRun: number;
  /** 403/404 answers on object operations per caller and window before a finding. */
  deniedBurst: number;
}

export interface AuthSettings {
  windowMs: number;
  /** Failed logins per source (caller key or client address) and window. */
  failedLoginsPerSource: number;
  /** Distinct usernames tried per source and window. */
  usernamesPerSource: number;
  /** Login attempts inside one request (GraphQL aliases or batches): no client needs more than one. */
  attemptsPerRequest: number;
  /** Failed logins on one login operation across all sources per window, as a floor ... */
  failedLoginsGlobalFloor: number;
  /** ... and as a multiple of the learned per-window failure baseline. */
  failedLoginsGlobalFactor: number;
  /** Distinct sources failing to log in to one account in the window (account targeted by a botnet). */
  sourcesPerAccount: number;
  /** Distinct workloads or client addresses presenting one token before it is reported as shared or stolen. */
  sourcesPerToken: number;
  /** Share of authenticated calls that marks an operation as "normally authenticated". */
  authenticatedShare: number;
  /** Issuers tokens may come from; empty = not checked. */
  trustedIssuers: string[];
  /** JSON Web Key Set per issuer (or "*" for any); tokens from it must verify. */
  jwks: Record<string, { keys: Record<string, unknown>[] }>;
  /** JWKS URL per issuer, fetched and refreshed in the background (engine/jwks-remote.ts); an inline
   *  `jwks` for the same issuer wins. */
  jwksUris: Record<string, string>;
  /** Clock skew tolerated on exp/nbf. */
  clockSkewMs: number;
  /** Learning period of "normally authenticated" operations. */
  learning?: LearningOverride;
}

export interface RateLimitRule {
  name: string;
  /** Regular expression on the operation id "METHOD host template". */
  operation: string;
  /** Requests per caller and window. */
  limit: number;
  windowMs: number;
  /** Only callers whose SPIFFE ID equals this, or starts with it when it ends in "*"; absent = all. */
  caller?: string;
  /** Present: a token bucket like the filter's, holding at most `burst` tokens (>= limit; starts
   *  full) and refilled at `limit` per window. Absent: a sliding-window count of `limit`. */
  burst?: number;
}

export interface ResourceSettings {
  /** Hard limits from policy: enforced as 429 in enforce mode. */
  limits: RateLimitRule[];
  /** Learned rate baselines: per caller x operation, counted in windows of this size. */
  baselineWindowMs: number;
  /** Windows needed before a learned baseline is used. */
  baselineMinWindows: number;
  /** A window count above mean + k * stddev (and above minCount) is reported. */
  baselineSigmas: number;
  baselineMinCount: number;
  /** Learned limits only report (monitor) unless policy says they may be enforced. */
  enforceLearned: boolean;
  /** Page size / limit parameters above this are abusive. */
  maxPageSize: number;
  /** Request bodies above this (Content-Length or body) are oversized. */
  maxBodyBytes: number;
}

export interface BflaSettings {
  /** Regular expression on path segments and GraphQL field names that marks privileged operations. */
  privilegedPattern: string;
  /** Operations policy declares privileged (regular expressions on the operation id). */
  privilegedOperations: string[];
  /** Reads of a resource collection needed before a first write method on it is method tampering. */
  minReadsBeforeTampering: number;
  /** Learning period of privileged operations' caller sets and of resources' write methods. */
  learning?: LearningOverride;
}

export interface FlowStepRule {
  /** Regular expression on operation id or GraphQL field name. */
  match: string;
}

export interface BusinessFlow {
  name: string;
  /** Regular expression on the last static path segment (POST /api/Users -> "Users") or GraphQL
   *  root field names (case-insensitive). */
  match: string;
  /** Methods the flow's step uses (any when absent). */
  methods?: string[];
  /** Per source (caller key or client address) and window. */
  perSourceLimit: number;
  /** Across all sources: floor per window, and multiple of the learned per-window baseline. */
  globalFloor: number;
  globalFactor: number;
  windowMs: number;
  /** Steps that must happen (by the same caller, earlier) before this one. */
  requires?: FlowStepRule[];
}

/** A flow declared in policy: ordered steps one caller goes through within a time window. */
export interface DeclaredFlow {
  name: string;
  /** Regular expressions on the operation id "METHOD host template", in the flow's order. */
  steps: { operation: string; maxPerFlow?: number }[];
  /** A step counts as part of the flow only this long after the flow's first step. */
  withinMs: number;
}

export interface FlowSettings {
  flows: BusinessFlow[];
  /** Flows from policy; a request that is one of their steps is judged by them, not by `flows`. */
  declared: DeclaredFlow[];
  /** Inter-arrival coefficient of variation below this, over the last N events, is machine-regular. */
  regularityCv: number;
  regularitySamples: number;
}

export interface AgentScope {
  /** SPIFFE ID, or a prefix ending in "*". */
  identity: string;
  /** What it may call: regular expressions on the operation id. */
  allow: string[];
}

export interface CallRule {
  /** SPIFFE ID, or a prefix ending in "*". */
  from: string;
  /** Methods (upper-case) the rule covers; absent or empty = all. */
  methods?: string[];
  /** Paths, exact or prefix ending in "*"; absent or empty = all. */
  paths?: string[];
}

export interface CallGraphSettings {
  /** allow: callers not listed in `allow` pass (deny rules still apply); deny: only listed callers pass. */
  default: 'allow' | 'deny';
  allow: CallRule[];
  deny: CallRule[];
}

export interface LateralSettings {
  /** Non-human / AI-agent identities held to least-privilege scopes. */
  scopes: AgentScope[];
  /** The call graph policy allows (detectors/call-graph.ts). */
  callGraph: CallGraphSettings;
  /** Learning period of the call graph (new edges are judged after it). */
  learning?: LearningOverride;
}

export interface DetectorSettings {
  learning: LearningSettings;
  /** Content-inspection settings from policy, over the server's (detectors/content.ts). */
  content: ContentSettingsInput;
  caps: StateCaps;
  bola: BolaSettings;
  auth: AuthSettings;
  resource: ResourceSettings;
  bfla: BflaSettings;
  flows: FlowSettings;
  lateral: LateralSettings;
}

const MINUTE = 60_000;

/** Business flows recognised by name when policy declares none: the flows attackers automate. */
export const DEFAULT_FLOWS: readonly BusinessFlow[] = [
  { name: 'signup', match: '^(register|signup|sign-up|sign_up|createuser|createaccount|create-account|registration|users|accounts|customers|members)$', methods: ['POST', 'PUT'], perSourceLimit: 5, globalFloor: 30, globalFactor: 5, windowMs: MINUTE },
  { name: 'password-reset', match: '^(reset|reset-password|resetpassword|forgot|forgot-password|forgotpassword|password-reset|passwordreset)$', methods: ['POST', 'PUT'], perSourceLimit: 5, globalFloor: 30, globalFactor: 5, windowMs: MINUTE },
  { name: 'checkout', match: '^(checkout|purchase|placeorder|place-order)$', methods: ['POST', 'PUT'], perSourceLimit: 10, globalFloor: 60, globalFactor: 5, windowMs: MINUTE },
  { name: 'otp-verification', match: '^(otp|verify-otp|verifyotp|2fa|mfa|totp|verify-code|verifycode|verification-code)$', methods: ['POST', 'PUT'], perSourceLimit: 5, globalFloor: 30, globalFactor: 5, windowMs: MINUTE },
  { name: 'coupon', match: '^(coupon|coupons|redeem|voucher|vouchers|promo|applycoupon)$', methods: ['POST', 'PUT'], perSourceLimit: 10, globalFloor: 60, globalFactor: 5, windowMs: MINUTE },
];

/** Detector groups that judge against the per-service learning period. */
export type ServiceLearningGroup = 'auth' | 'bfla' | 'lateral';

/** The learning period a detector group judges by: its own override, else the engine-wide one. */
export function learningFor(settings: DetectorSettings, group: ServiceLearningGroup): LearningSettings {
  const own = settings[group].learning;
  return { minDurationMs: own?.minDurationMs ?? settings.learning.minDurationMs, minRequests: own?.minRequests ?? settings.learning.minRequests };
}

export function defaultDetectorSettings(): DetectorSettings {
  return {
    learning: { minDurationMs: MINUTE, minRequests: 100 },
    content: {},
    caps: { maxEntries: 50_000, maxBytes: 32 * 1024 * 1024 },
    bola: { windowMs: 10 * MINUTE, foreignThreshold: 3, unexplainedThreshold: 8, sequentialRun: 5, deniedBurst: 10 },
    auth: {
      windowMs: 10 * MINUTE,
      failedLoginsPerSource: 10,
      usernamesPerSource: 6,
      attemptsPerRequest: 5,
      failedLoginsGlobalFloor: 30,
      failedLoginsGlobalFactor: 5,
      sourcesPerAccount: 4,
      sourcesPerToken: 5,
      authenticatedShare: 0.95,
      trustedIssuers: [],
      jwks: {},
      jwksUris: {},
      clockSkewMs: 30_000,
    },
    resource: {
      limits: [],
      baselineWindowMs: MINUTE,
      baselineMinWindows: 5,
      baselineSigmas: 6,
      baselineMinCount: 60,
      enforceLearned: false,
      maxPageSize: 1000,
      maxBodyBytes: 10 * 1024 * 1024,
    },
    bfla: {
      privilegedPattern: '^(admin|admins|administrator|administration|superuser|sudo|internal|manage|management|debug|actuator|roles|permissions|privileges|impersonate)$|^(admin|internal|debug|system)[A-Z_-]',
      privilegedOperations: [],
      minReadsBeforeTampering: 5,
    },
    flows: { flows: DEFAULT_FLOWS.map((f) => ({ ...f })), declared: [], regularityCv: 0.15, regularitySamples: 12 },
    lateral: { scopes: [], callGraph: { default: 'allow', allow: [], deny: [] } },
  };
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends readonly unknown[] ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K] };
export type DetectorSettingsInput = DeepPartial<DetectorSettings>;

/** Defaults overlaid with what policy gives; arrays replace, objects merge. */
export function resolveDetectorSettings(input: DetectorSettingsInput = {}): DetectorSettings {
  const merge = (base: Record<string, unknown>, over: Record<string, unknown> | undefined): Record<string, unknown> => {
    if (over === undefined) return base;
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) {
      if (v === undefined) continue;
      const b = base[k];
      out[k] = b !== null && typeof b === 'object' && !Array.isArray(b) && typeof v === 'object' && v !== null && !Array.isArray(v)
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
    }
    return out;
  };
  return merge(defaultDetectorSettings() as unknown as Record<string, unknown>, input as Record<string, unknown>) as unknown as DetectorSettings;
}
