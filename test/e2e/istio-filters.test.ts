// Issue #7: the configuration Istio would inject is the one tested. The chart is rendered with the
// real `helm template`; the ext_proc filter is taken verbatim from the EnvoyFilter patch, the Wasm
// filter is what Istio generates from the WasmPlugin, and the module is plugin.wasm unpacked from the
// OCI artifact (as istio-agent does). They run in real Envoy sidecars with SPIFFE mTLS; the engine
// enforces an example policy from istio/examples.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalMesh, DEFAULT_WASM_FILE, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import type { DecisionRecord } from '../../extproc/src/engine/engine.ts';
import { PROJECT_ROOT } from '../../extproc/src/local/envoy-binary.ts';
import { parsePolicies } from '../../extproc/src/policy/validate.ts';
import { engineSettingsFor } from '../../extproc/src/policy/engine-mapping.ts';
import { buildWasmOci } from '../../scripts/build-wasm-oci.ts';
import { startPolicyRuntime } from '../../extproc/src/policy/runtime.ts';
import { silentLogger } from '../../extproc/src/log.ts';
import { extProcFilterFrom, helmTemplate, only, wasmFilterFrom } from '../helpers/istio.ts';

const FRONTEND = 'web/frontend';
const WORKER = 'payments/payment-worker';
type Json = Record<string, unknown>;

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** plugin.wasm out of the OCI layout: index -> manifest -> the single layer. */
function moduleFromOci(layout: string, into: string): string {
  const blob = (digest: string): Buffer => readFileSync(path.join(layout, 'blobs', 'sha256', digest.replace('sha256:', '')));
  const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(blob(index.manifests[0]!.digest).toString()) as { layers: { digest: string }[] };
  const layerFile = path.join(into, 'layer.tar.gz');
  writeFileSync(layerFile, blob(manifest.layers[0]!.digest));
  execFileSync('tar', ['-xzf', layerFile, '-C', into, 'plugin.wasm']);
  return path.join(into, 'plugin.wasm');
}

describe('Istio-rendered filters in real Envoy', () => {
  let mesh: LocalMesh;
  let work: string;
  const filters = new Map<string, Json[]>();
  let cluster = '';
  const decisions: DecisionRecord[] = [];

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'meshward-istio-e2e-'));
    const moduleFile = moduleFromOci(buildWasmOci(DEFAULT_WASM_FILE, path.join(work, 'oci'), 'e2e').outDir, work);
    for (const failureMode of ['open', 'closed'] as const) {
      // Plaintext: ext_proc at Istio's own cluster. The mTLS variant (the chart's default) is test/e2e/ext-proc-mtls.test.ts.
      const docs = helmTemplate('meshward', 'meshward', { defaultPolicy: { failureMode }, server: { tls: { mode: 'plaintext' } } });
      const extProc = extProcFilterFrom(only(docs, 'EnvoyFilter'), 'SIDECAR_INBOUND');
      cluster = ((extProc.typed_config as Json).grpc_service as { envoy_grpc: { cluster_name: string } }).envoy_grpc.cluster_name;
      filters.set(failureMode, [wasmFilterFrom(only(docs, 'WasmPlugin'), moduleFile), extProc]);
    }
    const policy = parsePolicies('shop-enforce.yaml', readFileSync(path.join(PROJECT_ROOT, 'istio', 'examples', 'shop-enforce.yaml'), 'utf8'), { baseDir: path.join(PROJECT_ROOT, 'istio', 'examples') }).policies[0]!;
    mesh = await startLocalMesh({
      callers: [FRONTEND, WORKER],
      server: 'shop/orders',
      inbound: [{ name: 'open', failureModeAllow: true }, { name: 'closed', failureModeAllow: false }],
      httpFilters: (l) => filters.get(l.name)!,
      extProcClusterName: cluster,
      engine: engineSettingsFor(policy.spec).engine,
    });
    mesh.engine.addObserver({ onDecision: (r) => decisions.push(r) });
  });

  after(async () => {
    await mesh?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  async function send(caller: string, p: string, inbound: string): Promise<{ status: number; decision: DecisionRecord | undefined; appSaw: boolean }> {
    const seen = decisions.length;
    const received = mesh.app.received.length;
    const res = await fetch(mesh.urlFor(caller, inbound) + p);
    await res.arrayBuffer();
    return { status: res.status, decision: decisions[seen], appSaw: mesh.app.received.length > received };
  }

  test('Envoy runs the filters exactly as rendered: Istio-named Wasm filter, then ext_proc at outbound|port||fqdn', async () => {
    assert.equal(cluster, 'outbound|50051||meshward.meshward.svc.cluster.local');
    const dump = await (await fetch(`http://127.0.0.1:${mesh.serverSidecar.adminPort}/config_dump?resource=static_listeners`)).json() as { configs: { listener: { name: string; filter_chains: { filters: { typed_config: { http_filters: Json[] } }[] }[] } }[] };
    for (const { listener } of dump.configs) {
      const chain = listener.filter_chains[0]!.filters[0]!.typed_config.http_filters;
      assert.deepEqual(chain.map((f) => f.name), ['envoy.filters.http.wasm', 'envoy.filters.http.ext_proc', 'envoy.filters.http.router']);
      const wasm = (chain[0]!.typed_config as { config: { name: string; root_id: string; failure_policy?: string } }).config;
      assert.equal(wasm.name, 'istio-system.meshward');
      assert.equal(wasm.root_id, 'meshward');
      const extProc = chain[1]!.typed_config as { failure_mode_allow?: boolean; grpc_service: { envoy_grpc: { cluster_name: string } } };
      assert.equal(extProc.grpc_service.envoy_grpc.cluster_name, cluster);
      assert.equal(extProc.failure_mode_allow === true, listener.name === 'open', `${listener.name}: failure_mode_allow from the policy's failure mode`);
    }
  });

  test('the ext_proc server sees the caller identity captured by the Istio-configured filter', async () => {
    const r = await send(FRONTEND, '/orders/7', 'closed');
    assert.equal(r.status, 200);
    assert.equal(r.appSaw, true);
    assert.equal(r.decision?.request.caller.workload, mesh.spiffeIdOf(FRONTEND));
    assert.equal(r.decision?.request.caller.identitySource, 'filter');
    const stats = await mesh.serverSidecar.stats('wasmcustom\\.meshward');
    assert.ok((stats.get('wasmcustom.meshward_filter_requests_total') ?? 0) >= 1, 'the filter ran');
  });

  test("the example policy's call-graph deny is enforced through the rendered ext_proc filter", async () => {
    const denied = await send(WORKER, '/users/8123', 'closed');
    assert.equal(denied.status, 403);
    assert.equal(denied.appSaw, false);
    assert.equal(denied.decision?.decision.action, 'deny');
    const allowed = await send(WORKER, '/orders/1', 'closed');
    assert.equal(allowed.status, 200);
  });

  test('a policy hot reload applies to new requests without dropping the one in flight', async () => {
    const file = path.join(work, 'policy.yaml');
    const policyWith = (spec: string): string => `apiVersion: security.meshward.io/v1alpha1\nkind: ApiSecurityPolicy\nmetadata: { name: mesh-default, namespace: meshward }\nspec: ${spec}\n`;
    writeFileSync(file, policyWith('{ mode: monitor }'));
    const runtime = await startPolicyRuntime({ source: 'file', files: [file], namespace: 'meshward', engine: mesh.engine, log: silentLogger });
    try {
      assert.equal((await send(WORKER, '/users/1', 'closed')).status, 200, 'the monitor policy replaced the example policy');
      // A request whose body is still being sent: ext_proc has judged its headers, its response is to come.
      let finishBody!: () => void;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"part":1,'));
          finishBody = () => { controller.enqueue(new TextEncoder().encode('"part2":2}')); controller.close(); };
        },
      });
      const seen = decisions.length;
      const inFlight = fetch(mesh.urlFor(WORKER, 'closed') + '/users/42', { method: 'POST', body, duplex: 'half' } as RequestInit);
      await until(() => decisions.length > seen);
      writeFileSync(file, policyWith(`{ mode: enforce, callGraph: { deny: [{ from: '${mesh.spiffeIdOf(WORKER)}', paths: ['/users/*'] }] } }`));
      const end = Date.now() + 10_000;
      while ((await send(WORKER, '/users/2', 'closed')).status !== 403) {
        assert.ok(Date.now() < end, 'the reloaded policy was applied');
        await new Promise((r) => setTimeout(r, 50));
      }
      finishBody();
      const res = await inFlight;
      assert.equal(res.status, 200, 'the request in flight completed');
      assert.deepEqual(JSON.parse(await res.text()).echo, '{"part":1,"part2":2}');
    } finally {
      await runtime.stop();
    }
  });

  describe('with the meshward server down', () => {
    before(async () => { await mesh.stopExtProc(); });
    after(async () => { await mesh.startExtProc(); });

    test('failureMode closed: the request fails with 5xx and never reaches the app', async () => {
      const r = await send(FRONTEND, '/orders', 'closed');
      assert.ok(r.status >= 500 && r.status < 600, `expected 5xx, got ${r.status}`);
      assert.equal(r.appSaw, false);
    });

    test('failureMode open: the request reaches the app', async () => {
      const r = await send(FRONTEND, '/orders', 'open');
      assert.equal(r.status, 200);
      assert.equal(r.appSaw, true);
    });
  });
});
