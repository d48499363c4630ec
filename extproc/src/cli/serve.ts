// `meshward serve`: run the ext_proc server.
import type { Command } from 'commander';
import { loadServerConfig, type ServerConfig } from '../config.ts';
import { DEFAULT_SERVER_OPTIONS } from '../server.ts';
import { Engine } from '../engine/engine.ts';
import { createLogger } from '../log.ts';
import { startServer } from '../server.ts';
import { Telemetry } from '../telemetry/otel.ts';
import { startPolicyRuntime } from '../policy/runtime.ts';

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
    .action(async (opts: { config?: string; host?: string; port?: number; policySource: string; policyFile?: string[]; policyNamespace: string; policyResyncSeconds?: number }) => {
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
      const engine = new Engine({ denyRules: config.denyRules });
      engine.addObserver({
        onDecision: ({ request, decision }) => {
          if (decision.action === 'deny') {
            log.info({ requestId: request.requestId, caller: request.caller.workload, method: request.method, path: request.path, decision }, 'request denied');
          }
        },
      });
      if (!['none', 'file', 'kubernetes'].includes(opts.policySource)) {
        console.error(`meshward serve: --policy-source must be none, file or kubernetes (got ${opts.policySource})`);
        process.exit(2);
      }
      const policies = await startPolicyRuntime({ source: opts.policySource as 'none' | 'file' | 'kubernetes', files: opts.policyFile ?? [], namespace: opts.policyNamespace, staticDenyRules: config.denyRules, ...(opts.policyResyncSeconds ? { resyncSeconds: opts.policyResyncSeconds } : {}), engine, log });
      const server = await startServer(engine, log, config.server);
      const shutdown = async (): Promise<void> => {
        log.info('shutting down');
        const timer = setTimeout(() => { server.forceClose(); process.exit(0); }, 5000);
        await policies.stop();
        await server.close();
        clearTimeout(timer);
        process.exit(0);
      };
      process.once('SIGTERM', () => void shutdown());
      process.once('SIGINT', () => void shutdown());
    });
}
