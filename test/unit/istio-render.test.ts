// Issue #7: the Helm chart. Rendered with the real `helm template`; `meshward render` must produce the
// same objects; every rendered resource validates against its own schema (Istio's CRD schemas from
// @kubernetes-models/istio, Kubernetes' from kubernetes-models, policies against our CRD); the
// EnvoyFilter's ext_proc config is the one the real-Envoy harness runs.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { WasmPlugin } from '@kubernetes-models/istio/extensions.istio.io/v1alpha1/WasmPlugin';
import { EnvoyFilter } from '@kubernetes-models/istio/networking.istio.io/v1alpha3/EnvoyFilter';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { CHART_DIR, mtlsExtProcCluster, renderManifests } from '../../extproc/src/cli/render.ts';
import { meshwardExtProcFilter } from '../../extproc/src/local/envoy-config.ts';
import { validatePolicyObject, loadPolicyCrd } from '../../extproc/src/policy/validate.ts';
import { PROJECT_ROOT } from '../../extproc/src/local/envoy-binary.ts';
import { byKindAndName, extProcFilterFrom, helmBinary, helmTemplate, istioCrdSchemas, only, type Manifest } from '../helpers/istio.ts';
import { compileStructuralSchema } from '../../extproc/src/policy/structural-schema.ts';

type Json = Record<string, unknown>;

/** Istio's and Kubernetes' own schemas, one per kind the chart renders. */
const VALIDATORS: Record<string, (doc: Manifest) => void> = {
  WasmPlugin: (d) => new WasmPlugin(d as never).validate(),
  EnvoyFilter: (d) => new EnvoyFilter(d as never).validate(),
  Deployment: (d) => new Deployment(d as never).validate(),
  Service: (d) => new Service(d as never).validate(),
  ServiceAccount: (d) => new ServiceAccount(d as never).validate(),
  PodDisruptionBudget: (d) => new PodDisruptionBudget(d as never).validate(),
  NetworkPolicy: (d) => new NetworkPolicy(d as never).validate(),
  ClusterRole: (d) => new ClusterRole(d as never).validate(),
  ClusterRoleBinding: (d) => new ClusterRoleBinding(d as never).validate(),
  CustomResourceDefinition: (d) => new CustomResourceDefinition(d as never).validate(),
  ApiSecurityPolicy: (d) => {
    const errors = validatePolicyObject(d).errors;
    if (errors.length) throw new Error(JSON.stringify(errors));
  },
};

const VARIANT: Json = {
  workloadSelector: { 'meshward.io/inspect': 'true' },
  defaultPolicy: { failureMode: 'closed', mode: 'enforce', name: 'org-default' },
  extProc: { sidecarOutbound: true, gateway: true, messageTimeout: '0.25s', observabilityMode: true, deferredCloseTimeout: '5s' },
  wasm: { sha256: 'ab0c560c5d484b2b80726ffaaeef3558c0fde59ec17bb54d9e123a896cc75686', pluginConfig: { sampleRate: 0.5, routes: ['/orders/{id}'] } },
  server: { port: 9443, replicas: 3, maxBufferedBodyMib: 128, maxOldSpaceMib: 0, podDisruptionBudget: { enabled: false }, nodeSelector: { pool: 'security' }, specUrlRefreshSeconds: 60, specConfigMapRefreshSeconds: 10,
    metricsPort: 9464, tls: { mode: 'plaintext', trustDomain: 'corp.example', refreshSeconds: 30 } },
  networkPolicy: { metricsFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }] },
  specConfigMaps: { names: ['orders-openapi', 'payments-openapi'] },
  serviceAccount: { create: false, name: 'shared-sa' },
  crds: { install: false },
  image: { tag: '9.9.9' },
};

/**
 * The rendered ext_proc filter minus the one field the harness does not need: envoy_grpc.authority,
 * which must be the Service host (Envoy's default, the cluster name "outbound|...", has a "|" that
 * Node's HTTP/2 server rejects as a protocol error; the harness's cluster name has none).
 */
function harnessShape(filter: Json, authority: string): Json {
  const copy = structuredClone(filter) as { typed_config: { grpc_service: { envoy_grpc: Json } } };
  assert.equal(copy.typed_config.grpc_service.envoy_grpc.authority, authority);
  delete copy.typed_config.grpc_service.envoy_grpc.authority;
  return copy as unknown as Json;
}

const CASES: { name: string; release: string; namespace: string; values: Json }[] = [
  { name: 'default values', release: 'meshward', namespace: 'meshward', values: {} },
  { name: 'every option changed', release: 'prod', namespace: 'security', values: VARIANT },
];

describe('Helm chart', () => {
  for (const c of CASES) {
    test(`${c.name}: meshward render equals helm template`, () => {
      const helm = byKindAndName(helmTemplate(c.release, c.namespace, c.values));
      const ours = byKindAndName(renderManifests({ namespace: c.namespace, release: c.release, values: c.values }) as Manifest[]);
      assert.deepEqual(ours.map((d) => `${d.kind}/${d.metadata.name}`), helm.map((d) => `${d.kind}/${d.metadata.name}`));
      assert.deepEqual(ours, helm);
    });

    test(`${c.name}: every rendered resource validates against its own schema`, () => {
      for (const doc of helmTemplate(c.release, c.namespace, c.values)) {
        const validate = VALIDATORS[doc.kind];
        assert.ok(validate, `a schema for ${doc.kind}`);
        assert.doesNotThrow(() => validate(doc), `${doc.kind}/${doc.metadata.name}`);
      }
    });
  }

  test("Istio resources have no field Istio's own CRDs (istio.io/api) do not define", () => {
    const schemas = istioCrdSchemas();
    const strict = (d: Manifest): string[] => {
      const schema = schemas.get(`${d.apiVersion}/${d.kind}`);
      assert.ok(schema, `Istio defines ${d.apiVersion} ${d.kind}`);
      return compileStructuralSchema(schema).call(null, d).map((e) => `${e.path}: ${e.reason}`);
    };
    for (const c of CASES) {
      for (const d of helmTemplate(c.release, c.namespace, c.values).filter((x) => x.apiVersion.includes('istio.io'))) {
        assert.deepEqual(strict(d), [], `${c.name}: ${d.kind}`);
      }
    }
    // The same check catches a misspelt field, which the API server would silently drop.
    const plugin = structuredClone(only(helmTemplate('meshward', 'meshward'), 'WasmPlugin'));
    (plugin.spec as Json).failStrategyy = 'FAIL_OPEN';
    assert.deepEqual(strict(plugin), ['spec.failStrategyy: unknown field']);
  });

  test('helm lint passes', () => {
    const out = execFileSync(helmBinary(), ['lint', CHART_DIR, '--strict', '--kube-version', '1.31.0', '--set', 'extProc.gateway=true,extProc.sidecarOutbound=true'], { encoding: 'utf8' });
    assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  test('the schema validators reject what Istio and Kubernetes would reject', () => {
    const docs = helmTemplate('meshward', 'meshward');
    const plugin = structuredClone(only(docs, 'WasmPlugin'));
    (plugin.spec as Json).failStrategy = 'FAIL_OPENLY';
    assert.throws(() => VALIDATORS.WasmPlugin!(plugin), /failStrategy/);
    const filter = structuredClone(only(docs, 'EnvoyFilter'));
    ((filter.spec as { configPatches: Json[] }).configPatches[0]!.match as Json).context = 'SIDECAR_INBOUNDX';
    assert.throws(() => VALIDATORS.EnvoyFilter!(filter), /context/);
    const svc = structuredClone(only(docs, 'Service'));
    ((svc.spec as { ports: Json[] }).ports[0]!).port = 'grpc';
    assert.throws(() => VALIDATORS.Service!(svc), /port/);
  });

  test('the CRD is installed from templates and is the loader\'s schema file, verbatim', () => {
    assert.deepEqual(only(helmTemplate('meshward', 'meshward'), 'CustomResourceDefinition'), loadPolicyCrd());
    assert.equal(helmTemplate('x', 'y', { crds: { install: false } }).filter((d) => d.kind === 'CustomResourceDefinition').length, 0);
  });

  test('EnvoyFilter: ext_proc before the router on the enabled contexts, at Istio\'s own cluster, same config as the harness', () => {
    const docs = helmTemplate('meshward', 'meshward');
    const ef = only(docs, 'EnvoyFilter');
    const patches = (ef.spec as { configPatches: { applyTo: string; match: { context: string; listener: Json }; patch: { operation: string } }[] }).configPatches.filter((p) => p.applyTo === 'HTTP_FILTER');
    assert.deepEqual(patches.map((p) => p.match.context), ['SIDECAR_INBOUND']);
    for (const p of patches) {
      assert.equal(p.applyTo, 'HTTP_FILTER');
      assert.equal(p.patch.operation, 'INSERT_BEFORE');
      assert.deepEqual(p.match.listener, { filterChain: { filter: { name: 'envoy.filters.network.http_connection_manager', subFilter: { name: 'envoy.filters.http.router' } } } });
    }
    const cluster = 'meshward-ext-proc-mtls'; // default mtls: the cluster the EnvoyFilter adds (see the mTLS test)
    assert.deepEqual(harnessShape(extProcFilterFrom(ef, 'SIDECAR_INBOUND'), 'meshward.meshward.svc.cluster.local:50051'), meshwardExtProcFilter({ extProcCluster: cluster, failureModeAllow: true, messageTimeoutSeconds: 0.5 }));
    assert.equal(ef.metadata.namespace, 'istio-system');
    assert.equal((ef.spec as Json).workloadSelector, undefined, 'mesh-wide by default');

    const variant = helmTemplate('prod', 'security', VARIANT);
    const ev = only(variant, 'EnvoyFilter');
    assert.deepEqual((ev.spec as { configPatches: { match: { context: string } }[] }).configPatches.map((p) => p.match.context), ['SIDECAR_INBOUND', 'SIDECAR_OUTBOUND', 'GATEWAY']);
    for (const context of ['SIDECAR_INBOUND', 'SIDECAR_OUTBOUND', 'GATEWAY']) {
      assert.deepEqual(harnessShape(extProcFilterFrom(ev, context), 'prod-meshward.security.svc.cluster.local:9443'), meshwardExtProcFilter({ extProcCluster: 'outbound|9443||prod-meshward.security.svc.cluster.local', failureModeAllow: false, messageTimeoutSeconds: 0.25, observabilityMode: true }));
    }
    assert.deepEqual((ev.spec as Json).workloadSelector, { labels: { 'meshward.io/inspect': 'true' } });
    // One WasmPlugin per direction, each with the filter role for it; the values' own config kept.
    const plugins = variant.filter((d) => d.kind === 'WasmPlugin').map((d) => ({ name: d.metadata.name, match: (d.spec as Json).match, config: (d.spec as Json).pluginConfig, selector: (d.spec as Json).selector }));
    const selector = { matchLabels: { 'meshward.io/inspect': 'true' } };
    const config = { sampleRate: 0.5, routes: ['/orders/{id}'] };
    assert.deepEqual(plugins, [
      { name: 'prod-meshward', match: [{ mode: 'SERVER' }], config: { ...config, role: 'inbound' }, selector },
      { name: 'prod-meshward-outbound', match: [{ mode: 'CLIENT' }], config: { ...config, role: 'outbound' }, selector },
    ]);
    // A role in the values cannot turn a plugin to the wrong direction.
    const forced = helmTemplate('prod', 'security', { ...VARIANT, wasm: { pluginConfig: { role: 'outbound' } } }).filter((d) => d.kind === 'WasmPlugin');
    assert.deepEqual(forced.map((d) => ((d.spec as Json).pluginConfig as Json).role), ['inbound', 'outbound']);
    assert.deepEqual(byKindAndName(renderManifests({ namespace: 'security', release: 'prod', values: { ...VARIANT, wasm: { pluginConfig: { role: 'outbound' } } } }) as Manifest[]).filter((d) => d.kind === 'WasmPlugin'), forced);
  });

  test('Service, probes and server arguments', () => {
    const docs = helmTemplate('meshward', 'meshward');
    const port = (only(docs, 'Service').spec as { ports: Json[] }).ports[0]!;
    assert.equal(port.name, 'grpc', 'Istio infers HTTP/2 from the port name');
    assert.equal(port.appProtocol, 'grpc');
    const pod = ((only(docs, 'Deployment').spec as Json).template as { metadata: { annotations: Json }; spec: { containers: Json[] } });
    // Default mtls: a sidecar that only writes the certificate; it intercepts nothing, so the server never inspects its own traffic.
    assert.equal(pod.metadata.annotations['sidecar.istio.io/inject'], 'true');
    assert.equal(pod.metadata.annotations['traffic.sidecar.istio.io/includeInboundPorts'], '', 'the server must not inspect its own traffic');
    assert.equal(pod.metadata.annotations['traffic.sidecar.istio.io/includeOutboundIPRanges'], '');
    const container = pod.spec.containers[0] as { args: string[]; ports: Json[]; readinessProbe: Json; livenessProbe: Json; startupProbe: Json };
    // gRPC probes are plaintext; the mTLS port gets TCP probes.
    for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) assert.deepEqual(probe.tcpSocket, { port: 50051 });
    const plainPod = ((only(helmTemplate('prod', 'security', VARIANT), 'Deployment').spec as Json).template as { metadata: { annotations: Json }; spec: { containers: { args: string[]; readinessProbe: Json }[] } });
    assert.equal(plainPod.metadata.annotations['sidecar.istio.io/inject'], 'false', 'plaintext: no sidecar at all');
    assert.deepEqual(plainPod.spec.containers[0]!.readinessProbe.grpc, { port: 9443 });
    assert.ok(plainPod.spec.containers[0]!.args.includes('--insecure-plaintext'), 'plaintext is chosen explicitly');
    // Every flag the chart passes exists on `meshward serve`.
    const help = execFileSync(process.execPath, ['extproc/src/cli.ts', 'serve', '--help'], { cwd: PROJECT_ROOT, encoding: 'utf8' });
    for (const arg of container.args.slice(1)) assert.ok(help.includes(arg.split('=')[0]!), `serve accepts ${arg}`);
  });

  test('mTLS (default): the server reads the certificate istio-agent writes; sidecars reach it through an added mTLS cluster', () => {
    const docs = helmTemplate('meshward', 'meshward');
    const pod = ((only(docs, 'Deployment').spec as Json).template as { metadata: { annotations: Record<string, string> }; spec: { volumes: Json[]; containers: { args: string[]; volumeMounts: Json[] }[] } });
    assert.deepEqual(JSON.parse(pod.metadata.annotations['proxy.istio.io/config']!), { holdApplicationUntilProxyStarts: true, proxyMetadata: { OUTPUT_CERTS: '/etc/istio-output-certs' } });
    assert.deepEqual(pod.spec.volumes, [{ name: 'istio-certs', emptyDir: { medium: 'Memory' } }]);
    assert.deepEqual(pod.spec.containers[0]!.volumeMounts, [{ name: 'istio-certs', mountPath: '/etc/istio-output-certs', readOnly: true }]);
    const args = pod.spec.containers[0]!.args;
    for (const a of ['--tls-cert=/etc/istio-output-certs/cert-chain.pem', '--tls-key=/etc/istio-output-certs/key.pem', '--tls-client-ca=/etc/istio-output-certs/root-cert.pem', '--forged-stream-failure-mode=open']) assert.ok(args.includes(a), a);
    assert.ok(!args.includes('--insecure-plaintext'));
    const patches = (only(docs, 'EnvoyFilter').spec as { configPatches: { applyTo: string; match: Json; patch: { operation: string; value: Json } }[] }).configPatches;
    const added = patches.filter((p) => p.applyTo === 'CLUSTER');
    assert.equal(added.length, 1);
    assert.deepEqual(added[0]!.match, { context: 'ANY' });
    assert.equal(added[0]!.patch.operation, 'ADD');
    assert.deepEqual(added[0]!.patch.value, mtlsExtProcCluster('meshward-ext-proc-mtls', 'meshward.meshward.svc.cluster.local', 50051, 'spiffe://cluster.local/ns/meshward/sa/meshward'));
    const tlsContext = JSON.stringify(added[0]!.patch.value);
    assert.match(tlsContext, /"name":"default","sds_config":\{"api_config_source":\{"api_type":"GRPC","grpc_services":\[\{"envoy_grpc":\{"cluster_name":"sds-grpc"/);
    assert.match(tlsContext, /"validation_context_sds_secret_config":\{"name":"ROOTCA"/);
    // Plaintext adds no cluster and points at Istio's own.
    const plain = (only(helmTemplate('prod', 'security', VARIANT), 'EnvoyFilter').spec as { configPatches: { applyTo: string }[] }).configPatches;
    assert.equal(plain.filter((p) => p.applyTo === 'CLUSTER').length, 0);
  });

  test('NetworkPolicy (default on): only sidecar pods reach the gRPC port; metrics from the configured peers', () => {
    const np = only(helmTemplate('meshward', 'meshward'), 'NetworkPolicy');
    assert.deepEqual((np.spec as Json).policyTypes, ['Ingress']);
    assert.deepEqual((np.spec as Json).ingress, [{
      from: [{ namespaceSelector: {}, podSelector: { matchLabels: { 'security.istio.io/tlsMode': 'istio' } } }],
      ports: [{ port: 50051, protocol: 'TCP' }],
    }]);
    const variant = only(helmTemplate('prod', 'security', VARIANT), 'NetworkPolicy');
    assert.deepEqual(((variant.spec as Json).ingress as Json[])[1], { ports: [{ port: 9464, protocol: 'TCP' }], from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }] });
    assert.equal(helmTemplate('meshward', 'meshward', { networkPolicy: { enabled: false } }).filter((d) => d.kind === 'NetworkPolicy').length, 0);
    assert.equal((renderManifests({ namespace: 'meshward', values: { networkPolicy: { enabled: false } } }) as Manifest[]).filter((d) => d.kind === 'NetworkPolicy').length, 0);
  });

  test('RBAC is least privilege: read policies, write only their status, get (only) the spec ConfigMaps', () => {
    const docs = helmTemplate('meshward', 'meshward');
    const policyRules = [
      { apiGroups: ['security.meshward.io'], resources: ['apisecuritypolicies'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['security.meshward.io'], resources: ['apisecuritypolicies/status'], verbs: ['patch', 'update'] },
    ];
    assert.deepEqual(only(docs, 'ClusterRole').rules, [...policyRules, { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }]);
    assert.deepEqual(only(helmTemplate('prod', 'security', VARIANT), 'ClusterRole').rules,
      [...policyRules, { apiGroups: [''], resources: ['configmaps'], resourceNames: ['orders-openapi', 'payments-openapi'], verbs: ['get'] }]);
    const off = { specConfigMaps: { enabled: false } };
    assert.deepEqual(only(helmTemplate('meshward', 'meshward', off), 'ClusterRole').rules, policyRules);
    assert.deepEqual(only(renderManifests({ namespace: 'meshward', values: off }) as Manifest[], 'ClusterRole').rules, policyRules);
    const binding = only(docs, 'ClusterRoleBinding') as unknown as { subjects: Json[] };
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'meshward', namespace: 'meshward' }]);
  });

  test('the mesh-wide default policy is created after the CRD, in the release namespace', () => {
    const policy = only(helmTemplate('meshward', 'meshward'), 'ApiSecurityPolicy');
    assert.equal(policy.metadata.namespace, 'meshward');
    assert.equal((policy.metadata.annotations as Json)['helm.sh/hook'], 'post-install,post-upgrade');
    assert.deepEqual(policy.spec, { mode: 'monitor', failureMode: 'open' });
  });
});

describe('the server image', () => {
  test('the Dockerfile copies files that exist, runs the CLI, and runs as the chart\'s user', () => {
    const dockerfile = readFileSync(path.join(PROJECT_ROOT, 'istio', 'Dockerfile'), 'utf8');
    const copies = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(' '));
    assert.ok(copies.includes('extproc/src') && copies.includes('istio/chart/files/crds'));
    for (const c of copies) assert.ok(existsSync(path.join(PROJECT_ROOT, c)), `COPY ${c}`);
    assert.match(dockerfile, /^ENTRYPOINT \["node", "extproc\/src\/cli\.ts"\]$/m);
    const pod = (only(helmTemplate('meshward', 'meshward'), 'Deployment').spec as { template: { spec: { securityContext: { runAsUser: number; runAsGroup: number } } } }).template.spec;
    assert.match(dockerfile, new RegExp(`^USER ${pod.securityContext.runAsUser}:${pod.securityContext.runAsGroup}$`, 'm'));
  });
});

describe('the ApiSecurityPolicy CRD', () => {
  const crd = loadPolicyCrd() as { spec: { versions: { name: string; schema: { openAPIV3Schema: Json }; additionalPrinterColumns: { jsonPath: string }[]; subresources: Json }[] } };
  const version = crd.spec.versions[0]!;

  test('is structural: every node has a type, no $ref, bounded lists and strings', () => {
    const problems: string[] = [];
    const walk = (node: Json, at: string): void => {
      if ('$ref' in node) problems.push(`${at}: $ref`);
      if (!('type' in node) && !node['x-kubernetes-int-or-string'] && !node['x-kubernetes-preserve-unknown-fields']) problems.push(`${at}: no type`);
      if (node.type === 'array' && node.maxItems === undefined && !at.startsWith('.status')) problems.push(`${at}: unbounded list`);
      for (const [k, v] of Object.entries((node.properties ?? {}) as Record<string, Json>)) walk(v, `${at}.${k}`);
      if (node.items) walk(node.items as Json, `${at}[]`);
      if (typeof node.additionalProperties === 'object') walk(node.additionalProperties as Json, `${at}{}`);
    };
    walk(version.schema.openAPIV3Schema, '');
    assert.deepEqual(problems, []);
  });

  test('has the status subresource and printer columns that point at real fields', () => {
    assert.deepEqual(version.subresources, { status: {} });
    const schema = version.schema.openAPIV3Schema;
    for (const col of version.additionalPrinterColumns) {
      if (col.jsonPath.startsWith('.metadata')) continue;
      let node: Json | undefined = schema;
      for (const part of col.jsonPath.replace(/\[.*?\]/g, '').split('.').slice(1)) {
        node = ((node?.properties as Record<string, Json> | undefined)?.[part]) ?? ((node?.items as Json | undefined)?.properties as Record<string, Json> | undefined)?.[part];
      }
      assert.ok(node, `printer column ${col.jsonPath}`);
    }
  });
});
