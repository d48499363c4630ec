// Security-misconfiguration signals in one exchange: leaked stack traces and driver errors,
// version banners, CORS that lets any site read credentialed responses, TRACE/TRACK, missing
// security headers on north-south responses, plaintext east-west calls. Per-request leaks become
// findings; standing properties of an operation (banners, headers, plaintext) go to the posture.
import type { Headers, RequestEvent, ResponseEvent } from '../engine/event.ts';
import { matchingSignatures, type Signature } from './signatures.ts';

/** Stack-trace and driver-error signatures across common runtimes. Linear by construction. */
export const VERBOSE_ERROR_SIGNATURES: readonly Signature[] = [
  { name: 'python-traceback', pattern: /Traceback \(most recent call last\)|File "[^"\n]{1,300}", line [0-9]{1,7}, in / },
  { name: 'python-exception', pattern: /object has no attribute '|missing [0-9]{1,3} required (?:positional|keyword-only) argument|got an unexpected keyword argument '|object is not subscriptable|unsupported operand type\(s\)/ },
  { name: 'sql-error', pattern: /sqlite3\.OperationalError|psycopg2\.[A-Za-z]{1,40}Error|SQLSTATE\[|ORA-[0-9]{5}|You have an error in your SQL syntax|syntax error at or near "|Unclosed quotation mark after the character string|\[SQL: |PG::[A-Za-z]{1,40}Error|SQLException|MySQLSyntaxErrorException|SequelizeDatabaseError|SqlException/ },
  // Driver and client-library error formats (ODBC chains, DB2 SQLCODE, PHP database functions, ...),
  // after the database families the OWASP CRS 951xxx data-leakage rules cover.
  { name: 'sql-driver-error', pattern: /\[ODBC |ODBC\]|ODBC Driver\]|SQLCODE=-?[0-9]{1,5}|SQLSTATE=[0-9A-Z]{5}|\[DM_[A-Z_]{1,40}\]error|Dynamic SQL Error|org\.hsqldb\.|java\.sql\.SQL[A-Za-z]{0,30}Exception|Unexpected end of command in statement|\b(?:maxdb|mssql|mysqli?|pg|oci|sqlsrv|odbc|sybase|ifx|ingres|db2|sqlite)_[a-z_]{1,30}\(\)|\b(?:maxdb|SQLite3|PDO|mysqli)::[a-z_]{1,30}\(\)|ERROR [0-9]{4} \([0-9A-Z]{5}\)|ERROR: {1,2}(?:invalid input syntax for|column "|relation ")|Sybase: Server message|Incorrect syntax near '|Microsoft OLE DB Provider for/ },
  { name: 'java-stack', pattern: /\bat [A-Za-z_$][A-Za-z0-9_$.<>]{0,300}\([A-Za-z0-9_$]{1,200}\.java:[0-9]{1,6}\)|Exception in thread "|java\.lang\.[A-Za-z]{1,60}(?:Exception|Error)\b/ },
  { name: 'dotnet-stack', pattern: /\.cs:line [0-9]{1,7}|System\.(?:NullReference|InvalidOperation|Argument|Data\.SqlClient\.Sql)[A-Za-z]{0,40}Exception/ },
  { name: 'node-stack', requires: '    at ', pattern: /\.(?:js|mjs|cjs|ts):[0-9]{1,7}:[0-9]{1,7}\)?(?:\\n|\n|"|$)/ },
  { name: 'go-panic', pattern: /goroutine [0-9]{1,10} \[running\]|panic: runtime error/ },
  { name: 'php-error', pattern: /PHP (?:Fatal|Parse) error|<b>(?:Fatal error|Warning|Parse error)<\/b>:|Stack trace:\s{0,4}#0 / },
  { name: 'ruby-stack', pattern: /\.rb:[0-9]{1,7}:in `/ },
  { name: 'debug-page', pattern: /Werkzeug Debugger|Django Version:|Whitelabel Error Page|<title>Action Controller: Exception caught<\/title>/ },
];

const MAX_ERROR_SCAN_CHARS = 64 * 1024;



export function verboseErrorSignatures(text: string): string[] {
  const t = text.length > MAX_ERROR_SCAN_CHARS ? text.slice(0, MAX_ERROR_SCAN_CHARS) : text;
  return matchingSignatures(VERBOSE_ERROR_SIGNATURES, t);
}

function first(headers: Headers, name: string): string | undefined {
  return headers.get(name)?.[0];
}

export const VERSION_IN_BANNER = /[0-9]{1,6}\.[0-9]{1,6}/;
const BANNER_HEADERS = ['server', 'x-powered-by', 'x-aspnet-version', 'x-aspnetmvc-version', 'x-generator', 'x-runtime-version'];

/** Headers that disclose software versions ("Server: Werkzeug/2.2.2 Python/3.11.2"). */
export function versionBanners(headers: Headers): string[] {
  const out: string[] = [];
  for (const name of BANNER_HEADERS) {
    const v = first(headers, name);
    if (v === undefined) continue;
    if (name !== 'server' || VERSION_IN_BANNER.test(v)) out.push(`${name}: ${v.slice(0, 80)}`);
  }
  return out;
}

export type CorsProblem = 'wildcard-with-credentials' | 'null-origin-with-credentials' | 'reflected-origin-with-credentials';

export function corsProblem(request: RequestEvent, response: ResponseEvent): CorsProblem | undefined {
  const allowOrigin = first(response.headers, 'access-control-allow-origin')?.trim();
  if (allowOrigin === undefined) return undefined;
  const credentials = first(response.headers, 'access-control-allow-credentials')?.trim().toLowerCase() === 'true';
  if (!credentials) return undefined;
  if (allowOrigin === '*') return 'wildcard-with-credentials';
  if (allowOrigin === 'null') return 'null-origin-with-credentials';
  const origin = first(request.headers, 'origin');
  if (origin !== undefined && origin === allowOrigin) return 'reflected-origin-with-credentials';
  return undefined;
}

/** Security headers a browser-facing response should carry; which apply depends on the content. */
export function missingSecurityHeaders(response: ResponseEvent, https: boolean): string[] {
  const missing: string[] = [];
  const h = response.headers;
  if (!h.has('x-content-type-options')) missing.push('x-content-type-options');
  if (https && !h.has('strict-transport-security')) missing.push('strict-transport-security');
  const type = first(h, 'content-type')?.toLowerCase() ?? '';
  if (type.startsWith('text/html')) {
    if (!h.has('content-security-policy')) missing.push('content-security-policy');
    if (!h.has('x-frame-options') && !(first(h, 'content-security-policy') ?? '').includes('frame-ancestors')) missing.push('x-frame-options');
  }
  return missing;
}

/** A request that entered the mesh from outside: through an ingress that set X-Forwarded-For, or without a workload identity. */
export function isNorthSouth(request: RequestEvent): boolean {
  return request.headers.has('x-forwarded-for') || request.caller.workload === undefined;
}

export interface PostureItem {
  issue: string;
  detail: string;
  firstSeen: number;
  lastSeen: number;
  count: number;
}
