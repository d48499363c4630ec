// The demo's story: who runs in the mesh, who calls whom, what normal users do, and one attack
// campaign per detector. Campaigns name the detector they exercise; the demo runs those whose
// detector the engine has (content detectors appear here as their issue lands them).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DetectorSettingsInput } from '../engine/policy-settings.ts';
import type { DemoClient, RequestSpec } from './client.ts';

export const SPEC_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'specs');

export const SERVICES = [
  { name: 'users', workload: 'identity/users', host: 'users.identity.svc.cluster.local', spec: 'users.openapi.yaml' },
  { name: 'orders', workload: 'shop/orders', host: 'orders.shop.svc.cluster.local', spec: 'orders.openapi.yaml' },
  { name: 'payments', workload: 'payments/payments', host: 'payments.payments.svc.cluster.local', spec: 'payments.openapi.yaml' },
] as const;

export const INGRESS = 'istio-system/istio-ingressgateway';
export const FRONTEND = 'web/frontend';
export const ORDERS = 'shop/orders';
export const RECOMMENDATIONS = 'shop/recommendations';
export const AGENT = 'support/ai-agent';
/** Holds customers' live order-update sockets to orders; its own sidecar runs meshward outbound. */
export const NOTIFICATIONS = 'shop/notifications';
export const PAYMENTS = 'payments/payments';
/** The third-party API payments consumes, outside the mesh (see supplier.ts). */
export const FX_RATES = 'fx-rates';

export const CALLERS = [
  { workload: INGRESS, calls: ['users', 'orders'] },
  { workload: FRONTEND, calls: ['orders', 'users'] },
  { workload: ORDERS, calls: ['payments'] },
  { workload: RECOMMENDATIONS, calls: ['orders', 'payments'] },
  { workload: AGENT, calls: ['users'] },
  { workload: NOTIFICATIONS, calls: ['orders'], outboundMeshward: true },
  // The payments app's own calls to its FX-rates supplier, checked on its outbound sidecar (API10).
  { workload: PAYMENTS, calls: [FX_RATES], outboundMeshward: true },
];

const CUSTOMERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];
const OPERATOR = 'admin-ops';
const ATTACKERS = ['mallory', 'grace', 'ivan', 'judy', 'kim', 'trent'];
export const ACCOUNTS = [...CUSTOMERS, OPERATOR, 'support-bot', ...ATTACKERS];

/** Engine settings for a demo that learns for `learnMs` (production learns for much longer). */
export function demoDetectorSettings(learnMs: number, agentSpiffeId: string): DetectorSettingsInput {
  return {
    // 80%: the clock starts at each service's first request, a moment after the learning phase does.
    learning: { minDurationMs: Math.floor(learnMs * 0.8), minRequests: 30 },
    resource: { limits: [{ name: 'orders-list-per-caller', operation: '^GET \\S+ /v2/orders$', limit: 25, windowMs: 10_000 }] },
    lateral: { scopes: [{ identity: agentSpiffeId, allow: ['^POST users\\.identity\\.svc\\.cluster\\.local /login$', '^GET users\\.identity\\.svc\\.cluster\\.local /users/'] }] },
  };
}

export interface Actor {
  name: string;
  ip: string;
  token?: string;
  /** When this person last checked out / redeemed a coupon (people do not do either every second). */
  lastCheckout?: number;
  lastCoupon?: number;
  /** When this person's device last (re)opened its live order-updates socket. */
  lastLive?: number;
}

/** A person checks out or redeems a coupon at most this often. */
const FLOW_GAP_MS = 8_000;
/** A device reconnects its live-updates socket at most this often (well under the upgrade limit). */
const LIVE_GAP_MS = 10_000;

export interface ScenarioContext {
  client: DemoClient;
  /** The FX-rates supplier payments consumes (a campaign compromises it). */
  supplier: { compromise(currency: string): void };
  passwords: ReadonlyMap<string, string>;
  stopped(): boolean;
  /** A person's pause between two clicks (irregular, as people are). */
  think(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const idOf = (json: unknown): number | undefined => {
  const id = (json as { id?: unknown } | undefined)?.id;
  return typeof id === 'number' ? id : undefined;
};

/** Logs `user` in through the ingress (north-south) and returns the session token. */
export async function login(ctx: ScenarioContext, campaign: string, user: Actor, password = ctx.passwords.get(user.name)): Promise<string | undefined> {
  const res = await ctx.client.send(campaign, { caller: INGRESS, service: 'users', method: 'POST', path: '/login', clientIp: user.ip, body: { username: user.name, password } });
  return tokenOf(res.json);
}

const tokenOf = (json: unknown): string | undefined => {
  const token = (json as { token?: unknown } | undefined)?.token;
  return typeof token === 'string' ? token : undefined;
};

/** The support agent logs in with its service account, from its own workload (east-west). */
async function agentLogin(ctx: ScenarioContext, campaign: string): Promise<string | undefined> {
  const res = await ctx.client.send(campaign, { caller: AGENT, service: 'users', method: 'POST', path: '/login', body: { username: 'support-bot', password: ctx.passwords.get('support-bot') } });
  return tokenOf(res.json);
}

/** One customer visit: profile, catalogue, an order and its checkout and payment, the order list. */
export async function customerSession(ctx: ScenarioContext, user: Actor, round: number): Promise<void> {
  const send = async (s: Omit<RequestSpec, 'clientIp'>): ReturnType<DemoClient['send']> => {
    await ctx.think();
    return ctx.client.send('benign', { clientIp: user.ip, ...s });
  };
  if (!user.token || round % 5 === 0) user.token = await login(ctx, 'benign', user);
  const token = user.token;
  await send({ caller: FRONTEND, service: 'users', method: 'GET', path: '/users/me', ...(token ? { token } : {}) });
  if (token && Date.now() - (user.lastLive ?? 0) > LIVE_GAP_MS) {
    // The customer's device subscribes to live order updates through the notifications service.
    user.lastLive = Date.now();
    await ctx.client.upgrade('benign', { caller: NOTIFICATIONS, service: 'orders', path: '/v2/live', token, clientIp: user.ip });
  }
  // Browsing the catalogue comes in through the ingress gateway (north-south); the rest via the frontend.
  await send({ caller: INGRESS, service: 'orders', method: 'GET', path: '/v2/catalog' });
  if (!token) return;
  const created = await send({ caller: FRONTEND, service: 'orders', method: 'POST', path: '/v2/orders', token, body: { item: 'coffee-beans', qty: 1 + (round % 3) } });
  const id = idOf(created.json);
  if (id !== undefined) {
    await send({ caller: FRONTEND, service: 'orders', method: 'GET', path: `/v2/orders/${id}`, token });
    if (Date.now() - (user.lastCheckout ?? 0) > FLOW_GAP_MS) {
      user.lastCheckout = Date.now();
      await send({ caller: FRONTEND, service: 'orders', method: 'POST', path: '/v2/checkout', token, body: { orderId: id } });
      // The orders service charges the payment itself: east-west, its own identity, no end-user token.
      await ctx.client.send('benign', { caller: ORDERS, service: 'payments', method: 'POST', path: '/charges', body: { orderId: id, amount: 12 } });
    }
  }
  await send({ caller: FRONTEND, service: 'orders', method: 'GET', path: '/v2/orders?limit=10', token });
  if (Date.now() - (user.lastCoupon ?? 0) > FLOW_GAP_MS && round % 2 === 1) {
    user.lastCoupon = Date.now();
    await send({ caller: FRONTEND, service: 'orders', method: 'POST', path: '/v2/coupons/redeem', token, body: { code: 'WELCOME5' } });
  }
}

/** Background workloads: the operator's console, the recommender reading the catalogue, the support agent. */
export async function serviceSession(ctx: ScenarioContext, operator: Actor, agent: Actor, round: number): Promise<void> {
  if (!operator.token) operator.token = await login(ctx, 'benign', operator);
  agent.token ??= await agentLogin(ctx, 'benign');
  // The operators' console refreshes its account list (two pages).
  for (const page of ['', '?page=2']) {
    if (operator.token) await ctx.client.send('benign', { caller: FRONTEND, service: 'users', method: 'GET', path: `/admin/users${page}`, token: operator.token, clientIp: operator.ip });
  }
  await ctx.think();
  await ctx.client.send('benign', { caller: RECOMMENDATIONS, service: 'orders', method: 'GET', path: '/v2/catalog' });
  if (agent.token) await ctx.client.send('benign', { caller: AGENT, service: 'users', method: 'GET', path: `/users/${CUSTOMERS[round % 3]}`, token: agent.token });
  // Orders checks a payment's state: the payments service's steady east-west traffic.
  await ctx.client.send('benign', { caller: ORDERS, service: 'payments', method: 'GET', path: `/charges/ch_${String(1 + (round % 5)).padStart(6, '0')}` });
}

export function benignActors(): { customers: Actor[]; operator: Actor; agent: Actor } {
  return {
    customers: CUSTOMERS.map((name, i) => ({ name, ip: `192.0.2.${10 + i}` })),
    operator: { name: OPERATOR, ip: '10.20.0.5' },
    agent: { name: 'support-bot', ip: '' },
  };
}

export interface Campaign {
  name: string;
  detector: string;
  description: string;
  run(ctx: ScenarioContext): Promise<void>;
}

function unsignedJwt(claims: Record<string, unknown>): string {
  const part = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
}

async function repeat(ctx: ScenarioContext, n: number, gapMs: number, step: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n && !ctx.stopped(); i++) {
    await step(i);
    if (gapMs > 0) await sleep(gapMs);
  }
}

type Send = (spec: Omit<RequestSpec, 'clientIp' | 'token'>) => ReturnType<DemoClient['send']>;

/** Logs `name` in through the ingress from `ip`, and returns a sender for that session and campaign. */
async function session(ctx: ScenarioContext, campaign: string, name: string, ip: string): Promise<Send> {
  const token = await login(ctx, campaign, { name, ip });
  return (spec) => ctx.client.send(campaign, { ...spec, clientIp: ip, ...(token ? { token } : {}) });
}

export const CAMPAIGNS: readonly Campaign[] = [
  {
    name: 'order-id-walk', detector: 'bola',
    description: 'a logged-in customer reads orders 1001, 1002, ... that belong to others (guessable IDs, no ownership check)',
    async run(ctx) {
      const send = await session(ctx, 'order-id-walk', 'mallory', '198.51.100.7');
      await repeat(ctx, 10, 20, (i) => send({ caller: FRONTEND, service: 'orders', method: 'GET', path: `/v2/orders/${1001 + i}` }));
    },
  },
  {
    name: 'credential-stuffing', detector: 'broken-auth',
    description: 'one address tries leaked username/password pairs at /login, then presents a forged alg:none token',
    async run(ctx) {
      const ip = '203.0.113.66';
      const names = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'admin', 'root', 'test', 'guest', 'support', 'ops', 'info', 'sales'];
      await repeat(ctx, names.length, 15, (i) => login(ctx, 'credential-stuffing', { name: names[i]!, ip }, `Summer2024!${i}`));
      const now = Math.floor(Date.now() / 1000);
      await ctx.client.send('credential-stuffing', { caller: INGRESS, service: 'users', method: 'GET', path: '/users/me', clientIp: ip, token: unsignedJwt({ iss: 'https://login.shop.example', sub: 'admin-ops', exp: now + 3600 }) });
    },
  },
  {
    name: 'order-scraper', detector: 'resource-consumption',
    description: 'a script asks for 100000 orders per page, then polls the order list far above the per-caller limit',
    async run(ctx) {
      const send = await session(ctx, 'order-scraper', 'grace', '198.51.100.40');
      await send({ caller: FRONTEND, service: 'orders', method: 'GET', path: '/v2/orders?limit=100000' });
      await repeat(ctx, 30, 0, () => send({ caller: FRONTEND, service: 'orders', method: 'GET', path: '/v2/orders' }));
    },
  },
  {
    name: 'admin-takeover', detector: 'bfla',
    description: 'a customer calls the operators-only /admin/users, then PUTs an admin role onto /users/me (only ever read)',
    async run(ctx) {
      const send = await session(ctx, 'admin-takeover', 'ivan', '198.51.100.81');
      await send({ caller: FRONTEND, service: 'users', method: 'GET', path: '/admin/users' });
      await send({ caller: FRONTEND, service: 'users', method: 'PUT', path: '/users/me', body: { role: 'admin' } });
    },
  },
  {
    name: 'coupon-bot', detector: 'business-flows',
    description: 'a bot redeems coupons in a tight loop from one address',
    async run(ctx) {
      const send = await session(ctx, 'coupon-bot', 'judy', '198.51.100.23');
      await repeat(ctx, 16, 10, () => send({ caller: INGRESS, service: 'orders', method: 'POST', path: '/v2/coupons/redeem', body: { code: 'WELCOME5' } }));
    },
  },
  {
    name: 'compromised-pod', detector: 'lateral-movement',
    description: 'the recommendations pod, compromised, calls payments (never before); the support AI agent strays out of its scope',
    async run(ctx) {
      await ctx.client.send('compromised-pod', { caller: RECOMMENDATIONS, service: 'payments', method: 'POST', path: '/charges', body: { orderId: 1001, amount: 999 } });
      await ctx.client.send('compromised-pod', { caller: RECOMMENDATIONS, service: 'payments', method: 'GET', path: '/charges/ch_000001' });
      const token = await agentLogin(ctx, 'compromised-pod');
      await ctx.client.send('compromised-pod', { caller: AGENT, service: 'users', method: 'GET', path: '/admin/users', ...(token ? { token } : {}) });
    },
  },
  {
    name: 'mass-assignment', detector: 'content-contract',
    description: 'an order that also sets properties the API does not declare (role, isAdmin)',
    async run(ctx) {
      const send = await session(ctx, 'mass-assignment', 'kim', '198.51.100.90');
      await send({ caller: FRONTEND, service: 'orders', method: 'POST', path: '/v2/orders', body: { item: 'kettle', qty: 1, role: 'admin', isAdmin: true } });
    },
  },
  {
    name: 'metadata-ssrf', detector: 'content-ssrf',
    description: 'an order whose callback URL points at the cloud metadata service',
    async run(ctx) {
      const send = await session(ctx, 'metadata-ssrf', 'kim', '198.51.100.90');
      await send({ caller: FRONTEND, service: 'orders', method: 'POST', path: '/v2/orders', body: { item: 'kettle', qty: 1, callbackUrl: 'http://169.254.169.254/latest/meta-data/iam/security-credentials/' } });
    },
  },
  {
    name: 'shadow-export', detector: 'content-exposure',
    description: 'the undeclared /v2/orders/{id}/export endpoint returns full card numbers',
    async run(ctx) {
      const send = await session(ctx, 'shadow-export', 'kim', '198.51.100.90');
      const created = await send({ caller: FRONTEND, service: 'orders', method: 'POST', path: '/v2/orders', body: { item: 'grinder', qty: 1 } });
      await send({ caller: FRONTEND, service: 'orders', method: 'GET', path: `/v2/orders/${idOf(created.json) ?? 1001}/export` });
    },
  },
  {
    name: 'legacy-probe', detector: 'content-misconfig',
    description: 'probing the deprecated v1 order API with a bad id makes it answer with a stack trace',
    async run(ctx) {
      await ctx.client.send('legacy-probe', { caller: RECOMMENDATIONS, service: 'orders', method: 'GET', path: '/v1/orders/1002' });
      await ctx.client.send('legacy-probe', { caller: RECOMMENDATIONS, service: 'orders', method: 'GET', path: '/v1/orders/x' });
    },
  },
  {
    name: 'graphql-depth', detector: 'content-graphql',
    description: 'a deeply nested, aliased GraphQL query against the users API',
    async run(ctx) {
      let q = 'id';
      for (let i = 0; i < 14; i++) q = `friends { ${q} }`;
      const aliases = Array.from({ length: 30 }, (_, i) => `a${i}: me { ${q} }`).join(' ');
      await ctx.client.send('graphql-depth', { caller: INGRESS, service: 'users', method: 'POST', path: '/graphql', clientIp: '203.0.113.9', body: { query: `query { ${aliases} }` } });
    },
  },
  {
    name: 'grpc-recon', detector: 'content-grpc',
    description: 'the compromised recommendations pod asks the orders service for its schema through gRPC server reflection',
    async run(ctx) {
      await ctx.client.send('grpc-recon', {
        caller: RECOMMENDATIONS, service: 'orders', method: 'POST', path: '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
        rawBody: '', headers: { 'content-type': 'application/grpc', te: 'trailers' },
      });
    },
  },
  {
    name: 'live-socket-flood', detector: 'content-websocket',
    description: 'from the compromised notifications pod: live-updates WebSocket upgrades without any credential, then an upgrade flood on one session',
    async run(ctx) {
      const upgrade = (token?: string): ReturnType<DemoClient['upgrade']> => ctx.client.upgrade('live-socket-flood', { caller: NOTIFICATIONS, service: 'orders', path: '/v2/live', ...(token ? { token } : {}) });
      await repeat(ctx, 3, 20, () => upgrade());
      const token = await login(ctx, 'live-socket-flood', { name: 'trent', ip: '198.51.100.120' });
      await repeat(ctx, 40, 0, () => upgrade(token));
    },
  },
  {
    name: 'compromised-supplier', detector: 'content-unsafe-consumption',
    description: 'the FX-rates supplier payments consumes is compromised: its GBP quotes carry a script payload and a rate that is not a number',
    async run(ctx) {
      ctx.supplier.compromise('GBP');
      // Ordinary GBP charges from orders; payments fetches the poisoned quote through its outbound sidecar.
      await repeat(ctx, 2, 20, (i) => ctx.client.send('compromised-supplier', { caller: ORDERS, service: 'payments', method: 'POST', path: '/charges', body: { orderId: 1001 + i, amount: 30, currency: 'GBP' } }));
    },
  },
  {
    name: 'malformed-body', detector: 'content-body',
    description: 'a request body that claims to be JSON and is not',
    async run(ctx) {
      await ctx.client.send('malformed-body', { caller: INGRESS, service: 'orders', method: 'POST', path: '/v2/orders', clientIp: '203.0.113.12', rawBody: '{"item": "kettle", "qty": ' });
    },
  },
];
