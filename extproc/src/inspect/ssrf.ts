// SSRF analysis of one client-supplied value. The WHATWG URL parser (what Node's fetch uses)
// normalizes the evasions, so decimal (2130706433), octal (0177.0.0.1), hex (0x7f.1), short
// (127.1) and IPv6-mapped ([::ffff:127.0.0.1]) forms all arrive as the address a client would
// really connect to; net.BlockList then classifies it (it matches IPv4 ranges against mapped IPv6).
import net from 'node:net';

export type SsrfReason =
  | 'loopback' | 'private' | 'link-local' | 'metadata' | 'unspecified' | 'internal-hostname'
  | 'non-http-scheme' | 'embedded-internal-address' | 'open-redirect';

export interface SsrfFinding {
  reasons: SsrfReason[];
  /** Evasion tricks seen: "userinfo", "numeric-ip-encoding", "ipv6-mapped". */
  evasions: string[];
  /** Normalized host the value points at (never the full URL: it may carry credentials). */
  host: string;
  scheme: string;
}

export interface OpenRedirector {
  /** Host of a service known (from policy) to redirect to any URL given in its query. */
  host: string;
  /** Optional path prefix of the redirecting endpoint. */
  pathPrefix?: string;
}

export interface SsrfOptions {
  openRedirectors?: readonly OpenRedirector[];
  /** Hosts that may legitimately be internal targets (e.g. a webhook relay), exact match. */
  allowedHosts?: readonly string[];
}

function blockList(entries: [string, number, 'ipv4' | 'ipv6'][]): net.BlockList {
  const list = new net.BlockList();
  for (const [addr, prefix, type] of entries) list.addSubnet(addr, prefix, type);
  return list;
}

const RANGES: [SsrfReason, net.BlockList][] = [
  // Cloud metadata first: it is also link-local, and the more specific reason matters.
  ['metadata', blockList([['169.254.169.254', 32, 'ipv4'], ['169.254.170.2', 32, 'ipv4'], ['100.100.100.200', 32, 'ipv4'], ['fd00:ec2::254', 128, 'ipv6']])],
  ['loopback', blockList([['127.0.0.0', 8, 'ipv4'], ['::1', 128, 'ipv6']])],
  ['unspecified', blockList([['0.0.0.0', 8, 'ipv4'], ['::', 128, 'ipv6']])],
  ['link-local', blockList([['169.254.0.0', 16, 'ipv4'], ['fe80::', 10, 'ipv6']])],
  ['private', blockList([
    ['10.0.0.0', 8, 'ipv4'], ['172.16.0.0', 12, 'ipv4'], ['192.168.0.0', 16, 'ipv4'], ['100.64.0.0', 10, 'ipv4'],
    ['198.18.0.0', 15, 'ipv4'], ['fc00::', 7, 'ipv6'],
  ])],
];

const METADATA_HOSTNAMES = new Set(['metadata.google.internal', 'metadata', 'instance-data', 'instance-data.ec2.internal', 'metadata.azure.com']);
const INTERNAL_SUFFIXES = ['.localhost', '.internal', '.local', '.svc', '.cluster.local', '.svc.cluster.local'];
const HTTP_SCHEMES = new Set(['http:', 'https:']);

/** The address class of an IP literal, or undefined when it is public. */
export function classifyAddress(address: string): SsrfReason | undefined {
  const family = net.isIP(address);
  if (family === 0) return undefined;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  for (const [reason, list] of RANGES) if (list.check(address, type)) return reason;
  return undefined;
}

/** A dotted quad inside a longer DNS name (127.0.0.1.nip.io, a.10.0.0.1.sslip.io) that is internal. */
function embeddedInternalAddress(hostname: string): boolean {
  const labels = hostname.split('.');
  if (labels.length <= 4 || labels.length > 64) return false;
  for (let i = 0; i + 4 <= labels.length; i++) {
    const quad = labels.slice(i, i + 4).join('.');
    if (net.isIPv4(quad) && classifyAddress(quad) !== undefined) return true;
  }
  return false;
}

/** Does the raw text spell the host in a non-canonical numeric form the parser rewrote? */
function numericEvasion(raw: string, canonicalHost: string): boolean {
  if (!net.isIPv4(canonicalHost)) return false;
  return !raw.includes(canonicalHost);
}

/** Values that are worth parsing as a URL: an explicit scheme, or a URL-ish key holding a host. */
const URL_KEY_HINTS = ['url', 'uri', 'link', 'callback', 'webhook', 'redirect', 'target', 'dest', 'endpoint', 'host', 'image', 'avatar', 'feed', 'proxy', 'next', 'return'];

function candidateUrl(value: string, key: string): string | undefined {
  const v = value.trim();
  if (v.length < 3 || v.length > 4096) return undefined;
  const colon = v.indexOf(':');
  if (colon > 0 && colon < 16) {
    const scheme = v.slice(0, colon);
    if (isSchemeName(scheme) && (v.startsWith('//', colon + 1) || v.startsWith('\\\\', colon + 1) || DANGEROUS_OPAQUE_SCHEMES.has(scheme.toLowerCase()))) return v;
  }
  if (v.startsWith('//')) return `http:${v}`;
  const k = key.toLowerCase();
  if (URL_KEY_HINTS.some((h) => k.includes(h)) && !v.includes(' ') && (v.includes('.') || v.includes(':') || v === 'localhost')) return `http://${v}`;
  return undefined;
}

/** Schemes without "//" that still reach resources (file:/etc/passwd, jar:, netdoc:). */
const DANGEROUS_OPAQUE_SCHEMES = new Set(['file', 'jar', 'netdoc', 'gopher', 'dict', 'ldap', 'tftp', 'phar', 'expect']);

/** RFC 3986 scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), checked per character. */
export const SCHEME_PATTERNS = { first: /^[a-z]/i, rest: /^[a-z0-9+.-]$/i } as const;

function isSchemeName(s: string): boolean {
  if (!SCHEME_PATTERNS.first.test(s)) return false;
  for (const ch of s) if (!SCHEME_PATTERNS.rest.test(ch)) return false;
  return true;
}

function isRedirector(url: URL, redirectors: readonly OpenRedirector[]): boolean {
  return redirectors.some((r) => r.host.toLowerCase() === url.hostname && (r.pathPrefix === undefined || url.pathname.startsWith(r.pathPrefix)));
}

/** Analyses one value; undefined when it is not a URL or points somewhere harmless. */
export function analyzeUrlValue(value: string, key: string, options: SsrfOptions = {}, nesting = 0): SsrfFinding | undefined {
  const candidate = candidateUrl(value, key);
  if (candidate === undefined) return undefined;
  let url: URL;
  try { url = new URL(candidate); } catch { return undefined; }
  const reasons: SsrfReason[] = [];
  const evasions: string[] = [];
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname.toLowerCase();
  if (options.allowedHosts?.includes(host)) return undefined;
  if (!HTTP_SCHEMES.has(url.protocol)) reasons.push('non-http-scheme');
  const addressClass = classifyAddress(host);
  if (addressClass) reasons.push(addressClass);
  else if (METADATA_HOSTNAMES.has(host)) reasons.push('metadata');
  else if (host === 'localhost' || INTERNAL_SUFFIXES.some((s) => host.endsWith(s))) reasons.push('internal-hostname');
  else if (embeddedInternalAddress(host)) reasons.push('embedded-internal-address');
  if (url.username !== '' || url.password !== '') evasions.push('userinfo');
  if (numericEvasion(candidate, host)) evasions.push('numeric-ip-encoding');
  if (host.startsWith('::ffff:')) evasions.push('ipv6-mapped');

  if (nesting < 2 && options.openRedirectors && isRedirector(url, options.openRedirectors)) {
    for (const [k, v] of url.searchParams) {
      const inner = analyzeUrlValue(v, k, options, nesting + 1);
      if (inner) {
        return { reasons: [...new Set([...inner.reasons, 'open-redirect' as const])], evasions: [...new Set([...evasions, ...inner.evasions])], host: inner.host, scheme: inner.scheme };
      }
    }
  }
  if (reasons.length === 0) return undefined;
  return { reasons, evasions, host, scheme: url.protocol.slice(0, -1) };
}
