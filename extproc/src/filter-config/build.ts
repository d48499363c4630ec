// Builds the filter's tables document from what the server knows: enforcement decisions (deny,
// limits), learned and specified routes (templates), and sampling policy. Output is deterministic
// (sorted, de-duplicated, versioned by content hash) so an unchanged policy serves an unchanged
// document and the filter does not re-parse it.
import { createHash } from 'node:crypto';
import { validateTables, type EnforcedEntry, type FilterTables, type IdentityOperation, type TemplateEntry } from './schema.ts';

export interface FilterPolicy {
  denyIdentities?: readonly string[];
  denyOperations?: readonly IdentityOperation[];
  /** Token buckets per identity x operation; burst defaults to max(1, ceil(ratePerSecond)). */
  limits?: readonly (IdentityOperation & { ratePerSecond: number; burst?: number })[];
  /** Exact templates (learned inventory, OpenAPI paths). */
  templates?: readonly TemplateEntry[];
  /** Temporary denies from enforced findings (enforced.ts). */
  enforced?: readonly EnforcedEntry[];
  sampling?: {
    /** Percentage of other requests whose bodies go to the server (0-100). */
    percent?: number;
    /** Secret mixed into the request-id hash of consistent sampling. */
    seed?: string;
    /** Decide by a keyed hash of x-request-id (the same answer on every hop) instead of each
     *  filter's private random draw; whoever can read the seed can then choose unsampled ids. */
    consistent?: boolean;
    /** Operation ids whose writes are always sampled. */
    flaggedOperations?: readonly string[];
    /** Identities (workload or user keys) whose requests are always sampled. */
    suspectIdentities?: readonly string[];
  };
}

const uniqueSorted = (xs: readonly string[] | undefined): string[] => [...new Set(xs ?? [])].sort();

function literalCount(template: string): number {
  return template.split('/').filter((s) => s.length > 0 && !/^\{.*\}$/.test(s)).length;
}

/** Most specific first: the filter takes the first matching template (/users/me before /users/{id}). */
function orderTemplates(templates: readonly TemplateEntry[]): TemplateEntry[] {
  const seen = new Set<string>();
  const out: TemplateEntry[] = [];
  for (const t of templates) {
    const key = `${t.method ?? ''} ${t.template}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(t.method ? { method: t.method.toUpperCase(), template: t.template } : { template: t.template });
  }
  return out.sort((a, b) => literalCount(b.template) - literalCount(a.template) ||
    (a.method ? 0 : 1) - (b.method ? 0 : 1) || a.template.localeCompare(b.template) || (a.method ?? '').localeCompare(b.method ?? ''));
}

const pairOrder = (a: IdentityOperation, b: IdentityOperation): number =>
  a.identity.localeCompare(b.identity) || a.operation.localeCompare(b.operation);

/** Builds and validates the tables document; throws with the schema's reason if the policy is invalid. */
export function buildFilterTables(policy: FilterPolicy): FilterTables {
  const seenPairs = new Set<string>();
  const denyOps = (policy.denyOperations ?? []).filter((p) => {
    const k = `${p.identity}\n${p.operation}`;
    return seenPairs.has(k) ? false : (seenPairs.add(k), true);
  }).map((p) => ({ identity: p.identity, operation: p.operation })).sort(pairOrder);
  const limits = (policy.limits ?? []).map((l) => ({
    identity: l.identity, operation: l.operation, ratePerSecond: l.ratePerSecond,
    burst: l.burst ?? Math.max(1, Math.ceil(l.ratePerSecond)),
  })).sort(pairOrder);
  const s = policy.sampling ?? {};
  const enforced = [...(policy.enforced ?? [])].sort((a, b) =>
    a.identity.localeCompare(b.identity) || (a.operation ?? '').localeCompare(b.operation ?? ''));
  const body: FilterTables = {
    deny: { identities: uniqueSorted(policy.denyIdentities), operations: denyOps },
    limits,
    templates: orderTemplates(policy.templates ?? []),
    // Only when there are some: documents without enforcement keep their earlier shape and version.
    ...(enforced.length > 0 ? { enforced } : {}),
    sampling: {
      percent: s.percent ?? 0,
      seed: s.seed ?? '',
      ...(s.consistent === true ? { consistent: true } : {}),
      alwaysOperations: uniqueSorted(s.flaggedOperations),
      suspectIdentities: uniqueSorted(s.suspectIdentities),
    },
  };
  const version = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
  const doc: FilterTables = { version, ...body };
  const v = validateTables(doc);
  if (!v.ok) throw new Error(`filter configuration is invalid: ${v.error}`);
  return doc;
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Exact templates from an OpenAPI document's `paths` object ("/users/{id}" per method). */
export function templatesFromOpenApiPaths(paths: Record<string, unknown>, basePath = ''): TemplateEntry[] {
  const out: TemplateEntry[] = [];
  const prefix = basePath.replace(/\/+$/, '');
  for (const [p, item] of Object.entries(paths)) {
    if (!p.startsWith('/') || item === null || typeof item !== 'object') continue;
    for (const m of Object.keys(item)) {
      if (HTTP_METHODS.includes(m)) out.push({ method: m.toUpperCase(), template: `${prefix}${p}` });
    }
  }
  return out;
}
