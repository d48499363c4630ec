// A multi-service local mesh on loopback for the demo: one server-side Envoy sidecar per service
// (mTLS with its own SPIFFE certificate -> meshward Wasm filter -> ext_proc -> router -> its app),
// and one Envoy for the callers' outbound sides and the ingress gateway (a listener per caller
// identity and destination, each presenting that caller's certificate), plus an Envoy of its own for
// each caller whose outbound sidecar runs meshward (role outbound; to mesh services or to a third-party
// API outside the mesh). The meshward ext_proc server runs in this process. A watchdog reports a
// child that dies; stop() cleans up everything.
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Engine } from '../engine/engine.ts';
import { silentLogger, type Logger } from '../log.ts';
import { startServer, type RunningServer } from '../server.ts';
import { generatePki, type TestPki } from './certs.ts';
import { clientSidecarBootstrap, meshwardHttpFilters, serverSidecarBootstrap, type OutboundListener } from './envoy-config.ts';
import { startEnvoy, type EnvoyProcess } from './envoy-process.ts';
import { envoyBinary } from './envoy-binary.ts';
import { freePort } from './ports.ts';
import { DEFAULT_WASM_FILE } from './mesh.ts';

export interface MeshService {
  /** Short name ("orders"). */
  name: string;
  /** "namespace/serviceAccount": the SPIFFE identity of its sidecar. */
  workload: string;
  /** The authority callers use (its Kubernetes service name). */
  host: string;
  appPort: number;
  /** Also expose the app through a listener without meshward's filters (latency baseline). */
  bareListener?: boolean;
}

export interface MeshCaller {
  /** "namespace/serviceAccount". */
  workload: string;
  /** Service (or external API) names it may call. */
  calls: string[];
  /** Fixed local port for this caller's listener to its first service (the ingress's public port). */
  port?: number;
  /** Its own outbound sidecar runs the meshward filters (role outbound), in an Envoy of its own. */
  outboundMeshward?: boolean;
}

/** An API outside the mesh (a third party), reached without mTLS; a loopback app plays it. */
export interface MeshExternal {
  name: string;
  /** The authority callers use ("api.fx-rates.example"). */
  host: string;
  port: number;
}

export interface DemoMeshOptions {
  services: MeshService[];
  callers: MeshCaller[];
  externals?: MeshExternal[];
  engine: Engine;
  pluginConfig?: Record<string, unknown>;
  wasmFile?: string;
  logger?: Logger;
  /** Called once when a child process of the mesh dies while the mesh runs. */
  onChildExit?: (problem: string) => void;
}

export interface DemoMeshProcess { name: string; pid: number; logFile: string }

export interface DemoMesh {
  readonly workDir: string;
  readonly pki: TestPki;
  readonly processes: readonly DemoMeshProcess[];
  spiffeIdOf(workload: string): string;
  /** Plaintext URL through which `caller` reaches `service` (bare: without meshward's filters). */
  urlFor(caller: string, service: string, variant?: 'meshward' | 'bare'): string;
  stop(): Promise<void>;
}

function parseWorkload(w: string): { namespace: string; serviceAccount: string } {
  const [namespace, serviceAccount, ...rest] = w.split('/');
  if (!namespace || !serviceAccount || rest.length > 0) throw new Error(`workload must be "namespace/serviceAccount", got ${JSON.stringify(w)}`);
  return { namespace, serviceAccount };
}

/** Rejects with a message naming the port and what to do when it cannot be bound. */
export function assertPortFree(port: number, what: string, host = '127.0.0.1'): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => reject(new Error(err.code === 'EADDRINUSE'
      ? `port ${port} (${what}) is already in use: stop the program using it (\`ss -ltnp 'sport = :${port}'\` shows which) or choose another port`
      : `cannot listen on ${host}:${port} (${what}): ${err.message}`)));
    srv.listen(port, host, () => srv.close(() => resolve()));
  });
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

export async function startDemoMesh(options: DemoMeshOptions): Promise<DemoMesh> {
  const log = options.logger ?? silentLogger;
  const wasmFile = options.wasmFile ?? DEFAULT_WASM_FILE;
  // Prerequisites first, so a missing piece fails before anything starts.
  envoyBinary();
  if (!existsSync(wasmFile)) throw new Error(`the meshward filter ${wasmFile} is not built: run \`npm run build\``);
  for (const c of options.callers) if (c.port !== undefined && c.port !== 0) await assertPortFree(c.port, `listener of ${c.workload}`);
  const services = new Map(options.services.map((s) => [s.name, s]));
  const externals = new Map((options.externals ?? []).map((e) => [e.name, e]));
  for (const c of options.callers) for (const s of c.calls) if (!services.has(s) && !externals.has(s)) throw new Error(`caller ${c.workload} calls unknown service ${s}`);

  const workDir = await mkdtemp(path.join(os.tmpdir(), 'meshward-demo-'));
  const cleanups: (() => Promise<void>)[] = [];
  const processes: DemoMeshProcess[] = [];
  let stopping = false;
  let watchdog: NodeJS.Timeout | undefined;
  const stop = async (): Promise<void> => {
    stopping = true;
    if (watchdog) clearInterval(watchdog);
    for (const c of cleanups.reverse()) await c().catch(() => {});
    cleanups.length = 0;
    await rm(workDir, { recursive: true, force: true });
  };

  try {
    const workloads = [...options.services.map((s) => s.workload), ...options.callers.map((c) => c.workload)];
    const pki = await generatePki(path.join(workDir, 'certs'), [...new Set(workloads)].map(parseWorkload));
    const extProcPort = await freePort();
    const extProc: RunningServer = await startServer(options.engine, log, { port: extProcPort });
    cleanups.push(async () => extProc.forceClose());

    // Server-side sidecars, started together (each Envoy takes a second or two to load the filter).
    const inboundPorts = new Map<string, { meshward: number; bare?: number }>();
    const started = await Promise.allSettled(options.services.map(async (s) => {
      const cert = pki.workloads.get(s.workload)!;
      const ports = { meshward: await freePort(), ...(s.bareListener ? { bare: await freePort() } : {}) };
      inboundPorts.set(s.name, ports);
      const adminPort = await freePort();
      const inbound = [{ name: 'inbound', port: ports.meshward, failureModeAllow: false }, ...(ports.bare ? [{ name: 'bare', port: ports.bare, failureModeAllow: false }] : [])];
      const envoy = await startEnvoy(`${s.name}-sidecar`, serverSidecarBootstrap({
        adminPort, inbound, appPort: s.appPort, extProcPort, wasmFile,
        ...(options.pluginConfig ? { pluginConfig: options.pluginConfig } : {}),
        certFile: cert.certFile, keyFile: cert.keyFile, caFile: pki.caFile, trustDomain: pki.trustDomain,
        httpFilters: (l) => (l.name === 'bare' ? [] : meshwardHttpFilters({
          wasmFile, extProcCluster: 'meshward_ext_proc', failureModeAllow: false,
          ...(options.pluginConfig ? { pluginConfig: options.pluginConfig } : {}),
        })),
      }), workDir, adminPort).catch((err: Error) => { throw new Error(`the ${s.name} sidecar did not start: ${err.message}`); });
      return envoy;
    }));
    const sidecars: EnvoyProcess[] = [];
    // Every Envoy that started is stopped by stop(), also when another of the batch failed.
    const keepStarted = (results: PromiseSettledResult<EnvoyProcess>[]): void => {
      for (const r of results) if (r.status === 'fulfilled') { sidecars.push(r.value); cleanups.push(() => r.value.stop()); }
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    };
    keepStarted(started);

    const outbound: OutboundListener[] = [];
    // Callers whose own sidecar runs meshward: one Envoy each (its node metadata is its identity).
    const meshwardOutbound = new Map<string, OutboundListener[]>();
    const urls = new Map<string, string>();
    for (const c of options.callers) {
      const cert = pki.workloads.get(c.workload)!;
      let listeners = outbound;
      if (c.outboundMeshward) { listeners = meshwardOutbound.get(c.workload) ?? []; meshwardOutbound.set(c.workload, listeners); }
      for (const [i, name] of c.calls.entries()) {
        const external = externals.get(name);
        if (external) {
          const port = await freePort();
          listeners.push({
            name: `${c.workload.replace('/', '_')}__${name}__meshward`, port, certFile: cert.certFile, keyFile: cert.keyFile,
            upstreamPort: external.port, upstreamSpiffeId: '', upstreamSni: '', plaintextUpstream: true,
          });
          urls.set(`${c.workload}|${name}|meshward`, `http://127.0.0.1:${port}`);
          continue;
        }
        const s = services.get(name)!;
        const target = parseWorkload(s.workload);
        const ports = inboundPorts.get(name)!;
        for (const variant of ['meshward', 'bare'] as const) {
          const upstreamPort = variant === 'bare' ? ports.bare : ports.meshward;
          if (upstreamPort === undefined) continue;
          const port = i === 0 && variant === 'meshward' && c.port ? c.port : await freePort();
          listeners.push({
            name: `${c.workload.replace('/', '_')}__${name}__${variant}`, port, certFile: cert.certFile, keyFile: cert.keyFile,
            upstreamPort, upstreamSpiffeId: pki.workloads.get(s.workload)!.spiffeId, upstreamSni: `${target.serviceAccount}.${target.namespace}.svc`,
          });
          urls.set(`${c.workload}|${name}|${variant}`, `http://127.0.0.1:${port}`);
        }
      }
    }
    const clientAdmin = await freePort();
    const callersEnvoy = startEnvoy('callers-and-ingress', clientSidecarBootstrap({ adminPort: clientAdmin, caFile: pki.caFile, outbound }), workDir, clientAdmin)
      .catch((err: Error) => { throw new Error(`the callers' and ingress Envoy did not start: ${err.message}`); });
    const outboundSidecars = [...meshwardOutbound].map(async ([workload, listeners]) => {
      const { namespace, serviceAccount } = parseWorkload(workload);
      const adminPort = await freePort();
      return startEnvoy(`${serviceAccount}-outbound-sidecar`, clientSidecarBootstrap({
        adminPort, caFile: pki.caFile, outbound: listeners,
        meshward: { wasmFile, pluginConfig: { ...options.pluginConfig, role: 'outbound' }, extProcPort, failureModeAllow: false },
        // As Istio's node metadata, from which the outbound filter takes its own identity.
        node: { id: `${serviceAccount}-outbound`, cluster: 'meshward-demo', metadata: { NAMESPACE: namespace, SERVICE_ACCOUNT: serviceAccount, WORKLOAD_NAME: serviceAccount } },
      }), workDir, adminPort).catch((err: Error) => { throw new Error(`the outbound sidecar of ${workload} did not start: ${err.message}`); });
    });
    keepStarted(await Promise.allSettled([callersEnvoy, ...outboundSidecars]));

    for (const e of sidecars) processes.push({ name: e.name, pid: e.pid, logFile: e.logFile });
    let reported = false;
    watchdog = setInterval(() => {
      if (stopping || reported) return;
      const dead = processes.find((p) => !alive(p.pid));
      if (dead) {
        reported = true;
        const tail = (() => { try { return readFileSync(dead.logFile, 'utf8').trim().split('\n').slice(-5).join('\n'); } catch { return ''; } })();
        options.onChildExit?.(`${dead.name} (envoy, pid ${dead.pid}) exited unexpectedly${tail ? `; last log lines:\n${tail}` : ' (no log output)'}`);
      }
    }, 200);
    watchdog.unref();

    return {
      workDir, pki, processes,
      spiffeIdOf: (w) => {
        const c = pki.workloads.get(w);
        if (!c) throw new Error(`unknown workload ${w}`);
        return c.spiffeId;
      },
      urlFor: (caller, service, variant = 'meshward') => {
        const u = urls.get(`${caller}|${service}|${variant}`);
        if (!u) throw new Error(`${caller} has no ${variant} listener to ${service}`);
        return u;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
