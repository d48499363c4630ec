// The unit detectors observe: one HTTP exchange (request, later its response) plus what the
// engine derived once for every detector (caller key, operation id), so no detector recomputes it.
import type { RequestEvent, ResponseEvent } from './event.ts';
import { templatePath } from './operation.ts';
import { bearerToken, peekJwt, sha256Hex, type JwtPeek } from './jwt.ts';
import type { ServiceHistory } from './state.ts';

export interface Exchange {
  request: RequestEvent;
  /** Present in onResponse. */
  response?: ResponseEvent;
  /** Who is calling, most specific first: end user (JWT sub) @ workload, else workload, else source IP. */
  callerKey: string;
  /** "METHOD host template", e.g. "GET orders.shop /users/{id}". */
  operation: string;
  /** Route template of the path (no query). */
  template: string;
  /** The bearer JWT, decoded but not verified (absent when the request carries none). */
  jwt?: JwtPeek;
  /** Where the request came from, for per-source rates: the end client address a workload
   *  forwarded, else the connection's address, else the workload. */
  source?: string;
  /** Names the end user goes by (JWT sub and name claims), for comparing with owner fields. */
  userNames?: readonly string[];
  /** Resource id with learned path parameters: "METHOD host /books/v1/{}" (engine-computed; falls
   *  back to `operation` when absent). */
  resource?: string;
  /** Path segments the resource template replaced, normalized, in order. */
  pathIds?: readonly string[];
  /** Static path segments and GraphQL root calls (computed once by actionNames()). */
  actions?: readonly string[];
  /** How long and how much the service has been observed, this request included (set by the
   *  engine; detectors judge it against their learning period with serviceLearned()). */
  serviceHistory?: ServiceHistory;
}

/** The operation detectors key baselines on: learned resource when known, else the operation id. */
export function operationKey(exchange: Exchange): string {
  return exchange.resource ?? exchange.operation;
}

export function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

const API_KEY_HEADERS = ['x-api-key', 'api-key', 'apikey', 'x-auth-token'];
const MAX_KEY_PART = 256;

function addressOnly(address: string): string {
  return address.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
}

/** The end client a calling workload forwarded (first X-Forwarded-For hop). Only as trustworthy as
 *  that workload: it refines the workload's own key, it never stands in for another identity. */
export function forwardedClient(request: RequestEvent): string | undefined {
  if (!request.caller.workload) return undefined;
  const xff = request.headers.get('x-forwarded-for')?.[0];
  const first = xff?.split(',')[0]?.trim();
  return first && first.length <= 64 && /^[0-9A-Fa-f.:[\]]+$/.test(first) ? first : undefined;
}

/** The transport-level caller: workload SPIFFE ID, else the connection's IP, else "anonymous". */
export function workloadKeyOf(request: RequestEvent): string {
  const c = request.caller;
  if (c.workload) return c.workload.slice(0, MAX_KEY_PART);
  if (c.sourceAddress) return `ip:${addressOnly(c.sourceAddress).slice(0, MAX_KEY_PART)}`;
  return 'anonymous';
}

/** Who is calling, most specific first: end user from the JWT (issuer + sub) at the workload, an
 *  API key (hashed) at the workload, the forwarded end client at the workload, else the workload. */
export function callerKeyOf(request: RequestEvent, jwt: JwtPeek | undefined = peekBearer(request)): string {
  const at = workloadKeyOf(request);
  // The end user: "sub", else the first claim that names the user (some apps sign no "sub").
  const user = jwt?.sub ?? jwt?.names[0];
  if (user !== undefined) return `user:${(jwt?.iss ?? '').slice(0, MAX_KEY_PART)}|${user.slice(0, MAX_KEY_PART)}@${at}`;
  for (const h of API_KEY_HEADERS) {
    const key = request.headers.get(h)?.[0];
    if (key) return `key:${sha256Hex(key, 16)}@${at}`;
  }
  const client = forwardedClient(request);
  if (client !== undefined) return `client:${client}@${at}`;
  return at;
}

export function peekBearer(request: RequestEvent): JwtPeek | undefined {
  const token = bearerToken(request.headers);
  return token === undefined ? undefined : peekJwt(token);
}

export function toExchange(request: RequestEvent): Exchange {
  // The sidecar filter's template already applies the exact table the server pushed (inventory and
  // specs); the baseline rules are the fallback when the filter is absent or bypassed.
  const template = request.template ?? templatePath(pathOnly(request.path));
  const jwt = peekBearer(request);
  const client = forwardedClient(request);
  const names = jwt?.wellFormed ? [...(jwt.sub !== undefined ? [jwt.sub] : []), ...jwt.names] : [];
  return {
    request,
    callerKey: callerKeyOf(request, jwt),
    operation: request.operation ?? `${request.method} ${request.authority} ${template}`,
    template,
    ...(jwt !== undefined ? { jwt } : {}),
    source: client !== undefined ? `client:${client}` : workloadKeyOf(request),
    userNames: names,
  };
}
