// Traffic simulator: benign users of a sample shop API with realistic variety (many users who own
// their orders, pagination, retries, mistyped passwords, admins doing admin work, internal workers
// that list then process orders, a reporting job) plus attack campaigns, one kind per detector,
// every exchange labelled, in the corpus record format (so the replay tool scores it).
import { createHash, createHmac } from 'node:crypto';
import type { CaptureRecord } from '../../extproc/src/replay/record.ts';
import { pathOnly } from '../../extproc/src/engine/exchange.ts';

export const AUTHORITY = 'shop.store.svc.cluster.local';
export const FRONTEND = 'spiffe://cluster.local/ns/web/sa/frontend';
export const REPORTING = 'spiffe://cluster.local/ns/analytics/sa/reporting-job';
export const FULFILMENT = 'spiffe://cluster.local/ns/ops/sa/fulfilment';
export const PAYMENT_WORKER = 'spiffe://cluster.local/ns/payments/sa/payment-worker';
const EPOCH = Date.UTC(2026, 10, 27, 9, 0, 0);

export type CampaignKind = 'bola-walk' | 'bola-harvest' | 'bola-pollution' | 'bola-prefixed-walk' | 'stuffing-burst' | 'stuffing-spread' | 'page-abuse' | 'request-flood' | 'bfla-admin' | 'bfla-tamper' | 'signup-bot' | 'lateral';

/** Which detector each campaign kind is for, and its label class. */
export const CAMPAIGN_KINDS: Record<CampaignKind, { detector: string; class: string }> = {
  'bola-walk': { detector: 'bola', class: 'API1-BOLA' },
  'bola-harvest': { detector: 'bola', class: 'API1-BOLA' },
  'bola-pollution': { detector: 'bola', class: 'API1-BOLA' },
  'bola-prefixed-walk': { detector: 'bola', class: 'API1-BOLA' },
  'stuffing-burst': { detector: 'broken-auth', class: 'API2-AUTH' },
  'stuffing-spread': { detector: 'broken-auth', class: 'API2-AUTH' },
  'page-abuse': { detector: 'resource-consumption', class: 'API4-RESOURCE' },
  'request-flood': { detector: 'resource-consumption', class: 'API4-RESOURCE' },
  'bfla-admin': { detector: 'bfla', class: 'API5-BFLA' },
  'bfla-tamper': { detector: 'bfla', class: 'API5-BFLA' },
  'signup-bot': { detector: 'business-flows', class: 'API6-FLOW' },
  'lateral': { detector: 'lateral-movement', class: 'LATERAL' },
};

/** Deterministic randomness per seed: a hash of seed and draw number, so every seed replays the
 *  same traffic. */
function prng(seed: number): () => number {
  let draw = 0;
  return () => createHash('sha256').update(`${seed}:${draw++}`).digest().readUInt32BE(0) / 2 ** 32;
}

interface Account { username: string; password: string; ip: string; admin: boolean; orders: number[] }
interface Label { class: string; campaign?: string; phase?: 'attack' | 'setup' }
interface Req { t: number; workload: string; ip: string; method: string; path: string; token?: string; body?: unknown; headers?: [string, string][]; label: Label; forwarded: boolean }

function jwt(sub: string, iat: number): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc({ sub, iss: 'https://id.shop.example', iat, exp: iat + 3600 })}`;
  return `${input}.${createHmac('sha256', 'sim-secret').update(input).digest('base64url')}`;
}

/** The sample app: keeps accounts, products and orders, answers every request like a (vulnerable) shop. */
class ShopApp {
  readonly accounts = new Map<string, Account>();
  readonly orders = new Map<number, { owner: string; total: number }>();
  /** Invoices have prefixed, zero-padded counter IDs (INV-2026-004100), one per order. */
  readonly invoices = new Map<string, { owner: string; order: number }>();
  nextInvoice = 4_100;
  readonly disabled = new Set<string>();
  nextOrder = 10_000;
  readonly products = Array.from({ length: 300 }, (_, i) => 500 + i);

  invoicesOf(who: string | undefined): string[] {
    return [...this.invoices].filter(([, i]) => i.owner === who).map(([id]) => id);
  }

  answer(r: Req): { status: number; body?: unknown } {
    const [path, query = ''] = r.path.split('?');
    const seg = path!.split('/').filter(Boolean); // api v1 ...
    const who = r.token ? JSON.parse(Buffer.from(r.token.split('.')[1]!, 'base64url').toString()).sub as string : undefined;
    const body = (r.body ?? {}) as Record<string, unknown>;
    const p = seg.slice(2);
    if (p[0] === 'auth' && p[1] === 'login') {
      const a = this.accounts.get(String(body.username));
      if (a && a.password === body.password && !this.disabled.has(a.username)) return { status: 200, body: { access_token: jwt(a.username, Math.floor((EPOCH + r.t) / 1000)), token_type: 'Bearer' } };
      return { status: 401, body: { error: 'invalid credentials' } };
    }
    if (p[0] === 'auth' && p[1] === 'signup') {
      const username = String(body.username);
      if (this.accounts.has(username)) return { status: 409, body: { error: 'exists' } };
      return { status: 201, body: { username, created: true } };
    }
    if (p[0] === 'products' && p.length === 1) {
      const limit = Number(new URLSearchParams(query).get('limit') ?? 20);
      const page = Number(new URLSearchParams(query).get('page') ?? 1);
      const items = this.products.slice((page - 1) * Math.min(limit, 100), page * Math.min(limit, 100)).map((id) => ({ id, name: `product ${id}` }));
      return { status: 200, body: { items, page } };
    }
    if (p[0] === 'products' && p.length === 2) {
      if (r.method === 'DELETE') return { status: 204 };
      return { status: 200, body: { id: Number(p[1]), name: `product ${p[1]}`, price: 12.5 } };
    }
    if (p[0] === 'orders' && p.length === 1 && r.method === 'POST') {
      const id = this.nextOrder++;
      this.orders.set(id, { owner: who ?? 'anonymous', total: 10 + (id % 90) });
      this.accounts.get(who ?? '')?.orders.push(id);
      const invoice = invoiceId(this.nextInvoice++);
      this.invoices.set(invoice, { owner: who ?? 'anonymous', order: id });
      return { status: 201, body: { id, owner: who, status: 'created', invoice_id: invoice } };
    }
    if (p[0] === 'invoices' && p.length === 1) {
      // Invoices do not name their owner, so only the walk gives an enumeration away early.
      return { status: 200, body: { items: this.invoicesOf(who).slice(-20).map((invoice_id) => ({ invoice_id })) } };
    }
    if (p[0] === 'invoices' && p.length === 2) {
      const inv = this.invoices.get(p[1]!);
      return inv ? { status: 200, body: { invoice_id: p[1], order: inv.order, iban: 'DE00 0000' } } : { status: 404, body: { error: 'not found' } };
    }
    if (p[0] === 'orders' && p.length === 1) {
      const mine = [...this.orders].filter(([, o]) => o.owner === who).slice(-20).map(([id, o]) => ({ id, owner: o.owner, total: o.total }));
      return { status: 200, body: { items: mine } };
    }
    if (p[0] === 'orders' && p.length === 2) {
      const o = this.orders.get(Number(p[1]));
      return o ? { status: 200, body: { id: Number(p[1]), owner: o.owner, total: o.total, address: 'somewhere' } } : { status: 404, body: { error: 'not found' } };
    }
    if (p[0] === 'internal' && p[1] === 'pending-orders') {
      return { status: 200, body: { pending: [...this.orders.keys()].slice(-10).map((id) => ({ order_id: id })) } };
    }
    if (p[0] === 'users' && p.length === 2) return { status: 200, body: { username: p[1], email: `${p[1]}@mail.example` } };
    if (p[0] === 'users' && p.length === 3) return { status: 204 };
    if (p[0] === 'admin') {
      if (p[1] === 'users' && p[3] === 'disable') this.disabled.add(p[2]!);
      return { status: 200, body: { ok: true, report: p[1] === 'reports' ? [1, 2, 3] : undefined } };
    }
    if (p[0] === 'checkout') return { status: 200, body: { paid: true } };
    return { status: 404, body: { error: 'no route' } };
  }
}

const invoiceId = (n: number): string => `INV-2026-${String(n).padStart(6, '0')}`;

const FIRST = ['ann', 'ben', 'cara', 'dev', 'eli', 'fay', 'gus', 'hana', 'ivan', 'jo', 'kim', 'lee', 'max', 'nia', 'oz', 'pia', 'quin', 'ray', 'sol', 'tess'];

export interface SimOptions {
  seed: number;
  users?: number;
  /** Simulated minutes of benign traffic. */
  minutes?: number;
  /** Campaign kinds to run (each once per listed entry), started after the learning period. */
  campaigns?: CampaignKind[];
}

export function simulate(options: SimOptions): CaptureRecord[] {
  const rnd = prng(options.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const between = (a: number, b: number): number => a + rnd() * (b - a);
  const app = new ShopApp();
  const reqs: Req[] = [];
  const minutes = options.minutes ?? 30;
  const span = minutes * 60_000;
  const userCount = options.users ?? 60;
  const api = (p: string): string => `/api/v1${p}`;

  // Benign users: half registered before the capture, half sign up during it.
  const users: Account[] = [];
  for (let i = 0; i < userCount; i++) {
    const username = `${pick(FIRST)}.${FIRST[i % FIRST.length]}${i}`;
    const a: Account = { username, password: `pw-${i}-${Math.floor(rnd() * 1e6)}`, ip: `10.20.${Math.floor(i / 200)}.${(i % 200) + 20}`, admin: i < 3, orders: [] };
    users.push(a);
    if (i % 2 === 0) app.accounts.set(username, a);
  }

  const benign: Label = { class: 'benign' };
  for (const u of users) {
    // Admins work through the whole capture; other users show up at any time.
    let t = u.admin ? between(0, span * 0.1) : between(0, span * 0.7);
    const push = (method: string, path: string, extra: Partial<Req> = {}): void => {
      t += between(800, 9000);
      reqs.push({ t, workload: FRONTEND, ip: u.ip, method, path, label: benign, forwarded: true, ...extra });
    };
    if (!app.accounts.has(u.username)) {
      push('POST', api('/auth/signup'), { body: { username: u.username, password: u.password, email: `${u.username}@mail.example` } });
      app.accounts.set(u.username, u);
    }
    const sessions = u.admin ? 4 + Math.floor(rnd() * 3) : 1 + Math.floor(rnd() * 3);
    for (let s = 0; s < sessions; s++) {
      if (rnd() < 0.15) push('POST', api('/auth/login'), { body: { username: u.username, password: `${u.password}x` } });
      push('POST', api('/auth/login'), { body: { username: u.username, password: u.password } });
      const token = jwt(u.username, Math.floor((EPOCH + t) / 1000));
      const pages = 1 + Math.floor(rnd() * 3);
      for (let p = 1; p <= pages; p++) {
        const limit = pick([10, 20, 25, 50, 100]);
        push('GET', api(`/products?page=${p}&limit=${limit}`), { token });
        if (rnd() < 0.1) push('GET', api(`/products?page=${p}&limit=${limit}`), { token }); // retry
      }
      for (let k = 0; k < 1 + Math.floor(rnd() * 3); k++) push('GET', api(`/products/${pick(app.products.slice(0, 100))}`), { token });
      const orders = Math.floor(rnd() * 3);
      for (let k = 0; k < orders; k++) push('POST', api('/orders'), { token, body: { product_id: pick(app.products), qty: 1 } });
      push('GET', api('/orders'), { token });
      if (orders > 0 || rnd() < 0.5) push('GET', api(`/orders/{own}`), { token });
      // Invoices (prefixed IDs): listed, then one opened, sometimes with the id repeated in the query.
      if (orders > 0 && rnd() < 0.6) {
        push('GET', api('/invoices'), { token });
        push('GET', api(rnd() < 0.3 ? '/invoices/{own-invoice}?invoice_id={same}' : '/invoices/{own-invoice}'), { token });
      }
      if (rnd() < 0.3) push('PUT', api(`/users/${u.username}/address`), { token, body: { street: 'Main 1' } });
      if (rnd() < 0.3) push('GET', api(`/users/${u.username}`), { token });
      if (rnd() < 0.4) push('POST', api('/checkout'), { token, body: { cart: 1 } });
      if (u.admin) {
        for (let k = 0; k < 1 + Math.floor(rnd() * 3); k++) push('GET', api('/admin/reports'), { token });
        if (rnd() < 0.7) push('POST', api(`/admin/users/${pick(users.slice(10)).username}/disable`), { token });
      }
      t += between(30_000, 180_000);
    }
  }
  // Internal: a reporting job polls the catalogue; fulfilment lists pending orders then processes them.
  for (let t = 500; t < span; t += between(9000, 11000)) reqs.push({ t, workload: REPORTING, ip: '10.60.3.7', method: 'GET', path: api('/products?limit=100'), label: benign, forwarded: false });
  for (let t = 2000; t < span; t += between(25_000, 35_000)) {
    reqs.push({ t, workload: FULFILMENT, ip: '10.61.0.4', method: 'GET', path: api('/internal/pending-orders'), label: benign, forwarded: false });
    for (let k = 1; k <= 3; k++) reqs.push({ t: t + k * 300, workload: FULFILMENT, ip: '10.61.0.4', method: 'GET', path: api('/orders/{pending}'), label: benign, forwarded: false });
  }

  // Campaigns start after the learning period (first 40 % of the capture), spaced out.
  const kinds = options.campaigns ?? [];
  kinds.forEach((kind, i) => {
    const start = span * 0.4 + (i + rnd() * 0.5) * ((span * 0.55) / Math.max(1, kinds.length));
    addCampaign(kind, `${kind}-${options.seed}-${i}`, start, i);
  });

  function addCampaign(kind: CampaignKind, campaign: string, start: number, n: number): void {
    const cls = CAMPAIGN_KINDS[kind].class;
    const attack: Label = { class: cls, campaign, phase: 'attack' };
    const setup: Label = { class: cls, campaign, phase: 'setup' };
    const ip = `172.16.${n}.${10 + Math.floor(rnd() * 200)}`;
    let t = start;
    const step = (min: number, max: number): number => (t += between(min, max));
    const attacker: Account = { username: `mal.${kind}.${n}`, password: 'p', ip, admin: false, orders: [] };
    const loginAs = (a: Account): string => {
      app.accounts.set(a.username, a);
      reqs.push({ t: step(500, 1500), workload: FRONTEND, ip, method: 'POST', path: api('/auth/login'), body: { username: a.username, password: a.password }, label: setup, forwarded: true });
      return jwt(a.username, Math.floor((EPOCH + t) / 1000));
    };
    switch (kind) {
      case 'bola-walk': {
        const token = loginAs(attacker);
        reqs.push({ t: step(500, 1000), workload: FRONTEND, ip, method: 'POST', path: api('/orders'), token, body: { product_id: 501, qty: 1 }, label: setup, forwarded: true });
        for (let k = 1; k <= 30; k++) reqs.push({ t: step(80, 200), workload: FRONTEND, ip, method: 'GET', path: api(`/orders/{own-minus-${k}}`), token, label: attack, forwarded: true });
        break;
      }
      case 'bola-pollution': {
        // One order of its own, then each object reference given twice: own ID where the server
        // checks, a victim's where it reads.
        const token = loginAs(attacker);
        reqs.push({ t: step(500, 1000), workload: FRONTEND, ip, method: 'POST', path: api('/orders'), token, body: { product_id: 502, qty: 1 }, label: setup, forwarded: true });
        const victim = pick(users).username;
        const polluted: Partial<Req>[] = [
          { method: 'GET', path: api('/orders/{random-foreign}?order_id={own}') },
          { method: 'GET', path: api('/invoices/{random-foreign-invoice}'), headers: [['X-Invoice-Id', '{own-invoice}']] },
          { method: 'PUT', path: api(`/users/${victim}/address`), body: { user_id: attacker.username, street: 'Elsewhere 9' } },
          { method: 'GET', path: api('/orders/{own}?order_id={own}&order_id={random-foreign}') },
        ];
        for (const extra of polluted) reqs.push({ t: step(800, 3000), workload: FRONTEND, ip, method: 'GET', path: '', token, label: attack, forwarded: true, ...extra });
        break;
      }
      case 'bola-prefixed-walk': {
        const token = loginAs(attacker);
        reqs.push({ t: step(500, 1000), workload: FRONTEND, ip, method: 'POST', path: api('/orders'), token, body: { product_id: 503, qty: 1 }, label: setup, forwarded: true });
        for (let k = 1; k <= 30; k++) reqs.push({ t: step(80, 200), workload: FRONTEND, ip, method: 'GET', path: api(`/invoices/{own-invoice-minus-${k}}`), token, label: attack, forwarded: true });
        break;
      }
      case 'bola-harvest': {
        const token = loginAs(attacker);
        for (let k = 0; k < 25; k++) reqs.push({ t: step(300, 2500), workload: FRONTEND, ip, method: 'GET', path: api('/orders/{random-foreign}'), token, label: attack, forwarded: true });
        break;
      }
      case 'stuffing-burst':
        for (let k = 0; k < 60; k++) reqs.push({ t: step(50, 400), workload: FRONTEND, ip, method: 'POST', path: api('/auth/login'), body: { username: k % 7 === 0 ? pick(users).username : `${pick(FIRST)}${k}`, password: pick(['123456', 'password', 'qwerty', 'Summer2026!']) }, label: attack, forwarded: true });
        break;
      case 'stuffing-spread':
        for (let k = 0; k < 70; k++) reqs.push({ t: step(300, 1500), workload: FRONTEND, ip: `198.51.${n}.${k + 1}`, method: 'POST', path: api('/auth/login'), body: { username: pick(users).username, password: pick(['123456', 'letmein', 'Winter2025!']) }, label: attack, forwarded: true });
        break;
      case 'page-abuse': {
        const token = loginAs(attacker);
        for (let k = 1; k <= 10; k++) reqs.push({ t: step(200, 800), workload: FRONTEND, ip, method: 'GET', path: api(`/products?page=${k}&limit=${pick([5000, 10000, 50000])}`), token, label: attack, forwarded: true });
        break;
      }
      case 'request-flood': {
        // A scraper with no history hammering one expensive operation.
        const token = loginAs(attacker);
        for (let k = 0; k < 150; k++) reqs.push({ t: step(60, 140), workload: FRONTEND, ip, method: 'GET', path: api(`/products?page=${1 + (k % 3)}&limit=100`), token, label: attack, forwarded: true });
        break;
      }
      case 'bfla-admin': {
        const token = loginAs(attacker);
        reqs.push({ t: step(1000, 3000), workload: FRONTEND, ip, method: 'GET', path: api('/admin/reports'), token, label: attack, forwarded: true });
        for (let k = 0; k < 3; k++) reqs.push({ t: step(1000, 3000), workload: FRONTEND, ip, method: 'POST', path: api(`/admin/users/${pick(users).username}/disable`), token, label: attack, forwarded: true });
        break;
      }
      case 'bfla-tamper': {
        const token = loginAs(attacker);
        for (let k = 0; k < 3; k++) reqs.push({ t: step(1000, 3000), workload: FRONTEND, ip, method: 'DELETE', path: api(`/products/${pick(app.products)}`), token, label: attack, forwarded: true });
        break;
      }
      case 'signup-bot':
        for (let k = 0; k < 80; k++) {
          reqs.push({ t: step(250, 400), workload: FRONTEND, ip: `203.0.${n}.${(k % 250) + 1}`, method: 'POST', path: api('/auth/signup'), body: { username: `bot${n}x${k}`, password: 'Passw0rd!', email: `bot${k}@mailinator.example` }, label: attack, forwarded: true });
        }
        break;
      case 'lateral':
        for (let k = 0; k < 8; k++) reqs.push({ t: step(500, 2000), workload: PAYMENT_WORKER, ip: '10.52.7.31', method: 'GET', path: api(`/users/${pick(users).username}`), label: attack, forwarded: false });
        break;
    }
  }

  // Run the app in time order, resolving placeholders (own order ids, foreign ids) against its state.
  reqs.sort((a, b) => a.t - b.t);
  const records: CaptureRecord[] = [];
  const ownerOfToken = (token?: string): string | undefined => (token ? JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sub : undefined);
  let seq = 0;
  let pendingCursor = 0;
  for (const r of reqs) {
    const who = ownerOfToken(r.token);
    let last = '';
    const resolve = (text: string): string => text.replace(/\{(own|own-minus-(\d+)|random-foreign|pending|own-invoice|own-invoice-minus-(\d+)|random-foreign-invoice|same)\}/g, (_m, what: string, k?: string, ki?: string) => {
      const mine = app.accounts.get(who ?? '')?.orders ?? [];
      const all = [...app.orders.keys()];
      const invoices = app.invoicesOf(who);
      if (what === 'same') return last;
      if (what === 'own') return (last = String(mine.length > 0 ? pick(mine) : all.length > 0 ? (mine[0] ?? pick(all)) : 10_000));
      if (what === 'pending') return String(all.length > 0 ? all[Math.max(0, all.length - 1 - (pendingCursor++ % Math.min(10, all.length)))] : 10_000);
      if (what === 'own-invoice') return (last = invoices.length > 0 ? pick(invoices) : invoiceId(app.nextInvoice));
      if (ki !== undefined) return invoiceId(Number((invoices[0] ?? invoiceId(app.nextInvoice)).slice(-6)) - Number(ki));
      if (what === 'random-foreign-invoice') {
        const foreign = [...app.invoices].filter(([, i]) => i.owner !== who).map(([id]) => id);
        return foreign.length > 0 ? pick(foreign) : invoiceId(4_100);
      }
      if (k !== undefined) return String((mine[0] ?? app.nextOrder) - Number(k));
      const foreign = all.filter((id) => app.orders.get(id)!.owner !== who);
      return String(foreign.length > 0 ? pick(foreign) : 10_000 + Math.floor(rnd() * 100));
    });
    r.path = resolve(r.path);
    r.headers = r.headers?.map(([name, value]) => [name, resolve(value)]);
    // A benign user with no invoices reading "own" reads nothing.
    if (r.label.class === 'benign' && /\/invoices\/INV-/.test(r.path) && app.invoices.get(pathOnly(r.path).split('/').pop()!)?.owner !== who) continue;
    // A benign user with no orders reading "own" (or fulfilment with nothing pending) reads nothing.
    if (r.label.class === 'benign' && /\/orders\/\d+$/.test(r.path)) {
      const order = app.orders.get(Number(r.path.split('/').pop()));
      if (order === undefined || (r.workload === FRONTEND && order.owner !== who)) continue;
    }
    const res = app.answer(r);
    const headers: [string, string][] = [['User-Agent', r.forwarded ? 'Mozilla/5.0' : 'internal-client/1.0'], ['Accept', 'application/json']];
    if (r.forwarded) headers.push(['X-Forwarded-For', r.ip]);
    if (r.token) headers.push(['Authorization', `Bearer ${r.token}`]);
    if (r.body !== undefined) headers.push(['Content-Type', 'application/json']);
    // The frontend propagates the signed-in user, as gateways do.
    if (r.token && r.forwarded) headers.push(['X-User-Id', who!]);
    headers.push(...(r.headers ?? []));
    records.push({
      id: `sim-${String(seq++).padStart(6, '0')}`,
      t_ms: Math.round(r.t),
      app: 'shop',
      authority: AUTHORITY,
      caller_workload: r.workload,
      client_ip: r.ip,
      request: { method: r.method, path: r.path, headers, body_b64: r.body === undefined ? null : Buffer.from(JSON.stringify(r.body)).toString('base64') },
      response: {
        status: res.status,
        headers: [['Date', new Date(EPOCH + r.t).toUTCString()], ['Content-Type', 'application/json']],
        body_b64: res.body === undefined ? null : Buffer.from(JSON.stringify(res.body)).toString('base64'),
      },
      label: { class: r.label.class, campaign: r.label.campaign ?? null, phase: r.label.phase ?? null, success: null },
    });
  }
  return records;
}
