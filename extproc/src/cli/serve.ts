// `meshward serve`: run the ext_proc server.
import type { Command } from 'commander';
import { loadServerConfig, streamLimitError, type ServerConfig, type StreamLimitField } from '../config.ts';
import { DEFAULT_SERVER_OPTIONS } from '../server.ts';
import { Engine } from '../engine/engine.ts';
import { pathOnly } from '../engine/exchange.ts';
import { createLogger } from '../log.ts';
import { startServer, type RunningServer, type ServerOptions } from '../server.ts';
import { checkTlsFiles } from '../server-tls.ts';
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
import { DetectorStateTable } from '../inventory/detector-state-table.ts';
import { defaultStateKeyFile, loadOrCreateStateKey } from '../inventory/state-key-file.ts';
import { PolicyServerWiring } from '../policy/server-wiring.ts';
import { unenforcedPatterns } from '../inspect/safe-regexp.ts';
import { SENSITIVE_KINDS, type SensitiveKind } from '../inspect/sensitive.ts';
import { DEFAULT_TEMPLATE_SYNC_MS } from '../filter-config/publisher.ts';
import { DEFAULT_ENFORCED_TTL_MS, EnforcedDenies, enforcementRecorder } from '../filter-config/enforced.ts';

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
    .option('--admin-token-file <file>', 'file with the bearer token every admin endpoint requires (required with --admin-port; env MESHWARD_ADMIN_TOKEN_FILE). A file, not a flag, so the token never shows in `ps`', process.env.MESHWARD_ADMIN_TOKEN_FILE)
    .option('--filter-token-file <file>', 'file with the bearer token the sidecar filters refresh their tables with (GET /v1/filter-config only; env MESHWARD_FILTER_TOKEN_FILE). Put this one, never the admin token, in the plugin configuration: any meshed pod can read it there', process.env.MESHWARD_FILTER_TOKEN_FILE)
    .option('--filter-tables <file>', 'Wasm filter tables (deny, limits, templates, sampling) served to the filters, JSON or YAML')
    .option('--inventory-db <file>', 'keep the API inventory and the detectors\' learned baselines in this SQLite file (default: in memory; a restart learns again)')
    .option('--state-key-file <file>', 'with --inventory-db: key for the keyed hashes learned state keeps instead of raw object IDs, kept outside the SQLite file (default: FILE.key beside it, created 0600 on first start)')
    .option('--spec-url-refresh-seconds <seconds>', 'how often policy apiSpecs given by url are fetched again (conditional requests)', (v) => Number(v), 300)
    .option('--spec-configmap-refresh-seconds <seconds>', 'how often policy apiSpecs and gRPC descriptor sets given by configMapRef are read again (--policy-source kubernetes)', (v) => Number(v), 30)
    .option('--spec <service=file...>', 'OpenAPI spec of a service (its host name), for shadow/zombie/orphan classification and contracts')
    .option('--findings-buffer <n>', 'recent findings the admin API keeps', (v) => Number.parseInt(v, 10), DEFAULT_FINDINGS_CAPACITY)
    .option('--prometheus-port <port>', 'serve metrics for Prometheus at http://HOST:PORT/metrics (no token: counts only, no identities or paths)', (v) => Number.parseInt(v, 10))
    .option('--otlp-endpoint <url>', 'export traces, metrics and finding logs by OTLP/HTTP to this base URL (env OTEL_EXPORTER_OTLP_ENDPOINT)', process.env.OTEL_EXPORTER_OTLP_ENDPOINT)
    .option('--max-concurrent-streams <n>', `ext_proc streams held at once, server-wide; a stream beyond it is refused (RESOURCE_EXHAUSTED: Envoy applies the failure mode) (default ${DEFAULT_SERVER_OPTIONS.maxConcurrentStreams})`, Number)
    .option('--max-buffered-body-mib <mib>', `body bytes held for inspection at once, server-wide; a body beyond it is not inspected and the policy's spec.content.overload decides (default ${DEFAULT_SERVER_OPTIONS.maxBufferedBodyMib})`, Number)
    .option('--max-concurrent-streams-per-connection <n>', `HTTP/2 max concurrent streams of each Envoy connection (default ${DEFAULT_SERVER_OPTIONS.maxConcurrentStreamsPerConnection})`, Number)
    .option('--stream-idle-seconds <seconds>', `end an ext_proc stream that sends nothing this long (0: never; keep it above the longest upstream response time) (default ${DEFAULT_SERVER_OPTIONS.streamIdleSeconds})`, Number)
    .option('--tls-cert <file>', 'serve ext_proc over mTLS: PEM certificate (re-read every --tls-refresh-seconds, so rotation needs no restart)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--tls-client-ca <file>', 'PEM CA bundle the sidecars\' client certificates must chain to (the mesh root)')
    .option('--tls-refresh-seconds <seconds>', 'how often the TLS files are re-read', (v) => Number(v))
    .option('--insecure-plaintext', 'serve ext_proc in plaintext on a non-loopback address (anyone reaching the port can feed the engine)')
    .option('--forged-stream-failure-mode <mode>', 'a stream whose claimed sidecar does not match its client certificate: closed (403) or open (passes, not learned from)')
    .option('--enforced-deny-seconds <seconds>', 'with --admin-port: how long a caller refused in enforce mode stays in its namespace\'s filter tables (refused by the sidecar itself)', (v) => Number(v), DEFAULT_ENFORCED_TTL_MS / 1000)
    .option('--redact <kinds>', `in enforce mode, replace these sensitive values in JSON responses with "[redacted]" (comma list of: ${SENSITIVE_KINDS.join(', ')}); only sampled responses whose whole body was buffered`)
    .option('--drain-seconds <seconds>', 'on SIGTERM/SIGINT: how long in-flight ext_proc streams may take to finish before they are cancelled', (v) => Number(v), 5)
    .addHelpText('after', '\nAdmin HTTP API (with --admin-port): /healthz and /readyz (no token), GET /findings, /policy, /report, /inventory..., /v1/filter-config (bearer token). gRPC: envoy.service.ext_proc.v3.ExternalProcessor and grpc.health.v1.Health.\nExit codes: 0 clean shutdown (in-flight streams get --drain-seconds), 1 shutdown hung for 10 s past that, 2 bad configuration or option.')
    .action(async (opts: { config?: string; host?: string; port?: number; adminPort?: number; adminTokenFile?: string; filterTokenFile?: string; filterTables?: string; policySource: string; policyFile?: string[]; policyNamespace: string; policyResyncSeconds?: number; specUrlRefreshSeconds: number; specConfigmapRefreshSeconds: number; inventoryDb?: string; stateKeyFile?: string; spec?: string[]; findingsBuffer: number; otlpEndpoint?: string; prometheusPort?: number; drainSeconds: number; enforcedDenySeconds: number; tlsCert?: string; tlsKey?: string; tlsClientCa?: string; tlsRefreshSeconds?: number; insecurePlaintext?: boolean; forgedStreamFailureMode?: string; maxConcurrentStreams?: number; maxConcurrentStreamsPerConnection?: number; streamIdleSeconds?: number; maxBufferedBodyMib?: number; redact?: string }) => {
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
      const transportError = applyTransportOptions(opts, config.server);
      if (transportError !== undefined) {
        console.error(`meshward serve: ${transportError}`);
        process.exit(2);
      }
      for (const [field, flag] of [['maxConcurrentStreams', '--max-concurrent-streams'], ['maxConcurrentStreamsPerConnection', '--max-concurrent-streams-per-connection'], ['streamIdleSeconds', '--stream-idle-seconds'], ['maxBufferedBodyMib', '--max-buffered-body-mib']] as [StreamLimitField, string][]) {
        const value = opts[field];
        if (value === undefined) continue;
        const error = streamLimitError(field, value);
        if (error !== undefined) {
          console.error(`meshward serve: ${flag} ${error}`);
          process.exit(2);
        }
        config.server[field] = value;
      }
      for (const [flag, seconds] of [['--spec-url-refresh-seconds', opts.specUrlRefreshSeconds], ['--spec-configmap-refresh-seconds', opts.specConfigmapRefreshSeconds]] as const) {
        if (!(Number.isFinite(seconds) && seconds >= 1 && seconds <= 86_400)) {
          console.error(`meshward serve: ${flag} must be a number of seconds between 1 and 86400`);
          process.exit(2);
        }
      }
      // Policy changes also reach the filter tables, the inventory's specs and the contracts.
      const redact = opts.redact?.split(',').map((k) => k.trim()).filter(Boolean) ?? [];
      const unknownKinds = redact.filter((k) => !(SENSITIVE_KINDS as readonly string[]).includes(k));
      if (unknownKinds.length > 0) {
        console.error(`meshward serve: --redact: unknown kind(s) ${unknownKinds.join(', ')} (known: ${SENSITIVE_KINDS.join(', ')})`);
        process.exit(2);
      }
      const wiring = new PolicyServerWiring(log, { urlRefreshMs: opts.specUrlRefreshSeconds * 1000, configMapRefreshMs: opts.specConfigmapRefreshSeconds * 1000 }, redact as SensitiveKind[]);
      const engine = new Engine({ denyRules: config.denyRules, detectors: wiring.detectors });
      if (opts.stateKeyFile !== undefined && opts.inventoryDb === undefined) {
        console.error('meshward serve: --state-key-file needs --inventory-db (the key protects the state kept there)');
        process.exit(2);
      }
      if (opts.inventoryDb !== undefined) {
        // Before any traffic: object IDs recorded under another key would not match restored ones.
        try {
          const stateKey = loadOrCreateStateKey(opts.stateKeyFile ?? defaultStateKeyFile(opts.inventoryDb));
          engine.state.ids.useKey(stateKey.key);
          if (stateKey.warning !== undefined) log.warn(stateKey.warning);
        } catch (err) {
          console.error(`meshward serve: ${(err as Error).message}`);
          process.exit(2);
        }
      }
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
      if (inventory) wiring.useInventory(inventory);
      // Spec sources and ConfigMap descriptor sets are re-read on its ticks (the latter without an inventory too).
      wiring.watchSpecFiles();
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
        detectors: wiring.detectors, onApplied: wiring.onApplied, conditions: wiring.conditions, descriptorSets: wiring.descriptorSets });
      if (policies.configMaps) void wiring.useConfigMaps(policies.configMaps);
      if (!(Number.isFinite(opts.drainSeconds) && opts.drainSeconds > 0 && opts.drainSeconds <= 3600)) {
        console.error('meshward serve: --drain-seconds must be a number of seconds between 0 and 3600');
        process.exit(2);
      }
      if (!(opts.enforcedDenySeconds >= 1 && opts.enforcedDenySeconds <= 86_400)) {
        console.error('meshward serve: --enforced-deny-seconds must be a number of seconds between 1 and 86400');
        process.exit(2);
      }
      if (opts.adminPort !== undefined && !opts.adminTokenFile) {
        console.error('meshward serve: --admin-port needs --admin-token-file');
        process.exit(2);
      }
      // Learned baselines come back from the inventory file after the policy is applied (a change of
      // detector settings rebuilds the detectors) and before the port opens; saved with every flush.
      inventory?.store?.attach(new DetectorStateTable(engine.state, log));
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
          ...(opts.filterTokenFile ? { filterTokenFile: opts.filterTokenFile } : {}),
          ...(opts.filterTables ? { tablesFile: opts.filterTables } : {}),
        }, log).catch((err: Error) => { console.error(`meshward serve: ${err.message}`); process.exit(2); });
        // Enforced findings also become temporary denies in the filter tables of their namespace.
        const enforcedDenies = new EnforcedDenies({ ttlMs: opts.enforcedDenySeconds * 1000 });
        engine.addObserver(enforcementRecorder(enforcedDenies));
        wiring.serveFilterTables(filterConfig.store, DEFAULT_TEMPLATE_SYNC_MS, enforcedDenies);
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
              descriptorSets: wiring.descriptorSets.status(),
              // Spec `pattern` regexes not enforced (ReDoS check pending, vulnerable or undecidable).
              unenforcedSpecPatterns: unenforcedPatterns(),
            },
          };
        };
        registerCoreRoutes(filterConfig.router, { engine, findings, blocked, policy: () => effectivePolicy().policy, mode: () => effectivePolicy().mode, ...(inventory ? { inventory: inventory.inventory } : {}) });
        if (inventory) registerInventoryRoutes(filterConfig.router, inventory.inventory, inventory.specs);
      }
      startupDone();
    });
}

interface TransportFlags { tlsCert?: string; tlsKey?: string; tlsClientCa?: string; tlsRefreshSeconds?: number; insecurePlaintext?: boolean; forgedStreamFailureMode?: string }

const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['127.0.0.1', '::1', 'localhost']);

/** TLS flags over the config file's; plaintext off loopback only when chosen explicitly. Returns why not, or undefined. */
function applyTransportOptions(opts: TransportFlags, server: ServerOptions): string | undefined {
  const files = [opts.tlsCert, opts.tlsKey, opts.tlsClientCa];
  if (files.some((f) => f !== undefined)) {
    if (files.some((f) => f === undefined)) return '--tls-cert, --tls-key and --tls-client-ca go together';
    server.tls = { certFile: opts.tlsCert!, keyFile: opts.tlsKey!, clientCaFile: opts.tlsClientCa! };
  }
  if (opts.tlsRefreshSeconds !== undefined) {
    if (!server.tls) return '--tls-refresh-seconds needs --tls-cert/--tls-key/--tls-client-ca';
    if (!(Number.isFinite(opts.tlsRefreshSeconds) && opts.tlsRefreshSeconds >= 1 && opts.tlsRefreshSeconds <= 86_400)) return '--tls-refresh-seconds must be a number from 1 to 86400';
    server.tls.refreshIntervalMs = Math.round(opts.tlsRefreshSeconds * 1000);
  }
  if (opts.insecurePlaintext) {
    if (server.tls) return '--insecure-plaintext contradicts the TLS options';
    server.insecurePlaintext = true;
  }
  if (opts.forgedStreamFailureMode !== undefined) {
    if (opts.forgedStreamFailureMode !== 'open' && opts.forgedStreamFailureMode !== 'closed') return '--forged-stream-failure-mode must be open or closed';
    server.forgedStreamFailureMode = opts.forgedStreamFailureMode;
  }
  if (server.tls) {
    try {
      checkTlsFiles(server.tls);
    } catch (err) {
      return (err as Error).message;
    }
  } else if (!server.insecurePlaintext && !LOOPBACK_HOSTS.has(server.host)) {
    return `refusing plaintext ext_proc on ${server.host}: any pod reaching it could feed the engine forged requests; give --tls-cert/--tls-key/--tls-client-ca (or --insecure-plaintext to accept that)`;
  }
  return undefined;
}
