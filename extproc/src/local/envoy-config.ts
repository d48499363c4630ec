// Envoy bootstrap configurations for a local mesh: a server-side sidecar (mTLS inbound -> meshward
// Wasm filter -> ext_proc -> router -> app) and a client-side sidecar (plaintext in -> mTLS out with
// the caller's SPIFFE certificate). The two meshward HTTP filter configs are built by
// meshwardHttpFilters(), the same shapes the Istio resources inject.
import { REQUIRED_REQUEST_ATTRIBUTES } from '../wire/request.ts';

type Json = Record<string, unknown>;

export interface MeshwardFilterOptions {
  wasmFile: string;
  /** JSON handed to the filter as plugin configuration. */
  pluginConfig?: Json;
  extProcCluster: string;
  /** true: requests pass when the server is unreachable or errs (fail-open); false: 500 (fail-closed). */
  failureModeAllow: boolean;
  /** Per-message deadline in seconds (Envoy default 0.2 s). */
  messageTimeoutSeconds?: number;
  /** Envoy's ext_proc observability mode ("send and go"): requests never wait for the server, so
   *  monitoring adds no latency; the server can only deny through the filter's tables. */
  observabilityMode?: boolean;
}

/** How long Envoy keeps an observability-mode stream open after the HTTP stream ended. */
export const OBSERVABILITY_DEFERRED_CLOSE = '5s';

export function meshwardWasmFilter(o: Pick<MeshwardFilterOptions, 'wasmFile' | 'pluginConfig'>): Json {
  return {
    name: 'envoy.filters.http.wasm',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm',
      config: {
        name: 'meshward',
        root_id: 'meshward',
        // After a trap Envoy starts a fresh VM: the filter is back for the next request. (FAIL_OPEN
        // would bypass it for the VM's lifetime; the trapping request gets 503 either way, proven in
        // test/e2e/failure-matrix.test.ts.)
        failure_policy: 'FAIL_RELOAD',
        configuration: {
          '@type': 'type.googleapis.com/google.protobuf.StringValue',
          value: JSON.stringify(o.pluginConfig ?? {}),
        },
        vm_config: {
          runtime: 'envoy.wasm.runtime.v8',
          code: { local: { filename: o.wasmFile } },
        },
      },
    },
  };
}

export function meshwardExtProcFilter(o: Omit<MeshwardFilterOptions, 'wasmFile' | 'pluginConfig'> & { requestBodyMode?: 'NONE' | 'BUFFERED' }): Json {
  return {
    name: 'envoy.filters.http.ext_proc',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
      grpc_service: { envoy_grpc: { cluster_name: o.extProcCluster }, timeout: '1s' },
      failure_mode_allow: o.failureModeAllow,
      message_timeout: `${o.messageTimeoutSeconds ?? 0.5}s`,
      max_message_timeout: '2s',
      allow_mode_override: true,
      processing_mode: {
        request_header_mode: 'SEND',
        response_header_mode: 'SEND',
        request_body_mode: o.requestBodyMode ?? 'NONE',
        response_body_mode: 'NONE',
        request_trailer_mode: 'SKIP',
        response_trailer_mode: 'SKIP',
      },
      request_attributes: [...REQUIRED_REQUEST_ATTRIBUTES],
      ...(o.observabilityMode === true ? { observability_mode: true, deferred_close_timeout: OBSERVABILITY_DEFERRED_CLOSE } : {}),
    },
  };
}

/** The meshward filters in the order they must run: Wasm capture first, then ext_proc. */
export function meshwardHttpFilters(o: MeshwardFilterOptions): Json[] {
  return [meshwardWasmFilter(o), skipOnFastpathReply(meshwardExtProcFilter(o))];
}

/** Filter state the Wasm filter sets ("1") when it answers a request itself (fast-path 403/429). */
export const FASTPATH_FILTER_STATE = 'wasm.meshward_fastpath';

/**
 * Wraps an HTTP filter so it skips the Wasm filter's local replies. Envoy sends a local reply through
 * every encoder filter, so without this ext_proc would open a stream for each fast-path 403/429.
 * The marker is filter state (a client or the app cannot set it), matched with FilterStateInput.
 */
export function skipOnFastpathReply(filter: Json): Json {
  return {
    name: filter.name,
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher',
      extension_config: filter,
      xds_matcher: {
        matcher_list: {
          matchers: [{
            predicate: {
              single_predicate: {
                input: {
                  name: 'meshward_fastpath',
                  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.FilterStateInput', key: FASTPATH_FILTER_STATE },
                },
                value_match: { exact: '1' },
              },
            },
            on_match: { action: { name: 'skip', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter' } } },
          }],
        },
      },
    },
  };
}

function staticCluster(name: string, port: number, extra: Json = {}): Json {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
    },
    ...extra,
  };
}

/** Cluster option: HTTP/2 to the upstream (gRPC). */
export const HTTP2_OPTIONS = {
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    explicit_http_config: { http2_protocol_options: {} },
  },
};

function hcm(statPrefix: string, cluster: string, httpFilters: Json[], extra: Json = {}): Json {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      stat_prefix: statPrefix,
      codec_type: 'AUTO',
      // Istio's sidecars (inbound and outbound) allow WebSocket upgrades; so must the local mesh, or
      // Envoy answers upgrades itself and they never reach meshward.
      upgrade_configs: [{ upgrade_type: 'websocket' }],
      route_config: {
        name: statPrefix,
        virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster, timeout: '5s' } }] }],
      },
      http_filters: [
        ...httpFilters,
        { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
      ],
      ...extra,
    },
  };
}

/** The sidecar's client certificate for the ext_proc cluster, and the server's SPIFFE ID it must present. */
export interface ExtProcTls {
  certFile: string;
  keyFile: string;
  caFile: string;
  serverSpiffeId: string;
}

/** The ext_proc cluster: HTTP/2, and with `tls` mutual TLS with the sidecar's own SPIFFE certificate
 *  (the server binds each stream to it) checking the server's SPIFFE ID. */
export function extProcCluster(name: string, port: number, tls?: ExtProcTls): Json {
  return staticCluster(name, port, {
    typed_extension_protocol_options: HTTP2_OPTIONS,
    ...(tls ? {
      transport_socket: {
        name: 'envoy.transport_sockets.tls',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
          common_tls_context: {
            alpn_protocols: ['h2'],
            tls_certificates: [{ certificate_chain: { filename: tls.certFile }, private_key: { filename: tls.keyFile } }],
            validation_context: {
              trusted_ca: { filename: tls.caFile },
              match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: tls.serverSpiffeId } }],
            },
          },
        },
      },
    } : {}),
  });
}

export interface InboundListener {
  name: string;
  port: number;
  failureModeAllow: boolean;
  /** ext_proc in Envoy's observability mode on this listener (see MeshwardFilterOptions). */
  observabilityMode?: boolean;
}

export interface ServerSidecarOptions {
  adminPort: number;
  inbound: InboundListener[];
  appPort: number;
  extProcPort: number;
  wasmFile: string;
  pluginConfig?: Json;
  certFile: string;
  keyFile: string;
  caFile: string;
  trustDomain: string;
  messageTimeoutSeconds?: number;
  /** Replaces the meshward filters on every inbound listener (benchmark variants, Istio-rendered configs). */
  httpFilters?: (listener: InboundListener) => Json[];
  /** Name of the ext_proc cluster (default meshward_ext_proc); Istio-rendered configs use outbound|port||fqdn. */
  extProcClusterName?: string;
  /** Port of the meshward admin HTTP server: adds cluster FILTER_CONFIG_CLUSTER for the filter's config refresh. */
  filterConfigPort?: number;
  /** Envoy node (id, metadata as Istio sets it: NAMESPACE, WORKLOAD_NAME, LABELS): the filter reports its workload from it. */
  node?: Json;
  /** mTLS to the ext_proc server (default plaintext). */
  extProcTls?: ExtProcTls;
  /** Replaces the ext_proc cluster built here (e.g. with the one the Istio resources add). */
  extProcClusterConfig?: Json;
  /** More static clusters (e.g. Istio's bootstrap cluster sds-grpc). */
  extraClusters?: Json[];
}

/** Cluster through which the Wasm filter fetches its configuration from the meshward server. */
export const FILTER_CONFIG_CLUSTER = 'meshward_config';

export function serverSidecarBootstrap(o: ServerSidecarOptions): Json {
  return {
    ...(o.node ? { node: o.node } : {}),
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: o.adminPort } } },
    static_resources: {
      listeners: o.inbound.map((l) => ({
        name: l.name,
        address: { socket_address: { address: '127.0.0.1', port_value: l.port } },
        filter_chains: [{
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
              require_client_certificate: true,
              common_tls_context: {
                tls_certificates: [{ certificate_chain: { filename: o.certFile }, private_key: { filename: o.keyFile } }],
                validation_context: {
                  trusted_ca: { filename: o.caFile },
                  match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: `spiffe://${o.trustDomain}/` } }],
                },
              },
            },
          },
          filters: [hcm(l.name, 'local_app', o.httpFilters ? o.httpFilters(l) : meshwardHttpFilters({
            wasmFile: o.wasmFile,
            ...(o.pluginConfig ? { pluginConfig: o.pluginConfig } : {}),
            extProcCluster: o.extProcClusterName ?? 'meshward_ext_proc',
            failureModeAllow: l.failureModeAllow,
            ...(o.messageTimeoutSeconds !== undefined ? { messageTimeoutSeconds: o.messageTimeoutSeconds } : {}),
            ...(l.observabilityMode === true ? { observabilityMode: true } : {}),
          }), {
            // As Istio's inbound sidecar does.
            forward_client_cert_details: 'APPEND_FORWARD',
            set_current_client_cert_details: { subject: true, uri: true, dns: true },
          })],
        }],
      })),
      clusters: [
        staticCluster('local_app', o.appPort),
        o.extProcClusterConfig ?? extProcCluster(o.extProcClusterName ?? 'meshward_ext_proc', o.extProcPort, o.extProcTls),
        ...(o.extraClusters ?? []),
        ...(o.filterConfigPort !== undefined ? [staticCluster(FILTER_CONFIG_CLUSTER, o.filterConfigPort)] : []),
      ],
    },
  };
}

export interface OutboundListener {
  name: string;
  port: number;
  /** The caller's certificate (its SPIFFE identity). */
  certFile: string;
  keyFile: string;
  /** Inbound port of the server sidecar to call. */
  upstreamPort: number;
  upstreamSpiffeId: string;
  upstreamSni: string;
  /** A destination outside the mesh (the demo's third-party API on loopback): no mTLS, no SPIFFE check. */
  plaintextUpstream?: boolean;
}

export interface ClientSidecarOptions {
  adminPort: number;
  caFile: string;
  outbound: OutboundListener[];
  /** Runs the meshward filters on the outbound listeners too (filter role "outbound"). */
  meshward?: { wasmFile: string; pluginConfig: Json; extProcPort: number; failureModeAllow: boolean; extProcTls?: ExtProcTls };
  /** Envoy node (id, metadata): the outbound filter reads its own workload identity from it. */
  node?: Json;
}

export function clientSidecarBootstrap(o: ClientSidecarOptions): Json {
  const m = o.meshward;
  const filters = m ? meshwardHttpFilters({
    wasmFile: m.wasmFile, pluginConfig: m.pluginConfig, extProcCluster: 'meshward_ext_proc', failureModeAllow: m.failureModeAllow,
  }) : [];
  return {
    ...(o.node ? { node: o.node } : {}),
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: o.adminPort } } },
    static_resources: {
      listeners: o.outbound.map((l) => ({
        name: l.name,
        address: { socket_address: { address: '127.0.0.1', port_value: l.port } },
        filter_chains: [{ filters: [hcm(l.name, `to_${l.name}`, filters)] }],
      })),
      clusters: [...(m ? [extProcCluster('meshward_ext_proc', m.extProcPort, m.extProcTls)] : []),
        ...o.outbound.map((l) => staticCluster(`to_${l.name}`, l.upstreamPort, l.plaintextUpstream ? {} : {
        transport_socket: {
          name: 'envoy.transport_sockets.tls',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
            sni: l.upstreamSni,
            common_tls_context: {
              tls_certificates: [{ certificate_chain: { filename: l.certFile }, private_key: { filename: l.keyFile } }],
              validation_context: {
                trusted_ca: { filename: o.caFile },
                match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: l.upstreamSpiffeId } }],
              },
            },
          },
        },
      }))],
    },
  };
}
