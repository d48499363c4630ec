// JSON schema of the Wasm filter's configuration, shared by the server (which builds and serves it)
// and the tests. The filter (filter/assembly/config.ts) enforces the same rules on its side: unknown
// keys, wrong types and out-of-range values are refused there too.
import { Ajv, type ErrorObject } from 'ajv';

const MAX_ENTRIES = 10000;
const nonEmpty = { type: 'string', minLength: 1, maxLength: 2048 } as const;
const optionalText = { type: 'string', maxLength: 2048 } as const;
const list = (items: object) => ({ type: 'array', maxItems: MAX_ENTRIES, items }) as const;
const pair = {
  type: 'object', additionalProperties: false, required: ['identity', 'operation'],
  properties: { identity: nonEmpty, operation: nonEmpty },
} as const;

/** The tables part: what the server refreshes. */
const tableProperties = {
  version: optionalText,
  deny: {
    type: 'object', additionalProperties: false,
    properties: { identities: list(nonEmpty), operations: list(pair) },
  },
  limits: list({
    type: 'object', additionalProperties: false, required: ['identity', 'operation', 'ratePerSecond', 'burst'],
    properties: {
      identity: nonEmpty, operation: nonEmpty,
      ratePerSecond: { type: 'number', minimum: 0.001, maximum: 1e6 },
      burst: { type: 'number', minimum: 1, maximum: 1e6 },
    },
  }),
  templates: list({
    type: 'object', additionalProperties: false, required: ['template'],
    properties: { method: optionalText, template: { ...nonEmpty, pattern: '^/' } },
  }),
  /** Temporary denies from enforced findings (whole caller when operation is absent); the filter
   *  refuses with this status and reason until expiresAtMs (Unix milliseconds). */
  enforced: list({
    type: 'object', additionalProperties: false, required: ['identity', 'status', 'reason', 'expiresAtMs'],
    properties: {
      identity: nonEmpty, operation: nonEmpty, status: { enum: [403, 429] }, reason: nonEmpty, rule: optionalText,
      expiresAtMs: { type: 'number', minimum: 0, maximum: 1e14 },
    },
  }),
  sampling: {
    type: 'object', additionalProperties: false,
    properties: {
      percent: { type: 'number', minimum: 0, maximum: 100 },
      seed: optionalText,
      consistent: { type: 'boolean' },
      alwaysOperations: list(nonEmpty),
      suspectIdentities: list(nonEmpty),
    },
  },
} as const;

export const FILTER_TABLES_SCHEMA = {
  $id: 'https://meshward.dev/schemas/filter-tables.json',
  type: 'object', additionalProperties: false, properties: tableProperties,
} as const;

/** Plugin configuration: the tables plus settings only the deployment (never a refresh) may set. */
export const FILTER_PLUGIN_SCHEMA = {
  $id: 'https://meshward.dev/schemas/filter-plugin.json',
  type: 'object', additionalProperties: false,
  properties: {
    ...tableProperties,
    role: { enum: ['inbound', 'outbound'] },
    self: optionalText,
    trustDomain: optionalText,
    refresh: {
      type: 'object', additionalProperties: false, required: ['cluster', 'path', 'intervalMs'],
      properties: {
        cluster: nonEmpty,
        path: { ...nonEmpty, pattern: '^/' },
        authority: optionalText,
        token: optionalText,
        intervalMs: { type: 'number', minimum: 100, maximum: 86400000 },
        timeoutMs: { type: 'number', minimum: 10, maximum: 60000 },
      },
    },
  },
} as const;

export interface IdentityOperation { identity: string; operation: string }
export interface LimitEntry extends IdentityOperation { ratePerSecond: number; burst: number }
export interface TemplateEntry { method?: string; template: string }
export interface EnforcedEntry { identity: string; operation?: string; status: 403 | 429; reason: string; rule?: string; expiresAtMs: number }

export interface FilterTables {
  version?: string;
  deny?: { identities?: string[]; operations?: IdentityOperation[] };
  limits?: LimitEntry[];
  templates?: TemplateEntry[];
  enforced?: EnforcedEntry[];
  sampling?: { percent?: number; seed?: string; consistent?: boolean; alwaysOperations?: string[]; suspectIdentities?: string[] };
}

export interface FilterPluginConfig extends FilterTables {
  role?: 'inbound' | 'outbound';
  self?: string;
  trustDomain?: string;
  refresh?: { cluster: string; path: string; authority?: string; token?: string; intervalMs: number; timeoutMs?: number };
}

const ajv = new Ajv({ allErrors: false, strict: true });
const validateTablesFn = ajv.compile<FilterTables>(FILTER_TABLES_SCHEMA);
const validatePluginFn = ajv.compile<FilterPluginConfig>(FILTER_PLUGIN_SCHEMA);

export type Validation<T> = { ok: true; value: T } | { ok: false; error: string };

function describe(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  if (!e) return 'invalid';
  const extra = e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : '';
  return `${e.instancePath || '/'} ${e.message ?? 'is invalid'}${extra}`;
}

export function validateTables(doc: unknown): Validation<FilterTables> {
  return validateTablesFn(doc) ? { ok: true, value: doc } : { ok: false, error: describe(validateTablesFn.errors) };
}

export function validatePluginConfig(doc: unknown): Validation<FilterPluginConfig> {
  return validatePluginFn(doc) ? { ok: true, value: doc } : { ok: false, error: describe(validatePluginFn.errors) };
}
