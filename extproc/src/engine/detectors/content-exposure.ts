// API3 excessive data exposure in responses: properties the response schema does not declare
// (reported once per operation and property), secrets that should never leave a service, and
// per-caller learning of which sensitive fields each identity normally receives: an established
// caller that suddenly receives a sensitive field it never got from this operation is reported.
// Values are never copied into evidence, only their kind, field and a short hash.
import type { LRUCache } from 'lru-cache';
import type { Detector } from '../detector.ts';
import type { ResponseEvent } from '../event.ts';
import { mayRedact } from '../../inspect/redact.ts';
import { operationKey, type Exchange } from '../exchange.ts';
import type { Finding } from '../finding.ts';
import { findingFor, isSuccess, type DetectorContext } from '../detector-context.ts';
import { boundedMap } from '../state.ts';
import { sha256Hex } from '../jwt.ts';
import type { ContentContext } from '../../inspect/settings.ts';
import type { DecodedBody } from '../../inspect/body.ts';
import { bodyEvidence } from '../../inspect/evidence.ts';
import { ARRAY_INDEX_SEGMENT, walkJsonStrings } from '../../inspect/json.ts';
import { MAX_SCANNED_CHARS, scanSensitive, type SensitiveKind } from '../../inspect/sensitive.ts';

export const CONTENT_EXPOSURE_DETECTOR = 'content-exposure';

const MAX_FIELDS_PER_KEY = 256;
const MAX_TEXT_SCAN = 64 * 1024;

export interface SensitiveField {
  kind: SensitiveKind;
  /** Field path without array positions ("/data/users/email"), the unit of learning. */
  field: string;
  valueHash: string;
}

/** Sensitive values in a decoded response body, one entry per kind and field. */
export function sensitiveFields(body: DecodedBody, maxNodes: number): SensitiveField[] {
  const out = new Map<string, SensitiveField>();
  const add = (kind: SensitiveKind, field: string, value: string): void => {
    const id = `${kind}@${field}`;
    if (!out.has(id)) out.set(id, { kind, field, valueHash: sha256Hex(value, 12) });
  };
  if (body.content.kind === 'json') {
    for (const v of walkJsonStrings(body.content.value, maxNodes)) {
      const field = '/' + v.path.filter((p) => typeof p === 'string').join('/');
      for (const hit of scanSensitive(v.value, v.key ?? '')) add(hit.kind, field, v.value);
    }
  } else if (body.text !== '') {
    const text = body.text.slice(0, MAX_TEXT_SCAN);
    for (let i = 0; i < text.length; i += MAX_SCANNED_CHARS) {
      const chunk = text.slice(i, i + MAX_SCANNED_CHARS);
      for (const hit of scanSensitive(chunk, '')) add(hit.kind, '(text)', chunk);
    }
  }
  return [...out.values()];
}

/** JSON paths of string values holding one of `kinds` (what enforce mode redacts), at most 256. */
function redactPaths(body: DecodedBody, kinds: readonly SensitiveKind[], maxNodes: number): { kind: SensitiveKind; path: (string | number)[] }[] {
  if (body.content.kind !== 'json') return [];
  const out: { kind: SensitiveKind; path: (string | number)[] }[] = [];
  for (const v of walkJsonStrings(body.content.value, maxNodes)) {
    const hit = scanSensitive(v.value, v.key ?? '').find((h) => kinds.includes(h.kind));
    if (hit) out.push({ kind: hit.kind, path: [...v.path] });
    if (out.length >= 256) break;
  }
  return out;
}

interface Learned { responses: number; fields: Set<string> }
/** Per operation: which callers received each sensitive field (up to `commonAmongCallers` of them). */
interface OperationFields { responses: number; receivers: Map<string, Set<string>> }

export class ContentExposureDetector implements Detector {
  readonly name = CONTENT_EXPOSURE_DETECTOR;
  readonly #content: ContentContext;
  readonly #byCaller: LRUCache<string, Learned>;
  readonly #byOperation: LRUCache<string, OperationFields>;
  readonly #reportedUndeclared: LRUCache<string, true>;

  constructor(context: DetectorContext, content: ContentContext) {
    this.#content = content;
    const caps = context.settings.caps;
    const sizeOf = (k: string): number => 4096 + k.length * 2;
    this.#byCaller = boundedMap(context.clock, { caps, ttlMs: 7 * 24 * 3600_000, sizeOf, persist: { registry: context.state, name: 'exposure.by-caller' } });
    this.#byOperation = boundedMap(context.clock, { caps, ttlMs: 7 * 24 * 3600_000, sizeOf, persist: { registry: context.state, name: 'exposure.by-operation' } });
    this.#reportedUndeclared = boundedMap(context.clock, { caps, ttlMs: 24 * 3600_000, persist: { registry: context.state, name: 'exposure.reported-undeclared' } });
  }

  #learned(map: LRUCache<string, Learned>, key: string): Learned {
    let l = map.get(key);
    if (!l) { l = { responses: 0, fields: new Set() }; map.set(key, l); }
    return l;
  }

  /** Redaction (enforce mode) must rewrite every response of the kinds configured, not a sample;
   *  only responses that can carry such values (mayRedact: JSON, text or undeclared). */
  needsResponseBody(_exchange: Exchange, mode: 'monitor' | 'enforce', response: ResponseEvent): boolean {
    return mode === 'enforce' && this.#content.settings.exposure.redact.length > 0 && mayRedact(response.headers);
  }

  onResponse(exchange: Exchange): Finding[] | undefined {
    const response = exchange.response;
    if (!response?.body || response.body.length === 0) return undefined;
    const { decoder, contracts, settings } = this.#content;
    const decoded = decoder.decode(response.body, response.headers);
    const findings: Finding[] = [];
    const sensitive = sensitiveFields(decoded, decoder.limits.maxJsonNodes);

    const always = sensitive.filter((s) => settings.exposure.alwaysReport.includes(s.kind));
    const redact = settings.exposure.redact.length > 0 ? redactPaths(decoded, settings.exposure.redact, decoder.limits.maxJsonNodes) : [];
    if (always.length > 0 || redact.length > 0) {
      const kinds = [...new Set([...always.map((s) => s.kind), ...redact.map((r) => r.kind)])];
      findings.push(findingFor(this.name, exchange, {
        category: 'API3:2023-BrokenObjectPropertyLevelAuthorization', severity: 'high', enforcement: 'none',
        summary: `response carries ${kinds.join(', ')}${redact.length > 0 ? ' (redacted in enforce mode)' : ''}`,
        evidence: { fields: always.length > 0 ? always : sensitive.filter((s) => kinds.includes(s.kind)), body: bodyEvidence(decoded) },
        ...(redact.length > 0 ? { redact: redact.map((r) => r.path) } : {}),
      }));
    }

    const resolved = this.#content.resolveOperation(exchange);
    if (resolved) {
      const undeclared = contracts.validateResponse(resolved.operation, response.status, decoded)
        .filter((v) => v.kind === 'unknown-property')
        .map((v) => v.pointer.replace(ARRAY_INDEX_SEGMENT, ''))
        .filter((p) => {
          const key = `${exchange.operation}\u0000${p}`;
          if (this.#reportedUndeclared.has(key)) return false;
          this.#reportedUndeclared.set(key, true);
          return true;
        });
      if (undeclared.length > 0) {
        const sensitiveUndeclared = sensitive.filter((s) => undeclared.some((u) => s.field === u || s.field.startsWith(`${u}/`)));
        findings.push(findingFor(this.name, exchange, {
          category: 'API3:2023-BrokenObjectPropertyLevelAuthorization', severity: sensitiveUndeclared.length > 0 ? 'high' : 'medium', enforcement: 'none',
          summary: `response exposes properties its schema does not declare: ${undeclared.slice(0, 5).join(', ')}`,
          evidence: { operationId: resolved.operation.operationId, properties: undeclared, sensitive: sensitiveUndeclared, body: bodyEvidence(decoded) },
        }));
      }
    }

    if (!isSuccess(response.status)) return findings;
    const op = operationKey(exchange);
    let byOp = this.#byOperation.get(op);
    if (!byOp) { byOp = { responses: 0, receivers: new Map() }; this.#byOperation.set(op, byOp); }
    const byCaller = this.#learned(this.#byCaller, `${exchange.callerKey}\u0000${op}`);
    const common = settings.exposure.commonAmongCallers;
    const sudden = sensitive.filter((s) => {
      const id = `${s.kind}@${s.field}`;
      // New to a caller that has used this operation many times, and not something the operation
      // routinely hands to other identities (a login token is; another user's SSN or an admin-only
      // field is not).
      return !byCaller.fields.has(id) && byCaller.responses >= settings.exposure.callerWarmup
        && byOp.responses >= settings.exposure.operationWarmup && !settings.exposure.alwaysReport.includes(s.kind)
        && (byOp.receivers.get(id)?.size ?? 0) < common;
    });
    if (sudden.length > 0) {
      findings.push(findingFor(this.name, exchange, {
        category: 'API3:2023-BrokenObjectPropertyLevelAuthorization', severity: 'medium', enforcement: 'none',
        summary: `caller suddenly receives sensitive fields it never received from this operation: ${sudden.slice(0, 3).map((s) => `${s.kind} in ${s.field}`).join(', ')}`,
        evidence: { fields: sudden, callerResponses: byCaller.responses, usual: [...byCaller.fields].slice(0, 20) },
      }));
    }
    byOp.responses++;
    byCaller.responses++;
    for (const s of sensitive) {
      const id = `${s.kind}@${s.field}`;
      let receivers = byOp.receivers.get(id);
      if (!receivers && byOp.receivers.size < MAX_FIELDS_PER_KEY) { receivers = new Set(); byOp.receivers.set(id, receivers); }
      if (receivers && receivers.size < common) receivers.add(exchange.callerKey);
      if (byCaller.fields.size < MAX_FIELDS_PER_KEY) byCaller.fields.add(id);
    }
    return findings;
  }
}
