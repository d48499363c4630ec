// `meshward demo`: a small mesh on loopback (three services with their own SPIFFE identities and real
// Envoy sidecars, an ingress gateway, callers east-west), the meshward server in enforce mode, benign
// users and one attack campaign per detector, a live progress line, and a report: terminal tables,
// a JSON result (`meshward report` renders it again) and a self-contained HTML file.
import type { Command } from 'commander';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Engine } from '../engine/engine.ts';
import { envoyBinary, envoyVersion } from '../local/envoy-binary.ts';
import { DEFAULT_WASM_FILE } from '../local/mesh.ts';
import { assertPortFree, startDemoMesh, type DemoMesh } from '../local/demo-mesh.ts';
import { startInventory, type InventoryRuntime } from '../inventory/runtime.ts';
import { inventoryReport } from '../inventory/report.ts';
import { FindingsBuffer } from '../admin/findings-buffer.ts';
import { BlockedLog } from '../admin/core-routes.ts';
import { startDemoApps, type DemoApps } from '../demo/apps.ts';
import { DemoClient } from '../demo/client.ts';
import { FX_RATES_HOST, FX_RATES_SPEC, startFxSupplier } from '../demo/supplier.ts';
import {
  ACCOUNTS, CALLERS, CAMPAIGNS, FRONTEND, FX_RATES, INGRESS, PAYMENTS, SERVICES, SPEC_DIR,
  benignActors, customerSession, demoDetectorSettings, serviceSession, type ScenarioContext,
} from '../demo/scenario.ts';
import { groupFindings, percentiles, REPORT_KIND, REPORT_VERSION, type CampaignResult, type ReportData, type TimelinePoint } from '../report/report-data.ts';
import { renderReportText } from '../report/terminal.ts';
import { renderReportHtml } from '../report/html.ts';
import { Telemetry } from '../telemetry/otel.ts';
import { createDefaultDetectors } from '../engine/detectors/index.ts';
import { createContentContext } from '../inspect/settings.ts';
import { inventoryServiceSpecs, specOperationResolver, type ServiceSpec } from '../inspect/spec-resolver.ts';

export interface DemoOptions {
  /** Benign-only learning phase (the detectors' learning period is set to it). */
  learnMs?: number;
  /** Benign traffic keeps running this long after the campaigns started (at least until they end). */
  attackMs?: number;
  /** Mean pause of a benign user between two requests. */
  thinkMs?: number;
  /** Requests per path for the latency comparison. */
  latencySamples?: number;
  /** Where report.json and report.html go (created); none = not written. */
  outDir?: string;
  /** Fixed port of the ingress gateway (0 or absent: any free port). */
  ingressPort?: number;
  /** Progress and report lines (default stdout). */
  out?: (line: string) => void;
  /** Live progress: 'tty' rewrites one line, 'lines' prints a line every few seconds, 'none'. */
  progress?: 'tty' | 'lines' | 'none';
  /** Print the terminal report at the end (default true). */
  printReport?: boolean;
  /** Also export spans, metrics and finding logs to this OTLP/HTTP endpoint (e.g. a local Jaeger or collector). */
  otlpEndpoint?: string;
  /** Called once the mesh runs (tests use it to break things). */
  onStarted?: (mesh: DemoMesh) => void;
  /** Called once the demo's applications run (tests check what reached them). */
  onApps?: (apps: DemoApps) => void;
}

/** A prerequisite is missing (Envoy, the built filter, a free port): exit code 3. */
export class DemoPrerequisiteError extends Error {}

export interface DemoOutcome { report: ReportData; files: { json?: string; html?: string } }

const sleep = (ms: number, signal: AbortSignal): Promise<void> => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

async function checkPrerequisites(o: DemoOptions): Promise<string> {
  let bin: string;
  try { bin = envoyBinary(); } catch (err) { throw new DemoPrerequisiteError((err as Error).message); }
  if (!existsSync(DEFAULT_WASM_FILE)) throw new DemoPrerequisiteError(`the meshward filter ${DEFAULT_WASM_FILE} is not built: run \`npm run build\``);
  if (o.ingressPort) {
    try { await assertPortFree(o.ingressPort, 'the demo ingress gateway, --ingress-port'); } catch (err) { throw new DemoPrerequisiteError((err as Error).message); }
  }
  try { return await envoyVersion(bin); } catch (err) { throw new DemoPrerequisiteError(`${bin} does not run (${(err as Error).message}): run \`npm run setup\` or set ENVOY_BIN`); }
}

export async function runDemo(options: DemoOptions = {}): Promise<DemoOutcome> {
  const out = options.out ?? ((s: string) => process.stdout.write(`${s}\n`));
  const learnMs = options.learnMs ?? 15_000;
  const attackMs = options.attackMs ?? 15_000;
  const samples = options.latencySamples ?? 200;
  const thinkMs = options.thinkMs ?? 60;
  const progressMode = options.progress ?? (process.stdout.isTTY ? 'tty' : 'lines');
  const version = await checkPrerequisites(options);
  out(`meshward demo: envoy ${version}, node ${process.version}; learning ${learnMs / 1000} s, then attacks in enforce mode`);

  const started = Date.now();
  const abort = new AbortController();
  const cleanups: (() => Promise<void> | void)[] = [];
  let phase = 'starting';
  let progressTimer: NodeJS.Timeout | undefined;
  const workDirs: string[] = [];
  // A Ctrl-C exits through children.ts (which kills every child); remove the certificates too.
  const removeWorkDirs = (): void => { for (const d of workDirs) rmSync(d, { recursive: true, force: true }); };
  process.once('exit', removeWorkDirs);
  try {
    const apps: DemoApps = await startDemoApps(ACCOUNTS);
    cleanups.push(() => apps.close());
    options.onApps?.(apps);
    const supplier = await startFxSupplier();
    cleanups.push(() => supplier.close());
    // Content detectors validate requests against the services' specs (the ones the inventory loads).
    const serviceSpecs: ServiceSpec[] = [];
    const content = createContentContext({}, specOperationResolver(serviceSpecs));
    const engine = new Engine({
      denyRules: [], mode: 'enforce', settings: demoDetectorSettings(learnMs, 'spiffe://cluster.local/ns/support/sa/ai-agent'),
      detectors: (context) => createDefaultDetectors(Object.assign(context, { content })),
    });
    const findings = new FindingsBuffer(20_000);
    findings.attach(engine);
    if (options.otlpEndpoint) {
      const telemetry = new Telemetry({ endpoint: options.otlpEndpoint, serviceName: 'meshward-demo', metricExportIntervalMs: 5000 });
      telemetry.attach(engine);
      cleanups.push(() => telemetry.shutdown());
    }
    const inventory: InventoryRuntime = await startInventory(engine, {
      specs: [...SERVICES.map((s) => ({ service: s.host, spec: s.spec })), { service: FX_RATES_HOST, spec: FX_RATES_SPEC }]
        .map((s) => ({ service: s.service, source: { kind: 'openapi-file' as const, file: path.join(SPEC_DIR, s.spec) } })),
    });
    cleanups.push(() => inventory.close());
    serviceSpecs.push(...inventoryServiceSpecs(inventory.inventory));
    for (const e of inventory.specErrors) out(`warning: spec for ${e.error.spec} did not load: ${e.error.message}`);

    const appPorts: Record<string, number> = { users: apps.users.port, orders: apps.orders.port, payments: apps.payments.port };
    let crash: string | undefined;
    const mesh = await startDemoMesh({
      services: SERVICES.map((s) => ({ name: s.name, workload: s.workload, host: s.host, appPort: appPorts[s.name]!, bareListener: s.name === 'orders' })),
      callers: CALLERS.map((c) => ({ ...c, calls: [...c.calls], ...(c.workload === INGRESS && options.ingressPort ? { port: options.ingressPort } : {}) })),
      externals: [{ name: FX_RATES, host: FX_RATES_HOST, port: supplier.port }],
      engine,
      // Every request sampled: the demo wants bodies for every detector (production samples a share).
      pluginConfig: { sampling: { percent: 100 } },
      onChildExit: (problem) => { crash = problem; abort.abort(new Error(problem)); },
    });
    workDirs.push(mesh.workDir);
    cleanups.push(() => mesh.stop());
    apps.useFxRates(mesh.urlFor(PAYMENTS, FX_RATES), FX_RATES_HOST);
    options.onStarted?.(mesh);

    const hosts = new Map<string, string>(SERVICES.map((s) => [s.name, s.host]));
    const client = new DemoClient(mesh.urlFor, hosts, abort.signal);
    cleanups.push(() => client.close());

    // What meshward decided and found, matched to the campaign by x-request-id.
    const campaignOf = (headers: ReadonlyMap<string, readonly string[]>): string => client.byId.get(headers.get('x-request-id')?.[0] ?? '')?.campaign ?? 'unknown';
    const blockedLog = new BlockedLog(100_000, (request) => campaignOf(request.headers));
    blockedLog.attach(engine);
    const blocked = blockedLog.items;
    const campaignFindings = new Map<string, { n: number; categories: Set<string> }>();
    const timeline = new Map<number, TimelinePoint>();
    const bucket = (): TimelinePoint => {
      const second = Math.floor((Date.now() - started) / 1000);
      let p = timeline.get(second);
      if (!p) { p = { second, requests: 0, findings: 0, blocked: 0 }; timeline.set(second, p); }
      return p;
    };
    engine.addObserver({
      onDecision: ({ decision }) => {
        bucket().requests++;
        if (decision.action === 'deny') bucket().blocked++;
      },
      onFinding: (f, exchange) => {
        bucket().findings++;
        const c = campaignOf(exchange.request.headers);
        const e = campaignFindings.get(c) ?? { n: 0, categories: new Set<string>() };
        e.n++;
        e.categories.add(f.category);
        campaignFindings.set(c, e);
      },
    });

    const showProgress = (final = false): void => {
      const line = `[${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${phase.padEnd(22)} requests ${String(client.sent.length).padStart(5)}  findings ${String(findings.totals.total).padStart(4)}  blocked ${String(blocked.length).padStart(4)}`;
      if (progressMode === 'tty') process.stdout.write(`\r${line}${final ? '\n' : ''}`);
      else if (progressMode === 'lines') out(line);
    };
    if (progressMode !== 'none') progressTimer = setInterval(() => showProgress(), progressMode === 'tty' ? 250 : 3000);

    const ctx: ScenarioContext = {
      client, passwords: apps.passwords, supplier, stopped: () => abort.signal.aborted,
      think: () => sleep(thinkMs * (0.3 + 1.4 * Math.random()), abort.signal),
    };
    const actors = benignActors();
    let benignRunning = true;
    const benignLoop = async (): Promise<void> => {
      for (let round = 0; benignRunning && !abort.signal.aborted; round++) {
        await Promise.all([
          ...actors.customers.filter((_, i) => (i + round) % 2 === 0).map((u) => customerSession(ctx, u, round)),
          serviceSession(ctx, actors.operator, actors.agent, round),
        ]);
        await ctx.think();
      }
    };
    const run = async <T>(p: Promise<T>): Promise<T> => {
      try { return await p; } catch (err) { if (crash) throw new Error(crash); throw err; }
    };

    phase = 'learning (benign)';
    const background = run(benignLoop());
    background.catch(() => { /* awaited below; a crash is reported there */ });
    await sleep(learnMs, abort.signal);
    phase = 'attacks + benign';
    const attackStart = Date.now();
    const available = new Set(engine.detectorNames);
    const campaigns = CAMPAIGNS.filter((c) => available.has(c.detector));
    for (const c of campaigns) {
      if (abort.signal.aborted) break;
      phase = `attack: ${c.name}`;
      await run(c.run(ctx));
    }
    phase = 'attacks + benign';
    await sleep(Math.max(0, attackMs - (Date.now() - attackStart)), abort.signal);
    benignRunning = false;
    await background;

    phase = 'latency comparison';
    const bare: number[] = [];
    const withMeshward: number[] = [];
    for (let i = 0; i < samples && !abort.signal.aborted; i++) {
      // Alternated, so both paths see the same machine load.
      const spec = { caller: FRONTEND, service: 'orders', method: 'GET', path: '/v2/catalog' };
      bare.push((await run(client.send('latency-probe', spec, 'bare'))).ms);
      withMeshward.push((await run(client.send('latency-probe', spec))).ms);
    }
    if (crash) throw new Error(crash);
    if (progressTimer) { clearInterval(progressTimer); progressTimer = undefined; }
    phase = 'done';
    if (progressMode !== 'none') showProgress(true);

    const b = percentiles(bare);
    const m = percentiles(withMeshward);
    const campaignResults: CampaignResult[] = campaigns.map((c) => ({
      name: c.name, detector: c.detector, description: c.description,
      requests: client.sent.filter((s) => s.campaign === c.name).length,
      blocked: blocked.filter((x) => x.campaign === c.name).length,
      findings: campaignFindings.get(c.name)?.n ?? 0,
      categories: [...(campaignFindings.get(c.name)?.categories ?? [])].sort(),
    }));
    const missing = engine.detectorNames.filter((d) => !campaigns.some((c) => c.detector === d));
    const report: ReportData = {
      kind: REPORT_KIND, version: REPORT_VERSION, source: 'demo', generatedAt: new Date().toISOString(), durationMs: Date.now() - started,
      mode: 'enforce', detectors: engine.detectorNames,
      totals: {
        requests: client.sent.length, findings: findings.totals.total, blocked: blocked.length,
        benignRequests: client.sent.filter((s) => s.campaign === 'benign' || s.campaign === 'latency-probe').length,
        benignBlocked: blocked.filter((x) => x.campaign === 'benign' || x.campaign === 'latency-probe').length,
      },
      findings: groupFindings(findings),
      blocked: [...blocked],
      inventory: inventoryReport(inventory.inventory, { now: Date.now() }),
      services: SERVICES.map((s) => ({ name: s.name, host: s.host, spiffeId: mesh.spiffeIdOf(s.workload), spec: s.spec })),
      campaigns: campaignResults,
      latency: {
        method: 'GET /v2/catalog from the frontend through its sidecar to the orders sidecar, alternating a listener with meshward (Wasm filter + ext_proc, every request sampled with its body) and one without',
        samples: bare.length, bareMs: b, meshwardMs: m,
        addedMs: { p50: m.p50 - b.p50, p90: m.p90 - b.p90, p99: m.p99 - b.p99, mean: m.mean - b.mean },
      },
      timeline: [...timeline.values()].sort((x, y) => x.second - y.second),
      notes: [
        `learning period shortened to ${learnMs / 1000} s for the demo (production learns for at least a minute and 100 requests per service)`,
        ...(missing.length > 0 ? [`detectors without a demo campaign: ${missing.join(', ')}`] : []),
      ],
    };
    const files: DemoOutcome['files'] = {};
    if (options.outDir) {
      mkdirSync(options.outDir, { recursive: true });
      files.json = path.join(options.outDir, 'meshward-report.json');
      files.html = path.join(options.outDir, 'meshward-report.html');
      writeFileSync(files.json, JSON.stringify(report, null, 2));
      writeFileSync(files.html, renderReportHtml(report));
    }
    if (options.printReport !== false) out(renderReportText(report));
    if (files.html) out(`\nreport: ${files.html} (HTML), ${files.json} (JSON; \`meshward report ${files.json}\` renders it again)`);
    return { report, files };
  } finally {
    if (progressTimer) clearInterval(progressTimer);
    if (!abort.signal.aborted) abort.abort(new Error('demo finished'));
    for (const c of cleanups.reverse()) await Promise.resolve().then(c).catch(() => {});
    process.removeListener('exit', removeWorkDirs);
  }
}

export function registerDemo(program: Command): void {
  program.command('demo')
    .description('run a local mesh with real Envoy sidecars, benign users and attack campaigns, and report what meshward found and blocked')
    .option('--learn-seconds <s>', 'benign-only learning phase', (v) => Number(v), 15)
    .option('--attack-seconds <s>', 'how long benign traffic continues beside the campaigns', (v) => Number(v), 15)
    .option('--latency-samples <n>', 'requests per path for the latency comparison', (v) => Number.parseInt(v, 10), 200)
    .option('--ingress-port <port>', 'fixed local port of the ingress gateway (default: any free port)', (v) => Number.parseInt(v, 10))
    .option('-o, --out <dir>', 'directory for meshward-report.json and meshward-report.html', 'meshward-demo')
    .option('--json', 'print the report as JSON instead of tables (progress goes to stderr)')
    .option('--otlp-endpoint <url>', 'also export traces, metrics and finding logs by OTLP/HTTP (e.g. http://127.0.0.1:4318)')
    .addHelpText('after', '\nExit codes: 0 done, 1 the demo failed while running (e.g. a sidecar crashed), 2 usage error, 3 a prerequisite is missing (Envoy, the built filter, a free port).')
    .action(async (opts: { learnSeconds: number; attackSeconds: number; latencySamples: number; ingressPort?: number; out: string; json?: boolean; otlpEndpoint?: string }) => {
      if (opts.otlpEndpoint !== undefined && !URL.canParse(opts.otlpEndpoint)) {
        console.error(`meshward demo: --otlp-endpoint must be a URL such as http://127.0.0.1:4318 (got ${opts.otlpEndpoint})`);
        process.exit(2);
      }
      for (const [name, v] of [['--learn-seconds', opts.learnSeconds], ['--attack-seconds', opts.attackSeconds], ['--latency-samples', opts.latencySamples]] as const) {
        if (!Number.isFinite(v) || v < 0 || v > 3600) { console.error(`meshward demo: ${name} must be a number between 0 and 3600`); process.exit(2); }
      }
      if (opts.ingressPort !== undefined && !(Number.isInteger(opts.ingressPort) && opts.ingressPort > 0 && opts.ingressPort < 65536)) {
        console.error('meshward demo: --ingress-port must be a port number (1-65535)');
        process.exit(2);
      }
      try {
        const { report } = await runDemo({
          learnMs: opts.learnSeconds * 1000, attackMs: opts.attackSeconds * 1000, latencySamples: opts.latencySamples, outDir: opts.out,
          ...(opts.ingressPort ? { ingressPort: opts.ingressPort } : {}),
          ...(opts.otlpEndpoint ? { otlpEndpoint: opts.otlpEndpoint } : {}),
          ...(opts.json ? { out: (s: string) => process.stderr.write(`${s}\n`), printReport: false, progress: 'lines' as const } : {}),
        });
        if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
        process.exit(0);
      } catch (err) {
        const prerequisite = err instanceof DemoPrerequisiteError;
        console.error(`\nmeshward demo ${prerequisite ? 'cannot start' : 'failed'}: ${(err as Error).message}`);
        process.exit(prerequisite ? 3 : 1);
      }
    });
}
