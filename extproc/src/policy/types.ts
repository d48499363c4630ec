// ApiSecurityPolicy (security.meshward.io/v1alpha1): TypeScript shape of the CRD in
// istio/chart/files/crds/apisecuritypolicy.yaml. The CRD's schema is the authority; these types
// only describe what a policy that passed it looks like.

import type { SensitiveKind } from '../inspect/sensitive.ts';

export const POLICY_GROUP = 'security.meshward.io';
export const POLICY_VERSION = 'v1alpha1';
export const POLICY_API_VERSION = `${POLICY_GROUP}/${POLICY_VERSION}`;
export const POLICY_KIND = 'ApiSecurityPolicy';
export const POLICY_PLURAL = 'apisecuritypolicies';

export type PolicyMode = 'monitor' | 'enforce';
export type FailureMode = 'open' | 'closed';

/** How long (and how much) a baseline is observed before detectors judge against it. */
export interface LearningPolicy {
  periodSeconds?: number;
  minRequests?: number;
}

export interface DetectorSettings {
  name: string;
  enabled?: boolean;
  mode?: PolicyMode;
  thresholds?: Record<string, number>;
  /** Over spec.learning, for this detector only. */
  learning?: LearningPolicy;
}

/** One key of a ConfigMap in the policy's own namespace. */
export interface ConfigMapKeyRef {
  name: string;
  key: string;
}

export interface ApiSpecSource {
  name: string;
  format?: 'openapi' | 'graphql';
  host?: string;
  configMapRef?: ConfigMapKeyRef;
  file?: string;
  url?: string;
}

export interface BusinessFlow {
  name: string;
  apiSpec?: string;
  steps: { operation: string; maxPerFlow?: number }[];
  withinSeconds?: number;
}

export interface JwtIssuer {
  issuer: string;
  jwksUri?: string;
  jwks?: string;
  audiences?: string[];
  fromHeader?: string;
}

export interface RateLimit {
  name: string;
  caller?: string;
  method?: string;
  path?: string;
  requests: number;
  per: 'second' | 'minute' | 'hour';
  burst?: number;
}

export interface CallRule {
  from: string;
  methods?: string[];
  paths?: string[];
}

export interface AgentScope {
  identity: string;
  operations: string[];
}

/** A FileDescriptorSet inline or from a ConfigMap key (validation: exactly one of the two). */
export interface DescriptorSetSource {
  base64?: string;
  configMapRef?: ConfigMapKeyRef;
}

/** spec.content: content-inspection settings (issue #6); absent fields keep the server's. */
export interface ContentPolicy {
  contracts?: { mode?: PolicyMode; operations?: { operation: string; mode: PolicyMode }[] };
  exposure?: { alwaysReport?: SensitiveKind[]; redact?: SensitiveKind[] };
  ssrf?: { allowedHosts?: string[]; openRedirectors?: { host: string; pathPrefix?: string }[] };
  graphql?: {
    allowIntrospection?: boolean; maxDepth?: number; maxAliases?: number; maxBatch?: number; maxCost?: number;
    maxDirectives?: number; maxTokens?: number; maxDuplicateFields?: number;
  };
  grpc?: { allowReflection?: boolean; knownMethods?: string[]; descriptorSet?: DescriptorSetSource };
  websocket?: { requireCredentials?: boolean; upgradesPerMinute?: number };
  thirdPartyHosts?: string[];
  /** A body the decode pool could not inspect in time: decided on headers (open) or refused (closed). */
  overload?: FailureMode;
}

export interface PolicySpec {
  selector?: { matchLabels?: Record<string, string> };
  mode?: PolicyMode;
  failureMode?: FailureMode;
  sampling?: { bodyRate?: number; maxBodyBytes?: number };
  learning?: LearningPolicy;
  detectors?: DetectorSettings[];
  apiSpecs?: ApiSpecSource[];
  businessFlows?: BusinessFlow[];
  jwt?: { issuers?: JwtIssuer[] };
  rateLimits?: RateLimit[];
  callGraph?: { default?: 'allow' | 'deny'; allow?: CallRule[]; deny?: CallRule[] };
  agentScopes?: AgentScope[];
  content?: ContentPolicy;
}

export interface PolicyCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message?: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export interface ApiSecurityPolicy {
  apiVersion: typeof POLICY_API_VERSION;
  kind: typeof POLICY_KIND;
  metadata: { name: string; namespace?: string; generation?: number; resourceVersion?: string; uid?: string; [k: string]: unknown };
  spec: PolicySpec;
  status?: { observedGeneration?: number; conditions?: PolicyCondition[] };
}

/** "namespace/name", the identity of a policy in logs, errors and maps. */
export function policyKey(p: { metadata: { name: string; namespace?: string } }): string {
  return `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`;
}
