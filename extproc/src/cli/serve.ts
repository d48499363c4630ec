// `meshward serve`: run the ext_proc server.
import type { Command } from 'commander';
import { loadServerConfig, type ServerConfig } from '../config.ts';
import { DEFAULT_SERVER_OPTIONS } from '../server.ts';
import { Engine } from '../engine/engine.ts';
import { pathOnly } from '../engine/exchange.ts';
import { createLogger } from '../log.ts';
import { startServer, type RunningServer } from '../server.ts';
import { startFilterConfigService, type FilterConfigService } from '../filter-config/service.ts';
import { Telemetry } from '../telemetry/otel.ts';
import { startPolicyRuntime } from '../policy/runtime.ts';
import { engineSettingsFor } from '../policy/engine-mapping.ts';
import { formatPolicyError } from '../policy/validate.ts';
import { logFindings } from '../telemetry/finding-log.ts';
import { FindingsBuffer, DEFAULT_FINDINGS_CAPACITY } from '../admin/findings-buffer.ts';
import { BlockedLog, registerCoreRoutes } from '../admin/core-routes.ts';
import { startInventory, type InventoryRuntime } from '../inventory/runtime.ts';
import { registerInventoryRoutes } from '../inventory/admin-routes.ts';
import { PolicyServerWiring } from '../policy/server-wiring.ts';

export function registerServe(program: Command): void {
  program.command('serve')
    .description('run the meshward ext_proc server (envoy.service.ext_proc.v3.ExternalProcessor)')
    .option('-c, --config <file>', 'server configuration (YAML or JSON): server.host/port/maxMessageBytes, denyRules')
    .option('--host <host>', 'address to listen on (overrides the config file)')
    .option('--port <port>', 'port to listen on (overrides the config file)', (v) => Number.parseInt(v, 10))
    .option('--policy-source <source>', 'where ApiSecurityPolicy objects come from: none, file, kubernetes', 'none')
    .option('--policy-file <file...>', 'policy files (with --policy-source file); reloaded when they change')
    .option('--policy-namespace <namespace>', "meshward's namespace: its selector-less policy is the mesh-wide default", process.env.POD_NAMESPACE ?? 'meshward')
    .option('--policy-resync-seconds <seconds>', 'full re-list period of the Kubernetes source', (v) => Number.parseInt(v, 10))
    .option('--admin-port <port>', 'serve the admin HTTP endpoints (Wasm filter configuration refresh) on this port', (v) => Number.parseInt(v, 10))
    .option('--admin-token-file <file>', 'file with the bearer token the admin endpoints require (the filter sends it; required with --admin-port; env MESHWARD_ADMIN_TOKEN_FILE). A file, not a flag, so the token never shows in `ps`', process.env.MESHWARD_ADMIN_TOKEN_FILE)
    .option('--filter-tables <file>', 'Wasm filter tables (deny, limits, templates, sampling) served to the filters, JSON or YAML')
    .option('--inventory-db <file>', 'keep the API inventory in this SQLite file (default: in memory)')
    .option('--spec <service=file...>', 'OpenAPI spec of a service (its host name), for shadow/zombie/orphan classification and contracts')
    .option('--findings-buffer <n>', 'recent findings the admin API keeps', (v) => Number.parseInt(v, 10), DEFAULT_FINDINGS_CAPACITY)
    .option('--prometheus-port <port>', 'serve metrics for Prometheus at http://HOST:PORT/metrics (no token: counts only, no identities or paths)', (v) => Number.parseInt(v, 10))
    .option('--otlp-endpoint <url>', 'export traces, metrics and finding logs by OTLP/HTTP to this base URL (env OTEL_EXPORTER_OTLP_ENDPOINT)', process.env.OTEL_EXPORTER_OTLP_ENDPOINT)
    .option('--drain-seconds <seconds>', 'on SIGTERM/SIGINT: how long in-flight ext_proc streams may take to finish before they are cancelled', (v) => Number(v), 5)
    .addHelpText('after', '\nAdmin HTTP API (with --admin-port): /healthz and /readyz (no token), GET /findings, /policy, /report, /inventory..., /v1/filter-config (bearer token). gRPC: envoy.service.ext_proc.v3.ExternalProcessor and grpc.health.v1.Health.\nExit codes: 0 clean shutdown (in-flight streams get --drain-seconds), 1 shutdown hung for 10 s past that, 2 bad configuration or option.')
    .action(async (opts: { config?: string; host?: string; port?: number; adminPort?: number; adminTokenFile?: string; filterTables?: string; policySource: string; policyFile?: string[]; policyNamespace: string; policyResyncSeconds?: number; inventoryDb?: string; spec?: string[]; findingsBuffer: number; otlpEndpoint?: string; prometheusPort?: number; drainSeconds: number }) => {
      const log = createLogger();
      let config: ServerConfig = { server: { ...DEFAULT_SERVER_OPTIONS }, denyRules: [] };
      try {
        if (opts.config) config = await loadServerConfig(opts.config);
      } catch (err) {
        console.error(`meshward serve: ${(err as Error).message}`);
        process.exit(2);
      }
      if (opts.host) config.server.host = opts.host;
      if (opts.port !== undefined && Number.isFinite(opts.port)) config.server.port = opts.port;
      // Policy changes also reach the filter tables, the inventory's specs and the contracts.
      const wiring = new PolicyServerWiring(log);
      const engine = new Engine({ denyRules: config.denyRules, detectors: wiring.detectors });
      logFindings(engine, log);
      if (!Number.isInteger(opts.findingsBuffer) || opts.findingsBuffer < 1 || opts.findingsBuffer > 1_000_000) {
        console.error('meshward serve: --findings-buffer must be an integer between 1 and 1000000');
        process.exit(2);
      }
      const findings = new FindingsBuffer(opts.findingsBuffer);
      findings.attach(engine);
      const blocked = new BlockedLog();
      blocked.attach(engine);
      const specs: { service: string; source: { kind: 'openapi-file'; file: string } }[] = [];
      for (const s of opts.spec ?? []) {
        const eq = s.indexOf('=');
        if (eq <= 0 || eq === s.length - 1) {
          console.error(`meshward serve: --spec takes SERVICE=FILE (e.g. orders.shop.svc.cluster.local=orders.yaml), got ${JSON.stringify(s)}`);
          process.exit(2);
        }
        specs.push({ service: s.slice(0, eq), source: { kind: 'openapi-file', file: s.slice(eq + 1) } });
      }
      let inventory: InventoryRuntime | undefined;
      if (opts.inventoryDb !== undefined || specs.length > 0 || opts.adminPort !== undefined || opts.policySource !== 'none') {
        try {
          inventory = await startInventory(engine, { ...(opts.inventoryDb ? { dbFile: opts.inventoryDb } : {}), specs });
        } catch (err) {
          console.error(`meshward serve: inventory: ${(err as Error).message}`);
          process.exit(2);
        }
        for (const e of inventory.specErrors) log.warn({ spec: e.error.spec, place: e.error.place, error: e.error.message }, 'spec not loaded; the service runs without it');
      }
      if (inventory) {
        wiring.useInventory(inventory);
        wiring.watchSpecFiles();
      }
      let telemetry: Telemetry | undefined;
      if (opts.otlpEndpoint !== undefined && opts.otlpEndpoint !== '' && !URL.canParse(opts.otlpEndpoint)) {
        console.error(`meshward serve: --otlp-endpoint must be a URL such as http://otel-collector:4318 (got ${opts.otlpEndpoint})`);
        process.exit(2);
      }
      if (opts.prometheusPort !== undefined && !(Number.isInteger(opts.prometheusPort) && opts.prometheusPort > 0 && opts.prometheusPort < 65536)) {
        console.error('meshward serve: --prometheus-port must be a port number (1-65535)');
        process.exit(2);
      }
      if (opts.otlpEndpoint || opts.prometheusPort !== undefined) {
        telemetry = new Telemetry({
          ...(opts.otlpEndpoint ? { endpoint: opts.otlpEndpoint } : {}),
          ...(opts.prometheusPort !== undefined ? { prometheus: { host: config.server.host, port: opts.prometheusPort } } : {}),
        });
        await telemetry.startPrometheus().catch((err: Error) => {
          console.error(`meshward serve: ${err.message} (choose another --prometheus-port)`);
          process.exit(2);
        });
        telemetry.attach(engine);
      }
      engine.addObserver({
        onDecision: ({ request, decision }) => {
          if (decision.action === 'deny') {
            // The query string can carry tokens (?access_token=): never logged.
            log.info({ requestId: request.requestId, caller: request.caller.workload, method: request.method, path: pathOnly(request.path), decision }, 'request denied');
          }
        },
      });
      if (!['none', 'file', 'kubernetes'].includes(opts.policySource)) {
        console.error(`meshward serve: --policy-source must be none, file or kubernetes (got ${opts.policySource})`);
        process.exit(2);
      }
      const policies = await startPolicyRuntime({ source: opts.policySource as 'none' | 'file' | 'kubernetes', files: opts.policyFile ?? [], namespace: opts.policyNamespace, staticDenyRules: config.denyRules, ...(opts.policyResyncSeconds ? { resyncSeconds: opts.policyResyncSeconds } : {}), engine, log,
        detectors: wiring.detectors, onApplied: wiring.onApplied });
      if (!(Number.isFinite(opts.drainSeconds) && opts.drainSeconds > 0 && opts.drainSeconds <= 3600)) {
        console.error('meshward serve: --drain-seconds must be a number of seconds between 0 and 3600');
        process.exit(2);
      }
      if (opts.adminPort !== undefined && !opts.adminTokenFile) {
        console.error('meshward serve: --admin-port needs --admin-token-file');
        process.exit(2);
      }
      // Signal handlers before the port opens: a SIGTERM right after start still drains cleanly.
      let server: RunningServer | undefined;
      let filterConfig: FilterConfigService | undefined;
      let startupDone!: () => void;
      const startup = new Promise<void>((resolve) => { startupDone = resolve; });
      const shutdown = async (): Promise<void> => {
        await startup;
        log.info({ drainSeconds: opts.drainSeconds }, 'shutting down');
        // Not ready first (admin /readyz 503; server.close() sets grpc.health NOT_SERVING), then drain.
        filterConfig?.router.setReady(false);
        const drainMs = opts.drainSeconds * 1000;
        // Backstop: a hung exporter or policy watch must not keep the pod in Terminating forever.
        setTimeout(() => { log.error('shutdown did not finish; exiting'); process.exit(1); }, drainMs + 10_000).unref();
        await policies.stop();
        wiring.stop();
        let deadline: NodeJS.Timeout | undefined;
        const drained = await Promise.race([
          (server?.close() ?? Promise.resolve()).then(() => true),
          new Promise<boolean>((resolve) => { deadline = setTimeout(() => resolve(false), drainMs); }),
        ]);
        clearTimeout(deadline);
        if (!drained) {
          log.warn({ activeStreams: server?.counters.streamsActive }, 'drain deadline passed; cancelling in-flight ext_proc streams');
          server?.forceClose();
        }
        await filterConfig?.close();
        // State is flushed on every path, including after the deadline.
        inventory?.close();
        await telemetry?.shutdown().catch(() => {});
        log.info({ drained }, 'shut down');
        process.exit(0);
      };
      process.once('SIGTERM', () => void shutdown());
      process.once('SIGINT', () => void shutdown());
      server = await startServer(engine, log, config.server).catch((err: Error) => {
        console.error(`meshward serve: ${err.message} (is another meshward running? choose another --port)`);
        process.exit(2);
      });
      const running = server;
      telemetry?.observeServer(() => running.counters);
      if (opts.adminPort !== undefined && opts.adminTokenFile) {
        filterConfig = await startFilterConfigService({
          host: config.server.host, port: opts.adminPort, tokenFile: opts.adminTokenFile,
          ...(opts.filterTables ? { tablesFile: opts.filterTables } : {}),
        }, log).catch((err: Error) => { console.error(`meshward serve: ${err.message}`); process.exit(2); });
        wiring.serveFilterTables(filterConfig.store);
        const effectivePolicy = (): { mode: string; policy: unknown } => {
          const last = policies.last;
          if (!last) return { mode: 'monitor', policy: { source: opts.policySource, loaded: false, staticDenyRules: config.denyRules } };
          const effective = last.set.effectiveFor({ namespace: opts.policyNamespace });
          return {
            mode: engineSettingsFor(effective.spec).engine.mode ?? 'monitor',
            policy: {
              source: opts.policySource, namespace: opts.policyNamespace, from: effective.from, spec: effective.spec, staticDenyRules: config.denyRules,
              rejected: Object.fromEntries([...last.errors].map(([origin, errors]) => [origin, errors.map(formatPolicyError)])),
              ...(inventory ? { apiSpecs: wiring.specStatus() } : {}),
            },
          };
        };
        registerCoreRoutes(filterConfig.router, { engine, findings, blocked, policy: () => effectivePolicy().policy, mode: () => effectivePolicy().mode, ...(inventory ? { inventory: inventory.inventory } : {}) });
        if (inventory) registerInventoryRoutes(filterConfig.router, inventory.inventory, inventory.specs);
      }
      startupDone();
    });
}
