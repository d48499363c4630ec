// Inferred JSON Schemas (2020-12 / OpenAPI 3.1 dialect) from observed values, merged across
// observations. Bounded: nesting depth, properties per object and enum-free (values are never kept,
// only their types and formats, so no secret lands in the inventory).

export interface InferredSchema {
  type?: string | string[];
  format?: string;
  properties?: Record<string, InferredSchema>;
  items?: InferredSchema;
}

export const MAX_SCHEMA_DEPTH = 6;
export const MAX_PROPERTIES = 64;

const FORMATS: [string, RegExp][] = [
  ['uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i],
  ['date-time', /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$/],
  ['date', /^\d{4}-\d{2}-\d{2}$/],
  ['email', /^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$/],
  ['uri', /^https?:\/\/[^\s]+$/],
  ['ipv4', /^(\d{1,3}\.){3}\d{1,3}$/],
];

export function stringFormat(s: string): string | undefined {
  if (s.length > 256) return undefined;
  for (const [format, re] of FORMATS) if (re.test(s)) return format;
  return undefined;
}

/** Schema of a JSON value. */
export function inferJson(value: unknown, depth = 0): InferredSchema {
  if (value === null) return { type: 'null' };
  if (typeof value === 'boolean') return { type: 'boolean' };
  if (typeof value === 'number') return { type: Number.isInteger(value) ? 'integer' : 'number' };
  if (typeof value === 'string') {
    const format = stringFormat(value);
    return format ? { type: 'string', format } : { type: 'string' };
  }
  if (depth >= MAX_SCHEMA_DEPTH) return { type: Array.isArray(value) ? 'array' : 'object' };
  if (Array.isArray(value)) {
    let items: InferredSchema | undefined;
    for (const v of value.slice(0, 32)) items = items ? mergeSchemas(items, inferJson(v, depth + 1)) : inferJson(v, depth + 1);
    return items ? { type: 'array', items } : { type: 'array' };
  }
  if (typeof value === 'object') {
    const properties: Record<string, InferredSchema> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>).slice(0, MAX_PROPERTIES)) properties[k] = inferJson(v, depth + 1);
    return { type: 'object', properties };
  }
  return {};
}

/** Schema of a textual value (path segment, query value, header): integers, numbers, booleans, strings. */
export function inferText(value: string): InferredSchema {
  if (/^-?\d{1,15}$/.test(value)) return { type: 'integer' };
  if (/^-?\d+\.\d+$/.test(value) && value.length <= 32) return { type: 'number' };
  if (value === 'true' || value === 'false') return { type: 'boolean' };
  return inferJson(value);
}

function types(s: InferredSchema): string[] {
  return s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type];
}

export function mergeSchemas(a: InferredSchema, b: InferredSchema, depth = 0): InferredSchema {
  const t = new Set([...types(a), ...types(b)]);
  if (t.has('number')) t.delete('integer');
  const out: InferredSchema = {};
  const list = [...t].sort();
  if (list.length === 1) out.type = list[0]!;
  else if (list.length > 1) out.type = list;
  if (a.format !== undefined && a.format === b.format) out.format = a.format;
  else if (a.format !== undefined && !types(b).includes('string')) out.format = a.format;
  else if (b.format !== undefined && !types(a).includes('string')) out.format = b.format;
  if ((a.properties || b.properties) && depth < MAX_SCHEMA_DEPTH) {
    const properties: Record<string, InferredSchema> = { ...(a.properties ?? {}) };
    for (const [k, v] of Object.entries(b.properties ?? {})) {
      if (properties[k]) properties[k] = mergeSchemas(properties[k], v, depth + 1);
      else if (Object.keys(properties).length < MAX_PROPERTIES) properties[k] = v;
    }
    out.properties = properties;
  }
  if (a.items && b.items) out.items = mergeSchemas(a.items, b.items, depth + 1);
  else if (a.items ?? b.items) out.items = a.items ?? b.items;
  return out;
}

/** Merges into a record keyed by name, creating the entry when absent; respects MAX_PROPERTIES. */
export function mergeInto(target: Record<string, InferredSchema>, name: string, schema: InferredSchema): void {
  const existing = target[name];
  if (existing) target[name] = mergeSchemas(existing, schema);
  else if (Object.keys(target).length < MAX_PROPERTIES) target[name] = schema;
}
