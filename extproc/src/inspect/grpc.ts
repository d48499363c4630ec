// gRPC over HTTP/2: method paths, server-reflection calls, and the set of known methods from a
// descriptor set (policy spec.content.grpc.descriptorSet), loaded with @grpc/proto-loader (protobufjs)
// rather than parsed by hand.
import { loadFileDescriptorSetFromBuffer } from '@grpc/proto-loader';
import { LRUCache } from 'lru-cache';
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

/** Largest descriptor set a policy may carry (decoded bytes): parsing stays well under a second. */
export const MAX_DESCRIPTOR_SET_BYTES = 4 * 1024 * 1024;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Methods of descriptor sets already parsed, by their base64 text (policies are mapped per profile). */
const parsedSets = new LRUCache<string, readonly string[]>({ max: 32 });

/** The "/pkg.Service/Method" paths of a base64 FileDescriptorSet (protoc --descriptor_set_out,
 *  buf build -o); throws an Error saying what is wrong (not base64, too large, not a descriptor
 *  set, no methods). */
export function methodsFromBase64DescriptorSet(text: string): readonly string[] {
  const cached = parsedSets.get(text);
  if (cached !== undefined) return cached;
  const compact = text.replace(/\s+/g, '');
  if (compact.length % 4 !== 0 || !BASE64.test(compact)) throw new Error('not base64 (standard alphabet, padded)');
  const sorted = methodsFromDescriptorSetBytes(Buffer.from(compact, 'base64'));
  parsedSets.set(text, sorted);
  return sorted;
}

/** The sorted "/pkg.Service/Method" paths of a serialized FileDescriptorSet (a policy's inline
 *  base64 or a ConfigMap's bytes); throws an Error saying what is wrong (too large, not a descriptor
 *  set, no methods). */
export function methodsFromDescriptorSetBytes(bytes: Buffer): readonly string[] {
  if (bytes.length > MAX_DESCRIPTOR_SET_BYTES) throw new Error(`descriptor set of ${bytes.length} bytes exceeds the ${MAX_DESCRIPTOR_SET_BYTES}-byte cap`);
  let methods: Set<string>;
  try {
    methods = methodsFromDescriptorSet(bytes);
  } catch (err) {
    throw new Error(`not a serialized FileDescriptorSet: ${String((err as Error)?.message ?? err).slice(0, 160)}`);
  }
  if (methods.size === 0) throw new Error('the descriptor set declares no service methods');
  return [...methods].sort();
}
