// `meshward demo`: a local mesh on loopback (real Envoy sidecars, mTLS with SPIFFE identities, the
// meshward filter and ext_proc server), a few requests, and a table of what meshward saw and decided.
import type { Command } from 'commander';
import { startLocalMesh } from '../local/mesh.ts';
import { envoyBinary, envoyVersion } from '../local/envoy-binary.ts';
import type { DecisionRecord } from '../engine/engine.ts';

const FRONTEND = 'web/frontend';
const WORKER = 'payments/payment-worker';

interface DemoRow { caller: string; request: string; identity: string; decision: string; status: number; reachedApp: boolean }

function table(rows: DemoRow[]): string {
  const head = ['caller (client-side sidecar)', 'request', 'identity meshward saw', 'decision', 'status', 'reached app'];
  const data = rows.map((r) => [r.caller, r.request, r.identity, r.decision, String(r.status), r.reachedApp ? 'yes' : 'no']);
  const widths = head.map((h, i) => Math.max(h.length, ...data.map((d) => d[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...data.map(line)].join('\n');
}

export async function runDemo(out: (s: string) => void = console.log): Promise<DemoRow[]> {
  out(`meshward demo: envoy ${await envoyVersion(envoyBinary())}, node ${process.version}`);
  const mesh = await startLocalMesh({
    callers: [FRONTEND, WORKER],
    server: 'shop/orders',
    engine: {
      denyRules: [
        // The payment worker has no business reading customer records: deny that one operation.
        { name: 'worker-may-not-read-users', identity: 'spiffe://cluster.local/ns/payments/sa/payment-worker', method: 'GET', path: '/users/*' },
      ],
    },
  });
  const decisions: DecisionRecord[] = [];
  mesh.engine.addObserver({ onDecision: (r) => decisions.push(r) });
  const rows: DemoRow[] = [];
  try {
    const plan: { caller: string; method: string; path: string; headers?: Record<string, string>; note?: string }[] = [
      { caller: FRONTEND, method: 'GET', path: '/users/8123' },
      { caller: FRONTEND, method: 'POST', path: '/orders' },
      { caller: WORKER, method: 'POST', path: '/orders/77/payments' },
      { caller: WORKER, method: 'GET', path: '/users/8123' },
      // A forged identity header: meshward ignores it and judges the real mTLS identity.
      { caller: WORKER, method: 'GET', path: '/users/8124', headers: { 'x-meshward-peer': mesh.spiffeIdOf(FRONTEND) }, note: ' (forged x-meshward-peer)' },
    ];
    for (const p of plan) {
      const before = mesh.app.received.length;
      const seen = decisions.length;
      const res = await fetch(mesh.urlFor(p.caller) + p.path, { method: p.method, headers: p.headers ?? {}, ...(p.method === 'POST' ? { body: '{}' } : {}) });
      await res.arrayBuffer();
      const d = decisions[seen];
      rows.push({
        caller: p.caller,
        request: `${p.method} ${p.path}${p.note ?? ''}`,
        identity: d?.request.caller.workload ?? '(none)',
        decision: d ? (d.decision.action === 'deny' ? `deny (${d.decision.rule})` : 'allow') : '(not seen)',
        status: res.status,
        reachedApp: mesh.app.received.length > before,
      });
    }
  } finally {
    await mesh.stop();
  }
  out(table(rows));
  return rows;
}

export function registerDemo(program: Command): void {
  program.command('demo')
    .description('start a local mesh with real Envoy sidecars, send requests, and show what meshward saw and decided')
    .action(async () => {
      try {
        await runDemo();
      } catch (err) {
        console.error(`meshward demo failed: ${(err as Error).message}`);
        process.exit(1);
      }
    });
}
