// `meshward render --namespace NS`: the Helm chart's manifests (istio/chart) without Helm.
// Defaults come from the chart's own values.yaml; test/unit/istio-render.test.ts proves the output
// equals `helm template` for the same values, so the two renderers cannot drift apart.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import YAML from 'yaml';
import { PROJECT_ROOT } from '../local/envoy-binary.ts';
import { REQUIRED_REQUEST_ATTRIBUTES } from '../wire/request.ts';
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
    replicas: number; port: number; logLevel: string; policyResyncSeconds: number; resources: Json;
    podDisruptionBudget: { enabled: boolean; minAvailable: number | string };
    nodeSelector: Json; tolerations: unknown[]; affinity: Json;
  };
  serviceAccount: { create: boolean; name: string };
  crds: { install: boolean };
  defaultPolicy: { create: boolean; name: string; mode: 'monitor' | 'enforce'; failureMode: 'open' | 'closed' };
  wasm: { enabled: boolean; url: string; sha256: string; imagePullPolicy: string; phase: string; failStrategy: string; pluginConfig: Json };
  extProc: { sidecarInbound: boolean; sidecarOutbound: boolean; gateway: boolean; messageTimeout: string; maxMessageTimeout: string; grpcTimeout: string };
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
  const grpcProbe = { grpc: { port: v.server.port } };
  out.push({
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta(fullname, ns),
    spec: {
      replicas: v.server.replicas,
      selector: { matchLabels: selectorLabels },
      template: {
        metadata: { labels, annotations: { 'sidecar.istio.io/inject': 'false' } },
        spec: {
          serviceAccountName: serviceAccount,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [{
            name: 'meshward',
            image: `${v.image.repository}:${v.image.tag || chart.appVersion}`,
            imagePullPolicy: v.image.pullPolicy,
            args: ['serve', '--host=0.0.0.0', `--port=${v.server.port}`, '--policy-source=kubernetes', '--policy-namespace=$(POD_NAMESPACE)', `--policy-resync-seconds=${v.server.policyResyncSeconds}`],
            env: [
              { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              { name: 'MESHWARD_LOG_LEVEL', value: v.server.logLevel },
            ],
            ports: [{ name: 'grpc', containerPort: v.server.port, protocol: 'TCP' }],
            startupProbe: { ...grpcProbe, periodSeconds: 2, failureThreshold: 30 },
            readinessProbe: { ...grpcProbe, periodSeconds: 5 },
            livenessProbe: { ...grpcProbe, periodSeconds: 10, failureThreshold: 3 },
            resources: v.server.resources,
            securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
          }],
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
        configPatches: contexts.map((context) => ({
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
                    cluster_name: `outbound|${v.server.port}||${serviceHost}`,
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
              },
            },
          },
        })),
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
