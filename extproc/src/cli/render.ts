// `meshward render --namespace NS`: the Helm chart's manifests (istio/chart) without Helm.
// Defaults come from the chart's own values.yaml; test/unit/istio-render.test.ts proves the output
// equals `helm template` for the same values, so the two renderers cannot drift apart.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import YAML from 'yaml';
import { PROJECT_ROOT } from '../local/envoy-binary.ts';
import { REQUIRED_REQUEST_ATTRIBUTES } from '../wire/request.ts';
import { HTTP2_OPTIONS } from '../local/envoy-config.ts';
import { loadPolicyCrd } from '../policy/validate.ts';
import { POLICY_API_VERSION, POLICY_KIND } from '../policy/types.ts';

export const CHART_DIR = path.join(PROJECT_ROOT, 'istio', 'chart');

type Json = Record<string, unknown>;

export interface ChartValues {
  istioRootNamespace: string;
  clusterDomain: string;
  workloadSelector: Record<string, string>;
  image: { repository: string; tag: string; pullPolicy: string };
  server: {
    replicas: number; port: number; logLevel: string; policyResyncSeconds: number; specUrlRefreshSeconds: number; specConfigMapRefreshSeconds: number; resources: Json;
    maxConcurrentStreams: number; maxConcurrentStreamsPerConnection: number; streamIdleSeconds: number; maxBufferedBodyMib: number; maxOldSpaceMib: number;
    metricsPort: number; tls: { mode: 'mtls' | 'plaintext'; trustDomain: string; refreshSeconds: number };
    podDisruptionBudget: { enabled: boolean; minAvailable: number | string };
    nodeSelector: Json; tolerations: unknown[]; affinity: Json;
  };
  specConfigMaps: { enabled: boolean; names: string[] };
  networkPolicy: { enabled: boolean; metricsFrom: Json[] };
  serviceAccount: { create: boolean; name: string };
  crds: { install: boolean };
  defaultPolicy: { create: boolean; name: string; mode: 'monitor' | 'enforce'; failureMode: 'open' | 'closed' };
  wasm: { enabled: boolean; url: string; sha256: string; imagePullPolicy: string; phase: string; failStrategy: string; pluginConfig: Json };
  extProc: { sidecarInbound: boolean; sidecarOutbound: boolean; gateway: boolean; messageTimeout: string; maxMessageTimeout: string; grpcTimeout: string; observabilityMode: boolean; deferredCloseTimeout: string };
}

export interface RenderOptions {
  namespace: string;
  release?: string;
  values?: Json;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Helm's value merge: maps merge recursively, everything else replaces. */
export function mergeValues(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isObject(v) && isObject(base[k]) ? mergeValues(base[k], v) : v;
  return out;
}

export function chartDefaults(): { chart: { version: string; appVersion: string }; values: ChartValues } {
  const chart = YAML.parse(readFileSync(path.join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { version: string; appVersion: string };
  const values = YAML.parse(readFileSync(path.join(CHART_DIR, 'values.yaml'), 'utf8')) as ChartValues;
  return { chart, values };
}

export function renderManifests(options: RenderOptions): Json[] {
  const { chart, values: defaults } = chartDefaults();
  const v = mergeValues(defaults as unknown as Json, options.values ?? {}) as unknown as ChartValues;
  const release = options.release ?? 'meshward';
  const ns = options.namespace;
  const fullname = (release.includes('meshward') ? release : `${release}-meshward`).slice(0, 63).replace(/-+$/, '');
  const serviceAccount = v.serviceAccount.name || fullname;
  const serviceHost = `${fullname}.${ns}.svc.${v.clusterDomain}`;
  // mtls: the cluster the EnvoyFilter adds; plaintext: Istio's own outbound cluster for the Service.
  const extProcCluster = v.server.tls.mode === 'mtls' ? `${fullname}-ext-proc-mtls` : `outbound|${v.server.port}||${serviceHost}`;
  const selectorLabels = { 'app.kubernetes.io/name': 'meshward', 'app.kubernetes.io/instance': release };
  const labels = { ...selectorLabels, 'app.kubernetes.io/version': chart.appVersion, 'app.kubernetes.io/managed-by': 'Helm' };
  const meta = (name: string, namespace?: string, extra: Json = {}): Json => ({ name, ...(namespace ? { namespace } : {}), labels, ...extra });
  const selector = Object.keys(v.workloadSelector).length > 0 ? v.workloadSelector : undefined;
  const out: Json[] = [];

  if (v.server.podDisruptionBudget.enabled) {
    out.push({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: meta(fullname, ns), spec: { minAvailable: v.server.podDisruptionBudget.minAvailable, selector: { matchLabels: selectorLabels } } });
  }
  if (v.serviceAccount.create) {
    out.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(serviceAccount, ns), automountServiceAccountToken: true });
  }
  if (v.crds.install) out.push(loadPolicyCrd());
  out.push({
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: meta(fullname),
    rules: [
      { apiGroups: ['security.meshward.io'], resources: ['apisecuritypolicies'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['security.meshward.io'], resources: ['apisecuritypolicies/status'], verbs: ['patch', 'update'] },
      ...(v.specConfigMaps.enabled
        ? [{ apiGroups: [''], resources: ['configmaps'], ...(v.specConfigMaps.names.length ? { resourceNames: v.specConfigMaps.names } : {}), verbs: ['get'] }]
        : []),
    ],
  });
  out.push({
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: meta(fullname),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: fullname },
    subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace: ns }],
  });
  out.push({
    apiVersion: 'v1', kind: 'Service', metadata: meta(fullname, ns),
    spec: { selector: selectorLabels, ports: [{ name: 'grpc', appProtocol: 'grpc', port: v.server.port, targetPort: 'grpc', protocol: 'TCP' }] },
  });
  const mtls = v.server.tls.mode === 'mtls';
  // Kubernetes' gRPC probes are plaintext: the mTLS port gets TCP probes.
  const grpcProbe = mtls ? { tcpSocket: { port: v.server.port } } : { grpc: { port: v.server.port } };
  if (v.networkPolicy.enabled) out.push(networkPolicy(v, meta(fullname, ns), selectorLabels));
  out.push({
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta(fullname, ns),
    spec: {
      replicas: v.server.replicas,
      selector: { matchLabels: selectorLabels },
      template: {
        metadata: { labels, annotations: mtls ? CERT_ONLY_SIDECAR : { 'sidecar.istio.io/inject': 'false' } },
        spec: {
          serviceAccountName: serviceAccount,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [{
            name: 'meshward',
            image: `${v.image.repository}:${v.image.tag || chart.appVersion}`,
            imagePullPolicy: v.image.pullPolicy,
            args: ['serve', '--host=0.0.0.0', `--port=${v.server.port}`, '--policy-source=kubernetes', '--policy-namespace=$(POD_NAMESPACE)', `--policy-resync-seconds=${v.server.policyResyncSeconds}`,
              `--spec-url-refresh-seconds=${v.server.specUrlRefreshSeconds}`, `--spec-configmap-refresh-seconds=${v.server.specConfigMapRefreshSeconds}`,
              `--max-concurrent-streams=${v.server.maxConcurrentStreams}`, `--max-concurrent-streams-per-connection=${v.server.maxConcurrentStreamsPerConnection}`, `--stream-idle-seconds=${v.server.streamIdleSeconds}`,
              `--max-buffered-body-mib=${v.server.maxBufferedBodyMib}`,
              ...(mtls
                ? [`--tls-cert=${ISTIO_OUTPUT_CERTS}/cert-chain.pem`, `--tls-key=${ISTIO_OUTPUT_CERTS}/key.pem`, `--tls-client-ca=${ISTIO_OUTPUT_CERTS}/root-cert.pem`, `--tls-refresh-seconds=${v.server.tls.refreshSeconds}`]
                : ['--insecure-plaintext']),
              `--forged-stream-failure-mode=${v.defaultPolicy.failureMode}`,
              ...(v.server.metricsPort ? [`--prometheus-port=${v.server.metricsPort}`] : [])],
            env: [
              { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              { name: 'MESHWARD_LOG_LEVEL', value: v.server.logLevel },
              ...(v.server.maxOldSpaceMib ? [{ name: 'NODE_OPTIONS', value: `--max-old-space-size=${v.server.maxOldSpaceMib}` }] : []),
            ],
            ports: [{ name: 'grpc', containerPort: v.server.port, protocol: 'TCP' }, ...(v.server.metricsPort ? [{ name: 'metrics', containerPort: v.server.metricsPort, protocol: 'TCP' }] : [])],
            startupProbe: { ...grpcProbe, periodSeconds: 2, failureThreshold: 30 },
            readinessProbe: { ...grpcProbe, periodSeconds: 5 },
            livenessProbe: { ...grpcProbe, periodSeconds: 10, failureThreshold: 3 },
            resources: v.server.resources,
            securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
            ...(mtls ? { volumeMounts: [{ name: 'istio-certs', mountPath: ISTIO_OUTPUT_CERTS, readOnly: true }] } : {}),
          }],
          ...(mtls ? { volumes: [{ name: 'istio-certs', emptyDir: { medium: 'Memory' } }] } : {}),
          ...(Object.keys(v.server.nodeSelector).length ? { nodeSelector: v.server.nodeSelector } : {}),
          ...(v.server.tolerations.length ? { tolerations: v.server.tolerations } : {}),
          ...(Object.keys(v.server.affinity).length ? { affinity: v.server.affinity } : {}),
        },
      },
    },
  });
  if (v.defaultPolicy.create) {
    out.push({
      apiVersion: POLICY_API_VERSION, kind: POLICY_KIND,
      metadata: meta(v.defaultPolicy.name, ns, { annotations: { 'helm.sh/hook': 'post-install,post-upgrade', 'helm.sh/hook-delete-policy': 'before-hook-creation' } }),
      spec: { mode: v.defaultPolicy.mode, failureMode: v.defaultPolicy.failureMode },
    });
  }
  const contexts = [
    ...(v.extProc.sidecarInbound ? ['SIDECAR_INBOUND'] : []),
    ...(v.extProc.sidecarOutbound ? ['SIDECAR_OUTBOUND'] : []),
    ...(v.extProc.gateway ? ['GATEWAY'] : []),
  ];
  if (contexts.length > 0) {
    out.push({
      apiVersion: 'networking.istio.io/v1alpha3', kind: 'EnvoyFilter', metadata: meta(`${fullname}-ext-proc`, v.istioRootNamespace),
      spec: {
        ...(selector ? { workloadSelector: { labels: selector } } : {}),
        configPatches: [...(mtls ? [{ applyTo: 'CLUSTER', match: { context: 'ANY' }, patch: { operation: 'ADD', value: mtlsExtProcCluster(extProcCluster, serviceHost, v.server.port, `spiffe://${v.server.tls.trustDomain}/ns/${ns}/sa/${serviceAccount}`) } }] : []),
          ...contexts.map((context) => ({
          applyTo: 'HTTP_FILTER',
          match: { context, listener: { filterChain: { filter: { name: 'envoy.filters.network.http_connection_manager', subFilter: { name: 'envoy.filters.http.router' } } } } },
          patch: {
            operation: 'INSERT_BEFORE',
            value: {
              name: 'envoy.filters.http.ext_proc',
              typed_config: {
                '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
                grpc_service: {
                  envoy_grpc: {
                    cluster_name: extProcCluster,
                    // Envoy's default :authority is the cluster name, whose "|" an HTTP/2 server (Node's) rejects.
                    authority: `${serviceHost}:${v.server.port}`,
                  },
                  timeout: v.extProc.grpcTimeout,
                },
                failure_mode_allow: v.defaultPolicy.failureMode === 'open',
                message_timeout: v.extProc.messageTimeout,
                max_message_timeout: v.extProc.maxMessageTimeout,
                allow_mode_override: true,
                processing_mode: {
                  request_header_mode: 'SEND', response_header_mode: 'SEND',
                  request_body_mode: 'NONE', response_body_mode: 'NONE',
                  request_trailer_mode: 'SKIP', response_trailer_mode: 'SKIP',
                },
                request_attributes: [...REQUIRED_REQUEST_ATTRIBUTES],
                ...(v.extProc.observabilityMode ? { observability_mode: true, deferred_close_timeout: v.extProc.deferredCloseTimeout } : {}),
              },
            },
          },
        }))],
      },
    });
  }
  // One WasmPlugin per direction: the filter's role (inbound: caller = mTLS peer; outbound: caller =
  // own workload) is plugin configuration, and a plugin has one configuration.
  const plugins = v.wasm.enabled
    ? [{ suffix: '', mode: 'SERVER', role: 'inbound' }, ...(v.extProc.sidecarOutbound || v.extProc.gateway ? [{ suffix: '-outbound', mode: 'CLIENT', role: 'outbound' }] : [])]
    : [];
  for (const plugin of plugins) {
    out.push({
      apiVersion: 'extensions.istio.io/v1alpha1', kind: 'WasmPlugin', metadata: meta(`${fullname}${plugin.suffix}`, v.istioRootNamespace),
      spec: {
        ...(selector ? { selector: { matchLabels: selector } } : {}),
        url: v.wasm.url,
        ...(v.wasm.sha256 ? { sha256: v.wasm.sha256 } : {}),
        imagePullPolicy: v.wasm.imagePullPolicy,
        pluginName: 'meshward',
        phase: v.wasm.phase,
        failStrategy: v.wasm.failStrategy,
        type: 'HTTP',
        match: [{ mode: plugin.mode }],
        // The direction's role wins over a role in the values (as Helm's merge gives its first map precedence).
        pluginConfig: { ...v.wasm.pluginConfig, role: plugin.role },
      },
    });
  }
  return out;
}

/** Where istio-agent writes the pod's certificate (OUTPUT_CERTS) for the server to read. */
const ISTIO_OUTPUT_CERTS = '/etc/istio-output-certs';

/** A sidecar that intercepts nothing and only writes the pod's mesh certificate (Istio's documented
 *  way to give a non-Envoy process mesh certificates, as for Prometheus scraping over mTLS). */
const CERT_ONLY_SIDECAR = {
  'sidecar.istio.io/inject': 'true',
  'traffic.sidecar.istio.io/includeInboundPorts': '',
  'traffic.sidecar.istio.io/includeOutboundIPRanges': '',
  'proxy.istio.io/config': JSON.stringify({ holdApplicationUntilProxyStarts: true, proxyMetadata: { OUTPUT_CERTS: ISTIO_OUTPUT_CERTS } }),
  'sidecar.istio.io/userVolumeMount': JSON.stringify([{ name: 'istio-certs', mountPath: ISTIO_OUTPUT_CERTS }]),
};

/** Only pods with an Istio sidecar reach the gRPC port; the metrics port (if any) from metricsFrom. */
function networkPolicy(v: ChartValues, metadata: Json, selectorLabels: Json): Json {
  return {
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata,
    spec: {
      podSelector: { matchLabels: selectorLabels },
      policyTypes: ['Ingress'],
      ingress: [
        { from: [{ namespaceSelector: {}, podSelector: { matchLabels: { 'security.istio.io/tlsMode': 'istio' } } }], ports: [{ port: v.server.port, protocol: 'TCP' }] },
        ...(v.server.metricsPort ? [{ ports: [{ port: v.server.metricsPort, protocol: 'TCP' }], ...(v.networkPolicy.metricsFrom.length ? { from: v.networkPolicy.metricsFrom } : {}) }] : []),
      ],
    },
  };
}

/** Istio's SDS on the sidecar's bootstrap cluster sds-grpc (istio-agent serves "default" and "ROOTCA"). */
const ISTIO_SDS = {
  api_config_source: { api_type: 'GRPC', grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }], set_node_on_first_message_only: true, transport_api_version: 'V3' },
  initial_fetch_timeout: '0s',
  resource_api_version: 'V3',
};

/** The ext_proc cluster over mTLS: the sidecar's own certificate, only the server's SPIFFE ID accepted. */
export function mtlsExtProcCluster(name: string, host: string, port: number, serverSpiffeId: string): Json {
  return {
    name, type: 'STRICT_DNS', connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }] }] },
    typed_extension_protocol_options: HTTP2_OPTIONS,
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        sni: host,
        common_tls_context: {
          alpn_protocols: ['h2'],
          tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: ISTIO_SDS }],
          combined_validation_context: {
            default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: serverSpiffeId } }] },
            validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: ISTIO_SDS },
          },
        },
      },
    },
  };
}

export function manifestsToYaml(docs: Json[]): string {
  return docs.map((d) => `---\n${YAML.stringify(d, { lineWidth: 0 })}`).join('');
}

export function registerRender(program: Command): void {
  program.command('render')
    .description('print the Kubernetes manifests of the meshward Helm chart (istio/chart) without Helm')
    .requiredOption('-n, --namespace <namespace>', "meshward's namespace (also where the mesh-wide default policy lives)")
    .option('--release <name>', 'release name (as in `helm install NAME`)', 'meshward')
    .option('-f, --values <file>', 'values file (YAML), merged over the chart defaults as Helm does')
    .action((opts: { namespace: string; release: string; values?: string }) => {
      try {
        const values = opts.values ? (YAML.parse(readFileSync(opts.values, 'utf8')) as unknown) ?? {} : {};
        if (!isObject(values)) throw new Error(`${opts.values}: must be a YAML mapping`);
        process.stdout.write(manifestsToYaml(renderManifests({ namespace: opts.namespace, release: opts.release, values })));
      } catch (err) {
        console.error(`meshward render: ${(err as Error).message}`);
        process.exit(2);
      }
    });
}
