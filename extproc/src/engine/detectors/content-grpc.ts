// gRPC abuse: calls to the server-reflection service (schema recon) unless policy allows it, and
// methods the service's descriptor set (from policy) does not declare.
import type { Detector } from '../detector.ts';
import type { Exchange } from '../exchange.ts';
import type { Finding } from '../finding.ts';
import { findingFor } from '../detector-context.ts';
import type { ContentContext } from '../../inspect/settings.ts';
import { grpcMethod, isGrpcRequest, isReflectionService } from '../../inspect/grpc.ts';

export const CONTENT_GRPC_DETECTOR = 'content-grpc';

export class ContentGrpcDetector implements Detector {
  readonly name = CONTENT_GRPC_DETECTOR;
  readonly #content: ContentContext;
  readonly #known: ReadonlySet<string>;

  constructor(content: ContentContext) {
    this.#content = content;
    this.#known = new Set(content.settings.grpc.knownMethods);
  }

  onRequest(exchange: Exchange): Finding[] | undefined {
    const request = exchange.request;
    if (!isGrpcRequest(request)) return undefined;
    const method = grpcMethod(request.path);
    if (!method) {
      return [findingFor(this.name, exchange, {
        category: 'GRPC-Abuse', severity: 'low', enforcement: 'deny',
        summary: 'gRPC request whose path is not "/package.Service/Method"',
        evidence: { path: request.path.slice(0, 200) },
      })];
    }
    const path = `/${method.service}/${method.method}`;
    if (isReflectionService(method.service)) {
      if (this.#content.settings.grpc.allowReflection) return undefined;
      return [findingFor(this.name, exchange, {
        category: 'GRPC-Abuse', severity: 'medium', enforcement: 'deny',
        summary: `gRPC server reflection called (${method.service}): service schema reconnaissance`,
        evidence: { method: path },
      })];
    }
    if (this.#known.size > 0 && !this.#known.has(path)) {
      return [findingFor(this.name, exchange, {
        category: 'GRPC-Abuse', severity: 'high', enforcement: 'deny',
        summary: `gRPC method ${path.slice(0, 200)} is not in the service's descriptor set`,
        evidence: { method: path.slice(0, 200), knownMethods: this.#known.size },
      })];
    }
    return undefined;
  }
}
