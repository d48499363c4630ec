// A Secret Discovery Service as Istio's agent serves it to its sidecar: grpc-js on a unix socket,
// Envoy's own SecretDiscoveryService protos from @grpc/grpc-js-xds, the workload certificate as secret
// "default" and the mesh root as "ROOTCA". Lets a test run the exact cluster the Helm chart renders.
import path from 'node:path';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS, xdsDepsDir } from '../../extproc/src/wire/protos.ts';
import { HTTP2_OPTIONS } from '../../extproc/src/local/envoy-config.ts';

const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

export interface SdsFiles { certFile: string; keyFile: string; caFile: string }

export interface RunningSds {
  /** Secret names Envoy asked for, in order. */
  readonly requested: string[];
  close(): void;
}

interface DiscoveryRequest { resource_names?: string[]; response_nonce?: string; error_detail?: { message?: string } }

function secret(name: string, files: SdsFiles): Record<string, unknown> | undefined {
  const bytes = (f: string): { inline_bytes: Buffer } => ({ inline_bytes: readFileSync(f) });
  if (name === 'default') return { '@type': SECRET_TYPE, name, tls_certificate: { certificate_chain: bytes(files.certFile), private_key: bytes(files.keyFile) } };
  if (name === 'ROOTCA') return { '@type': SECRET_TYPE, name, validation_context: { trusted_ca: bytes(files.caFile) } };
  return undefined;
}

export async function startSdsServer(socketPath: string, files: SdsFiles): Promise<RunningSds> {
  const deps = xdsDepsDir();
  // The Secret type is loaded beside the service so the Any in each response can be packed by type URL.
  const definition = protoLoader.loadSync(['envoy/service/secret/v3/sds.proto', 'envoy/extensions/transport_sockets/tls/v3/secret.proto'], {
    ...LOADER_OPTIONS,
    includeDirs: ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(deps, d)),
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { envoy: { service: { secret: { v3: { SecretDiscoveryService: { service: grpc.ServiceDefinition } } } } } };
  const requested: string[] = [];
  let nonce = 0;
  const server = new grpc.Server();
  server.addService(pkg.envoy.service.secret.v3.SecretDiscoveryService.service, {
    StreamSecrets: (call: grpc.ServerDuplexStream<DiscoveryRequest, unknown>) => {
      call.on('data', (req: DiscoveryRequest) => {
        if (req.response_nonce) return; // an ACK (or NACK) of what we sent: nothing new to send
        const names = req.resource_names ?? [];
        requested.push(...names);
        const resources = names.map((n) => secret(n, files)).filter((r) => r !== undefined);
        call.write({ version_info: '1', type_url: SECRET_TYPE, nonce: String(++nonce), resources });
      });
      call.on('error', () => {});
      call.on('end', () => call.end());
    },
    DeltaSecrets: (call: grpc.ServerDuplexStream<unknown, unknown>) => call.emit('error', { code: grpc.status.UNIMPLEMENTED }),
    FetchSecrets: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.UNIMPLEMENTED }),
  });
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  return { requested, close: () => server.forceShutdown() };
}

/** Istio's bootstrap cluster `sds-grpc`: HTTP/2 to istio-agent's unix socket. */
export function sdsGrpcCluster(socketPath: string): Record<string, unknown> {
  return {
    name: 'sds-grpc', type: 'STATIC', connect_timeout: '1s', typed_extension_protocol_options: HTTP2_OPTIONS,
    load_assignment: { cluster_name: 'sds-grpc', endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: socketPath } } } }] }] },
  };
}
