// Diff report: a service's observed operations against a given spec (any spec, not necessarily the
// one in force): the classification, plus what traffic used that the spec does not declare on the
// operations it does (query parameters, status codes, content types).
import { classifyService, type ClassifiedOperation, type ClassifyOptions } from './classify.ts';
import type { ServiceState } from './inventory.ts';
import { PathLearner } from './templating.ts';
import type { OperationRecord } from './record.ts';
import type { ApiSpec, JsonObject } from './spec.ts';
import { matchSpecPath } from './spec-match.ts';

export interface UndeclaredUse {
  method: string;
  specPath: string;
  queryParameters: string[];
  statusCodes: string[];
  requestContentTypes: string[];
}

export interface DiffReport {
  service: string;
  spec: string;
  counts: Record<ClassifiedOperation['state'], number>;
  operations: ClassifiedOperation[];
  undeclared: UndeclaredUse[];
}

/** Records re-matched against `spec` (their templates' parameters match any spec parameter). */
function rematch(records: OperationRecord[], spec: ApiSpec): OperationRecord[] {
  return records.map((r) => {
    if (r.protocol !== 'rest') return r;
    const m = matchSpecPath(spec, r.template);
    const copy: OperationRecord = { ...r };
    if (m) {
      copy.specPath = m.path;
      copy.template = m.basePath + m.path;
    } else delete copy.specPath;
    return copy;
  });
}

export function diffAgainstSpec(service: string, records: OperationRecord[], spec: ApiSpec, options: ClassifyOptions): DiffReport {
  const matched = rematch(records, spec);
  const state: ServiceState = { service, learner: new PathLearner(), records: new Map(), spec };
  const operations = classifyService(state, matched, options);
  const counts = { active: 0, shadow: 0, zombie: 0, orphan: 0 };
  for (const o of operations) counts[o.state]++;
  const undeclared: UndeclaredUse[] = [];
  for (const r of matched) {
    const op = r.specPath ? spec.operations.find((o) => o.path === r.specPath && o.method === r.method) : undefined;
    if (!op) continue;
    const declaredQuery = new Set(op.parameters.filter((p) => p.in === 'query').map((p) => String(p.name)));
    const responses = (op.operation.responses ?? {}) as JsonObject;
    const declaredStatus = (s: string): boolean => s in responses || `${s[0]}XX` in responses || 'default' in responses;
    const body = op.operation.requestBody as JsonObject | undefined;
    const declaredTypes = new Set(Object.keys((body?.content ?? {}) as JsonObject));
    const use: UndeclaredUse = {
      method: r.method, specPath: op.path,
      queryParameters: Object.keys(r.query).filter((q) => !declaredQuery.has(q)).sort(),
      statusCodes: Object.keys(r.statuses).filter((s) => !declaredStatus(s)).sort(),
      requestContentTypes: body ? r.requestContentTypes.filter((t) => !declaredTypes.has(t)) : [],
    };
    if (use.queryParameters.length + use.statusCodes.length + use.requestContentTypes.length > 0) undeclared.push(use);
  }
  return { service, spec: spec.name, counts, operations, undeclared };
}
