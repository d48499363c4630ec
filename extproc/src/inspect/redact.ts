// Redaction of sensitive response values (enforce mode, content-exposure's `redact` kinds): the JSON
// body is parsed again, each listed value replaced with "[redacted]", and serialised. Only plain
// (not content-encoded) JSON bodies that arrived whole are rewritten; anything else is left as it is
// and the caller reports that redaction was not possible.
import { isJsonMediaType, parseMediaType } from './body.ts';

export const REDACTED = '[redacted]';

type Headers = ReadonlyMap<string, readonly string[]>;

function contentEncoded(headers: Headers): boolean {
  const encoding = headers.get('content-encoding')?.[0]?.trim().toLowerCase();
  return encoding !== undefined && encoding !== '' && encoding !== 'identity';
}

/** Whether a response of this type can carry values redaction is about: JSON, text or undeclared.
 *  Others (images, archives, octet streams) are never worth buffering for it. A content-encoded
 *  one is: it cannot be rewritten, but the finding then says redaction was not possible. */
export function mayRedact(headers: Headers): boolean {
  const type = parseMediaType(headers.get('content-type')?.[0]).type;
  return type === '' || isJsonMediaType(type) || type.startsWith('text/');
}

type Json = unknown;

function isContainer(v: Json): v is Record<string, Json> | Json[] {
  return v !== null && typeof v === 'object';
}

/** Sets `root[path] = REDACTED` for an existing string leaf; own properties only (a "__proto__"
 *  key from JSON.parse is an own property and is replaced as data, never walked as a prototype). */
function redactPath(root: Json, path: readonly (string | number)[]): boolean {
  let node = root;
  for (let i = 0; i < path.length; i++) {
    if (!isContainer(node)) return false;
    const key = path[i]!;
    if (!Object.hasOwn(node, key)) return false;
    if (i === path.length - 1) {
      if (typeof (node as Record<string, Json>)[key as string] !== 'string') return false;
      Object.defineProperty(node, key, { value: REDACTED, enumerable: true, writable: true, configurable: true });
      return true;
    }
    node = (node as Record<string, Json>)[key as string];
  }
  return false;
}

/** The body with the values at `paths` redacted, or undefined when it cannot be rewritten safely. */
export function redactJsonBody(body: Buffer, headers: Headers, paths: readonly (readonly (string | number)[])[]): { body: Buffer; redacted: number } | undefined {
  if (contentEncoded(headers)) return undefined;
  let value: Json;
  try { value = JSON.parse(body.toString('utf8')); } catch { return undefined; }
  let redacted = 0;
  for (const p of paths) if (redactPath(value, p)) redacted++;
  if (redacted === 0) return undefined;
  return { body: Buffer.from(JSON.stringify(value)), redacted };
}
