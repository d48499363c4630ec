// Bounded JSON: a linear pre-scan rejects documents deeper or larger than the caps before
// JSON.parse builds anything (JSON.parse itself recurses and would throw RangeError on 100k-deep
// input), and a walker that visits every string value iteratively with its path.

export type JsonProblem =
  | { code: 'json-too-deep'; detail: string }
  | { code: 'json-too-large'; detail: string }
  | { code: 'invalid-json'; detail: string };

export type JsonParseResult = { ok: true; value: unknown } | { ok: false; problem: JsonProblem };

const OPEN_OBJECT = 0x7b, OPEN_ARRAY = 0x5b, CLOSE_OBJECT = 0x7d, CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22, BACKSLASH = 0x5c, COMMA = 0x2c, COLON = 0x3a;

/** Max depth and value count of a JSON text, stopping as soon as a cap is crossed. Linear, no allocation. */
function scanShape(text: string, maxDepth: number, maxNodes: number): JsonProblem | undefined {
  let depth = 0;
  let nodes = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c === QUOTE) { inString = true; continue; }
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      depth++;
      nodes++;
      if (depth > maxDepth) return { code: 'json-too-deep', detail: `JSON nesting deeper than ${maxDepth} levels` };
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    } else if (c === COMMA || c === COLON) {
      nodes++;
    }
    if (nodes > maxNodes * 2) return { code: 'json-too-large', detail: `JSON has more than ${maxNodes} values` };
  }
  return undefined;
}

export function parseJsonBounded(text: string, maxDepth: number, maxNodes: number): JsonParseResult {
  const shape = scanShape(text, maxDepth, maxNodes);
  if (shape) return { ok: false, problem: shape };
  try {
    // JSON.parse defines "__proto__" as an own data property (CreateDataProperty), so parsing
    // cannot pollute prototypes; consumers must still never merge parsed objects into others.
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, problem: { code: 'invalid-json', detail: `body is not valid JSON: ${(err as Error).message.slice(0, 120)}` } };
  }
}

/** A JSON-pointer-like path ("/users/0/email") built from keys, for evidence. */
export type JsonPath = readonly (string | number)[];

/** An array position inside a JSON pointer ("/items/3/name" -> "/items/name" after replacing). */
export const ARRAY_INDEX_SEGMENT = /\/[0-9]{1,9}(?=\/|$)/g;

export function pathToPointer(path: JsonPath): string {
  return path.length === 0 ? '' : '/' + path.map((p) => String(p).replaceAll('~', '~0').replaceAll('/', '~1')).join('/');
}

export interface StringVisit {
  path: JsonPath;
  /** The property name that holds the value (the nearest object key), if any. */
  key: string | undefined;
  value: string;
}

/** Visits every string (and, as strings, every number) leaf iteratively; stops after maxNodes values. */
export function* walkJsonStrings(root: unknown, maxNodes: number): Generator<StringVisit> {
  const stack: { value: unknown; path: (string | number)[]; key: string | undefined }[] = [{ value: root, path: [], key: undefined }];
  let seen = 0;
  while (stack.length > 0 && seen < maxNodes) {
    const { value, path, key } = stack.pop()!;
    seen++;
    if (typeof value === 'string') yield { path, key, value };
    else if (typeof value === 'number') yield { path, key, value: String(value) };
    else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: [...path, i], key });
    } else if (value !== null && typeof value === 'object') {
      const keys = Object.keys(value);
      for (let i = keys.length - 1; i >= 0; i--) {
        const k = keys[i]!;
        stack.push({ value: (value as Record<string, unknown>)[k], path: [...path, k], key: k });
      }
    }
  }
}

/** Own keys anywhere in the document that would pollute a prototype if merged naively. */
export function prototypePollutionKeys(root: unknown, maxNodes: number): string[] {
  const found: string[] = [];
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value: root, path: [] }];
  let seen = 0;
  while (stack.length > 0 && seen < maxNodes && found.length < 10) {
    const { value, path } = stack.pop()!;
    seen++;
    if (Array.isArray(value)) value.forEach((v, i) => stack.push({ value: v, path: [...path, i] }));
    else if (value !== null && typeof value === 'object') {
      for (const k of Object.keys(value)) {
        const childPath = [...path, k];
        if (k === '__proto__' || k === 'constructor' || k === 'prototype') found.push(pathToPointer(childPath));
        stack.push({ value: (value as Record<string, unknown>)[k], path: childPath });
      }
    }
  }
  return found;
}
