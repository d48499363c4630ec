// Policy validation: size limit, YAML/JSON parsing, the CRD's own openAPIV3Schema (strict: unknown
// fields rejected), then what a schema cannot say: duplicate keys, conflicting rules and references
// to missing specs. Every error names the field path and the reason.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { PROJECT_ROOT } from '../local/envoy-binary.ts';
import { detectorThresholds, thresholdErrors } from './engine-mapping.ts';
import { hostName } from './content-mapping.ts';
import { methodsFromBase64DescriptorSet } from '../inspect/grpc.ts';
import { compileStructuralSchema, type FieldError, type StrictValidator } from './structural-schema.ts';
import { POLICY_API_VERSION, POLICY_KIND, POLICY_VERSION, type ApiSecurityPolicy, type CallRule, type PolicySpec } from './types.ts';

/** The CRD file the Helm chart installs; its schema is the one policies are checked against. */
export const POLICY_CRD_FILE = path.join(PROJECT_ROOT, 'istio', 'chart', 'files', 'crds', 'apisecuritypolicy.yaml');
/** Largest policy document accepted (Kubernetes itself stores objects up to ~1.5 MB). */
export const MAX_POLICY_BYTES = 1024 * 1024;
const MAX_DOCUMENTS = 256;

export interface PolicyError extends FieldError {
  /** File name or "namespace/name" of the Kubernetes object. */
  source: string;
  /** Index of the YAML document within the source (0-based), when the source has several. */
  document?: number;
}

export function formatPolicyError(e: PolicyError): string {
  return `${e.source}${e.document !== undefined ? `#${e.document}` : ''}: ${e.path}: ${e.reason}`;
}

export interface PolicyValidationOptions {
  /** Base directory for `apiSpecs[].file`; when set, referenced files must exist. */
  baseDir?: string;
  /** Detector names accepted (default: the engine's detector settings groups). */
  knownDetectors?: readonly string[];
}

export interface PolicyValidationResult {
  policies: ApiSecurityPolicy[];
  errors: PolicyError[];
}

let crdValidator: StrictValidator | undefined;

/** The CRD object as shipped in the chart. */
export function loadPolicyCrd(): Record<string, unknown> {
  return YAML.parse(readFileSync(POLICY_CRD_FILE, 'utf8')) as Record<string, unknown>;
}

function schemaValidator(): StrictValidator {
  if (!crdValidator) {
    const crd = loadPolicyCrd() as { spec: { versions: { name: string; schema: { openAPIV3Schema: unknown } }[] } };
    const version = crd.spec.versions.find((v) => v.name === POLICY_VERSION);
    if (!version) throw new Error(`${POLICY_CRD_FILE}: no version matching ${POLICY_API_VERSION}`);
    crdValidator = compileStructuralSchema(version.schema.openAPIV3Schema);
  }
  return crdValidator;
}

function duplicates<T>(list: readonly T[] | undefined, key: (t: T) => string, at: string, what: string): FieldError[] {
  const seen = new Map<string, number>();
  const out: FieldError[] = [];
  (list ?? []).forEach((item, i) => {
    const k = key(item);
    const first = seen.get(k);
    if (first !== undefined) out.push({ path: `${at}[${i}]`, reason: `duplicate ${what} ${JSON.stringify(k)} (also at ${at}[${first}])` });
    else seen.set(k, i);
  });
  return out;
}

/** Two call rules overlap when they name the same caller and share a method and a path (absent = all). */
function overlap(a: CallRule, b: CallRule): boolean {
  const shares = (x?: string[], y?: string[]): boolean => !x?.length || !y?.length || x.some((v) => y.includes(v));
  return a.from === b.from && shares(a.methods, b.methods) && shares(a.paths, b.paths);
}

/** Checks a schema-valid spec for what the schema cannot express. */
export function semanticErrors(spec: PolicySpec, options: PolicyValidationOptions = {}): FieldError[] {
  const errors: FieldError[] = [
    ...duplicates(spec.detectors, (d) => d.name, 'spec.detectors', 'detector'),
    ...duplicates(spec.apiSpecs, (s) => s.name, 'spec.apiSpecs', 'spec name'),
    ...duplicates(spec.businessFlows, (f) => f.name, 'spec.businessFlows', 'flow name'),
    ...duplicates(spec.jwt?.issuers, (i) => i.issuer, 'spec.jwt.issuers', 'issuer'),
    ...duplicates(spec.rateLimits, (r) => r.name, 'spec.rateLimits', 'rate limit name'),
    ...duplicates(spec.rateLimits, (r) => `${r.caller ?? '*'} ${r.method ?? '*'} ${r.path ?? '*'}`, 'spec.rateLimits', 'match (caller, method, path)'),
    ...duplicates(spec.agentScopes, (a) => a.identity, 'spec.agentScopes', 'identity'),
    ...duplicates(spec.content?.contracts?.operations, (o) => o.operation, 'spec.content.contracts.operations', 'operation'),
    ...duplicates(spec.content?.grpc?.knownMethods, (m) => m, 'spec.content.grpc.knownMethods', 'method'),
    ...duplicates(spec.content?.ssrf?.allowedHosts, hostName, 'spec.content.ssrf.allowedHosts', 'host'),
    ...duplicates(spec.content?.thirdPartyHosts, hostName, 'spec.content.thirdPartyHosts', 'host'),
  ];
  const known = options.knownDetectors ?? [...detectorThresholds().keys()];
  spec.detectors?.forEach((d, i) => {
    if (!known.includes(d.name)) errors.push({ path: `spec.detectors[${i}].name`, reason: `unknown detector ${JSON.stringify(d.name)} (known: ${known.join(', ')})` });
  });
  errors.push(...thresholdErrors(spec));
  spec.apiSpecs?.forEach((s, i) => {
    const sources = (['configMapRef', 'file', 'url'] as const).filter((k) => s[k] !== undefined);
    if (sources.length !== 1) {
      errors.push({ path: `spec.apiSpecs[${i}]`, reason: `exactly one of configMapRef, file, url is required (got ${sources.length === 0 ? 'none' : sources.join(', ')})` });
    } else if (s.file !== undefined && options.baseDir !== undefined && !existsSync(path.resolve(options.baseDir, s.file))) {
      errors.push({ path: `spec.apiSpecs[${i}].file`, reason: `spec file not found: ${path.resolve(options.baseDir, s.file)}` });
    }
  });
  const specNames = new Set((spec.apiSpecs ?? []).map((s) => s.name));
  spec.businessFlows?.forEach((f, i) => {
    if (f.apiSpec !== undefined && !specNames.has(f.apiSpec)) {
      errors.push({ path: `spec.businessFlows[${i}].apiSpec`, reason: `refers to ${JSON.stringify(f.apiSpec)}, which is not in spec.apiSpecs` });
    }
  });
  spec.jwt?.issuers?.forEach((iss, i) => {
    if ((iss.jwksUri === undefined) === (iss.jwks === undefined)) errors.push({ path: `spec.jwt.issuers[${i}]`, reason: 'exactly one of jwksUri, jwks is required' });
    else if (iss.jwks !== undefined) {
      try {
        const doc = JSON.parse(iss.jwks) as { keys?: unknown };
        if (!Array.isArray(doc.keys)) throw new Error('no "keys" array');
      } catch (err) {
        errors.push({ path: `spec.jwt.issuers[${i}].jwks`, reason: `not a JWKS document: ${(err as Error).message}` });
      }
    } else if (!URL.canParse(iss.jwksUri!)) errors.push({ path: `spec.jwt.issuers[${i}].jwksUri`, reason: 'not a URL' });
  });
  const descriptorSet = spec.content?.grpc?.descriptorSet;
  if (descriptorSet !== undefined) {
    const sources = (['base64', 'configMapRef'] as const).filter((k) => descriptorSet[k] !== undefined);
    if (sources.length !== 1) {
      errors.push({ path: 'spec.content.grpc.descriptorSet', reason: `exactly one of base64, configMapRef is required (got ${sources.length === 0 ? 'none' : sources.join(', ')})` });
    } else if (descriptorSet.base64 !== undefined) {
      // A ConfigMap's descriptor set is read and checked by the server (policy/descriptor-set-sources.ts).
      try { methodsFromBase64DescriptorSet(descriptorSet.base64); } catch (err) {
        errors.push({ path: 'spec.content.grpc.descriptorSet.base64', reason: (err as Error).message });
      }
    }
  }
  spec.rateLimits?.forEach((r, i) => {
    if (r.burst !== undefined && r.burst < r.requests) errors.push({ path: `spec.rateLimits[${i}].burst`, reason: `must be >= requests (${r.requests})` });
  });
  const allow = spec.callGraph?.allow ?? [];
  spec.callGraph?.deny?.forEach((d, i) => {
    const j = allow.findIndex((a) => overlap(a, d));
    if (j !== -1) errors.push({ path: `spec.callGraph.deny[${i}]`, reason: `conflicts with spec.callGraph.allow[${j}] (same caller, overlapping methods and paths)` });
  });
  return errors;
}

/** Fills in the CRD's defaults so consumers never see an absent mode. */
function withDefaults(policy: ApiSecurityPolicy): ApiSecurityPolicy {
  return { ...policy, spec: { mode: 'monitor', failureMode: 'open', ...policy.spec } };
}

/** Validates one parsed object as an ApiSecurityPolicy. */
export function validatePolicyObject(doc: unknown, options: PolicyValidationOptions = {}): { policy?: ApiSecurityPolicy; errors: FieldError[] } {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { errors: [{ path: '(root)', reason: 'must be an object' }] };
  const o = doc as Record<string, unknown>;
  if (o.apiVersion !== POLICY_API_VERSION) return { errors: [{ path: 'apiVersion', reason: `must be ${POLICY_API_VERSION}` }] };
  if (o.kind !== POLICY_KIND) return { errors: [{ path: 'kind', reason: `must be ${POLICY_KIND}` }] };
  const meta = o.metadata as Record<string, unknown> | undefined;
  if (typeof meta?.name !== 'string' || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(meta.name)) {
    return { errors: [{ path: 'metadata.name', reason: 'required: a DNS subdomain name' }] };
  }
  const schemaErrors = schemaValidator()(doc);
  if (schemaErrors.length > 0) return { errors: schemaErrors };
  const policy = doc as ApiSecurityPolicy;
  const errors = semanticErrors(policy.spec, options);
  return errors.length > 0 ? { errors } : { policy: withDefaults(policy), errors: [] };
}

/** Parses and validates a policy file's text (one or more YAML documents, or JSON). */
export function parsePolicies(source: string, text: string, options: PolicyValidationOptions = {}): PolicyValidationResult {
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_POLICY_BYTES) return { policies: [], errors: [{ source, path: '(root)', reason: `${bytes} bytes is larger than the ${MAX_POLICY_BYTES}-byte limit` }] };
  const docs = YAML.parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  if (list.length > MAX_DOCUMENTS) return { policies: [], errors: [{ source, path: '(root)', reason: `more than ${MAX_DOCUMENTS} documents` }] };
  const policies: ApiSecurityPolicy[] = [];
  const errors: PolicyError[] = [];
  const multi = list.length > 1;
  list.forEach((d, i) => {
    const document = multi ? i : undefined;
    const at = { source, ...(document !== undefined ? { document } : {}) };
    if (d.errors.length > 0) {
      errors.push({ ...at, path: '(root)', reason: `not valid YAML/JSON: ${d.errors[0]!.message}` });
      return;
    }
    let value: unknown;
    try {
      value = d.toJS({ maxAliasCount: 100 });
    } catch (err) {
      errors.push({ ...at, path: '(root)', reason: (err as Error).message });
      return;
    }
    if (value === null || value === undefined) return; // an empty document (e.g. a trailing ---)
    const r = validatePolicyObject(value, options);
    if (r.policy) policies.push(r.policy);
    errors.push(...r.errors.map((e) => ({ ...at, ...e })));
  });
  if (policies.length === 0 && errors.length === 0) errors.push({ source, path: '(root)', reason: 'no policy in this file' });
  return { policies, errors };
}
