// Specs per service, from policy: an OpenAPI file (a mounted ConfigMap is a file), a URL or inline
// text, or a GraphQL introspection result. A spec that fails to load never replaces the one in
// force: the service keeps its last good spec and the error is kept for status reports.
import { graphqlSpecFromText, loadGraphqlSpecFile } from './graphql.ts';
import type { Inventory } from './inventory.ts';
import { serviceOf } from './facts.ts';
import { loadSpecFile, loadSpecUrl, parseSpec, SpecError, type LoadSpecOptions } from './spec.ts';

export type SpecSource =
  | { kind: 'openapi-file'; file: string }
  | { kind: 'openapi-url'; url: string }
  | { kind: 'openapi-text'; name: string; text: string }
  | { kind: 'graphql-introspection-file'; file: string }
  | { kind: 'graphql-introspection-text'; name: string; text: string };

export interface SpecStatus {
  service: string;
  /** Name of the spec in force, if any. */
  inForce?: string;
  /** The last load error, when the last load failed (the spec in force is then the previous one). */
  lastError?: string;
}

export type SpecLoadResult = { ok: true; name: string } | { ok: false; error: SpecError; inForce?: string };

export class SpecRegistry {
  readonly #inventory: Inventory;
  readonly #options: LoadSpecOptions;
  readonly #status = new Map<string, SpecStatus>();

  constructor(inventory: Inventory, options: LoadSpecOptions = {}) {
    this.#inventory = inventory;
    this.#options = options;
  }

  async load(serviceName: string, source: SpecSource): Promise<SpecLoadResult> {
    const service = serviceOf(serviceName);
    const status = this.#status.get(service) ?? { service };
    this.#status.set(service, status);
    try {
      let name: string;
      if (source.kind === 'graphql-introspection-file' || source.kind === 'graphql-introspection-text') {
        const spec = source.kind === 'graphql-introspection-file' ? await loadGraphqlSpecFile(source.file, this.#options.maxBytes) : graphqlSpecFromText(source.text, source.name, this.#options.maxBytes);
        this.#inventory.setGraphqlSpec(service, spec);
        name = spec.name;
      } else {
        const spec = source.kind === 'openapi-file' ? await loadSpecFile(source.file, this.#options)
          : source.kind === 'openapi-url' ? await loadSpecUrl(source.url, this.#options)
          : await parseSpec(source.text, source.name, this.#options);
        this.#inventory.setSpec(service, spec);
        name = spec.name;
      }
      status.inForce = name;
      delete status.lastError;
      return { ok: true, name };
    } catch (err) {
      const error = err instanceof SpecError ? err : new SpecError(sourceName(source), '', (err as Error).message);
      status.lastError = error.message;
      return { ok: false, error, ...(status.inForce ? { inForce: status.inForce } : {}) };
    }
  }

  status(): SpecStatus[] {
    return [...this.#status.values()].sort((a, b) => a.service.localeCompare(b.service));
  }
}

function sourceName(source: SpecSource): string {
  return source.kind === 'openapi-url' ? source.url : 'name' in source ? source.name : source.file;
}
