// A request contract learned from traffic, for operations no spec declares: which properties each
// operation's JSON bodies carry and with which types. Once an operation has shown a consistent
// shape, a privileged property it never carried (admin, role, balance...) is mass assignment and a
// property whose type changes is a contract violation. Bounded per operation.
/** Property names that grant rights or value when a client may set them. Linear (alternation of literals). */
export const PRIVILEGED_PROPERTY = /^(?:is_?)?(?:admin|administrator|superuser|super_?user|root|staff|moderator|privileged)$|^(?:role|roles|permission|permissions|privilege|privileges|scope|scopes|groups|acl|access_?level|user_?type|account_?type|tier|balance|credit|credits|wallet|discount|verified|is_?verified|email_?verified|approved|is_?approved|activated|is_?active|owner_?id|tenant_?id|org_?id)$/i;

export const MAX_PROPERTIES_PER_OPERATION = 128;
const MAX_DEPTH = 4;

export type JsonType = 'string' | 'number' | 'boolean' | 'null' | 'array' | 'object';

export function jsonType(v: unknown): JsonType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v === 'object' ? 'object' : (typeof v as 'string' | 'number' | 'boolean');
}

/** Object properties of a JSON body as pointers (array positions left out), with their types. */
export function propertyTypes(body: unknown, maxNodes: number): Map<string, JsonType> {
  const out = new Map<string, JsonType>();
  const stack: { value: unknown; pointer: string; depth: number }[] = [{ value: body, pointer: '', depth: 0 }];
  let seen = 0;
  while (stack.length > 0 && seen++ < maxNodes && out.size < MAX_PROPERTIES_PER_OPERATION) {
    const { value, pointer, depth } = stack.pop()!;
    if (depth >= MAX_DEPTH || value === null || typeof value !== 'object') continue;
    if (Array.isArray(value)) { for (const v of value.slice(0, 20)) stack.push({ value: v, pointer, depth: depth + 1 }); continue; }
    for (const [k, v] of Object.entries(value)) {
      const p = `${pointer}/${k.slice(0, 64).replaceAll('~', '~0').replaceAll('/', '~1')}`;
      out.set(p, jsonType(v));
      stack.push({ value: v, pointer: p, depth: depth + 1 });
    }
  }
  return out;
}

interface PropertyStats { count: number; types: Set<JsonType> }

export interface LearnedShape {
  samples: number;
  properties: Map<string, PropertyStats>;
}

export interface LearnedViolation { kind: 'unknown-property' | 'wrong-type'; pointer: string; detail: string }

/** Compares a body with what the operation has shown; judges only after `minSamples` bodies. */
export function compareWithLearned(shape: LearnedShape, properties: ReadonlyMap<string, JsonType>, minSamples: number): LearnedViolation[] {
  if (shape.samples < minSamples) return [];
  const out: LearnedViolation[] = [];
  for (const [pointer, type] of properties) {
    const stats = shape.properties.get(pointer);
    const name = pointer.slice(pointer.lastIndexOf('/') + 1);
    if (stats === undefined) {
      if (shape.properties.size < MAX_PROPERTIES_PER_OPERATION && PRIVILEGED_PROPERTY.test(name)) {
        out.push({ kind: 'unknown-property', pointer, detail: `privileged property "${name}" never sent in ${shape.samples} earlier requests` });
      }
    } else if (stats.count >= minSamples && stats.types.size === 1 && !stats.types.has(type) && !(type === 'null')) {
      out.push({ kind: 'wrong-type', pointer, detail: `${type} where ${stats.count} earlier requests sent ${[...stats.types][0]}` });
    }
  }
  return out;
}

export function learnShape(shape: LearnedShape, properties: ReadonlyMap<string, JsonType>): void {
  shape.samples++;
  for (const [pointer, type] of properties) {
    let stats = shape.properties.get(pointer);
    if (!stats) {
      if (shape.properties.size >= MAX_PROPERTIES_PER_OPERATION) continue;
      stats = { count: 0, types: new Set() };
      shape.properties.set(pointer, stats);
    }
    stats.count++;
    stats.types.add(type);
  }
}
