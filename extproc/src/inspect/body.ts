// Body decoding under caps: content-encoding (gzip, deflate, br) with a decompressed-size cap,
// charset check, then JSON, urlencoded form or multipart fields (file parts are counted, never
// read). Every problem comes back as a reason, never as an exception. One BodyDecoder is shared by
// all content detectors so each body is decoded once (cache keyed by the Buffer).
import zlib from 'node:zlib';
import type { Headers } from '../engine/event.ts';
import { DEFAULT_BODY_LIMITS, type BodyLimits } from './limits.ts';
import { parseJsonBounded } from './json.ts';
import { countUninspected, decodeOffThread } from './body-pool.ts';
import { rememberJson } from '../engine/body.ts';
import { bodyCutOf, type BodyCut } from '../engine/body-cap.ts';

export type BodyProblemCode =
  | 'truncated' | 'decompression-bomb' | 'decompression-failed' | 'unsupported-encoding'
  | 'invalid-utf8' | 'invalid-json' | 'json-too-deep' | 'json-too-large' | 'too-many-fields' | 'malformed-multipart'
  | 'sampled' | 'not-inspected';

export interface BodyProblem { code: BodyProblemCode; detail: string }

export type BodyContent =
  | { kind: 'empty' }
  | { kind: 'json'; value: unknown }
  | { kind: 'form'; fields: [string, string][] }
  | { kind: 'multipart'; fields: [string, string][]; files: number }
  | { kind: 'text' }
  | { kind: 'binary' };

export interface DecodedBody {
  content: BodyContent;
  /** Decoded text that was inspected (empty for binary), at most the caps allow. */
  text: string;
  /** Lower-case media type without parameters ("application/json"), or "" when absent. */
  mediaType: string;
  /** Bytes received on the wire. */
  wireBytes: number;
  problems: BodyProblem[];
}

export interface MediaType { type: string; params: Map<string, string> }

/** "Application/JSON; charset=utf-8" -> {type: "application/json", params: {charset: "utf-8"}}. */
export function parseMediaType(value: string | undefined): MediaType {
  const params = new Map<string, string>();
  if (value === undefined) return { type: '', params };
  const parts = value.split(';');
  for (const p of parts.slice(1, 20)) {
    const eq = p.indexOf('=');
    if (eq === -1) continue;
    let v = p.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    params.set(p.slice(0, eq).trim().toLowerCase(), v);
  }
  return { type: parts[0]!.trim().toLowerCase(), params };
}

export function isJsonMediaType(type: string): boolean {
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/** Undo content-encoding, applied in reverse order of listing; stops at the decompressed cap. */
function decompress(body: Buffer, encodingHeader: string | undefined, limits: BodyLimits, problems: BodyProblem[]): Buffer | undefined {
  if (encodingHeader === undefined) return body;
  const codings = encodingHeader.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '' && s !== 'identity');
  if (codings.length > 4) {
    problems.push({ code: 'unsupported-encoding', detail: `${codings.length} stacked content-encodings (more than 4)` });
    return undefined;
  }
  let data = body;
  for (const coding of codings.reverse()) {
    const options = { maxOutputLength: limits.maxDecompressedBytes };
    try {
      if (coding === 'gzip' || coding === 'x-gzip') data = zlib.gunzipSync(data, options);
      else if (coding === 'br') data = zlib.brotliDecompressSync(data, options);
      else if (coding === 'deflate') {
        // "deflate" is zlib-wrapped per RFC 9110, but some servers send raw deflate.
        try { data = zlib.inflateSync(data, options); } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw err;
          data = zlib.inflateRawSync(data, options);
        }
      } else {
        problems.push({ code: 'unsupported-encoding', detail: `content-encoding ${JSON.stringify(coding.slice(0, 40))} is not inspected` });
        return undefined;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        problems.push({ code: 'decompression-bomb', detail: `${coding} body expands beyond ${limits.maxDecompressedBytes} bytes from ${data.length} bytes; decompression stopped at the cap` });
      } else {
        problems.push({ code: 'decompression-failed', detail: `${coding} body does not decompress: ${(err as Error).message.slice(0, 120)}` });
      }
      return undefined;
    }
  }
  return data;
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });
const LENIENT_UTF8 = new TextDecoder('utf-8');

function decodeText(bytes: Buffer, problems: BodyProblem[]): string {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    problems.push({ code: 'invalid-utf8', detail: 'body is not valid UTF-8; invalid sequences replaced by U+FFFD' });
    return LENIENT_UTF8.decode(bytes);
  }
}

function looksTextual(type: string): boolean {
  return type === '' || type.startsWith('text/') || isJsonMediaType(type) || type === 'application/x-www-form-urlencoded'
    || type === 'application/graphql' || type.endsWith('+xml') || type === 'application/xml' || type === 'application/javascript';
}

function parseForm(text: string, limits: BodyLimits, problems: BodyProblem[]): [string, string][] {
  const fields: [string, string][] = [];
  for (const [k, v] of new URLSearchParams(text)) {
    if (fields.length >= limits.maxFields) {
      problems.push({ code: 'too-many-fields', detail: `form has more than ${limits.maxFields} fields; the rest are not inspected` });
      break;
    }
    fields.push([k, v.slice(0, limits.maxFieldChars)]);
  }
  return fields;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** The value of one Content-Disposition parameter (name, filename), without regular expressions. */
function dispositionParam(header: string, param: string): string | undefined {
  for (const part of header.split(';').slice(1, 10)) {
    const eq = part.indexOf('=');
    if (eq === -1 || part.slice(0, eq).trim().toLowerCase() !== param) continue;
    const v = part.slice(eq + 1).trim();
    return v.startsWith('"') && v.endsWith('"') && v.length >= 2 ? v.slice(1, -1) : v;
  }
  return undefined;
}

/** Multipart fields (parts without a filename); file parts are counted, their bytes never decoded. */
function parseMultipart(bytes: Buffer, boundary: string | undefined, limits: BodyLimits, problems: BodyProblem[]): { fields: [string, string][]; files: number } {
  const fields: [string, string][] = [];
  let files = 0;
  if (!boundary || boundary.length > 200) {
    problems.push({ code: 'malformed-multipart', detail: 'multipart body without a usable boundary parameter' });
    return { fields, files };
  }
  const delimiter = Buffer.from(`--${boundary}`);
  let pos = bytes.indexOf(delimiter);
  if (pos === -1) {
    problems.push({ code: 'malformed-multipart', detail: 'multipart boundary never appears in the body' });
    return { fields, files };
  }
  while (pos !== -1) {
    const partStart = pos + delimiter.length;
    if (bytes[partStart] === 0x2d && bytes[partStart + 1] === 0x2d) break; // closing delimiter "--"
    const next = bytes.indexOf(delimiter, partStart);
    const part = bytes.subarray(partStart, next === -1 ? bytes.length : next);
    pos = next;
    if (fields.length + files >= limits.maxFields) {
      problems.push({ code: 'too-many-fields', detail: `multipart body has more than ${limits.maxFields} parts; the rest are not inspected` });
      break;
    }
    const headerEnd = part.indexOf(CRLFCRLF);
    if (headerEnd === -1) continue;
    const headerText = part.subarray(0, headerEnd).toString('latin1');
    const disposition = headerText.split('\r\n').find((l) => l.toLowerCase().startsWith('content-disposition:'));
    if (!disposition) continue;
    const name = dispositionParam(disposition.slice(disposition.indexOf(':') + 1), 'name');
    if (name === undefined) continue;
    if (dispositionParam(disposition.slice(disposition.indexOf(':') + 1), 'filename') !== undefined) { files++; continue; }
    let value = part.subarray(headerEnd + CRLFCRLF.length);
    if (value.length >= 2 && value[value.length - 2] === 0x0d && value[value.length - 1] === 0x0a) value = value.subarray(0, value.length - 2);
    fields.push([name, LENIENT_UTF8.decode(value.subarray(0, limits.maxFieldChars))]);
  }
  return { fields, files };
}

function policyCutProblem(cut: BodyCut): BodyProblem {
  return { code: 'truncated', detail: `body of ${cut.wireBytes} bytes inspected up to the policy's ${cut.inspectedBytes}-byte cap (sampling.maxBodyBytes)` };
}

export function decodeBody(body: Buffer | undefined, headers: Headers, limits: BodyLimits = DEFAULT_BODY_LIMITS): DecodedBody {
  const media = parseMediaType(headers.get('content-type')?.[0]);
  const problems: BodyProblem[] = [];
  const policyCut = bodyCutOf(body);
  const wireBytes = policyCut?.wireBytes ?? body?.length ?? 0;
  if (body === undefined || body.length === 0) return { content: { kind: 'empty' }, text: '', mediaType: media.type, wireBytes, problems };
  if (policyCut !== undefined) problems.push(policyCutProblem(policyCut));

  let bytes = body;
  if (bytes.length > limits.maxBodyBytes) {
    problems.push({ code: 'truncated', detail: `body of ${bytes.length} bytes inspected up to the ${limits.maxBodyBytes}-byte cap` });
    bytes = bytes.subarray(0, limits.maxBodyBytes);
  }
  const decompressed = decompress(bytes, headers.get('content-encoding')?.join(','), limits, problems);
  if (decompressed === undefined) return { content: { kind: 'binary' }, text: '', mediaType: media.type, wireBytes, problems };
  bytes = decompressed;
  if (bytes.length > limits.maxBodyBytes) {
    problems.push({ code: 'truncated', detail: `decompressed body of ${bytes.length} bytes inspected up to the ${limits.maxBodyBytes}-byte cap` });
    bytes = bytes.subarray(0, limits.maxBodyBytes);
  }

  if (media.type.startsWith('multipart/form-data')) {
    const { fields, files } = parseMultipart(bytes, media.params.get('boundary'), limits, problems);
    return { content: { kind: 'multipart', fields, files }, text: '', mediaType: media.type, wireBytes, problems };
  }
  if (!looksTextual(media.type)) return { content: { kind: 'binary' }, text: '', mediaType: media.type, wireBytes, problems };

  const text = decodeText(bytes, problems);
  const trimmed = text.trimStart();
  const declaredJson = isJsonMediaType(media.type);
  if (declaredJson || (media.type === '' && (trimmed.startsWith('{') || trimmed.startsWith('[')))) {
    const truncated = problems.some((p) => p.code === 'truncated');
    const parsed = parseJsonBounded(text, limits.maxJsonDepth, limits.maxJsonNodes);
    if (parsed.ok) return { content: { kind: 'json', value: parsed.value }, text, mediaType: media.type, wireBytes, problems };
    // A cut-off document cannot parse; that is the cap's doing, not the client's.
    if (!(truncated && parsed.problem.code === 'invalid-json') && (declaredJson || parsed.problem.code !== 'invalid-json')) problems.push(parsed.problem);
    return { content: { kind: 'text' }, text, mediaType: media.type, wireBytes, problems };
  }
  if (media.type === 'application/x-www-form-urlencoded') {
    return { content: { kind: 'form', fields: parseForm(text, limits, problems) }, text, mediaType: media.type, wireBytes, problems };
  }
  return { content: { kind: 'text' }, text, mediaType: media.type, wireBytes, problems };
}

/** Bodies at least this large are decoded off the event loop when the caller awaits prepare(). */
export const OFF_THREAD_BODY_BYTES = 64 * 1024;
/** How long an off-thread decode may take (half of Envoy's default 0.5 s message_timeout). */
export const OFF_THREAD_DEADLINE_MS = 250;

/** Decodes each body once for all detectors; entries live as long as the Buffer does. */
export class BodyDecoder {
  readonly limits: BodyLimits;
  readonly #cache = new WeakMap<Buffer, DecodedBody>();

  constructor(limits: Partial<BodyLimits> = {}) {
    this.limits = { ...DEFAULT_BODY_LIMITS, ...limits };
  }

  decode(body: Buffer | undefined, headers: Headers): DecodedBody {
    if (body === undefined) return decodeBody(body, headers, this.limits);
    let d = this.#cache.get(body);
    if (!d) {
      d = decodeBody(body, headers, this.limits);
      this.#cache.set(body, d);
    }
    return d;
  }

  /** Records the body as not inspected (problem "not-inspected", for capacity reasons given in
   *  `detail`): decode() then returns that without reading it. */
  skip(body: Buffer, headers: Headers, detail: string): void {
    this.#cache.set(body, { content: { kind: 'binary' }, text: '', mediaType: parseMediaType(headers.get('content-type')?.[0]).type, wireBytes: body.length, problems: [{ code: 'not-inspected', detail }] });
    rememberJson(body, undefined);
  }

  /** For a large body: decodes it in a worker thread into a bounded sample (body-sample.ts) that
   *  decode() then returns, so detectors never parse or walk the whole body on the event loop.
   *  Returns undefined when there is nothing to wait for (small, absent or already decoded body).
   *  A full queue, a failed worker or the deadline leave the body uninspected (problem
   *  "not-inspected", counted in uninspectedBodies()); spec.content.overload decides whether such a
   *  request passes on its headers (open) or is refused (closed, content-body). */
  prepare(body: Buffer | undefined, headers: Headers, deadlineMs = OFF_THREAD_DEADLINE_MS): Promise<void> | undefined {
    if (body === undefined || body.length < OFF_THREAD_BODY_BYTES || this.#cache.has(body)) return undefined;
    const encoded = headers.has('content-encoding');
    return decodeOffThread(body, headers, this.limits, deadlineMs).then(
      (decoded) => {
        // The worker never sees the policy's cut (a per-process WeakMap): add it here.
        const cut = bodyCutOf(body);
        if (cut !== undefined) {
          decoded = { ...decoded, wireBytes: cut.wireBytes, problems: [policyCutProblem(cut), ...decoded.problems] };
        }
        this.#cache.set(body, decoded);
        // The engine's own JSON view (engine/body.ts) reads raw bytes: only an unencoded JSON body is JSON there.
        rememberJson(body, decoded.content.kind === 'json' && !encoded ? decoded.content.value : undefined);
      },
      (err: unknown) => {
        const reason = countUninspected(err);
        const why = reason === 'deadline' ? `exceeded ${deadlineMs} ms`
          : reason === 'queue-full' ? 'queue full (decode workers overloaded)'
            : `failed (${String((err as Error)?.message ?? err).slice(0, 120)})`;
        this.skip(body, headers, `body of ${body.length} bytes not inspected: off-thread decode ${why}`);
      },
    );
  }
}
