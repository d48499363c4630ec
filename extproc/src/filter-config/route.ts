// Serves the filter's tables document for its periodic refresh (GET /v1/filter-config, bearer-token
// protected by the admin router). The store only ever holds a valid document. A filter names its
// sidecar's workload (?namespace=NS&labels=k=v,k=v, from Envoy's node metadata); with a workload
// resolver installed (publisher.ts) it gets the tables of that workload's effective policy.
import type { AdminRouter } from '../admin/server.ts';
import { validateTables, type FilterTables } from './schema.ts';

export const FILTER_CONFIG_PATH = '/v1/filter-config';

/** The sidecar a refresh comes from (its node metadata). */
export interface FilterWorkload {
  namespace: string;
  labels?: Readonly<Record<string, string>>;
}

export interface ServedTables { doc: FilterTables; text: string }

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
// Kubernetes label keys (optional DNS prefix + name) and values.
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
const MAX_LABELS_QUERY = 2048;

/** The workload named by a refresh query; undefined without `namespace`; an Error when malformed. */
export function workloadOfQuery(query: URLSearchParams): FilterWorkload | undefined | Error {
  const namespace = query.get('namespace');
  const labelsText = query.get('labels');
  if (namespace === null) return labelsText === null ? undefined : new Error('labels needs namespace');
  if (!NAMESPACE.test(namespace)) return new Error('namespace must be a Kubernetes namespace name');
  if (labelsText === null || labelsText === '') return { namespace };
  if (labelsText.length > MAX_LABELS_QUERY) return new Error(`labels longer than ${MAX_LABELS_QUERY} characters`);
  const labels: [string, string][] = [];
  for (const pair of labelsText.split(',')) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    const value = eq < 0 ? '' : pair.slice(eq + 1);
    if (eq < 0 || !LABEL_KEY.test(key) || !LABEL_VALUE.test(value)) return new Error('labels must be k=v,k=v with Kubernetes label keys and values');
    labels.push([key, value]);
  }
  // fromEntries defines own properties: a "__proto__" key cannot reach the prototype.
  return { namespace, labels: Object.fromEntries(labels) };
}

export class FilterConfigStore {
  #doc: FilterTables;
  #text: string;
  #resolver: ((workload: FilterWorkload | undefined) => ServedTables) | undefined;

  constructor(initial: FilterTables = {}) {
    this.#doc = initial;
    this.#text = JSON.stringify(initial);
    this.set(initial);
  }

  /** Replaces the served document; throws (and keeps the current one) when it is invalid. */
  set(doc: FilterTables): void {
    const v = validateTables(doc);
    if (!v.ok) throw new Error(`filter configuration refused: ${v.error}`);
    this.#doc = doc;
    this.#text = JSON.stringify(doc);
  }

  get current(): FilterTables { return this.#doc; }
  get text(): string { return this.#text; }

  /** Answers refreshes per workload from now on (the publisher's documentFor). */
  resolveWith(resolver: (workload: FilterWorkload | undefined) => ServedTables): void { this.#resolver = resolver; }

  /** What a refresh from `workload` gets: the resolver's document, else the one document. */
  servedTo(workload: FilterWorkload | undefined): ServedTables {
    return this.#resolver?.(workload) ?? { doc: this.#doc, text: this.#text };
  }
}

export function registerFilterConfigRoute(router: AdminRouter, store: FilterConfigStore): void {
  router.register({
    method: 'GET',
    path: FILTER_CONFIG_PATH,
    scope: 'filter', // the sidecars' own token opens this route and no other
    handle: (request) => {
      const workload = workloadOfQuery(request.query);
      if (workload instanceof Error) return { status: 400, body: { error: 'bad_query', detail: workload.message } };
      const served = store.servedTo(workload);
      return {
        status: 200,
        body: served.text,
        contentType: 'application/json',
        headers: served.doc.version ? { etag: `"${served.doc.version}"` } : undefined,
      };
    },
  });
}
