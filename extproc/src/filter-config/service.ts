// Runs the filter-configuration endpoint for `meshward serve`: the admin HTTP server (bearer token
// from a file) with GET /v1/filter-config, serving tables from a file (JSON or YAML, the document
// format of schema.ts) until the policy runtime pushes its own through the store.
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import YAML from 'yaml';
import type { Logger } from '../log.ts';
import { AdminRouter, startAdminServer, type RunningAdminServer } from '../admin/server.ts';
import { FilterConfigStore, registerFilterConfigRoute } from './route.ts';
import { validateTables, type FilterTables } from './schema.ts';

const MAX_FILE_BYTES = 4 * 1024 * 1024;

/** Reads a bearer token file (whitespace trimmed); refuses tokens shorter than 16 characters. */
export async function readTokenFile(file: string): Promise<string> {
  const token = (await readFile(file, 'utf8')).trim();
  if (token.length < 16 || /\s/.test(token)) throw new Error(`${file}: token must be at least 16 characters without whitespace`);
  return token;
}

/** Parses and validates a tables document; versions it by content when it names no version. */
export function parseFilterTables(source: string, text: string): FilterTables {
  if (Buffer.byteLength(text) > MAX_FILE_BYTES) throw new Error(`${source}: larger than ${MAX_FILE_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = YAML.parse(text, { maxAliasCount: 100 }) ?? {};
  } catch (err) {
    throw new Error(`${source}: not valid YAML/JSON: ${(err as Error).message}`);
  }
  const v = validateTables(doc);
  if (!v.ok) throw new Error(`${source}: ${v.error}`);
  const tables = v.value;
  return tables.version ? tables : { version: createHash('sha256').update(JSON.stringify(tables)).digest('hex').slice(0, 16), ...tables };
}

export interface FilterConfigService {
  readonly store: FilterConfigStore;
  readonly router: AdminRouter;
  readonly port: number;
  close(): Promise<void>;
}

export async function startFilterConfigService(options: { host: string; port: number; tokenFile: string; filterTokenFile?: string; tablesFile?: string }, log: Logger): Promise<FilterConfigService> {
  const token = await readTokenFile(options.tokenFile);
  const filterToken = options.filterTokenFile !== undefined ? await readTokenFile(options.filterTokenFile) : undefined;
  if (filterToken === undefined) log.warn('no filter token (--filter-token-file): sidecars refresh their tables with the admin token, which any meshed pod can read from its Envoy config dump; give them a filter token instead');
  const initial = options.tablesFile ? parseFilterTables(options.tablesFile, await readFile(options.tablesFile, 'utf8')) : {};
  const store = new FilterConfigStore(initial);
  const router = new AdminRouter();
  registerFilterConfigRoute(router, store);
  const server: RunningAdminServer = await startAdminServer(router, { host: options.host, port: options.port, token, ...(filterToken !== undefined ? { filterToken } : {}) }, log);
  return { store, router, port: server.port, close: () => server.close() };
}
