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
    checkKeys(source, '$.server', doc.server, ['host', 'port', 'maxMessageBytes']);
    const { host, port, maxMessageBytes } = doc.server;
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
