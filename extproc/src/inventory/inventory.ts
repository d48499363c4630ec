// The API inventory: every operation of every service, discovered from traffic (fed as an engine
// observer), templated (spec paths first, then learned templates, then the baseline rules),
// classified against the loaded specs, and persisted through an optional store.
import { PendingMap } from '../engine/pending-map.ts';
import type { EngineObserver } from '../engine/engine.ts';
import type { RequestEvent, ResponseEvent } from '../engine/event.ts';
import { callerKeyOf } from '../engine/exchange.ts';
import { templateSegment } from '../engine/operation.ts';
import {
  apiHeadersOf, authTypesOf, contentTypeOf, isNorthSouth, jsonBodySchema, looksLikeGraphql, protocolOf, queryParamsOf, serviceOf,
} from './facts.ts';
import { graphqlOperationsOf, type GraphqlSchemaSpec } from './graphql.ts';
import { addCaller, addToList, emptyRecord, mergeRecords, recordKey, type OperationRecord } from './record.ts';
import { inferText, mergeInto, mergeSchemas } from './schema-infer.ts';
import type { ApiSpec } from './spec.ts';
import { matchSpecOperation, matchSpecPath } from './spec-match.ts';
import { DEFAULT_LEARNER_LIMITS, PathLearner, isParameter, learnedTemplateTable, splitPath, type LearnedTemplateTable, type LearnerLimits } from './templating.ts';

export interface InventoryLimits {
  maxServices: number;
  maxOperationsPerService: number;
  learner: LearnerLimits;
}

/** Entries per service are per baseline-templated path until folded, hence the room. */
export const DEFAULT_INVENTORY_LIMITS: InventoryLimits = { maxServices: 500, maxOperationsPerService: 2_000, learner: DEFAULT_LEARNER_LIMITS };

function baselineTemplate(path: string): string {
  return splitPath(path).map(templateSegment).join('/');
}

export interface ServiceState {
  service: string;
  learner: PathLearner;
  records: Map<string, OperationRecord>;
  spec?: ApiSpec;
  graphqlSpec?: GraphqlSchemaSpec;
}

/** Where changes go; see store.ts. */
export interface InventorySink {
  recordChanged(service: string, key: string, record: OperationRecord | undefined): void;
  learnerChanged(service: string): void;
}

export interface InventoryStats {
  services: number;
  operations: number;
  /** Observations not recorded because a service or the service count was at its cap. */
  dropped: number;
}

/** A request whose response has not come within this long is no longer waited for. */
const PENDING_TTL_MS = 10 * 60_000;

export class Inventory {
  readonly #limits: InventoryLimits;
  readonly #services = new Map<string, ServiceState>();
  /** Request id -> the entries its request was recorded under, until the response arrives. */
  readonly #pending = new PendingMap<{ service: string; keys: string[] }>({ max: 10_000, ttlMs: PENDING_TTL_MS }, { service: '', keys: [] });
  #sink: InventorySink | undefined;
  #dropped = 0;

  constructor(limits: Partial<InventoryLimits> = {}) {
    this.#limits = { ...DEFAULT_INVENTORY_LIMITS, ...limits };
  }

  setSink(sink: InventorySink | undefined): void {
    this.#sink = sink;
  }

  /** Hooks for Engine.addObserver. */
  observer(): EngineObserver {
    return {
      onDecision: ({ request }) => this.observeRequest(request),
      onResponse: (request, response) => this.observeResponse(request, response),
    };
  }

  stats(): InventoryStats {
    let operations = 0;
    for (const s of this.#services.values()) operations += s.records.size;
    return { services: this.#services.size, operations, dropped: this.#dropped };
  }

  services(): string[] {
    return [...this.#services.keys()].sort();
  }

  state(service: string): ServiceState | undefined {
    return this.#services.get(service);
  }

  #stateFor(service: string): ServiceState | undefined {
    let state = this.#services.get(service);
    if (!state) {
      if (this.#services.size >= this.#limits.maxServices) return undefined;
      state = { service, learner: new PathLearner(this.#limits.learner), records: new Map() };
      this.#services.set(service, state);
    }
    return state;
  }

  /** Restores a service's persisted entries and learner (store.ts). */
  restore(service: string, records: OperationRecord[], learner: PathLearner | undefined): void {
    const state = this.#stateFor(service);
    if (!state) return;
    if (learner) state.learner = learner;
    for (const r of records) state.records.set(recordKey(r), r);
  }

  setSpec(service: string, spec: ApiSpec | undefined): void {
    const state = this.#stateFor(service);
    if (!state) return;
    if (spec) state.spec = spec;
    else delete state.spec;
  }

  setGraphqlSpec(service: string, spec: GraphqlSchemaSpec | undefined): void {
    const state = this.#stateFor(service);
    if (!state) return;
    if (spec) state.graphqlSpec = spec;
    else delete state.graphqlSpec;
  }

  #specTemplate(state: ServiceState, method: string, path: string): { template: string; specPath: string } | undefined {
    if (!state.spec) return undefined;
    const m = matchSpecOperation(state.spec, method, path) ?? matchSpecPath(state.spec, path);
    return m ? { template: m.basePath + m.path, specPath: m.path } : undefined;
  }

  /** The template a concrete request path (or an entry's template) gets now: spec, learned, baseline. */
  templateOf(service: string, method: string, path: string): { template: string; specPath?: string } {
    const state = this.#services.get(serviceOf(service));
    if (!state) return { template: baselineTemplate(path) };
    return this.#specTemplate(state, method, path) ?? { template: state.learner.templateOf(path) };
  }

  observeRequest(request: RequestEvent): void {
    const state = this.#stateFor(serviceOf(request.authority));
    if (!state) {
      this.#dropped++;
      return;
    }
    const q = request.path.indexOf('?');
    const path = q === -1 ? request.path : request.path.slice(0, q);
    state.learner.observe(path);
    this.#sink?.learnerChanged(state.service);
    // Entries are kept per baseline-templated path and grouped under learned templates when read
    // (operations()), so a template learned from little traffic never merges entries for good;
    // they are folded in place only when a service reaches its entry cap.
    const { template, specPath } = this.#specTemplate(state, request.method, path) ?? { template: baselineTemplate(path) };
    let protocol = protocolOf(request);
    const graphqlOps = looksLikeGraphql(request) || state.graphqlSpec ? graphqlOperationsOf(request.method, request.path, request.body) : [];
    if (graphqlOps.length > 0 || (looksLikeGraphql(request) && protocol === 'rest')) protocol = 'graphql';
    const keys: string[] = [];
    for (const graphql of graphqlOps.length > 0 ? graphqlOps : [undefined]) {
      const key = recordKey({ method: request.method, template, ...(graphql ? { graphql } : {}) });
      let record = state.records.get(key);
      if (!record) {
        if (state.records.size >= this.#limits.maxOperationsPerService) this.#fold(state);
        if (state.records.size >= this.#limits.maxOperationsPerService) {
          this.#dropped++;
          continue;
        }
        record = emptyRecord(state.service, request.method, template, protocol, request.time);
        if (graphql) record.graphql = graphql;
        if (specPath) record.specPath = specPath;
        state.records.set(key, record);
      }
      this.#addRequest(record, request, path);
      keys.push(key);
      this.#sink?.recordChanged(state.service, key, record);
    }
    this.#pending.set(request.requestId, { service: state.service, keys });
  }

  #addRequest(record: OperationRecord, request: RequestEvent, path: string): void {
    record.count++;
    record.firstSeen = Math.min(record.firstSeen, request.time);
    record.lastSeen = Math.max(record.lastSeen, request.time);
    addCaller(record.callers, callerKeyOf(request), 1, request.time);
    for (const a of authTypesOf(request)) addToList(record.authTypes, a);
    if (isNorthSouth(request)) record.northSouth++;
    else record.eastWest++;
    const ct = contentTypeOf(request.headers);
    if (ct) addToList(record.requestContentTypes, ct);
    for (const h of apiHeadersOf(request.headers)) addToList(record.headers, h);
    for (const [k, s] of Object.entries(queryParamsOf(request.path))) mergeInto(record.query, k, s);
    const segments = splitPath(path);
    splitPath(record.template).forEach((t, i) => {
      const value = segments[i];
      if (isParameter(t) && value !== undefined) mergeInto(record.pathParams, String(i), inferText(value));
    });
    if (record.protocol === 'rest') {
      const body = jsonBodySchema(request.headers, request.body);
      if (body) record.requestBody = record.requestBody ? mergeSchemas(record.requestBody, body) : body;
    }
  }

  observeResponse(request: RequestEvent, response: ResponseEvent): void {
    let pending = this.#pending.take(request.requestId);
    if (!pending) {
      this.observeRequest(request);
      pending = this.#pending.take(request.requestId);
    }
    if (!pending) return;
    const state = this.#services.get(pending.service);
    if (!state) return;
    for (const key of pending.keys) {
      const record = state.records.get(key);
      if (!record) continue;
      const status = String(response.status);
      record.statuses[status] = (record.statuses[status] ?? 0) + 1;
      const ct = contentTypeOf(response.headers);
      if (ct) addToList(record.responseContentTypes, ct);
      if (record.protocol === 'rest') {
        const body = jsonBodySchema(response.headers, response.body);
        if (body) mergeInto(record.responses, status, body);
      }
      this.#sink?.recordChanged(state.service, key, record);
    }
  }

  /** `record` as it belongs under the current templates (a copy), or the record itself when unchanged. */
  #regrouped(state: ServiceState, record: OperationRecord): OperationRecord {
    if (record.protocol !== 'rest' && record.protocol !== 'websocket') return record;
    const { template, specPath } = this.templateOf(state.service, record.method, record.template);
    if (template === record.template && specPath === record.specPath) return record;
    const moved: OperationRecord = { ...structuredClone(record), template, pathParams: {} };
    if (specPath) moved.specPath = specPath;
    else delete moved.specPath;
    // Path parameter types by position: the old ones, plus literals that became parameters.
    const oldSegments = splitPath(record.template);
    splitPath(template).forEach((t, i) => {
      if (!isParameter(t)) return;
      const old = oldSegments[i];
      const known = record.pathParams[String(i)];
      if (known) mergeInto(moved.pathParams, String(i), known);
      else if (old !== undefined && !isParameter(old)) mergeInto(moved.pathParams, String(i), inferText(old));
    });
    return moved;
  }

  /** Entries grouped under the current templates (copies where grouping changed them). */
  #grouped(state: ServiceState): Map<string, OperationRecord> {
    const out = new Map<string, OperationRecord>();
    // Merged results are fresh copies; the entries themselves are never changed here.
    const copies = new Set<OperationRecord>();
    for (const record of state.records.values()) {
      const r = this.#regrouped(state, record);
      const key = recordKey(r);
      const existing = out.get(key);
      if (!existing) {
        out.set(key, r);
        continue;
      }
      const merged = copies.has(existing) ? existing : structuredClone(existing);
      mergeRecords(merged, r);
      copies.add(merged);
      out.set(key, merged);
    }
    return out;
  }

  /** At the entry cap: replaces the service's entries by their grouping under the current templates, for good. */
  #fold(state: ServiceState): void {
    const grouped = this.#grouped(state);
    for (const key of state.records.keys()) if (!grouped.has(key)) this.#sink?.recordChanged(state.service, key, undefined);
    state.records = grouped;
    for (const key of grouped.keys()) this.#sink?.recordChanged(state.service, key, grouped.get(key));
  }

  /** Operations of one service (or all) under the current templates; entries are not changed. */
  operations(service?: string): OperationRecord[] {
    const states = service ? [this.#services.get(serviceOf(service))].filter((s): s is ServiceState => s !== undefined) : [...this.#services.values()];
    const out: OperationRecord[] = [];
    for (const state of states) out.push(...this.#grouped(state).values());
    return out.sort((a, b) => a.service.localeCompare(b.service) || a.template.localeCompare(b.template) || a.method.localeCompare(b.method) || recordKey(a).localeCompare(recordKey(b)));
  }

  /** The learned template table pushed to the Wasm filter (plain JSON). */
  learnedTemplates(): LearnedTemplateTable {
    return learnedTemplateTable(new Map([...this.#services].map(([s, st]) => [s, st.learner])));
  }
}
