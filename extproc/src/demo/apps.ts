// The demo's three applications (users, orders, payments): small in-memory HTTP services with the
// flaws real ones have, so the attack campaigns have something to exploit: guessable sequential order
// IDs and no ownership check (BOLA), an undeclared export endpoint that leaks card numbers, a
// deprecated v1 endpoint that answers errors with a stack trace. They trust the mesh for identity and
// read the end user from the bearer JWT, which users signs (HS256) at login.
import http from 'node:http';
import { createHmac, randomBytes } from 'node:crypto';

export interface DemoApp {
  readonly name: string;
  readonly port: number;
  close(): Promise<void>;
}

export const JWT_ISSUER = 'https://login.shop.example';
const MAX_BODY = 256 * 1024;

interface Reply { status: number; body?: unknown; headers?: Record<string, string> }
type Handler = (req: { method: string; path: string; query: URLSearchParams; user?: string; body: unknown; raw: string }) => Reply;

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

async function serve(name: string, key: Buffer, handle: Handler): Promise<DemoApp> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => { size += c.length; if (size <= MAX_BODY) chunks.push(c); });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://app');
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try { body = raw ? JSON.parse(raw) : undefined; } catch { body = undefined; }
      const user = userOf(req.headers.authorization, key);
      let reply: Reply;
      try {
        reply = handle({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, ...(user ? { user } : {}), body, raw });
      } catch (err) {
        reply = { status: 500, body: { error: (err as Error).message } };
      }
      const text = typeof reply.body === 'string' ? reply.body : reply.body === undefined ? '' : JSON.stringify(reply.body);
      res.writeHead(reply.status, { 'content-type': typeof reply.body === 'string' ? 'text/plain' : 'application/json', ...reply.headers });
      res.end(text);
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  const addr = server.address();
  return {
    name,
    port: typeof addr === 'object' && addr ? addr.port : 0,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const field = (body: unknown, key: string): unknown => (body !== null && typeof body === 'object' ? (body as Record<string, unknown>)[key] : undefined);

export interface DemoApps {
  users: DemoApp;
  orders: DemoApp;
  payments: DemoApp;
  /** Accounts and their passwords (the benign users log in with them). */
  passwords: ReadonlyMap<string, string>;
  close(): Promise<void>;
}

export async function startDemoApps(accounts: readonly string[]): Promise<DemoApps> {
  const key = randomBytes(32);
  const passwords = new Map(accounts.map((a) => [a, `${a}-${randomBytes(4).toString('hex')}`]));
  const profiles = new Map(accounts.map((a, i) => [a, { id: 100 + i, username: a, email: `${a}@shop.example`, role: a.startsWith('admin') ? 'admin' : 'customer' }]));

  const users = await serve('users', key, ({ method, path, user, body }) => {
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
  });

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
  const ordersApp = await serve('orders', key, ({ method, path, query, user, body }) => {
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
  });

  let nextCharge = 1;
  const payments = await serve('payments', key, ({ method, path }) => {
    if (method === 'POST' && path === '/charges') return { status: 201, body: { chargeId: `ch_${(nextCharge++).toString(36).padStart(6, '0')}`, status: 'succeeded' } };
    const m = /^\/charges\/([^/]+)$/.exec(path);
    if (m && method === 'GET') return { status: 200, body: { chargeId: m[1], status: 'succeeded' } };
    return { status: 404, body: { error: 'not found' } };
  });

  return {
    users, orders: ordersApp, payments, passwords,
    close: async () => { await Promise.all([users.close(), ordersApp.close(), payments.close()]); },
  };
}
