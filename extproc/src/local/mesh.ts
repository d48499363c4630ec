// A local two-sidecar mesh on loopback: client-side Envoy (one outbound listener per caller
// identity x inbound listener) -> mTLS with SPIFFE certificates -> server-side Envoy (Wasm filter,
// ext_proc, router) -> sample app; plus the meshward ext_proc server in this process.
// Used by the end-to-end tests, the demo and the benchmarks. Every process is cleaned up by stop().
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Engine, type EngineConfig } from '../engine/engine.ts';
import { silentLogger, type Logger } from '../log.ts';
import { startServer, type RunningServer } from '../server.ts';
import { startAdminServer, type AdminRouter, type RunningAdminServer } from '../admin/server.ts';
import { generatePki, type TestPki, type WorkloadSpec } from './certs.ts';
import type { ServerTlsOptions } from '../server-tls.ts';
import type { FailureMode } from '../wire/stream-binding.ts';
import { clientSidecarBootstrap, serverSidecarBootstrap, type ExtProcTls, type InboundListener, type OutboundListener, type ServerSidecarOptions } from './envoy-config.ts';
import { startEnvoy, type EnvoyProcess } from './envoy-process.ts';
import { PROJECT_ROOT } from './envoy-binary.ts';
import { freePort } from './ports.ts';
import { startUpstreamApp, type AppHandler, type UpstreamApp } from './upstream-app.ts';

export const DEFAULT_WASM_FILE = path.join(PROJECT_ROOT, 'build', 'filter.wasm');

export interface LocalMeshOptions {
  /** Caller workloads ("namespace/serviceAccount"); each gets a certificate and outbound listeners. */
  callers: string[];
  /** The called workload (the server sidecar's identity). */
  server?: string;
  /** Inbound listeners on the server sidecar; default one fail-closed listener named "inbound". */
  inbound?: { name: string; failureModeAllow: boolean; observabilityMode?: boolean }[];
  /** The engine's configuration, or an engine to share (e.g. between meshes of different namespaces). */
  engine?: EngineConfig | Engine;
  /** Node metadata of the server sidecar, as Istio sets it (NAMESPACE, WORKLOAD_NAME, LABELS). */
  serverNodeMetadata?: Record<string, unknown>;
  logger?: Logger;
  wasmFile?: string;
  pluginConfig?: Record<string, unknown>;
  messageTimeoutSeconds?: number;
  /** Replaces the meshward filters per inbound listener, e.g. with the configs the Istio resources inject. */
  httpFilters?: ServerSidecarOptions['httpFilters'];
  /** Name of the server sidecar's ext_proc cluster (Istio: outbound|<port>||<service fqdn>). */
  extProcClusterName?: string;
  /** Keep the working directory (certs, configs, logs) after stop(), for debugging. */
  keepWorkDir?: boolean;
  /** Starts the admin HTTP server with these routes; the server sidecar gets cluster `meshward_config` to it.
   *  `filterToken` opens only the filter's refresh route (what a plugin configuration should carry). */
  admin?: { router: AdminRouter; token: string; filterToken?: string };
  /** Worker threads of the server sidecar (default 1); more than one means one Wasm VM per worker. */
  serverConcurrency?: number;
  /** Runs the meshward filters on the client sidecar's outbound listeners too (filter role "outbound"). */
  outboundFilter?: { pluginConfig: Record<string, unknown>; failureModeAllow?: boolean };
  /** Answers requests in the upstream app instead of its JSON echo (replays answer recorded responses). */
  appHandler?: AppHandler;
  /** The ext_proc server's event clock (replays through Envoy map wall time onto capture time). */
  serverClock?: () => number;
  /** The ext_proc server's body budget (ServerOptions.maxBufferedBodyMib); default the server's. */
  maxBufferedBodyMib?: number;
  /** mTLS between the sidecars and the ext_proc server: the server gets certificate EXT_PROC_SERVER_WORKLOAD
   *  from the mesh CA, each sidecar its own workload certificate, and the server sidecar node metadata
   *  NAMESPACE/SERVICE_ACCOUNT of its workload (unless serverNodeMetadata is given). */
  extProcTls?: { forgedStreamFailureMode?: FailureMode; refreshIntervalMs?: number };
  /** Replaces the server sidecar's ext_proc cluster (given the ext_proc server's port), e.g. with the Istio-rendered one. */
  serverExtProcCluster?: (extProcPort: number) => Record<string, unknown>;
  /** More static clusters of the server sidecar (e.g. Istio's sds-grpc). */
  serverExtraClusters?: Record<string, unknown>[];
  /** Runs once the certificates exist, before any sidecar starts (e.g. to serve them by SDS). */
  beforeSidecars?: (pki: TestPki) => Promise<void>;
}

/** The ext_proc server's own workload in the local mesh's PKI (when extProcTls is on). */
export const EXT_PROC_SERVER_WORKLOAD = 'meshward-system/meshward';

export interface LocalMesh {
  readonly workDir: string;
  readonly pki: TestPki;
  readonly engine: Engine;
  readonly app: UpstreamApp;
  readonly serverSidecar: EnvoyProcess;
  readonly clientSidecar: EnvoyProcess;
  spiffeIdOf(workload: string): string;
  /** Base URL (plaintext, client side) through which `caller` reaches the server via `inbound`. */
  urlFor(caller: string, inbound?: string): string;
  /** Loopback port the sidecars' ext_proc cluster points at (a test may serve its own processor there). */
  readonly extProcPort: number;
  extProcRunning(): boolean;
  /** Stream and body-budget counters of the in-process ext_proc server (undefined while it is stopped). */
  extProcCounters(): RunningServer['counters'] | undefined;
  /** Port of the admin HTTP server, when options.admin was given. */
  readonly adminPort?: number;
  /** The ext_proc server's TLS files (options.extProcTls): replace them to rotate its certificate. */
  readonly extProcTlsFiles?: ServerTlsOptions;
  stopExtProc(): Promise<void>;
  startExtProc(): Promise<void>;
  stop(): Promise<void>;
}

function parseWorkload(w: string): WorkloadSpec {
  const [namespace, serviceAccount, ...rest] = w.split('/');
  if (!namespace || !serviceAccount || rest.length > 0) throw new Error(`workload must be "namespace/serviceAccount", got ${JSON.stringify(w)}`);
  return { namespace, serviceAccount };
}

export async function startLocalMesh(options: LocalMeshOptions): Promise<LocalMesh> {
  const log = options.logger ?? silentLogger;
  const wasmFile = options.wasmFile ?? DEFAULT_WASM_FILE;
  if (!existsSync(wasmFile)) throw new Error(`filter module ${wasmFile} not found: run \`npm run build\``);
  const serverWorkload = options.server ?? 'default/server';
  const inboundSpecs = options.inbound ?? [{ name: 'inbound', failureModeAllow: false }];

  const workDir = await mkdtemp(path.join(os.tmpdir(), 'meshward-mesh-'));
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    cleanups.length = 0;
    if (!options.keepWorkDir) await rm(workDir, { recursive: true, force: true });
  };

  try {
    const tlsOn = options.extProcTls !== undefined;
    const pki = await generatePki(path.join(workDir, 'certs'), [serverWorkload, ...options.callers, ...(tlsOn ? [EXT_PROC_SERVER_WORKLOAD] : [])].map(parseWorkload));
    const extProcCert = tlsOn ? pki.workloads.get(EXT_PROC_SERVER_WORKLOAD)! : undefined;
    const extProcTlsFiles: ServerTlsOptions | undefined = extProcCert ? {
      certFile: extProcCert.certFile, keyFile: extProcCert.keyFile, clientCaFile: pki.caFile,
      ...(options.extProcTls?.refreshIntervalMs !== undefined ? { refreshIntervalMs: options.extProcTls.refreshIntervalMs } : {}),
    } : undefined;
    /** A sidecar's client certificate towards the ext_proc server (options.extProcTls). */
    const extProcTlsFor = (workload: string): ExtProcTls | undefined => {
      const cert = pki.workloads.get(workload);
      return extProcCert && cert ? { certFile: cert.certFile, keyFile: cert.keyFile, caFile: pki.caFile, serverSpiffeId: extProcCert.spiffeId } : undefined;
    };
    const engine = options.engine instanceof Engine ? options.engine : new Engine(options.engine ?? { denyRules: [] });

    await options.beforeSidecars?.(pki);
    const app = await startUpstreamApp(0, options.appHandler);
    cleanups.push(() => app.close());

    const extProcPort = await freePort();
    const startExtProcServer = (): Promise<RunningServer> => startServer(engine, log, {
      port: extProcPort,
      ...(options.serverClock ? { now: options.serverClock } : {}),
      ...(options.maxBufferedBodyMib !== undefined ? { maxBufferedBodyMib: options.maxBufferedBodyMib } : {}),
      ...(extProcTlsFiles ? { tls: extProcTlsFiles } : {}),
      ...(options.extProcTls?.forgedStreamFailureMode ? { forgedStreamFailureMode: options.extProcTls.forgedStreamFailureMode } : {}),
    });
    let extProc: RunningServer | undefined = await startExtProcServer();
    cleanups.push(async () => { extProc?.forceClose(); extProc = undefined; });

    let admin: RunningAdminServer | undefined;
    if (options.admin) {
      admin = await startAdminServer(options.admin.router, { host: '127.0.0.1', port: 0, token: options.admin.token, ...(options.admin.filterToken !== undefined ? { filterToken: options.admin.filterToken } : {}) }, log);
      cleanups.push(() => admin!.close());
    }

    const serverCert = pki.workloads.get(serverWorkload)!;
    const serverSpec = parseWorkload(serverWorkload);
    // As Istio sets it: the server binds each ext_proc stream to this claim.
    const serverNodeMetadata = options.serverNodeMetadata ?? (tlsOn ? { NAMESPACE: serverSpec.namespace, SERVICE_ACCOUNT: serverSpec.serviceAccount, WORKLOAD_NAME: serverSpec.serviceAccount } : undefined);
    const inbound: InboundListener[] = [];
    for (const spec of inboundSpecs) inbound.push({ ...spec, port: await freePort() });
    const serverAdmin = await freePort();
    const serverSidecar = await startEnvoy('server-sidecar', serverSidecarBootstrap({
      adminPort: serverAdmin,
      inbound,
      appPort: app.port,
      extProcPort,
      wasmFile,
      ...(options.pluginConfig ? { pluginConfig: options.pluginConfig } : {}),
      certFile: serverCert.certFile,
      keyFile: serverCert.keyFile,
      caFile: pki.caFile,
      trustDomain: pki.trustDomain,
      ...(options.messageTimeoutSeconds !== undefined ? { messageTimeoutSeconds: options.messageTimeoutSeconds } : {}),
      ...(options.httpFilters ? { httpFilters: options.httpFilters } : {}),
      ...(options.extProcClusterName ? { extProcClusterName: options.extProcClusterName } : {}),
      ...(admin ? { filterConfigPort: admin.port } : {}),
      ...(serverNodeMetadata ? { node: { id: 'meshward-server-sidecar', cluster: 'meshward-local', metadata: serverNodeMetadata } } : {}),
      ...(tlsOn ? { extProcTls: extProcTlsFor(serverWorkload)! } : {}),
      ...(options.serverExtProcCluster ? { extProcClusterConfig: options.serverExtProcCluster(extProcPort) } : {}),
      ...(options.serverExtraClusters ? { extraClusters: options.serverExtraClusters } : {}),
    }), workDir, serverAdmin, options.serverConcurrency !== undefined ? { concurrency: options.serverConcurrency } : {});
    cleanups.push(() => serverSidecar.stop());

    const outbound: OutboundListener[] = [];
    const urls = new Map<string, string>();
    for (const caller of options.callers) {
      const cert = pki.workloads.get(caller)!;
      for (const l of inbound) {
        const port = await freePort();
        const name = `${caller.replace('/', '_')}__${l.name}`;
        outbound.push({
          name, port, certFile: cert.certFile, keyFile: cert.keyFile, upstreamPort: l.port,
          upstreamSpiffeId: serverCert.spiffeId, upstreamSni: `${serverSpec.serviceAccount}.${serverSpec.namespace}.svc`,
        });
        urls.set(`${caller}|${l.name}`, `http://127.0.0.1:${port}`);
      }
    }
    const clientAdmin = await freePort();
    const firstCaller = options.callers[0] !== undefined ? parseWorkload(options.callers[0]) : undefined;
    const clientSidecar = await startEnvoy('client-sidecar', clientSidecarBootstrap({
      adminPort: clientAdmin, caFile: pki.caFile, outbound,
      ...(options.outboundFilter ? {
        meshward: { wasmFile, pluginConfig: options.outboundFilter.pluginConfig, extProcPort, failureModeAllow: options.outboundFilter.failureModeAllow ?? true,
          ...(tlsOn && options.callers[0] !== undefined ? { extProcTls: extProcTlsFor(options.callers[0])! } : {}) },
        // As Istio's node metadata, which the outbound filter reads for its own identity.
        node: { id: 'meshward-client-sidecar', cluster: 'meshward-local', metadata: firstCaller ? {
          NAMESPACE: firstCaller.namespace, SERVICE_ACCOUNT: firstCaller.serviceAccount, WORKLOAD_NAME: firstCaller.serviceAccount,
        } : {} },
      } : {}),
    }), workDir, clientAdmin);
    cleanups.push(() => clientSidecar.stop());

    return {
      workDir, pki, engine, app, serverSidecar, clientSidecar,
      spiffeIdOf: (w) => {
        const c = pki.workloads.get(w);
        if (!c) throw new Error(`unknown workload ${w}`);
        return c.spiffeId;
      },
      urlFor: (caller, inboundName = inboundSpecs[0]!.name) => {
        const u = urls.get(`${caller}|${inboundName}`);
        if (!u) throw new Error(`no outbound listener for caller ${caller} to inbound ${inboundName}`);
        return u;
      },
      extProcPort,
      extProcRunning: () => extProc !== undefined,
      extProcCounters: () => extProc?.counters,
      ...(admin ? { adminPort: admin.port } : {}),
      ...(extProcTlsFiles ? { extProcTlsFiles } : {}),
      stopExtProc: async () => { extProc?.forceClose(); extProc = undefined; },
      startExtProc: async () => { if (!extProc) extProc = await startExtProcServer(); },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
