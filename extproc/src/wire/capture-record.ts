// Parses the capture record the Wasm filter writes into filter state `wasm.meshward`
// (format defined in filter/assembly/record.ts). Unknown keys are ignored so the filter and the
// server can be upgraded independently; a malformed record yields null, never an exception.

import type { TokenFlag, TokenUser } from '../engine/event.ts';

export interface CaptureRecord {
  peer?: string;
  mtls: boolean;
  src?: string;
  method?: string;
  authority?: string;
  path?: string;
  /** "outbound" when the filter runs on an outbound listener (caller = own workload). */
  role: 'inbound' | 'outbound';
  /** Istio peer metadata (inbound). */
  peerWorkloadName?: string;
  peerNamespace?: string;
  /** Own workload identity (outbound): configured, else from Envoy's node metadata or id. */
  self?: string;
  selfWorkloadName?: string;
  selfNamespace?: string;
  /** Called host (outbound). */
  dest?: string;
  /** The sidecar's own workload, from Envoy's node metadata (Istio sets NAMESPACE, WORKLOAD_NAME,
   *  LABELS): the called workload inbound, the caller outbound. A client cannot set it. */
  nodeNamespace?: string;
  nodeWorkloadName?: string;
  /** Istio's SERVICE_ACCOUNT node metadata: the server checks it against the ext_proc client certificate. */
  nodeServiceAccount?: string;
  nodeLabels?: Readonly<Record<string, string>>;
  /** Route template and operation id; absent when the filter had to truncate them. */
  template?: string;
  operation?: string;
  user?: TokenUser;
  tokenHash?: string;
  apiKeyHash?: string;
  /** Undefined when the filter did not decide (older filter). */
  sampled?: boolean;
  sampleReason?: string;
  /** Version of the filter configuration in force. */
  configVersion?: string;
  /** Keys whose values the filter cut at its size limit. */
  truncated: readonly string[];
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
  const truncated = (fields.get('trunc') ?? '').split(',').filter((k) => k.length > 0);
  const trusted = (k: string): string | undefined => (truncated.includes(k) ? undefined : get(k));
  const sampled = fields.get('sampled');
  return {
    role: fields.get('role') === 'outbound' ? 'outbound' : 'inbound',
    peerWorkloadName: get('peer.workload'),
    peerNamespace: get('peer.namespace'),
    self: get('self'),
    selfWorkloadName: get('self.workload'),
    selfNamespace: get('self.namespace'),
    dest: get('dest'),
    nodeNamespace: get('node.namespace'),
    nodeWorkloadName: get('node.workload'),
    nodeServiceAccount: get('node.sa'),
    nodeLabels: parseLabels(truncated.includes('node.labels') ? undefined : get('node.labels')),
    template: trusted('template'),
    operation: trusted('op'),
    user: parseUser(fields),
    tokenHash: get('token.hash'),
    apiKeyHash: get('apikey'),
    sampled: sampled === undefined ? undefined : sampled === '1',
    sampleReason: get('sample.reason'),
    configVersion: get('cfg'),
    truncated,
    peer: get('peer'),
    mtls: fields.get('mtls') === '1',
    src: get('src'),
    method: get('method'),
    authority: get('authority'),
    path: get('path'),
    fields,
  };
}

/** "k=v,k=v" (the filter's rendering of node metadata LABELS); entries without "=" are skipped. */
function parseLabels(text: string | undefined): Record<string, string> | undefined {
  if (text === undefined) return undefined;
  // fromEntries defines own properties: a "__proto__" label is data, never the prototype.
  return Object.fromEntries(text.split(',').filter((e) => e.indexOf('=') > 0).map((e) => {
    const eq = e.indexOf('=');
    return [e.slice(0, eq), e.slice(eq + 1)];
  }));
}

const TOKEN_FLAGS: ReadonlySet<string> = new Set<TokenFlag>(['malformed', 'oversize', 'alg_none', 'unsigned', 'expired', 'not_yet_valid']);

function seconds(v: string | undefined): number | undefined {
  if (v === undefined || !/^-?\d{1,19}$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The filter's JWT peek (jwt.* keys); undefined when the request carried no bearer token. */
function parseUser(fields: ReadonlyMap<string, string>): TokenUser | undefined {
  const flagsText = fields.get('jwt.flags');
  const claim = (k: string): string | undefined => {
    const v = fields.get(`jwt.${k}`);
    return v === undefined || v.length === 0 ? undefined : v;
  };
  const keys = ['sub', 'iss', 'aud', 'scope', 'alg'] as const;
  if (flagsText === undefined && keys.every((k) => claim(k) === undefined)) return undefined;
  const user: TokenUser = {
    flags: (flagsText ?? '').split(',').filter((f): f is TokenFlag => TOKEN_FLAGS.has(f)),
  };
  for (const k of keys) {
    const v = claim(k);
    if (v !== undefined) user[k] = v;
  }
  const exp = seconds(claim('exp'));
  const nbf = seconds(claim('nbf'));
  if (exp !== undefined) user.exp = exp;
  if (nbf !== undefined) user.nbf = nbf;
  return user;
}
