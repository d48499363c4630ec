// Steady open-loop load for soak and restart runs: one request every 1/rate seconds whatever the
// answers take, benign traffic (reads by id, writes with JSON bodies, end users with bearer tokens),
// every outcome counted by listener and status.
import http from 'node:http';

export interface LoadTarget { name: string; baseUrl: string; host: string }

export interface LoadCounts {
  sent: number;
  /** "target status" (status 0 = connection error or timeout) -> count. */
  outcomes: Map<string, number>;
}

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const USERS = Array.from({ length: 40 }, (_, i) => `${b64({ alg: 'HS256' })}.${b64({ sub: `user${i}`, iss: 'https://idp.example' })}.c2ln`);

function pick<T>(list: readonly T[], n: number): T { return list[n % list.length]!; }

/** The n-th benign request of the mix. */
function benign(n: number): { method: string; path: string; headers: Record<string, string>; body?: string } {
  const user = pick(USERS, n * 7);
  const auth = { authorization: `Bearer ${user}` };
  switch (n % 4) {
    case 0: return { method: 'GET', path: `/orders/${1 + (n % 500)}`, headers: auth };
    case 1: return { method: 'POST', path: '/orders', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ item: `sku-${n % 50}`, qty: 1 + (n % 3) }) };
    case 2: return { method: 'GET', path: `/catalog/items?page=${n % 10}`, headers: {} };
    default: return { method: 'GET', path: `/users/${n % 40}/profile`, headers: auth };
  }
}

export interface RunningLoad {
  readonly counts: LoadCounts;
  /** Stops sending and waits for the requests in flight. */
  stop(): Promise<LoadCounts>;
}

export interface LoadOptions {
  timeoutMs?: number;
  /** Connections per target at most (requests beyond wait in the client, as a connection pool does). */
  maxSockets?: number;
  /** Open every connection at the start (one burst of maxSockets requests per target), so the
   *  connection count is fixed for the run and open fds measure leaks, not pool growth. */
  prewarm?: boolean;
}

/** Sends `ratePerSecond` requests per second, spread round-robin over the targets. */
export function startLoad(targets: readonly LoadTarget[], ratePerSecond: number, options: LoadOptions = {}): RunningLoad {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxSockets = options.maxSockets ?? 64;
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  const counts: LoadCounts = { sent: 0, outcomes: new Map() };
  const inFlight = new Set<Promise<void>>();
  const count = (key: string): void => { counts.outcomes.set(key, (counts.outcomes.get(key) ?? 0) + 1); };
  const start = performance.now();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const sendOne = (n: number): void => {
    const target = pick(targets, n);
    const r = benign(n);
    const url = new URL(target.baseUrl);
    counts.sent++;
    const done = new Promise<void>((resolve) => {
      const req = http.request({ host: url.hostname, port: url.port, method: r.method, path: r.path, agent, timeout: timeoutMs,
        headers: { host: target.host, ...r.headers, ...(r.body !== undefined ? { 'content-length': String(Buffer.byteLength(r.body)) } : {}) } }, (res) => {
        res.resume();
        res.on('end', () => { count(`${target.name} ${res.statusCode}`); resolve(); });
        res.on('error', () => { count(`${target.name} 0`); resolve(); });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => { count(`${target.name} 0`); resolve(); });
      req.end(r.body);
    });
    inFlight.add(done);
    void done.then(() => inFlight.delete(done));
  };

  if (options.prewarm) {
    for (let t = 0; t < targets.length; t++) for (let i = 0; i < maxSockets; i++) sendOne(t);
  }
  const scheduled = counts.sent;
  // Open loop: catch up to the schedule on every tick, so slow answers never lower the rate.
  const tick = (): void => {
    if (stopped) return;
    const due = Math.floor(((performance.now() - start) / 1000) * ratePerSecond);
    while (counts.sent - scheduled < due) sendOne(counts.sent);
    timer = setTimeout(tick, Math.max(1, Math.min(20, 1000 / ratePerSecond)));
  };
  tick();

  return {
    counts,
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await Promise.all([...inFlight]);
      agent.destroy();
      return counts;
    },
  };
}

/** Outcomes other than `expected` statuses, as "target status" -> count. */
export function unexpectedOutcomes(counts: LoadCounts, expected: (target: string, status: number) => boolean): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, n] of counts.outcomes) {
    const [target, status] = key.split(' ') as [string, string];
    if (!expected(target, Number(status))) out[key] = n;
  }
  return out;
}
