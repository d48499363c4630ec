// Loads Envoy's ext_proc service definition from the protos that @grpc/grpc-js-xds ships.
// The protos are never copied into this repository.
import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const require = createRequire(import.meta.url);

export function xdsDepsDir(): string {
  const pkgJson = require.resolve('@grpc/grpc-js-xds/package.json');
  return path.join(path.dirname(pkgJson), 'deps');
}

export const EXT_PROC_PROTO = 'envoy/service/ext_proc/v3/external_processor.proto';

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
};

let cached: grpc.ServiceDefinition | undefined;

/** The ExternalProcessor service definition (path /envoy.service.ext_proc.v3.ExternalProcessor/Process). */
export function externalProcessorService(): grpc.ServiceDefinition {
  if (cached) return cached;
  const deps = xdsDepsDir();
  const definition = protoLoader.loadSync(EXT_PROC_PROTO, {
    ...LOADER_OPTIONS,
    includeDirs: ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(deps, d)),
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    envoy: { service: { ext_proc: { v3: { ExternalProcessor: { service: grpc.ServiceDefinition } } } } };
  };
  cached = pkg.envoy.service.ext_proc.v3.ExternalProcessor.service;
  return cached;
}
