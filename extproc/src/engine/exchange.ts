// The unit detectors observe: one HTTP exchange (request, later its response) plus what the
// engine derived once for every detector (caller key, operation id), so no detector recomputes it.
import type { RequestEvent, ResponseEvent } from './event.ts';
import { templatePath } from './operation.ts';

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
}

export function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

export function callerKeyOf(request: RequestEvent): string {
  const c = request.caller;
  if (c.workload) return c.workload;
  if (c.sourceAddress) return `ip:${c.sourceAddress.replace(/:\d+$/, '')}`;
  return 'anonymous';
}

export function toExchange(request: RequestEvent): Exchange {
  const template = templatePath(pathOnly(request.path));
  return {
    request,
    callerKey: callerKeyOf(request),
    operation: `${request.method} ${request.authority} ${template}`,
    template,
  };
}
