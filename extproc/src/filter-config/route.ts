// Serves the filter's tables document for its periodic refresh (GET /v1/filter-config, bearer-token
// protected by the admin router). The store only ever holds a valid document.
import type { AdminRouter } from '../admin/server.ts';
import { validateTables, type FilterTables } from './schema.ts';

export const FILTER_CONFIG_PATH = '/v1/filter-config';

export class FilterConfigStore {
  #doc: FilterTables;
  #text: string;

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
}

export function registerFilterConfigRoute(router: AdminRouter, store: FilterConfigStore): void {
  router.register({
    method: 'GET',
    path: FILTER_CONFIG_PATH,
    handle: () => ({
      status: 200,
      body: store.text,
      contentType: 'application/json',
      headers: store.current.version ? { etag: `"${store.current.version}"` } : undefined,
    }),
  });
}
