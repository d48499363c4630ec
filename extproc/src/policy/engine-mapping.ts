// Policy -> engine settings. What the engine can take today is mapped; every policy field it cannot
// take yet is listed in `notApplied` (reported in the policy's status) instead of being dropped silently.
import type { DetectorModes, EngineConfig } from '../engine/engine.ts';
import type { DenyRule } from '../engine/rules.ts';
import { defaultDetectorSettings, type DeclaredFlow, type DetectorSettingsInput, type LearningOverride, type RateLimitRule } from '../engine/policy-settings.ts';
import { BOLA_DETECTOR } from '../engine/detectors/bola.ts';
import { BROKEN_AUTH_DETECTOR } from '../engine/detectors/broken-auth.ts';
import { RESOURCE_DETECTOR } from '../engine/detectors/resource-consumption.ts';
import { BFLA_DETECTOR } from '../engine/detectors/bfla.ts';
import { FLOWS_DETECTOR } from '../engine/detectors/business-flows.ts';
import { LATERAL_DETECTOR } from '../engine/detectors/lateral-movement.ts';
import type { FieldError } from './structural-schema.ts';
import { escapeRegex, operationPattern, pathPattern } from './operation-pattern.ts';
import { contentSettingsFor, type ConfigMapDescriptorMethods } from './content-mapping.ts';
import type { LearningPolicy, PolicySpec } from './types.ts';

/** Detector groups of the engine's DetectorSettings that policy may tune, with their numeric thresholds. */
export function detectorThresholds(): Map<string, string[]> {
  const defaults = defaultDetectorSettings() as unknown as Record<string, Record<string, unknown>>;
  const out = new Map<string, string[]>();
  for (const [group, fields] of Object.entries(defaults)) {
    if (group === 'caps' || group === 'learning' || group === 'content') continue; // content: spec.content
    out.set(group, Object.entries(fields).filter(([, v]) => typeof v === 'number').map(([k]) => k));
  }
  return out;
}

/** Policy detector names (settings groups) -> the engine detector each one tunes. */
const DETECTOR_OF_GROUP: Readonly<Record<string, string>> = {
  bola: BOLA_DETECTOR, auth: BROKEN_AUTH_DETECTOR, resource: RESOURCE_DETECTOR, bfla: BFLA_DETECTOR, flows: FLOWS_DETECTOR, lateral: LATERAL_DETECTOR,
};

/** Policy detector names whose learning period policy sets (spec.learning, spec.detectors[].learning):
 *  the per-service learning period (auth, bfla, lateral) and the callers' rate baselines (resource,
 *  whose baseline is learned in windows: periodSeconds only). bola and flows judge counts in windows
 *  from the first request and learn nothing they wait for. */
const SERVICE_LEARNING_GROUPS: readonly string[] = ['auth', 'bfla', 'lateral'];
const RATE_LEARNING_GROUP = 'resource';

/** A declared flow without withinSeconds: one run lasts at most an hour. */
const DEFAULT_FLOW_WITHIN_SECONDS = 3600;

export interface EngineSettings {
  engine: EngineConfig;
  detectors: DetectorSettingsInput;
  /** Policy fields the engine does not apply yet (path and why). */
  notApplied: FieldError[];
}

const WINDOW_MS = { second: 1000, minute: 60_000, hour: 3_600_000 } as const;

/** Threshold names a detector accepts, as errors for unknown ones, and learning periods set on
 *  detectors that have none or that conflict with a threshold (for validation). */
export function thresholdErrors(spec: PolicySpec): FieldError[] {
  const known = detectorThresholds();
  const errors: FieldError[] = [];
  spec.detectors?.forEach((d, i) => {
    const fields = known.get(d.name);
    if (!fields) return; // unknown detector names are reported by validation (knownDetectors)
    for (const t of Object.keys(d.thresholds ?? {})) {
      if (!fields.includes(t)) errors.push({ path: `spec.detectors[${i}].thresholds.${t}`, reason: `unknown threshold for detector ${d.name} (known: ${fields.join(', ')})` });
    }
    const at = `spec.detectors[${i}].learning`;
    if (d.learning === undefined || SERVICE_LEARNING_GROUPS.includes(d.name)) return;
    if (d.name !== RATE_LEARNING_GROUP) {
      errors.push({ path: at, reason: `detector ${d.name} has no learning period: it judges counts in windows from the first request (learning periods: ${[...SERVICE_LEARNING_GROUPS, RATE_LEARNING_GROUP].join(', ')})` });
    } else if (d.learning.minRequests !== undefined) {
      errors.push({ path: `${at}.minRequests`, reason: 'detector resource learns rate baselines in windows: only periodSeconds applies' });
    } else if (d.learning.periodSeconds !== undefined && d.thresholds?.baselineMinWindows !== undefined) {
      errors.push({ path: `${at}.periodSeconds`, reason: 'conflicts with thresholds.baselineMinWindows (both set how long the rate baseline is learned): give one' });
    }
  });
  return errors;
}

/** Policy learning period (seconds, requests) -> the engine's (milliseconds, requests). */
function learningOverride(policy: LearningPolicy | undefined): LearningOverride | undefined {
  if (policy === undefined || (policy.periodSeconds === undefined && policy.minRequests === undefined)) return undefined;
  return { ...(policy.periodSeconds !== undefined ? { minDurationMs: policy.periodSeconds * 1000 } : {}), ...(policy.minRequests !== undefined ? { minRequests: policy.minRequests } : {}) };
}

/** Windows the rate baseline is learned for, from the policy's learning period (an explicit
 *  thresholds.baselineMinWindows wins over spec.learning); undefined = not set by a period. */
function rateBaselineWindows(spec: PolicySpec): number | undefined {
  const own = spec.detectors?.find((d) => d.name === RATE_LEARNING_GROUP);
  const periodSeconds = own?.learning?.periodSeconds ?? (own?.thresholds?.baselineMinWindows === undefined ? spec.learning?.periodSeconds : undefined);
  if (periodSeconds === undefined) return undefined;
  const windowMs = own?.thresholds?.baselineWindowMs ?? defaultDetectorSettings().resource.baselineWindowMs;
  return Math.ceil((periodSeconds * 1000) / Math.max(1, windowMs));
}

/** `configMapMethods`: descriptor sets read from ConfigMaps, for the namespace of the policy that
 *  supplied spec.content (EffectivePolicy.contentNamespace). */
export function engineSettingsFor(spec: PolicySpec, configMapMethods?: ConfigMapDescriptorMethods): EngineSettings {
  const notApplied: FieldError[] = [];
  const enforce = spec.mode === 'enforce';

  // Deny rules in enforce mode are static rules (decided before any detector); the call-graph
  // detector judges allow-lists in both modes and reports deny rules in monitor mode.
  const denyRules: DenyRule[] = [];
  spec.callGraph?.deny?.forEach((rule, i) => {
    if (!enforce) return;
    for (const method of rule.methods?.length ? rule.methods : [undefined]) {
      for (const p of rule.paths?.length ? rule.paths : [undefined]) {
        denyRules.push({ name: `call-graph-deny-${i}`, identity: rule.from, ...(method ? { method } : {}), ...(p ? { path: p } : {}) });
      }
    }
  });

  const detectors: Record<string, Record<string, unknown>> = {};
  const group = (name: string): Record<string, unknown> => (detectors[name] ??= {});
  if (spec.callGraph?.default === 'deny' || spec.callGraph?.allow?.length || spec.callGraph?.deny?.length) {
    group('lateral').callGraph = { default: spec.callGraph.default ?? 'allow', allow: spec.callGraph.allow ?? [], deny: spec.callGraph.deny ?? [] };
  }
  const detectorModes: Record<string, DetectorModes[string]> = {};
  const learning = learningOverride(spec.learning);
  if (learning !== undefined) detectors.learning = learning;
  for (const d of spec.detectors ?? []) {
    if (d.thresholds) Object.assign(group(d.name), d.thresholds);
    const own = learningOverride(d.learning);
    if (own !== undefined && SERVICE_LEARNING_GROUPS.includes(d.name)) group(d.name).learning = own;
    const detector = DETECTOR_OF_GROUP[d.name];
    if (detector === undefined) continue; // unknown names are rejected by validation
    if (d.enabled === false) detectorModes[detector] = 'off';
    else if (d.mode !== undefined) detectorModes[detector] = d.mode;
  }

  spec.jwt?.issuers?.forEach((iss, i) => {
    const auth = group('auth');
    auth.trustedIssuers = [...((auth.trustedIssuers as string[] | undefined) ?? []), iss.issuer];
    if (iss.jwks !== undefined) auth.jwks = { ...(auth.jwks as object | undefined), [iss.issuer]: JSON.parse(iss.jwks) };
    else if (iss.jwksUri !== undefined) auth.jwksUris = { ...(auth.jwksUris as object | undefined), [iss.issuer]: iss.jwksUri };
  });

  const limits: RateLimitRule[] = [];
  spec.rateLimits?.forEach((r, i) => {
    limits.push({
      name: r.name,
      operation: `^${r.method ? escapeRegex(r.method) : '[A-Z]+'} \\S+ ${r.path ? pathPattern(r.path) : '.*'}$`,
      limit: r.requests,
      windowMs: WINDOW_MS[r.per],
      ...(r.caller !== undefined ? { caller: r.caller } : {}),
      ...(r.burst !== undefined ? { burst: r.burst } : {}),
    });
  });
  if (limits.length) group('resource').limits = limits;
  const rateWindows = rateBaselineWindows(spec);
  if (rateWindows !== undefined) group(RATE_LEARNING_GROUP).baselineMinWindows = rateWindows;

  if (spec.agentScopes?.length) {
    group('lateral').scopes = spec.agentScopes.map((a) => ({ identity: a.identity, allow: a.operations.map(operationPattern) }));
  }
  if (spec.businessFlows?.length) {
    group('flows').declared = spec.businessFlows.map((f): DeclaredFlow => ({
      name: f.name,
      steps: f.steps.map((st) => ({ operation: operationPattern(st.operation), ...(st.maxPerFlow !== undefined ? { maxPerFlow: st.maxPerFlow } : {}) })),
      withinMs: (f.withinSeconds ?? DEFAULT_FLOW_WITHIN_SECONDS) * 1000,
    }));
  }
  if (spec.content) detectors.content = contentSettingsFor(spec.content, configMapMethods) as Record<string, unknown>;
  // sampling.bodyRate goes to the sidecar filters' tables (filter-mapping.ts, served with --admin-port).
  const maxBodyBytes = spec.sampling?.maxBodyBytes;
  // apiSpecs load into the inventory and the contracts (policy/spec-sources.ts), which reports their
  // load state in the condition SpecsLoaded.

  const settings = detectors as DetectorSettingsInput;
  return {
    engine: { denyRules, mode: enforce ? 'enforce' : 'monitor', settings, ...(Object.keys(detectorModes).length ? { detectorModes } : {}), ...(maxBodyBytes !== undefined ? { maxBodyBytes } : {}) },
    detectors: settings, notApplied,
  };
}
