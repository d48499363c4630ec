// One inventory entry: an operation of a service as traffic showed it. Plain JSON (persisted as is),
// bounded (caller list, content types, schemas), and mergeable, because learned templates change:
// entries recorded under "/users/alice" merge into "/users/{user}" once that template is learned.
import { mergeInto, mergeSchemas, type InferredSchema } from './schema-infer.ts';

export type Protocol = 'rest' | 'graphql' | 'grpc' | 'websocket';

export interface GraphqlOperationRef {
  type: 'query' | 'mutation' | 'subscription';
  /** Operation name, or "anonymous(field,...)" for an unnamed operation. */
  name: string;
  /** Root fields the operation selects (aliases resolved). */
  rootFields: string[];
}

export interface CallerStats {
  count: number;
  lastSeen: number;
}

export interface OperationRecord {
  /** Authority without port, e.g. "vampi.shop.svc.cluster.local". */
  service: string;
  method: string;
  /** Route template; for requests matched to the spec, base path + spec path. */
  template: string;
  protocol: Protocol;
  graphql?: GraphqlOperationRef;
  /** The spec path this entry matched ("/users/v1/{username}"), when a spec is loaded. */
  specPath?: string;
  count: number;
  firstSeen: number;
  lastSeen: number;
  statuses: Record<string, number>;
  requestContentTypes: string[];
  responseContentTypes: string[];
  /** "jwt", "bearer", "basic", "api-key", "cookie", "mtls", "none". */
  authTypes: string[];
  /** Keyed by caller key (engine/exchange.ts callerKeyOf); at most MAX_CALLERS. */
  callers: Record<string, CallerStats>;
  /** Requests from inside the mesh (workload identity, not relayed) and from outside. */
  eastWest: number;
  northSouth: number;
  /** Path parameters by segment index (names come from the template). */
  pathParams: Record<string, InferredSchema>;
  query: Record<string, InferredSchema>;
  /** Header names other than the common transport ones (values are never kept). */
  headers: string[];
  requestBody?: InferredSchema;
  /** Response body schemas by status code. */
  responses: Record<string, InferredSchema>;
}

export const MAX_CALLERS = 200;
const MAX_LIST = 32;

export function recordKey(r: Pick<OperationRecord, 'method' | 'template' | 'graphql'>): string {
  return r.graphql ? `${r.method} ${r.template} ${r.graphql.type} ${r.graphql.name}` : `${r.method} ${r.template}`;
}

export function emptyRecord(service: string, method: string, template: string, protocol: Protocol, time: number): OperationRecord {
  return {
    service, method, template, protocol, count: 0, firstSeen: time, lastSeen: time,
    statuses: {}, requestContentTypes: [], responseContentTypes: [], authTypes: [], callers: {},
    eastWest: 0, northSouth: 0, pathParams: {}, query: {}, headers: [], responses: {},
  };
}

export function addToList(list: string[], value: string): void {
  if (!list.includes(value) && list.length < MAX_LIST) {
    list.push(value);
    list.sort();
  }
}

export function addCaller(callers: Record<string, CallerStats>, key: string, count: number, lastSeen: number): void {
  const c = callers[key];
  if (c) {
    c.count += count;
    c.lastSeen = Math.max(c.lastSeen, lastSeen);
    return;
  }
  if (Object.keys(callers).length >= MAX_CALLERS) return;
  callers[key] = { count, lastSeen };
}

/** Folds `from` into `into` (same operation, possibly an older template of it). */
export function mergeRecords(into: OperationRecord, from: OperationRecord): void {
  into.count += from.count;
  into.firstSeen = Math.min(into.firstSeen, from.firstSeen);
  into.lastSeen = Math.max(into.lastSeen, from.lastSeen);
  for (const [s, n] of Object.entries(from.statuses)) into.statuses[s] = (into.statuses[s] ?? 0) + n;
  for (const v of from.requestContentTypes) addToList(into.requestContentTypes, v);
  for (const v of from.responseContentTypes) addToList(into.responseContentTypes, v);
  for (const v of from.authTypes) addToList(into.authTypes, v);
  for (const v of from.headers) addToList(into.headers, v);
  for (const [k, c] of Object.entries(from.callers)) addCaller(into.callers, k, c.count, c.lastSeen);
  into.eastWest += from.eastWest;
  into.northSouth += from.northSouth;
  for (const [k, s] of Object.entries(from.pathParams)) mergeInto(into.pathParams, k, s);
  for (const [k, s] of Object.entries(from.query)) mergeInto(into.query, k, s);
  if (from.requestBody) into.requestBody = into.requestBody ? mergeSchemas(into.requestBody, from.requestBody) : from.requestBody;
  for (const [k, s] of Object.entries(from.responses)) mergeInto(into.responses, k, s);
  if (from.specPath && !into.specPath) into.specPath = from.specPath;
}
