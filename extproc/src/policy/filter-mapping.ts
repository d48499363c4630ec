// Policy -> the Wasm filter's fast-path tables (extproc/src/filter-config, issue #3): what the filter
// can decide without the server. Only unambiguous mappings: whole-identity denies and body sampling.
import type { FilterPolicy } from '../filter-config/build.ts';
import type { PolicySpec } from './types.ts';

export function filterPolicyFor(spec: PolicySpec): FilterPolicy {
  const enforce = spec.mode === 'enforce';
  // A deny with no method and no path, for an exact SPIFFE ID, blocks the identity outright.
  const denyIdentities = enforce
    ? (spec.callGraph?.deny ?? []).filter((r) => !r.from.endsWith('*') && !r.methods?.length && !r.paths?.length).map((r) => r.from)
    : [];
  return {
    ...(denyIdentities.length ? { denyIdentities } : {}),
    ...(spec.sampling?.bodyRate !== undefined ? { sampling: { percent: Math.round(spec.sampling.bodyRate * 10_000) / 100 } } : {}),
  };
}
