// Capture records (the corpus format of ../shared/corpora/README.md): one JSON object per line
// with caller workload, client address, request, recorded response and label. Parsing is strict
// about shape and gives a clear error naming the line; it turns records into engine events.
import { readFile } from 'node:fs/promises';
import type { Headers, RequestEvent, ResponseEvent } from '../engine/event.ts';
import { peekJwt } from '../engine/jwt.ts';

export interface RecordLabel {
  class: string;
  campaign?: string | null;
  phase?: string | null;
  success?: boolean | null;
}

export interface CaptureRecord {
  id: string;
  t_ms: number;
  app?: string;
  authority: string;
  caller_workload?: string | null;
  client_ip?: string | null;
  request: { method: string; path: string; headers: [string, string][]; body_b64?: string | null };
  response?: { status: number; headers: [string, string][]; body_b64?: string | null } | null;
  label?: RecordLabel | null;
}

export class RecordError extends Error {}

function isHeaderList(v: unknown): v is [string, string][] {
  return Array.isArray(v) && v.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === 'string' && typeof h[1] === 'string');
}

/** Validates one parsed line; throws RecordError saying what is wrong. */
export function toCaptureRecord(value: unknown, where: string): CaptureRecord {
  const fail = (what: string): never => { throw new RecordError(`${where}: ${what}`); };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('record is not a JSON object');
  const r = value as Record<string, unknown>;
  if (typeof r.id !== 'string' || r.id === '') fail('"id" must be a non-empty string');
  if (typeof r.t_ms !== 'number' || !Number.isFinite(r.t_ms)) fail('"t_ms" must be a number');
  if (typeof r.authority !== 'string') fail('"authority" must be a string');
  const req = r.request as Record<string, unknown> | undefined;
  if (req === undefined || req === null || typeof req !== 'object') fail('"request" must be an object');
  if (typeof req!.method !== 'string' || typeof req!.path !== 'string') fail('"request.method" and "request.path" must be strings');
  if (!isHeaderList(req!.headers ?? [])) fail('"request.headers" must be a list of [name, value] pairs');
  const res = r.response as Record<string, unknown> | null | undefined;
  if (res !== undefined && res !== null) {
    if (typeof res.status !== 'number') fail('"response.status" must be a number');
    if (!isHeaderList(res.headers ?? [])) fail('"response.headers" must be a list of [name, value] pairs');
  }
  return value as CaptureRecord;
}

/** Reads a JSONL capture file; blank lines are skipped, anything else malformed is an error. */
export async function readCapture(file: string): Promise<CaptureRecord[]> {
  const text = await readFile(file, 'utf8');
  const records: CaptureRecord[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try { value = JSON.parse(line); } catch (err) { throw new RecordError(`${file}:${i + 1}: not JSON (${(err as Error).message})`); }
    records.push(toCaptureRecord(value, `${file}:${i + 1}`));
  });
  return records;
}

export function headerMap(pairs: readonly [string, string][]): Headers {
  const map = new Map<string, string[]>();
  for (const [k, v] of pairs) {
    const name = k.toLowerCase();
    const list = map.get(name);
    if (list) list.push(v); else map.set(name, [v]);
  }
  return map;
}

const decode = (b64: string | null | undefined): Buffer | undefined => (b64 ? Buffer.from(b64, 'base64') : undefined);

/** Wall-clock time of t_ms = 0: from the first response Date header (minus its t_ms); without one,
 *  the latest lower bound bearer tokens give (a token is used no earlier than its iat), so token
 *  time checks never fire by accident; else now. */
export function captureEpoch(records: readonly CaptureRecord[]): number {
  for (const r of records) {
    const date = r.response?.headers?.find(([k]) => k.toLowerCase() === 'date')?.[1];
    const parsed = date === undefined ? NaN : Date.parse(date);
    if (Number.isFinite(parsed)) return parsed - r.t_ms;
  }
  let fromTokens = -Infinity;
  for (const r of records) {
    const auth = r.request.headers?.find(([k]) => k.toLowerCase() === 'authorization')?.[1];
    const token = auth === undefined ? undefined : /^\s*bearer\s+(\S+)/i.exec(auth)?.[1];
    const iat = token === undefined ? undefined : peekJwt(token).iat;
    if (iat !== undefined) fromTokens = Math.max(fromTokens, iat * 1000 - r.t_ms);
  }
  return Number.isFinite(fromTokens) ? fromTokens : Date.now();
}

export function toRequestEvent(r: CaptureRecord, epoch: number, timeScale = 1): RequestEvent {
  const body = decode(r.request.body_b64);
  return {
    requestId: r.id,
    time: epoch + r.t_ms * timeScale,
    caller: {
      ...(r.caller_workload ? { workload: r.caller_workload } : {}),
      mtls: Boolean(r.caller_workload),
      ...(r.client_ip ? { sourceAddress: `${r.client_ip}:0` } : {}),
      identitySource: r.caller_workload ? 'filter' : 'none',
    },
    method: r.request.method.toUpperCase(),
    authority: r.authority,
    path: r.request.path,
    headers: headerMap(r.request.headers ?? []),
    ...(body !== undefined ? { body } : {}),
  };
}

export function toResponseEvent(r: CaptureRecord, request: RequestEvent): ResponseEvent | undefined {
  if (!r.response) return undefined;
  const body = decode(r.response.body_b64);
  return {
    requestId: r.id,
    time: request.time,
    status: r.response.status,
    headers: headerMap(r.response.headers ?? []),
    ...(body !== undefined ? { body } : {}),
  };
}
