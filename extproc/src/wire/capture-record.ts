// Parses the capture record the Wasm filter writes into filter state `wasm.meshward`
// (format defined in filter/assembly/record.ts). Unknown keys are ignored so the filter and the
// server can be upgraded independently; a malformed record yields null, never an exception.

export interface CaptureRecord {
  peer?: string;
  mtls: boolean;
  src?: string;
  method?: string;
  authority?: string;
  path?: string;
  /** Every field, decoded, including ones this server version does not interpret. */
  fields: ReadonlyMap<string, string>;
}

const MAX_RECORD_BYTES = 256 * 1024;

function percentDecode(value: string): string {
  if (!value.includes('%')) return value;
  // Decode to bytes first so multi-byte UTF-8 split across escapes survives; invalid UTF-8 becomes U+FFFD.
  const bytes: number[] = [];
  const raw = Buffer.from(value, 'latin1');
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b === 0x25 && i + 2 < raw.length && isHex(raw[i + 1]!) && isHex(raw[i + 2]!)) {
      bytes.push(parseInt(String.fromCharCode(raw[i + 1]!, raw[i + 2]!), 16));
      i += 2;
    } else {
      bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function isHex(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

/** `text` is the attribute value as Envoy printed it (raw bytes of the filter state, as latin1-safe string). */
export function parseCaptureRecord(text: string | undefined): CaptureRecord | null {
  if (text === undefined || text.length === 0 || text.length > MAX_RECORD_BYTES) return null;
  const lines = text.split('\n');
  if (lines[0] !== 'mw1') return null;
  const fields = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.length === 0) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) return null;
    fields.set(line.slice(0, eq), percentDecode(line.slice(eq + 1)));
  }
  const get = (k: string): string | undefined => {
    const v = fields.get(k);
    return v === undefined || v.length === 0 ? undefined : v;
  };
  return {
    peer: get('peer'),
    mtls: fields.get('mtls') === '1',
    src: get('src'),
    method: get('method'),
    authority: get('authority'),
    path: get('path'),
    fields,
  };
}
