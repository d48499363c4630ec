// Classification of a service's operations against its spec, with meshward's published meanings
// (README, "API inventory"):
//   active = in the spec and seen within the window;
//   shadow = seen, not in the spec;
//   zombie = seen, but deprecated in the spec, or only in an older API version while a newer
//            version serves the same resource (same method and path apart from the version segment,
//            in the spec or in traffic);
//   orphan = in the spec, never seen, or not seen within the window.
// Zombie wins over active and shadow: traffic to a deprecated version is what needs attention, and
// it is reported with its callers. GraphQL operations are classified by their root fields against
// the introspected schema (a deprecated root field makes a zombie, an unknown one a shadow); schema
// root fields no operation used are orphans.
import type { GraphqlSchemaSpec } from './graphql.ts';
import type { OperationRecord } from './record.ts';
import type { ApiSpec } from './spec.ts';
import type { ServiceState } from './inventory.ts';

export type InventoryState = 'active' | 'shadow' | 'zombie' | 'orphan';

export const DEFAULT_ACTIVE_WINDOW_MS = 7 * 24 * 3600 * 1000;

export interface ClassifiedOperation {
  service: string;
  method: string;
  /** Route template (traffic) or base path + spec path (orphans). */
  path: string;
  protocol: OperationRecord['protocol'];
  /** GraphQL: "query getPastes". */
  graphqlOperation?: string;
  state: InventoryState;
  /** Why, in words a person reads in a report. */
  reason: string;
  specPath?: string;
  operationId?: string;
  count: number;
  lastSeen?: number;
  /** Caller keys, most requests first (at most 20). */
  callers: string[];
}

export interface ClassifyOptions {
  now: number;
  activeWindowMs?: number;
}

const VERSION_SEGMENT = /^v(\d+)(?:\.(\d+))?(?:(alpha|beta|rc|preview)(\d*))?$/i;

/** Comparable version of a path and its path with the version replaced, or undefined. */
function versioned(path: string): { rank: number; resource: string } | undefined {
  const segments = path.split('/');
  for (let i = 0; i < segments.length; i++) {
    const m = VERSION_SEGMENT.exec(segments[i]!);
    if (!m) continue;
    // Pre-releases rank below the release: v2beta1 < v2.
    const rank = Number(m[1]) * 1e6 + Number(m[2] ?? 0) * 1e3 + (m[3] ? 0 : 999);
    return { rank, resource: [...segments.slice(0, i), '{version}', ...segments.slice(i + 1)].join('/') };
  }
  return undefined;
}

/** Paths compare with parameter names ignored. */
function shape(path: string): string {
  return path.replace(/\{[^}/]*\}/g, '{}');
}

function topCallers(record: OperationRecord): string[] {
  return Object.entries(record.callers).sort(([, a], [, b]) => b.count - a.count).slice(0, 20).map(([k]) => k);
}

function specOperationOf(spec: ApiSpec | undefined, record: OperationRecord) {
  if (!spec || !record.specPath) return undefined;
  return spec.operations.find((op) => op.path === record.specPath && op.method === record.method);
}

function graphqlState(record: OperationRecord, schema: GraphqlSchemaSpec): { state: InventoryState; reason: string } {
  const fields = record.graphql?.rootFields ?? [];
  const type = record.graphql?.type ?? 'query';
  const declared = new Map(schema.fields.filter((f) => f.type === type).map((f) => [f.name, f]));
  const own = fields.filter((f) => !f.startsWith('__'));
  const unknown = own.filter((f) => !declared.has(f));
  if (record.graphql?.name === 'invalid-document') return { state: 'shadow', reason: 'not a valid GraphQL document' };
  if (unknown.length > 0) return { state: 'shadow', reason: `root field(s) ${unknown.join(', ')} not in the schema` };
  const deprecated = own.filter((f) => declared.get(f)?.deprecated);
  if (deprecated.length > 0) return { state: 'zombie', reason: `root field(s) ${deprecated.join(', ')} deprecated in the schema` };
  if (own.length === 0 && fields.length > 0) return { state: 'active', reason: 'introspection (GraphQL meta fields)' };
  if (own.length === 0) return { state: 'shadow', reason: 'operation selects no root field' };
  return { state: 'active', reason: 'all root fields in the schema' };
}

export function classifyService(state: ServiceState, records: OperationRecord[], options: ClassifyOptions): ClassifiedOperation[] {
  const window = options.activeWindowMs ?? DEFAULT_ACTIVE_WINDOW_MS;
  const recent = (t: number): boolean => options.now - t <= window;
  const spec = state.spec;
  const base = spec?.basePaths.find((b) => b !== '') ?? '';

  // Newest version serving each (method, resource): from spec and traffic alike.
  const newest = new Map<string, { rank: number; path: string }>();
  const offer = (method: string, path: string): void => {
    const v = versioned(path);
    if (!v) return;
    const key = `${method} ${shape(v.resource)}`;
    const cur = newest.get(key);
    if (!cur || v.rank > cur.rank) newest.set(key, { rank: v.rank, path });
  };
  for (const op of spec?.operations ?? []) if (!op.deprecated) offer(op.method, base + op.path);
  for (const r of records) if (r.protocol === 'rest' && recent(r.lastSeen)) offer(r.method, r.template);

  const out: ClassifiedOperation[] = [];
  const seenSpec = new Set<string>();
  const seenFields = new Set<string>();
  for (const r of records) {
    const specOp = specOperationOf(spec, r);
    if (specOp && recent(r.lastSeen)) seenSpec.add(`${specOp.method} ${specOp.path}`);
    const entry: ClassifiedOperation = {
      service: r.service, method: r.method, path: r.template, protocol: r.protocol,
      state: 'shadow', reason: '', count: r.count, lastSeen: r.lastSeen, callers: topCallers(r),
      ...(r.graphql ? { graphqlOperation: `${r.graphql.type} ${r.graphql.name}` } : {}),
      ...(specOp ? { specPath: specOp.path, ...(specOp.operationId ? { operationId: specOp.operationId } : {}) } : {}),
    };
    const v = r.protocol === 'rest' ? versioned(r.template) : undefined;
    const newer = v ? newest.get(`${r.method} ${shape(v.resource)}`) : undefined;
    if (r.protocol === 'graphql' && !r.graphql) {
      Object.assign(entry, { state: 'shadow', reason: 'GraphQL request without a readable operation (not JSON or GET ?query=, malformed, or body not sampled)' });
    } else if (r.graphql && state.graphqlSpec) {
      for (const f of r.graphql.rootFields) seenFields.add(`${r.graphql.type} ${f}`);
      Object.assign(entry, graphqlState(r, state.graphqlSpec));
    } else if (specOp?.deprecated) {
      Object.assign(entry, { state: 'zombie', reason: 'deprecated in the spec' });
    } else if (v && newer && newer.rank > v.rank) {
      Object.assign(entry, { state: 'zombie', reason: `older API version; ${newer.path} serves the same resource` });
    } else if (specOp) {
      Object.assign(entry, recent(r.lastSeen)
        ? { state: 'active', reason: 'in the spec and seen within the window' }
        : { state: 'orphan', reason: 'in the spec, not seen within the window' });
    } else {
      Object.assign(entry, { state: 'shadow', reason: spec || state.graphqlSpec ? 'seen, not in the spec' : 'seen; no spec loaded for this service' });
    }
    out.push(entry);
  }
  for (const op of spec?.operations ?? []) {
    if (seenSpec.has(`${op.method} ${op.path}`)) continue;
    if (out.some((e) => e.specPath === op.path && e.method === op.method)) continue;
    out.push({
      service: state.service, method: op.method, path: base + op.path, protocol: 'rest', state: 'orphan',
      reason: op.deprecated ? 'in the spec (deprecated), never seen' : 'in the spec, never seen', specPath: op.path,
      ...(op.operationId ? { operationId: op.operationId } : {}), count: 0, callers: [],
    });
  }
  for (const f of state.graphqlSpec?.fields ?? []) {
    if (seenFields.has(`${f.type} ${f.name}`)) continue;
    out.push({
      service: state.service, method: 'POST', path: '/graphql', protocol: 'graphql', graphqlOperation: `${f.type} ${f.name}`,
      state: 'orphan', reason: 'schema root field no operation used', count: 0, callers: [],
    });
  }
  return out;
}
