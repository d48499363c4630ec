// A small generic HTTP router for the server's control endpoints (filter configuration, ...).
// Every route except /healthz and /readyz requires `Authorization: Bearer <token>`, compared in
// constant time; request bodies are bounded. Modules register their own routes.
// Two tokens: the admin token opens every route; the filter token (the one every sidecar's plugin
// configuration carries, so readable from inside any meshed pod through Envoy's config dump) opens
// only routes registered with `scope: 'filter'` (the filter's table refresh), never findings,
// inventory or spec uploads.
import http from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../log.ts';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface AdminRequest {
  method: Method;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface AdminResponse {
  status: number;
  /** A string is sent as is (text/plain unless contentType says otherwise); anything else as JSON. */
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface Route {
  method: Method;
  path: string;
  /** Largest accepted request body in bytes (default 1 MiB); larger gets 413. */
  maxBodyBytes?: number;
  /** 'filter': the filter token opens it too (default: the admin token only). */
  scope?: 'filter';
  handle(request: AdminRequest): AdminResponse | Promise<AdminResponse>;
}

const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);
const DEFAULT_MAX_BODY = 1024 * 1024;

export class AdminRouter {
  readonly #routes = new Map<string, Route>();
  #ready = true;

  register(route: Route): void {
    const key = `${route.method} ${route.path}`;
    if (this.#routes.has(key) || PUBLIC_PATHS.has(route.path)) throw new Error(`admin route ${key} is already registered`);
    this.#routes.set(key, route);
  }

  setReady(ready: boolean): void { this.#ready = ready; }

  route(method: string, path: string): Route | undefined { return this.#routes.get(`${method} ${path}`); }
  get ready(): boolean { return this.#ready; }
}

function digest(s: string): Buffer { return createHash('sha256').update(s).digest(); }

/** Constant-time bearer check (hashing first makes the comparison independent of length). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer ([^\s]+)$/i.exec(header ?? '');
  const presented = m?.[1] ?? '';
  return timingSafeEqual(digest(presented), digest(token)) && presented.length > 0;
}

function send(res: http.ServerResponse, r: AdminResponse): void {
  const isText = typeof r.body === 'string';
  const payload = r.body === undefined ? '' : isText ? (r.body as string) : JSON.stringify(r.body);
  res.writeHead(r.status, {
    'content-type': r.contentType ?? (isText ? 'text/plain; charset=utf-8' : 'application/json'),
    'cache-control': 'no-store',
    ...r.headers,
  });
  res.end(payload);
}

export interface AdminServerOptions {
  host: string;
  port: number;
  /** Bearer token for every non-public route; at least 16 characters. */
  token: string;
  /** Bearer token for the routes with scope 'filter' only; at least 16 characters, not the admin token. */
  filterToken?: string;
}

export interface RunningAdminServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startAdminServer(router: AdminRouter, options: AdminServerOptions, log: Logger): Promise<RunningAdminServer> {
  if (options.token.length < 16) throw new Error('admin server: bearer token must be at least 16 characters');
  const filterToken = options.filterToken;
  if (filterToken !== undefined && filterToken.length < 16) throw new Error('admin server: filter token must be at least 16 characters');
  if (filterToken !== undefined && filterToken === options.token) throw new Error('admin server: the filter token must differ from the admin token (every sidecar can read the filter token)');
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (url.pathname === '/healthz') return send(res, { status: 200, body: 'ok' });
    if (url.pathname === '/readyz') return send(res, router.ready ? { status: 200, body: 'ready' } : { status: 503, body: 'not ready' });
    const route = router.route(req.method ?? '', url.pathname);
    if (!bearerMatches(req.headers.authorization, options.token)) {
      if (filterToken === undefined || !bearerMatches(req.headers.authorization, filterToken)) {
        return send(res, { status: 401, body: { error: 'unauthorized' }, headers: { 'www-authenticate': 'Bearer' } });
      }
      // The filter token: its own route only; which other routes exist is not its business either.
      if (route?.scope !== 'filter') return send(res, { status: 403, body: { error: 'forbidden', detail: 'the filter token opens only the filter configuration route' } });
    }
    if (!route) return send(res, { status: 404, body: { error: 'not_found' } });
    const limit = route.maxBodyBytes ?? DEFAULT_MAX_BODY;
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit && !refused) {
        refused = true;
        send(res, { status: 413, body: { error: 'body_too_large', limit } });
        req.destroy();
      } else if (!refused) chunks.push(c);
    });
    req.on('end', () => {
      if (refused) return;
      const request: AdminRequest = {
        method: route.method, path: url.pathname, query: url.searchParams, headers: req.headers, body: Buffer.concat(chunks),
      };
      Promise.resolve()
        .then(() => route.handle(request))
        .then((r) => send(res, r), (err: unknown) => {
          log.error({ err, path: url.pathname }, 'admin route failed');
          send(res, { status: 500, body: { error: 'internal_error' } });
        });
    });
    req.on('error', () => { /* client went away */ });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`admin server: cannot listen on ${options.host}:${options.port}: ${err.message}`)));
    server.listen(options.port, options.host, () => {
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : options.port);
    });
  });
  log.info({ host: options.host, port }, 'admin server listening');
  return {
    port,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
