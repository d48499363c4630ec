// Kubernetes structural schemas (CRD openAPIV3Schema) as strict JSON Schemas for ajv.
// The API server prunes unknown fields silently; meshward rejects them instead (as
// `kubectl apply --validate=strict` does), so a typo never turns into a silently ignored setting.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

type Schema = Record<string, unknown>;

function isObject(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Copies a structural schema, closing every object that declares properties (unless it preserves unknown fields). */
export function strictSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strictSchema);
  if (!isObject(node)) return node;
  const out: Schema = {};
  for (const [k, v] of Object.entries(node)) {
    if (k.startsWith('x-kubernetes-')) continue;
    // `default` is applied by the API server; here absent fields are defaulted by the loader.
    if (k === 'default' || k === 'description') continue;
    out[k] = k === 'properties' && isObject(v)
      ? Object.fromEntries(Object.entries(v).map(([p, s]) => [p, strictSchema(s)]))
      : strictSchema(v);
  }
  if (node['x-kubernetes-int-or-string'] === true) {
    delete out.type;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  if (isObject(node.properties) && node['x-kubernetes-preserve-unknown-fields'] !== true && node.additionalProperties === undefined) {
    out.additionalProperties = false;
  }
  return out;
}

export interface FieldError {
  /** JSONPath-like location, e.g. `spec.rateLimits[2].requests`. */
  path: string;
  reason: string;
}

/** `/spec/rateLimits/2/requests` -> `spec.rateLimits[2].requests`. */
export function fieldPath(pointer: string, extra?: string): string {
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : (out === '' ? p : `.${p}`);
  return out === '' ? '(root)' : out;
}

function describe(e: ErrorObject): FieldError {
  switch (e.keyword) {
    case 'additionalProperties':
      return { path: fieldPath(e.instancePath, String(e.params.additionalProperty)), reason: 'unknown field' };
    case 'required':
      return { path: fieldPath(e.instancePath, String(e.params.missingProperty)), reason: 'required field missing' };
    case 'enum':
      return { path: fieldPath(e.instancePath), reason: `must be one of: ${(e.params.allowedValues as unknown[]).join(', ')}` };
    case 'type':
      return { path: fieldPath(e.instancePath), reason: `must be of type ${String(e.params.type)}` };
    default:
      return { path: fieldPath(e.instancePath), reason: e.message ?? e.keyword };
  }
}

export interface StrictValidator {
  /** Every violation (bounded by the schema's own size limits), or an empty list. */
  (doc: unknown): FieldError[];
}

/** Compiles a CRD version's openAPIV3Schema into a strict validator. */
export function compileStructuralSchema(openAPIV3Schema: unknown): StrictValidator {
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats.default(ajv);
  const root = strictSchema(openAPIV3Schema) as Schema;
  // Every Kubernetes object may carry these, whether or not a CRD's schema lists them.
  root.properties = { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' }, ...(root.properties as Schema | undefined) };
  const validate: ValidateFunction = ajv.compile(root);
  return (doc) => (validate(doc) ? [] : (validate.errors ?? []).map(describe));
}
