// Security gap #7/#10: the ext_proc port accepts only sidecars with a mesh certificate, and a stream
// whose claimed sidecar differs from its certificate is reported, never learned from. Real Envoy
// sidecars talk to the server over mTLS with their SPIFFE certificates; the attacker is grpc-js.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm, symlink, mkdir, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { envoyBinary } from '../../extproc/src/local/envoy-binary.ts';
import { extProcFilterFrom, helmTemplate, only, wasmFilterFrom } from '../helpers/istio.ts';
import { sdsGrpcCluster, startSdsServer, type RunningSds } from '../support/sds-server.ts';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { startLocalMesh, DEFAULT_WASM_FILE, EXT_PROC_SERVER_WORKLOAD, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import { generatePki, issueWorkloadCert } from '../../extproc/src/local/certs.ts';
import { startInventory, type InventoryRuntime } from '../../extproc/src/inventory/runtime.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { silentLogger } from '../../extproc/src/log.ts';
import { startServer } from '../../extproc/src/server.ts';
import { externalProcessorService } from '../../extproc/src/wire/protos.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../extproc/src/wire/messages.ts';
import { CAPTURE_ATTRIBUTE, EXT_PROC_ATTRIBUTES_KEY, PEER_URI_ATTRIBUTE } from '../../extproc/src/wire/request.ts';
import { FORGED_STREAM_DETECTOR } from '../../extproc/src/wire/stream-binding.ts';

const run = promisify(execFile);
const SERVER = 'shop/orders';
const CLIENT = 'web/frontend';
const VICTIM = 'spiffe://cluster.local/ns/payments/sa/ledger';

type Duplex = grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
const ExtProcClient = grpc.makeClientConstructor(externalProcessorService(), 'ExternalProcessor');

interface Pem { ca: Buffer; cert?: Buffer; key?: Buffer }

async function pemOf(caFile: string, cert?: { certFile: string; keyFile: string }): Promise<Pem> {
  return { ca: await readFile(caFile), ...(cert ? { cert: await readFile(cert.certFile), key: await readFile(cert.keyFile) } : {}) };
}

/** One ext_proc exchange from outside any sidecar: the server's answer, or the gRPC error. */
async function processOnce(port: number, pem: Pem, message: ProcessingRequest): Promise<{ response?: ProcessingResponse; error?: grpc.ServiceError }> {
  // The server's certificate names a SPIFFE ID, not 127.0.0.1: chain-checked, host name not.
  const creds = grpc.credentials.createSsl(pem.ca, pem.key ?? null, pem.cert ?? null, { checkServerIdentity: () => undefined });
  const client = new ExtProcClient(`127.0.0.1:${port}`, creds) as unknown as grpc.Client & { Process(): Duplex };
  try {
    return await new Promise((resolve) => {
      const call = client.Process();
      call.on('data', (response: ProcessingResponse) => { resolve({ response }); call.end(); });
      call.on('error', (error: grpc.ServiceError) => resolve({ error }));
      call.write(message);
    });
  } finally {
    client.close();
  }
}

/** The HTTP status of an immediate response, as grpc-js decodes the enum (its name). */
const immediateStatus = (r: ProcessingResponse | undefined): unknown =>
  (r as { immediate_response?: { status?: { code?: unknown } } } | undefined)?.immediate_response?.status?.code;

const h = (pairs: [string, string][]): { headers: { key: string; raw_value: Buffer }[] } => ({ headers: pairs.map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) });

function forgedHeaders(record: string | undefined, peerAttribute?: string): ProcessingRequest {
  const fields: Record<string, { stringValue: string }> = {};
  if (record !== undefined) fields[CAPTURE_ATTRIBUTE] = { stringValue: record };
  if (peerAttribute !== undefined) fields[PEER_URI_ATTRIBUTE] = { stringValue: peerAttribute };
  return {
    request: 'request_headers',
    request_headers: { headers: h([[':method', 'POST'], [':path', '/payments/7/refund'], [':authority', 'payments.shop']]), end_of_stream: true },
    attributes: { [EXT_PROC_ATTRIBUTES_KEY]: { fields } },
  } as ProcessingRequest;
}

/** A capture record as the filter writes it inbound, claiming the sidecar of `ns`/`sa`. */
const recordClaiming = (ns: string, sa?: string): string =>
  `mw1\npeer=${VICTIM}\nmtls=1\nrole=inbound\nmethod=POST\nauthority=payments.shop\npath=/payments/7/refund\nnode.namespace=${ns}\n${sa ? `node.sa=${sa}\n` : ''}`;

describe('ext_proc over mTLS with stream binding (real Envoy)', () => {
  let mesh: LocalMesh;
  let inventory: InventoryRuntime;
  const decided: string[] = [];
  const findings: Finding[] = [];

  before(async () => {
    const engine = new Engine({ denyRules: [] });
    engine.addObserver({ onDecision: (r) => decided.push(r.request.caller.workload ?? ''), onFinding: (f) => findings.push(f) });
    inventory = await startInventory(engine);
    mesh = await startLocalMesh({ callers: [CLIENT], server: SERVER, engine, extProcTls: {} });
  });
  after(async () => {
    inventory?.close();
    await mesh?.stop();
  });

  test('a sidecar with its mesh certificate gets decisions as before, bound to its certificate', async () => {
    const before = decided.length;
    const res = await fetch(`${mesh.urlFor(CLIENT)}/orders/1`, { headers: { host: 'orders.shop' } });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.equal(decided.length, before + 1, 'the engine decided the request that came through Envoy over mTLS');
    assert.equal(decided.at(-1), mesh.spiffeIdOf(CLIENT));
    assert.equal(findings.filter((f) => f.detector === FORGED_STREAM_DETECTOR).length, 0);
    assert.ok(inventory.inventory.stats().operations >= 1, 'the inventory learned the operation');
  });

  test('a client without a certificate, or with one from another CA, is refused at the handshake', async () => {
    const started = mesh.extProcCounters()!.streamsStarted;
    const noCert = await processOnce(mesh.extProcPort, await pemOf(mesh.pki.caFile), forgedHeaders(recordClaiming('shop')));
    assert.equal(noCert.error?.code, grpc.status.UNAVAILABLE, `no client certificate: ${noCert.error?.details}`);
    const otherDir = await mkdtemp(path.join(os.tmpdir(), 'meshward-other-ca-'));
    try {
      const other = await generatePki(otherDir, [{ namespace: 'shop', serviceAccount: 'orders' }]);
      // Trusts the real server, presents a look-alike SPIFFE certificate from a CA the mesh does not know.
      const pem = { ...(await pemOf(other.caFile, other.workloads.get(SERVER)!)), ca: await readFile(mesh.pki.caFile) };
      const otherCa = await processOnce(mesh.extProcPort, pem, forgedHeaders(recordClaiming('shop', 'orders')));
      assert.equal(otherCa.error?.code, grpc.status.UNAVAILABLE, `foreign CA: ${otherCa.error?.details}`);
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
    const plain = new ExtProcClient(`127.0.0.1:${mesh.extProcPort}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { Process(): Duplex };
    const plainError = await new Promise<grpc.ServiceError>((resolve) => {
      const call = plain.Process();
      call.on('error', resolve);
      call.write(forgedHeaders(recordClaiming('shop')));
    });
    plain.close();
    assert.equal(plainError.code, grpc.status.UNAVAILABLE, 'plaintext is refused');
    assert.equal(mesh.extProcCounters()!.streamsStarted, started, 'no refused client opened a stream');
  });

  test('a valid certificate claiming another namespace changes no state and is reported', async () => {
    const attacker = await pemOf(mesh.pki.caFile, mesh.pki.workloads.get(CLIENT)!);
    const stats = JSON.stringify(inventory.inventory.stats());
    const decisions = decided.length;
    const pending = mesh.engine.pendingExchanges;
    const cases: [string, ProcessingRequest, string | null][] = [
      ['another namespace', forgedHeaders(recordClaiming('shop', 'orders')), 'shop'],
      ['its namespace, another service account', forgedHeaders(recordClaiming('web', 'orders')), 'web'],
      ['no capture record, a forged peer attribute', forgedHeaders(undefined, VICTIM), null],
    ];
    for (const [name, message, claimedNamespace] of cases) {
      const count = findings.length;
      const { response, error } = await processOnce(mesh.extProcPort, attacker, message);
      assert.equal(error, undefined, name);
      assert.equal(immediateStatus(response), 'Forbidden', `${name}: fail-closed by default (403)`);
      const forged = findings.slice(count).filter((f) => f.detector === FORGED_STREAM_DETECTOR);
      assert.equal(forged.length, 1, name);
      assert.equal(forged[0]!.severity, 'high');
      assert.equal(forged[0]!.caller, mesh.spiffeIdOf(CLIENT), `${name}: the finding names the certificate`);
      assert.equal(forged[0]!.evidence.certificateIdentity, mesh.spiffeIdOf(CLIENT));
      assert.equal(forged[0]!.evidence.claimedNamespace, claimedNamespace);
      assert.equal(forged[0]!.evidence.claimedCaller, VICTIM);
    }
    assert.equal(decided.length, decisions, 'no forged request reached the engine\'s decide()');
    assert.equal(JSON.stringify(inventory.inventory.stats()), stats, 'the inventory is unchanged');
    assert.equal(mesh.engine.pendingExchanges, pending, 'no forged exchange is pending');
  });

  test('the matching claim from the same certificate is accepted (the binding is what separates them)', async () => {
    const attacker = await pemOf(mesh.pki.caFile, mesh.pki.workloads.get(CLIENT)!);
    const decisions = decided.length;
    const { response } = await processOnce(mesh.extProcPort, attacker, forgedHeaders(recordClaiming('web', 'frontend')));
    assert.ok(response !== undefined && 'request_headers' in response, 'continued');
    assert.equal(decided.length, decisions + 1);
  });
});

describe('outbound filter over mTLS', () => {
  test('the calling sidecar\'s own identity claim matches its certificate: decided, not reported', async () => {
    const engine = new Engine({ denyRules: [] });
    const seen: { direction?: string; caller?: string }[] = [];
    const forged: Finding[] = [];
    engine.addObserver({ onDecision: (r) => seen.push({ direction: r.request.direction, caller: r.request.caller.workload }), onFinding: (f) => { if (f.detector === FORGED_STREAM_DETECTOR) forged.push(f); } });
    const mesh = await startLocalMesh({ callers: [CLIENT], server: SERVER, engine, extProcTls: {}, outboundFilter: { pluginConfig: { role: 'outbound' }, failureModeAllow: false } });
    try {
      const res = await fetch(`${mesh.urlFor(CLIENT)}/orders/2`, { headers: { host: 'orders.shop' } });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      assert.deepEqual(seen.filter((s) => s.direction === 'outbound'), [{ direction: 'outbound', caller: mesh.spiffeIdOf(CLIENT) }]);
      assert.equal(seen.filter((s) => s.direction === 'inbound').length, 1);
      assert.deepEqual(forged, []);
    } finally {
      await mesh.stop();
    }
  });
});

describe('the Helm chart\'s mTLS ext_proc cluster', () => {
  test('loads in real Envoy beside Istio\'s sds-grpc bootstrap cluster (envoy --mode validate)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'meshward-mtls-validate-'));
    try {
      const ef = only(helmTemplate('meshward', 'meshward'), 'EnvoyFilter');
      const patches = (ef.spec as { configPatches: { applyTo: string; patch: { value: Record<string, unknown> } }[] }).configPatches;
      const cluster = patches.find((p) => p.applyTo === 'CLUSTER')!.patch.value;
      const bootstrap = {
        // As istio-agent names a sidecar (SDS needs a node id and cluster).
        node: { id: 'sidecar~10.0.0.7~orders-1.shop~shop.svc.cluster.local', cluster: 'orders.shop' },
        static_resources: {
          clusters: [
            sdsGrpcCluster(path.join(dir, 'sds.sock')),
            cluster,
          ],
        },
      };
      const file = path.join(dir, 'bootstrap.json');
      await writeFile(file, JSON.stringify(bootstrap));
      const out = await run(envoyBinary(), ['--mode', 'validate', '-c', file, '--log-level', 'error'], { encoding: 'utf8' }).catch((err: { stdout?: string; stderr?: string }) => {
        assert.fail(`envoy rejected the rendered cluster: ${err.stderr ?? ''}${err.stdout ?? ''}`);
      });
      assert.match(out.stdout, /configuration '.*' OK/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the Helm chart\'s mTLS wiring, run as rendered in real Envoy with a real SDS server', () => {
  test('the sidecar presents its SDS certificate to the server through the added cluster; the server binds the stream to it', async () => {
    const [releaseNs] = EXT_PROC_SERVER_WORKLOAD.split('/') as [string];
    // Rendered in the namespace whose SPIFFE ID the harness gives the server: spiffe://cluster.local/ns/<ns>/sa/meshward.
    const docs = helmTemplate('meshward', releaseNs);
    const ef = only(docs, 'EnvoyFilter');
    const rendered = (ef.spec as { configPatches: { applyTo: string; patch: { value: Record<string, unknown> } }[] }).configPatches.find((p) => p.applyTo === 'CLUSTER')!.patch.value;
    const extProcFilter = extProcFilterFrom(ef, 'SIDECAR_INBOUND');
    const wasm = wasmFilterFrom(only(docs, 'WasmPlugin'), DEFAULT_WASM_FILE);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'meshward-sds-'));
    const socket = path.join(dir, 'sds.sock');
    let sds: RunningSds | undefined;
    const decidedFor: string[] = [];
    const engine = new Engine({ denyRules: [] });
    engine.addObserver({ onDecision: (r) => decidedFor.push(r.request.caller.workload ?? '') });
    let mesh: LocalMesh | undefined;
    try {
      mesh = await startLocalMesh({
        callers: [CLIENT], server: SERVER, engine, extProcTls: {},
        httpFilters: () => [wasm, extProcFilter],
        // The rendered cluster verbatim but for its address: the Service's DNS name -> the local server.
        serverExtProcCluster: (port) => {
          const cluster = structuredClone(rendered) as { load_assignment: { endpoints: { lb_endpoints: { endpoint: { address: { socket_address: Record<string, unknown> } } }[] }[] } };
          cluster.load_assignment.endpoints[0]!.lb_endpoints[0]!.endpoint.address.socket_address = { address: '127.0.0.1', port_value: port };
          return cluster as unknown as Record<string, unknown>;
        },
        serverExtraClusters: [sdsGrpcCluster(socket)],
        // As istio-agent does for its sidecar: the sidecar's own workload certificate and the mesh root.
        beforeSidecars: async (pki) => {
          const own = pki.workloads.get(SERVER)!;
          sds = await startSdsServer(socket, { certFile: own.certFile, keyFile: own.keyFile, caFile: pki.caFile });
        },
      });
      const res = await fetch(`${mesh.urlFor(CLIENT)}/orders/1`, { headers: { host: 'orders.shop' } });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      assert.deepEqual([...new Set(sds!.requested)].sort(), ['ROOTCA', 'default'], 'Envoy fetched both secrets by SDS');
      assert.deepEqual(decidedFor, [mesh.spiffeIdOf(CLIENT)], 'the request was decided, over the rendered mTLS cluster');
      const stats = await (await fetch(`http://127.0.0.1:${mesh.serverSidecar.adminPort}/stats?filter=ext-proc-mtls`)).text();
      const handshakes = Number(/cluster\.meshward-ext-proc-mtls\.ssl\.handshake: (\d+)/.exec(stats)?.[1] ?? '0');
      assert.ok(handshakes >= 1, `TLS handshakes on the rendered cluster: ${stats}`);
    } finally {
      await mesh?.stop();
      sds?.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('ext_proc server certificate rotation', () => {
  test('replaced certificate files are served to new connections without a restart', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'meshward-rotate-'));
    const [ns, sa] = EXT_PROC_SERVER_WORKLOAD.split('/') as [string, string];
    try {
      const pki = await generatePki(path.join(dir, 'pki'), [{ namespace: 'web', serviceAccount: 'frontend' }, { namespace: ns, serviceAccount: sa }]);
      // As Kubernetes updates a mounted secret: the files sit behind a symlinked directory swapped atomically.
      const generation = async (n: number): Promise<string> => {
        const gen = path.join(dir, `gen${n}`);
        await mkdir(gen);
        await issueWorkloadCert(pki.caFile, path.join(gen, 'tls'), { namespace: ns, serviceAccount: sa });
        return gen;
      };
      await symlink(await generation(1), path.join(dir, 'current'));
      const files = { certFile: path.join(dir, 'current', 'tls.crt'), keyFile: path.join(dir, 'current', 'tls.key'), clientCaFile: pki.caFile, refreshIntervalMs: 100 };
      const server = await startServer(new Engine({ denyRules: [] }), silentLogger, { port: 0, tls: files });
      const client = pki.workloads.get('web/frontend')!;
      const serialSeen = (): Promise<string> => new Promise((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', servername: 'meshward', port: server.port, ALPNProtocols: ['h2'], ca: readFileSync(pki.caFile),
          cert: readFileSync(client.certFile), key: readFileSync(client.keyFile), checkServerIdentity: () => undefined }, () => {
          resolve(socket.getPeerCertificate().serialNumber);
          socket.destroy();
        });
        socket.on('error', reject);
      });
      try {
        const first = await serialSeen();
        const next = await generation(2);
        await symlink(next, path.join(dir, 'next'));
        await rename(path.join(dir, 'next'), path.join(dir, 'current'));
        const rotated = new X509Certificate(await readFile(path.join(next, 'tls.crt'))).serialNumber;
        assert.notEqual(rotated, first);
        // Poll until the watcher has re-read the files (at most 10 s): no fixed sleep, no timing assertion.
        let seen = first;
        for (let i = 0; i < 200 && seen !== rotated; i++) {
          await new Promise((r) => setTimeout(r, 50));
          seen = await serialSeen();
        }
        assert.equal(seen, rotated, 'a new connection gets the rotated certificate');
      } finally {
        server.forceClose();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
