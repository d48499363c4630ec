// Policy -> engine settings. What the engine can take today is mapped; every policy field it cannot
// take yet is listed in `notApplied` (reported in the policy's status) instead of being dropped silently.
import type { EngineConfig } from '../engine/engine.ts';
import type { DenyRule } from '../engine/rules.ts';
import { defaultDetectorSettings, type DetectorSettingsInput, type RateLimitRule } from '../engine/policy-settings.ts';
import type { FieldError } from './structural-schema.ts';
import type { PolicySpec } from './types.ts';

/** Detector groups of the engine's DetectorSettings that policy may tune, with their numeric thresholds. */
export function detectorThresholds(): Map<string, string[]> {
  const defaults = defaultDetectorSettings() as unknown as Record<string, Record<string, unknown>>;
  const out = new Map<string, string[]>();
  for (const [group, fields] of Object.entries(defaults)) {
    if (group === 'caps' || group === 'learning') continue;
    out.set(group, Object.entries(fields).filter(([, v]) => typeof v === 'number').map(([k]) => k));
  }
  return out;
}

export interface EngineSettings {
  engine: EngineConfig;
  detectors: DetectorSettingsInput;
  /** Policy fields the engine does not apply yet (path and why). */
  notApplied: FieldError[];
}

const WINDOW_MS = { second: 1000, minute: 60_000, hour: 3_600_000 } as const;

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** "/orders/*" -> regex fragment; exact otherwise. */
function pathPattern(p: string): string {
  return p.endsWith('*') ? `${escapeRegex(p.slice(0, -1))}.*` : escapeRegex(p);
}

/** "METHOD /template" from policy -> regex on the engine's operation id "METHOD host template". */
function operationPattern(op: string): string {
  const [method, p] = op.split(' ', 2) as [string, string];
  return `^${escapeRegex(method)} \\S+ ${pathPattern(p).replace(/\\\{[^}]*\\\}/g, '[^/]+')}$`;
}

/** Threshold names a detector accepts, as errors for unknown ones (for validation). */
export function thresholdErrors(spec: PolicySpec): FieldError[] {
  const known = detectorThresholds();
  const errors: FieldError[] = [];
  spec.detectors?.forEach((d, i) => {
    const fields = known.get(d.name);
    if (!fields) return; // unknown detector names are reported by validation (knownDetectors)
    for (const t of Object.keys(d.thresholds ?? {})) {
      if (!fields.includes(t)) errors.push({ path: `spec.detectors[${i}].thresholds.${t}`, reason: `unknown threshold for detector ${d.name} (known: ${fields.join(', ')})` });
    }
  });
  return errors;
}

export function engineSettingsFor(spec: PolicySpec): EngineSettings {
  const notApplied: FieldError[] = [];
  const later = (path: string, reason: string): void => { notApplied.push({ path, reason }); };
  const enforce = spec.mode === 'enforce';

  const denyRules: DenyRule[] = [];
  spec.callGraph?.deny?.forEach((rule, i) => {
    if (rule.from.endsWith('*')) return later(`spec.callGraph.deny[${i}].from`, 'caller prefixes are not enforced yet (exact SPIFFE IDs are)');
    if (!enforce) return later(`spec.callGraph.deny[${i}]`, 'monitor mode: deny rules are not reported by the engine yet');
    for (const method of rule.methods?.length ? rule.methods : [undefined]) {
      for (const p of rule.paths?.length ? rule.paths : [undefined]) {
        denyRules.push({ name: `call-graph-deny-${i}`, identity: rule.from, ...(method ? { method } : {}), ...(p ? { path: p } : {}) });
      }
    }
  });
  if (spec.callGraph?.default === 'deny' || spec.callGraph?.allow?.length) later('spec.callGraph.allow', 'allow-lists (default: deny) are not enforced yet');

  const detectors: Record<string, Record<string, unknown>> = {};
  const group = (name: string): Record<string, unknown> => (detectors[name] ??= {});
  for (const d of spec.detectors ?? []) {
    if (d.thresholds) Object.assign(group(d.name), d.thresholds);
    if (d.enabled !== undefined || d.mode !== undefined) later(`spec.detectors[${d.name}]`, 'per-detector enabled/mode are not applied yet');
  }

  spec.jwt?.issuers?.forEach((iss, i) => {
    const auth = group('auth');
    auth.trustedIssuers = [...((auth.trustedIssuers as string[] | undefined) ?? []), iss.issuer];
    if (iss.jwks !== undefined) auth.jwks = { ...(auth.jwks as object | undefined), [iss.issuer]: JSON.parse(iss.jwks) };
    else later(`spec.jwt.issuers[${i}].jwksUri`, 'JWKS fetching is not implemented yet; use an inline jwks');
  });

  const limits: RateLimitRule[] = [];
  spec.rateLimits?.forEach((r, i) => {
    limits.push({
      name: r.name,
      operation: `^${r.method ? escapeRegex(r.method) : '[A-Z]+'} \\S+ ${r.path ? pathPattern(r.path) : '.*'}$`,
      limit: r.requests,
      windowMs: WINDOW_MS[r.per],
    });
    if (r.caller) later(`spec.rateLimits[${i}].caller`, 'limits apply per caller to every caller; caller-specific limits are not applied yet');
    if (r.burst !== undefined) later(`spec.rateLimits[${i}].burst`, 'burst is not applied yet');
  });
  if (limits.length) group('resource').limits = limits;

  if (spec.agentScopes?.length) {
    group('lateral').scopes = spec.agentScopes.map((a) => ({ identity: a.identity, allow: a.operations.map(operationPattern) }));
  }
  spec.businessFlows?.forEach((_f, i) => later(`spec.businessFlows[${i}]`, 'declared flows are not mapped onto the flow detector yet'));
  // sampling.bodyRate goes to the sidecar filters' tables (filter-mapping.ts, served with --admin-port).
  if (spec.sampling?.maxBodyBytes !== undefined) later('spec.sampling.maxBodyBytes', 'bodies are inspected up to Envoy\'s buffer limit; a per-policy cap is not applied yet');
  // apiSpecs load into the inventory and the contracts (policy/spec-sources.ts); ConfigMaps are not read.
  spec.apiSpecs?.forEach((s, i) => { if (s.configMapRef) later(`spec.apiSpecs[${i}].configMapRef`, 'the server does not read ConfigMaps: mount it and use file'); });

  const settings = detectors as DetectorSettingsInput;
  return { engine: { denyRules, mode: enforce ? 'enforce' : 'monitor', settings }, detectors: settings, notApplied };
}
