// The demo's three applications (users, orders, payments): small in-memory HTTP services with the
// flaws real ones have, so the attack campaigns have something to exploit: guessable sequential order
// IDs and no ownership check (BOLA), an undeclared export endpoint that leaks card numbers, a
// deprecated v1 endpoint that answers errors with a stack trace, a payments service that stores what
// its FX-rates supplier answers without checking it. They trust the mesh for identity and read the end
// user from the bearer JWT, which users signs (HS256) at login.
import http from 'node:http';
import { createHmac, randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { webSocketAccept } from '../local/upstream-app.ts';

export interface DemoApp {
  readonly name: string;
  readonly port: number;
  close(): Promise<void>;
}

export const JWT_ISSUER = 'https://login.shop.example';
const MAX_BODY = 256 * 1024;

interface Reply { status: number; body?: unknown; headers?: Record<string, string> }
interface AppRequest { method: string; path: string; query: URLSearchParams; user?: string; body: unknown; raw: string; requestId?: string }
type Handler = (req: AppRequest) => Reply | Promise<Reply>;
/** Answers a WebSocket upgrade: 101 accepts it (the socket then stays open until the client ends it). */
type UpgradeHandler = (req: { path: string; user?: string }) => 101 | 401 | 404;

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found' };

const b64url = (v: string | Buffer): string => Buffer.from(v).toString('base64url');

/** An HS256 JWT; `alg: "none"` tokens (for the broken-auth campaign) are built by the generator. */
export function signJwt(claims: Record<string, unknown>, key: Buffer): string {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  return `${head}.${body}.${createHmac('sha256', key).update(`${head}.${body}`).digest('base64url')}`;
}

/** The end user of a request: the JWT's sub when its signature verifies with `key`. */
function userOf(authorization: string | undefined, key: Buffer): string | undefined {
  const m = /^Bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/.exec(authorization ?? '');
  if (!m) return undefined;
  if (createHmac('sha256', key).update(`${m[1]}.${m[2]}`).digest('base64url') !== m[3]) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(m[2]!, 'base64url').toString('utf8')) as { sub?: unknown; exp?: unknown };
    if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now()) return undefined;
    return typeof claims.sub === 'string' ? claims.sub : undefined;
  } catch {
    return undefined;
  }
}

export async function serve(name: string, handle: Handler, options: { key?: Buffer; upgrade?: UpgradeHandler } = {}): Promise<DemoApp> {
  const { key, upgrade } = options;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => { size += c.length; if (size <= MAX_BODY) chunks.push(c); });
    req.on('end', async () => {
      const url = new URL(req.url ?? '/', 'http://app');
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try { body = raw ? JSON.parse(raw) : undefined; } catch { body = undefined; }
      const user = key ? userOf(req.headers.authorization, key) : undefined;
      const requestId = req.headers['x-request-id'];
      let reply: Reply;
      try {
        reply = await handle({
          method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, body, raw,
          ...(user ? { user } : {}), ...(typeof requestId === 'string' ? { requestId } : {}),
        });
      } catch (err) {
        reply = { status: 500, body: { error: (err as Error).message } };
      }
      const text = typeof reply.body === 'string' ? reply.body : reply.body === undefined ? '' : JSON.stringify(reply.body);
      res.writeHead(reply.status, { 'content-type': typeof reply.body === 'string' ? 'text/plain' : 'application/json', ...reply.headers });
      res.end(text);
    });
  });
  const sockets = new Set<Duplex>();
  if (upgrade) server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
    socket.on('error', () => {});
    const refuse = (status: number): void => { socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\ncontent-length: 0\r\n\r\n`); };
    const wsKey = req.headers['sec-websocket-key'];
    if (typeof wsKey !== 'string') { refuse(400); return; }
    const user = key ? userOf(req.headers.authorization, key) : undefined;
    const status = upgrade({ path: new URL(req.url ?? '/', 'http://app').pathname, ...(user ? { user } : {}) });
    if (status !== 101) { refuse(status); return; }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${webSocketAccept(wsKey)}\r\n\r\n`);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  const addr = server.address();
  return {
    name,
    port: typeof addr === 'object' && addr ? addr.port : 0,
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const field = (body: unknown, key: string): unknown => (body !== null && typeof body === 'object' ? (body as Record<string, unknown>)[key] : undefined);

/** What the payments app took from its FX-rates supplier for one charge (the app side of API10). */
export interface ConsumedQuote { currency: string; status: number; body: string }

/** At most this many consumed quotes are kept (the demo runs for a minute or two). */
const MAX_CONSUMED = 10_000;

export interface DemoApps {
  users: DemoApp;
  orders: DemoApp;
  payments: DemoApp;
  /** Accounts and their passwords (the benign users log in with them). */
  passwords: ReadonlyMap<string, string>;
  /** Live-updates WebSocket upgrades that reached orders: accepted, and refused for want of a valid token. */
  readonly liveUpgrades: { accepted: number; unauthenticated: number };
  /** FX quotes the payments app consumed, in order. */
  readonly consumedQuotes: readonly ConsumedQuote[];
  /** Where payments reaches the FX-rates supplier (its own outbound sidecar), once the mesh runs. */
  useFxRates(baseUrl: string, host: string): void;
  close(): Promise<void>;
}

/** GET through a sidecar listener with the destination's host name, propagating the request id. */
function getThrough(agent: http.Agent, url: string, host: string, requestId: string | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers: { host, ...(requestId ? { 'x-request-id': requestId } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

export async function startDemoApps(accounts: readonly string[]): Promise<DemoApps> {
  const key = randomBytes(32);
  const passwords = new Map(accounts.map((a) => [a, `${a}-${randomBytes(4).toString('hex')}`]));
  const profiles = new Map(accounts.map((a, i) => [a, { id: 100 + i, username: a, email: `${a}@shop.example`, role: a.startsWith('admin') ? 'admin' : 'customer' }]));

  const users = await serve('users', ({ method, path, user, body }) => {
    if (method === 'POST' && path === '/login') {
      const username = str(field(body, 'username'));
      if (!username || passwords.get(username) !== field(body, 'password')) return { status: 401, body: { error: 'invalid username or password' } };
      const now = Math.floor(Date.now() / 1000);
      return { status: 200, body: { token: signJwt({ iss: JWT_ISSUER, sub: username, iat: now, exp: now + 3600, scope: 'shop' }, key) } };
    }
    if (method === 'POST' && path === '/signup') return { status: 201, body: { username: str(field(body, 'username')) ?? 'new-user' } };
    if (method === 'POST' && path === '/graphql') return { status: 200, body: { data: { me: user ? profiles.get(user) ?? null : null } } };
    if (!user) return { status: 401, body: { error: 'login required' } };
    if (method === 'GET' && path === '/users/me') return { status: 200, body: profiles.get(user) ?? { username: user } };
    if (method === 'GET' && path === '/admin/users') return { status: 200, body: { users: [...profiles.values()] } };
    const m = /^\/users\/([^/]+)$/.exec(path);
    if (m && method === 'GET') return profiles.has(m[1]!) ? { status: 200, body: profiles.get(m[1]!) } : { status: 404, body: { error: 'no such user' } };
    if (m && method === 'PUT') return { status: 200, body: { ...profiles.get(m[1]!), ...(body as object) } };
    return { status: 404, body: { error: 'not found' } };
  }, { key });

  interface Order { id: number; owner: string; item: string; qty: number; total: number; card: string }
  const orders = new Map<number, Order>();
  let nextOrder = 1001;
  const seed = ['carol', 'dave', 'erin', 'frank'];
  for (let i = 0; i < 12; i++) {
    const owner = seed[i % seed.length]!;
    orders.set(nextOrder, { id: nextOrder, owner, item: 'coffee-beans', qty: 1 + (i % 3), total: 12 * (1 + (i % 3)), card: '4111111111111111' });
    nextOrder++;
  }
  const publicOrder = (o: Order): Omit<Order, 'card'> & { card: string } => ({ ...o, card: `**** ${o.card.slice(-4)}` });
  const liveUpgrades = { accepted: 0, unauthenticated: 0 };
  const ordersApp = await serve('orders', ({ method, path, query, user, body }) => {
    if (method === 'GET' && path === '/v2/catalog') return { status: 200, body: { items: ['coffee-beans', 'grinder', 'kettle'] } };
    const v1 = /^\/v1\/orders\/([^/]+)$/.exec(path);
    if (v1 && method === 'GET') {
      const o = orders.get(Number(v1[1]));
      // The old code path: a bad id blows up and the framework prints the stack to the caller.
      if (!o) return { status: 500, body: `TypeError: Cannot read properties of undefined (reading 'owner')\n    at getOrderV1 (/srv/orders/src/legacy/orders.js:88:19)\n    at Layer.handle [as handle_request] (/srv/orders/node_modules/express/lib/router/layer.js:95:5)\n` };
      return { status: 200, body: { order_id: o.id, owner: o.owner, item: o.item } };
    }
    if (!user) return { status: 401, body: { error: 'login required' } };
    if (method === 'GET' && path === '/v2/orders') {
      const limit = Number(query.get('limit') ?? 20);
      return { status: 200, body: { orders: [...orders.values()].filter((o) => o.owner === user).slice(0, limit).map(publicOrder) } };
    }
    if (method === 'POST' && path === '/v2/orders') {
      const qty = Number(field(body, 'qty') ?? 1);
      const o: Order = { id: nextOrder++, owner: user, item: str(field(body, 'item')) ?? 'coffee-beans', qty, total: 12 * qty, card: '4111111111111111' };
      orders.set(o.id, o);
      return { status: 201, body: publicOrder(o) };
    }
    const one = /^\/v2\/orders\/(\d+)(\/export)?$/.exec(path);
    if (one && method === 'GET') {
      // No ownership check: any logged-in user reads any order (the BOLA flaw).
      const o = orders.get(Number(one[1]));
      if (!o) return { status: 404, body: { error: 'no such order' } };
      // The undeclared export endpoint returns the full card number (excessive data exposure).
      return { status: 200, body: one[2] ? o : publicOrder(o) };
    }
    if (method === 'POST' && path === '/v2/checkout') return { status: 200, body: { status: 'paid', orderId: field(body, 'orderId') ?? null } };
    if (method === 'POST' && path === '/v2/coupons/redeem') return { status: 200, body: { discount: 5 } };
    return { status: 404, body: { error: 'not found' } };
  }, {
    key,
    // Live order updates for a signed-in customer's devices.
    upgrade: ({ path, user }) => {
      if (path !== '/v2/live') return 404;
      if (!user) { liveUpgrades.unauthenticated++; return 401; }
      liveUpgrades.accepted++;
      return 101;
    },
  });

  let nextCharge = 1;
  let fxRates: { url: string; host: string } | undefined;
  const consumedQuotes: ConsumedQuote[] = [];
  const fxAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const payments = await serve('payments', async ({ method, path, body, requestId }) => {
    if (method === 'POST' && path === '/charges') {
      const chargeId = `ch_${(nextCharge++).toString(36).padStart(6, '0')}`;
      if (!fxRates) return { status: 201, body: { chargeId, status: 'succeeded' } };
      // Settles in USD at the supplier's rate, and keeps the supplier's answer with the charge as is.
      const currency = str(field(body, 'currency')) ?? 'EUR';
      const quote = await getThrough(fxAgent, `${fxRates.url}/v1/rates?base=${encodeURIComponent(currency)}&quote=USD`, fxRates.host, requestId);
      if (consumedQuotes.length < MAX_CONSUMED) consumedQuotes.push({ currency, status: quote.status, body: quote.body });
      let fx: unknown;
      try { fx = JSON.parse(quote.body); } catch { fx = undefined; }
      const rate = Number.parseFloat(String(field(fx, 'rate')));
      if (quote.status !== 200 || !(rate > 0)) return { status: 502, body: { error: 'exchange rate unavailable' } };
      return { status: 201, body: { chargeId, status: 'succeeded', amountUsd: Number(field(body, 'amount') ?? 0) * rate, fx } };
    }
    const m = /^\/charges\/([^/]+)$/.exec(path);
    if (m && method === 'GET') return { status: 200, body: { chargeId: m[1], status: 'succeeded' } };
    return { status: 404, body: { error: 'not found' } };
  }, { key });

  return {
    users, orders: ordersApp, payments, passwords, liveUpgrades, consumedQuotes,
    useFxRates: (url, host) => { fxRates = { url, host }; },
    close: async () => { fxAgent.destroy(); await Promise.all([users.close(), ordersApp.close(), payments.close()]); },
  };
}
