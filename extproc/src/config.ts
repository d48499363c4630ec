// Server configuration file (JSON or YAML): where to listen and the static deny rules.
// Validated field by field so a bad file is rejected with the field path and reason.
import { readFile } from 'node:fs/promises';
import YAML from 'yaml';
import type { DenyRule } from './engine/rules.ts';
import { DEFAULT_SERVER_OPTIONS, type ServerOptions } from './server.ts';

export interface ServerConfig {
  server: ServerOptions;
  denyRules: DenyRule[];
}

export class ConfigError extends Error {
  constructor(source: string, field: string, reason: string) {
    super(`${source}: ${field}: ${reason}`);
  }
}

const MAX_CONFIG_BYTES = 1024 * 1024;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(source: string, at: string, obj: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new ConfigError(source, `${at}.${k}`, `unknown field (allowed: ${allowed.join(', ')})`);
  }
}

/** The server's numeric limits beside maxMessageBytes, with their valid ranges (shared with `meshward serve`'s flags). */
export const STREAM_LIMIT_RANGES = {
  maxConcurrentStreams: { min: 1, max: 1_000_000, integer: true },
  maxConcurrentStreamsPerConnection: { min: 1, max: 2 ** 31 - 1, integer: true },
  streamIdleSeconds: { min: 0, max: 86_400, integer: false },
  maxBufferedBodyMib: { min: 1, max: 65_536, integer: true },
} as const;
export type StreamLimitField = keyof typeof STREAM_LIMIT_RANGES;

/** Why `value` is not valid for `field`, or undefined when it is. */
export function streamLimitError(field: StreamLimitField, value: unknown): string | undefined {
  const { min, max, integer } = STREAM_LIMIT_RANGES[field];
  const ok = typeof value === 'number' && (integer ? Number.isInteger(value) : Number.isFinite(value)) && value >= min && value <= max;
  return ok ? undefined : `must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`;
}

const TRANSPORT_KEYS = ['tls', 'insecurePlaintext', 'forgedStreamFailureMode'] as const;

/** server.tls {certFile, keyFile, clientCaFile, refreshSeconds}, server.insecurePlaintext, server.forgedStreamFailureMode. */
function parseTransport(source: string, doc: Record<string, unknown>): Pick<ServerOptions, 'tls' | 'insecurePlaintext' | 'forgedStreamFailureMode'> {
  const out: Pick<ServerOptions, 'tls' | 'insecurePlaintext' | 'forgedStreamFailureMode'> = {};
  const { tls, insecurePlaintext, forgedStreamFailureMode } = doc;
  if (tls !== undefined) {
    if (!isObject(tls)) throw new ConfigError(source, '$.server.tls', 'must be an object');
    checkKeys(source, '$.server.tls', tls, ['certFile', 'keyFile', 'clientCaFile', 'refreshSeconds']);
    for (const k of ['certFile', 'keyFile', 'clientCaFile'] as const) {
      if (typeof tls[k] !== 'string' || tls[k].length === 0) throw new ConfigError(source, `$.server.tls.${k}`, 'must be a file path');
    }
    const refresh = tls.refreshSeconds;
    if (refresh !== undefined && (typeof refresh !== 'number' || !Number.isFinite(refresh) || refresh < 1 || refresh > 86_400)) {
      throw new ConfigError(source, '$.server.tls.refreshSeconds', 'must be a number from 1 to 86400');
    }
    out.tls = { certFile: tls.certFile as string, keyFile: tls.keyFile as string, clientCaFile: tls.clientCaFile as string,
      ...(refresh !== undefined ? { refreshIntervalMs: Math.round((refresh as number) * 1000) } : {}) };
  }
  if (insecurePlaintext !== undefined) {
    if (typeof insecurePlaintext !== 'boolean') throw new ConfigError(source, '$.server.insecurePlaintext', 'must be true or false');
    if (insecurePlaintext && out.tls) throw new ConfigError(source, '$.server.insecurePlaintext', 'contradicts server.tls');
    out.insecurePlaintext = insecurePlaintext;
  }
  if (forgedStreamFailureMode !== undefined) {
    if (forgedStreamFailureMode !== 'open' && forgedStreamFailureMode !== 'closed') throw new ConfigError(source, '$.server.forgedStreamFailureMode', 'must be "open" or "closed"');
    out.forgedStreamFailureMode = forgedStreamFailureMode;
  }
  return out;
}

export function parseServerConfig(source: string, text: string): ServerConfig {
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) throw new ConfigError(source, '$', `larger than ${MAX_CONFIG_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = YAML.parse(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(source, '$', `not valid YAML/JSON: ${(err as Error).message}`);
  }
  doc ??= {};
  if (!isObject(doc)) throw new ConfigError(source, '$', 'must be an object');
  checkKeys(source, '$', doc, ['server', 'denyRules']);
  const server: ServerOptions = { ...DEFAULT_SERVER_OPTIONS };
  if (doc.server !== undefined) {
    if (!isObject(doc.server)) throw new ConfigError(source, '$.server', 'must be an object');
    checkKeys(source, '$.server', doc.server, ['host', 'port', 'maxMessageBytes', ...Object.keys(STREAM_LIMIT_RANGES), ...TRANSPORT_KEYS]);
    const { host, port, maxMessageBytes } = doc.server;
    Object.assign(server, parseTransport(source, doc.server));
    if (host !== undefined) {
      if (typeof host !== 'string' || host.length === 0) throw new ConfigError(source, '$.server.host', 'must be a non-empty string');
      server.host = host;
    }
    if (port !== undefined) {
      if (!Number.isInteger(port) || (port as number) < 0 || (port as number) > 65535) throw new ConfigError(source, '$.server.port', 'must be an integer 0-65535');
      server.port = port as number;
    }
    if (maxMessageBytes !== undefined) {
      if (!Number.isInteger(maxMessageBytes) || (maxMessageBytes as number) < 1024) throw new ConfigError(source, '$.server.maxMessageBytes', 'must be an integer >= 1024');
      server.maxMessageBytes = maxMessageBytes as number;
    }
    for (const field of Object.keys(STREAM_LIMIT_RANGES) as StreamLimitField[]) {
      const value = doc.server[field];
      if (value === undefined) continue;
      const error = streamLimitError(field, value);
      if (error !== undefined) throw new ConfigError(source, `$.server.${field}`, error);
      server[field] = value as number;
    }
  }
  const denyRules: DenyRule[] = [];
  if (doc.denyRules !== undefined) {
    if (!Array.isArray(doc.denyRules)) throw new ConfigError(source, '$.denyRules', 'must be a list');
    doc.denyRules.forEach((r: unknown, i: number) => {
      const at = `$.denyRules[${i}]`;
      if (!isObject(r)) throw new ConfigError(source, at, 'must be an object');
      checkKeys(source, at, r, ['name', 'identity', 'method', 'path']);
      if (typeof r.identity !== 'string' || !r.identity.startsWith('spiffe://')) throw new ConfigError(source, `${at}.identity`, 'must be a SPIFFE ID (spiffe://...)');
      if (r.method !== undefined && (typeof r.method !== 'string' || !/^[A-Z]{1,16}$/.test(r.method))) throw new ConfigError(source, `${at}.method`, 'must be an upper-case HTTP method');
      if (r.path !== undefined && (typeof r.path !== 'string' || !r.path.startsWith('/'))) throw new ConfigError(source, `${at}.path`, 'must start with "/"');
      const name = r.name === undefined ? `deny-${i}` : r.name;
      if (typeof name !== 'string' || name.length === 0) throw new ConfigError(source, `${at}.name`, 'must be a non-empty string');
      denyRules.push({
        name,
        identity: r.identity,
        ...(r.method !== undefined ? { method: r.method as string } : {}),
        ...(r.path !== undefined ? { path: r.path as string } : {}),
      });
    });
  }
  return { server, denyRules };
}

export async function loadServerConfig(file: string): Promise<ServerConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '$', `cannot read: ${(err as Error).message}`);
  }
  return parseServerConfig(file, text);
}
