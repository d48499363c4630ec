// gRPC over HTTP/2: method paths, server-reflection calls, and the set of known methods from a
// descriptor set (policy), loaded with @grpc/proto-loader rather than parsed by hand.
import { loadFileDescriptorSetFromBuffer } from '@grpc/proto-loader';
import type { RequestEvent } from '../engine/event.ts';

export function isGrpcRequest(request: RequestEvent): boolean {
  const type = request.headers.get('content-type')?.[0]?.toLowerCase() ?? '';
  return type === 'application/grpc' || type.startsWith('application/grpc+') || type.startsWith('application/grpc-web');
}

/** "/pkg.Service/Method" -> {service: "pkg.Service", method: "Method"}; undefined when the path is not a gRPC method path. */
export function grpcMethod(path: string): { service: string; method: string } | undefined {
  const q = path.indexOf('?');
  const p = q === -1 ? path : path.slice(0, q);
  const parts = p.split('/');
  if (parts.length !== 3 || parts[0] !== '' || !parts[1] || !parts[2]) return undefined;
  return { service: parts[1], method: parts[2] };
}

const REFLECTION_SERVICES = new Set(['grpc.reflection.v1alpha.ServerReflection', 'grpc.reflection.v1.ServerReflection']);

export function isReflectionService(service: string): boolean {
  return REFLECTION_SERVICES.has(service);
}

/** Every "/pkg.Service/Method" path a serialized FileDescriptorSet declares. */
export function methodsFromDescriptorSet(descriptorSet: Buffer): Set<string> {
  const definitions = loadFileDescriptorSetFromBuffer(descriptorSet);
  const methods = new Set<string>();
  for (const def of Object.values(definitions)) {
    if (def === null || typeof def !== 'object' || 'format' in def) continue; // message/enum types
    for (const m of Object.values(def as Record<string, { path?: unknown }>)) {
      if (typeof m?.path === 'string') methods.add(m.path);
    }
  }
  return methods;
}
