// Request and response contracts from an OpenAPI 3 operation (dereferenced, as the inventory's
// spec loader hands it over), checked with ajv. Each operation's validators are compiled once and
// cached on the operation object. Objects that declare properties are closed
// (unevaluatedProperties: false) unless the spec opens them, so undeclared fields surface as
// mass assignment (requests) or excessive exposure (responses); readOnly properties are
// undeclared for requests and writeOnly ones for responses.
import { Ajv2019, type ErrorObject, type ValidateFunction } from 'ajv/dist/2019.js';
import addFormats from 'ajv-formats';
import { safeRegExp } from './safe-regexp.ts';
import type { DecodedBody } from './body.ts';
import { isJsonMediaType } from './body.ts';

type Json = Record<string, unknown>;

export interface OpenApiParameter { name: string; in: string; required?: boolean; schema?: Json }
export interface OpenApiMedia { schema?: Json }
export interface OpenApiOperation {
  operationId?: string;
  parameters?: OpenApiParameter[];
  requestBody?: { required?: boolean; content?: Record<string, OpenApiMedia> };
  responses?: Record<string, { content?: Record<string, OpenApiMedia> }>;
  /** The whole (dereferenced) spec document: recursive schemas keep internal "#/..." $refs into it. */
  specDocument?: Json;
}

export type ViolationKind =
  | 'unknown-property' | 'wrong-type' | 'missing-required' | 'out-of-range' | 'schema-violation'
  | 'malformed-body' | 'unexpected-content-type' | 'missing-body';

export interface ContractViolation {
  kind: ViolationKind;
  location: 'body' | 'query' | 'path' | 'response';
  /** JSON pointer of the offending value (or the parameter name); never the value itself. */
  pointer: string;
  detail: string;
}

type Direction = 'request' | 'response';
const COMPOSITION = ['allOf', 'anyOf', 'oneOf'] as const;
const MAX_VIOLATIONS = 20;

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const MAX_REF_HOPS = 20;

/** Follows internal "#/a/b" $refs into `document` (a dereferenced spec keeps them for recursive
 *  schemas); anything else, or a ref that leads nowhere, is returned as it is. */
function resolveRefs(node: unknown, document: Json | undefined): unknown {
  let current = node;
  for (let hop = 0; hop < MAX_REF_HOPS && document && isObject(current) && typeof current.$ref === 'string' && current.$ref.startsWith('#/'); hop++) {
    let target: unknown = document;
    for (const raw of current.$ref.slice(2).split('/')) {
      const key = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
      target = isObject(target) && Object.hasOwn(target, key) ? target[key] : undefined;
    }
    if (!isObject(target)) return current;
    current = target;
  }
  return current;
}

/** Nodes reachable from themselves (recursive schemas); dereferenced specs contain real JS cycles. */
function findCycles(root: unknown, document: Json | undefined): Set<object> {
  const cyclic = new Set<object>();
  const onStack = new Set<object>();
  const done = new Set<object>();
  const visit = (raw: unknown): void => {
    const node = resolveRefs(raw, document);
    if (node === null || typeof node !== 'object') return;
    if (onStack.has(node)) { cyclic.add(node); return; }
    if (done.has(node)) return;
    onStack.add(node);
    for (const child of Object.values(node)) visit(child);
    onStack.delete(node);
    done.add(node);
  };
  visit(root);
  return cyclic;
}

/** OpenAPI 3.0 schema object -> JSON Schema 2019-09 for ajv, closed as described above. */
export function toJsonSchema(root: Json, direction: Direction, document?: Json): Json {
  const cyclic = findCycles(root, document);
  const ids = new Map<object, string>();
  const defs: Json = {};

  const schema = (raw: unknown, inComposition: boolean): unknown => {
    const node = resolveRefs(raw, document);
    if (!isObject(node)) return node;
    if (cyclic.has(node)) {
      let id = ids.get(node);
      if (id === undefined) {
        id = `s${ids.size}`;
        ids.set(node, id);
        defs[id] = transform(node, false);
      }
      return { $ref: `#/$defs/${id}` };
    }
    return transform(node, inComposition);
  };

  const transform = (node: Json, inComposition: boolean): Json => {
    const out: Json = {};
    const hidden = new Set<string>();
    for (const [key, value] of Object.entries(node)) {
      if (key === 'properties' && isObject(value)) {
        const props: Json = {};
        for (const [name, sub] of Object.entries(value)) {
          const subObj = isObject(sub) ? sub : {};
          if ((direction === 'request' && subObj.readOnly === true) || (direction === 'response' && subObj.writeOnly === true)) { hidden.add(name); continue; }
          props[name] = schema(sub, false);
        }
        out.properties = props;
      } else if (key === 'patternProperties' && isObject(value)) {
        out.patternProperties = Object.fromEntries(Object.entries(value).map(([p, s]) => [p, schema(s, false)]));
      } else if ((COMPOSITION as readonly string[]).includes(key) && Array.isArray(value)) {
        out[key] = value.map((s) => schema(s, true));
      } else if (key === 'items' || key === 'not' || (key === 'additionalProperties' && isObject(value))) {
        out[key] = schema(value, false);
      } else if (key === 'nullable' || key === 'example' || key === 'examples' || key === 'xml' || key === 'externalDocs' || key === 'discriminator' || key === 'deprecated' || key.startsWith('x-')) {
        continue;
      } else if (key === 'exclusiveMinimum' || key === 'exclusiveMaximum') {
        // OpenAPI 3.0 booleans modify minimum/maximum; JSON Schema uses the number itself.
        if (value === true) out[key] = node[key === 'exclusiveMinimum' ? 'minimum' : 'maximum'];
        else if (typeof value === 'number') out[key] = value;
      } else {
        out[key] = value;
      }
    }
    if (out.exclusiveMinimum !== undefined && node.exclusiveMinimum === true) delete out.minimum;
    if (out.exclusiveMaximum !== undefined && node.exclusiveMaximum === true) delete out.maximum;
    if (Array.isArray(out.required) && hidden.size > 0) out.required = out.required.filter((r) => !hidden.has(String(r)));
    if (node.nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
    const declaresProperties = isObject(node.properties) || COMPOSITION.some((c) => Array.isArray(node[c]));
    if (declaresProperties && !inComposition && node.additionalProperties === undefined && node.unevaluatedProperties === undefined) {
      out.unevaluatedProperties = false;
    }
    return out;
  };

  const top = schema(root, false) as Json;
  return ids.size === 0 ? top : { ...top, $defs: defs };
}

function createAjv(coerceTypes: boolean): Ajv2019 {
  const ajv = new Ajv2019({ strict: false, allErrors: true, coerceTypes, logger: false, validateSchema: false, code: { regExp: safeRegExp } });
  addFormats.default(ajv); // CommonJS module: its plugin is the `default` export
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  for (const f of ['float', 'double']) ajv.addFormat(f, { type: 'number', validate: () => true });
  for (const f of ['byte', 'binary', 'password']) ajv.addFormat(f, () => true);
  return ajv;
}

export function classifyAjvError(e: ErrorObject): ViolationKind {
  switch (e.keyword) {
    case 'unevaluatedProperties': case 'additionalProperties': return 'unknown-property';
    case 'type': return 'wrong-type';
    case 'required': case 'dependentRequired': return 'missing-required';
    case 'minimum': case 'maximum': case 'exclusiveMinimum': case 'exclusiveMaximum': case 'multipleOf':
    case 'minLength': case 'maxLength': case 'minItems': case 'maxItems': case 'minProperties': case 'maxProperties':
    case 'enum': case 'const': case 'pattern': case 'format': case 'uniqueItems':
      return 'out-of-range';
    default: return 'schema-violation';
  }
}

function violationsOf(errors: readonly ErrorObject[] | null | undefined, location: ContractViolation['location'], pointerPrefix = ''): ContractViolation[] {
  const out: ContractViolation[] = [];
  for (const e of errors ?? []) {
    if (out.length >= MAX_VIOLATIONS) break;
    const kind = classifyAjvError(e);
    // Composition keywords only summarize their branches' errors, which are reported too.
    if (kind === 'schema-violation' && (e.keyword === 'oneOf' || e.keyword === 'anyOf' || e.keyword === 'if')) continue;
    let pointer = pointerPrefix + e.instancePath;
    let detail = e.message ?? e.keyword;
    if (kind === 'unknown-property') {
      const prop = String((e.params as { unevaluatedProperty?: string; additionalProperty?: string }).unevaluatedProperty ?? (e.params as { additionalProperty?: string }).additionalProperty ?? '');
      pointer = `${pointer}/${prop.replaceAll('~', '~0').replaceAll('/', '~1')}`;
      detail = `property "${prop.slice(0, 64)}" is not declared in the schema`;
    } else if (kind === 'missing-required') {
      detail = `required property "${String((e.params as { missingProperty?: string }).missingProperty ?? '').slice(0, 64)}" is missing`;
    }
    if (!out.some((o) => o.kind === kind && o.pointer === pointer)) out.push({ kind, location, pointer, detail });
  }
  return out;
}

/** A media entry for a content type: exact, then a JSON entry for any JSON type, then a wildcard. */
/** The declared media key for a content type: exact, then any JSON entry for a JSON type, then a wildcard. */
function mediaKeyFor(content: Record<string, OpenApiMedia> | undefined, mediaType: string): string | undefined {
  if (!content) return undefined;
  if (Object.hasOwn(content, mediaType)) return mediaType;
  const keys = Object.keys(content);
  if (isJsonMediaType(mediaType)) {
    const json = keys.find((k) => isJsonMediaType(k.split(';')[0]!.trim().toLowerCase()));
    if (json) return json;
  }
  return keys.find((k) => k === '*/*' || k === 'application/*');
}

/** The declared response key for a status: exact, then "2XX", then "default". */
function responseKeyFor(op: OpenApiOperation, status: number): string | undefined {
  const r = op.responses;
  if (!r) return undefined;
  const s = String(status);
  return [s, `${s[0]}XX`, `${s[0]}xx`, 'default'].find((k) => Object.hasOwn(r, k));
}

export class ContractValidator {
  readonly #bodyAjv = createAjv(false);
  readonly #paramAjv = createAjv(true);
  readonly #cache = new WeakMap<object, Map<string, ValidateFunction | null>>();
  /** Schemas ajv refused (invalid spec): reported once each, never retried. */
  readonly compileErrors: string[] = [];
  #compilations = 0;

  /** How many schemas were compiled so far (each operation's schemas are compiled once). */
  get compilations(): number { return this.#compilations; }

  #compiled(op: OpenApiOperation, key: string, build: () => Json | undefined, coerce: boolean): ValidateFunction | null {
    let perOp = this.#cache.get(op);
    if (!perOp) { perOp = new Map(); this.#cache.set(op, perOp); }
    const hit = perOp.get(key);
    if (hit !== undefined) return hit;
    let fn: ValidateFunction | null = null;
    const schema = build();
    if (schema) {
      this.#compilations++;
      try {
        fn = (coerce ? this.#paramAjv : this.#bodyAjv).compile(schema);
      } catch (err) {
        if (this.compileErrors.length < 100) this.compileErrors.push(`${op.operationId ?? '?'} ${key}: ${(err as Error).message.slice(0, 200)}`);
      }
    }
    perOp.set(key, fn);
    return fn;
  }

  #paramValidator(op: OpenApiOperation, location: 'query' | 'path'): ValidateFunction | null {
    return this.#compiled(op, `params:${location}`, () => {
      const params = (op.parameters ?? []).filter((p) => p.in === location && isObject(p.schema));
      if (params.length === 0) return undefined;
      const properties: Json = {};
      for (const p of params) properties[p.name] = toJsonSchema(p.schema!, 'request', op.specDocument);
      return { type: 'object', properties, required: params.filter((p) => p.required === true || location === 'path').map((p) => p.name) };
    }, true);
  }

  validateRequest(op: OpenApiOperation, body: DecodedBody, query: readonly [string, string][], pathParams?: Readonly<Record<string, string>>): ContractViolation[] {
    const out: ContractViolation[] = [];
    const queryValidator = this.#paramValidator(op, 'query');
    if (queryValidator) {
      const values: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
      for (const [k, v] of query) {
        const prev = values[k];
        values[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
      }
      // Unknown query parameters are common (cache busters, tracking) and not mass assignment.
      if (!queryValidator(values)) out.push(...violationsOf(queryValidator.errors, 'query').filter((v) => v.kind !== 'unknown-property'));
    }
    const pathValidator = pathParams ? this.#paramValidator(op, 'path') : null;
    if (pathValidator && pathParams && !pathValidator({ ...pathParams })) out.push(...violationsOf(pathValidator.errors, 'path'));

    const rb = op.requestBody;
    if (!rb?.content) return out;
    if (body.content.kind === 'empty') {
      if (rb.required === true) out.push({ kind: 'missing-body', location: 'body', pointer: '', detail: 'the operation requires a request body' });
      return out;
    }
    const mediaKey = mediaKeyFor(rb.content, body.mediaType);
    const media = mediaKey === undefined ? undefined : rb.content[mediaKey];
    if (!media) {
      out.push({ kind: 'unexpected-content-type', location: 'body', pointer: '', detail: `content type ${JSON.stringify(body.mediaType.slice(0, 80))} is not declared for this operation` });
      return out;
    }
    const malformed = body.problems.find((p) => p.code === 'invalid-json' || p.code === 'json-too-deep' || p.code === 'json-too-large');
    if (malformed) {
      out.push({ kind: 'malformed-body', location: 'body', pointer: '', detail: malformed.detail });
      return out;
    }
    let instance: unknown;
    if (body.content.kind === 'json') instance = body.content.value;
    else if (body.content.kind === 'form' || body.content.kind === 'multipart') instance = Object.fromEntries(body.content.fields);
    else return out;
    const validator = this.#compiled(op, `body:${mediaKey}`, () => (isObject(media.schema) ? toJsonSchema(media.schema, 'request', op.specDocument) : undefined), body.content.kind !== 'json');
    if (validator && !validator(instance)) out.push(...violationsOf(validator.errors, 'body'));
    return out;
  }

  /** Response body against the declared response schema; only JSON bodies are checked. */
  validateResponse(op: OpenApiOperation, status: number, body: DecodedBody): ContractViolation[] {
    if (body.content.kind !== 'json') return [];
    const responseKey = responseKeyFor(op, status);
    const content = responseKey === undefined ? undefined : op.responses![responseKey]?.content;
    const mediaKey = mediaKeyFor(content, body.mediaType || 'application/json');
    const media = mediaKey === undefined ? undefined : content![mediaKey];
    if (!media || !isObject(media.schema)) return [];
    const validator = this.#compiled(op, `response:${responseKey}:${mediaKey}`, () => toJsonSchema(media.schema!, 'response', op.specDocument), false);
    if (!validator || validator(body.content.value)) return [];
    return violationsOf(validator.errors, 'response');
  }
}
