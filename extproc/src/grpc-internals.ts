// The only place meshward touches grpc-js's private shapes. grpc-js exposes neither the Node http2
// server options it binds with nor a call's HTTP/2 stream, and the ext_proc server needs both (see
// server.ts: raised stream-reset limits; connection-preserving refusal). Each shape was verified for
// the grpc-js versions in VERIFIED_GRPC_JS by test/unit/grpc-internals.test.ts. Under any other
// version, or when a shape is missing at run time, the functions do nothing and return false or
// undefined: the server warns once and keeps working without that feature.
import { createRequire } from 'node:module';
import type http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from './log.ts';

/** grpc-js versions whose private shapes were verified: major 1, minor 14 or later. */
export const VERIFIED_GRPC_JS = { major: 1, minMinor: 14, range: '>=1.14 <2' } as const;

/** What the server loses when an internal is unavailable (named in its warning). */
export const LOST_WITHOUT = {
  resetLimits: 'raised HTTP/2 stream-reset limits: a sidecar connection above ~33 requests/s gets GOAWAY from Node and its streams in flight fail',
  refusalReset: 'connection-preserving refusal: a refused stream stays half-open, and under a stream flood Node may close a whole connection',
} as const;
export type GrpcInternalFeature = keyof typeof LOST_WITHOUT;

/** Any kind of grpc-js server call. */
export type ServerCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerReadableStream<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;

export interface GrpcInternals {
  readonly grpcJsVersion: string;
  /** The version is one the shapes were verified for; when false every function below does nothing. */
  readonly supported: boolean;
  /** Merges Node http2 server options (and their `settings`) into those grpc-js binds with. Call
   *  before bindAsync. False when they could not be set. */
  setHttp2ServerOptions(server: grpc.Server, options: http2.ServerOptions): boolean;
  /** The HTTP/2 stream under a server call, or undefined when it cannot be reached. */
  http2StreamOf(call: ServerCall): http2.ServerHttp2Stream | undefined;
}

/** Version of the @grpc/grpc-js this module (and the server) imports. */
export function installedGrpcJsVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('@grpc/grpc-js/package.json') as { version: string }).version;
}

export function isVerifiedGrpcJsVersion(version: string): boolean {
  const m = /^(\d+)\.(\d+)\.\d+/.exec(version);
  if (!m) return false;
  return Number(m[1]) === VERIFIED_GRPC_JS.major && Number(m[2]) >= VERIFIED_GRPC_JS.minMinor;
}

/** grpc-js wraps a call's BaseServerInterceptingCall (which holds `stream`) in one
 *  ServerInterceptingCall (`nextCall`) per server interceptor; deeper chains than this are not
 *  followed (bounded walk). */
const MAX_INTERCEPTOR_DEPTH = 16;
type InterceptingCall = { stream?: unknown; nextCall?: InterceptingCall };

function isServerHttp2Stream(value: unknown): value is http2.ServerHttp2Stream {
  const s = value as Partial<http2.ServerHttp2Stream> | null | undefined;
  return typeof s?.respond === 'function' && typeof s.close === 'function' && typeof s.closed === 'boolean';
}

/** The internals for a given grpc-js version (tests pass an unverified one). */
export function grpcInternalsFor(grpcJsVersion: string): GrpcInternals {
  const supported = isVerifiedGrpcJsVersion(grpcJsVersion);
  return {
    grpcJsVersion,
    supported,
    setHttp2ServerOptions(server, options) {
      if (!supported) return false;
      // grpc.Server builds `commonServerOptions` in its constructor and passes it to
      // http2.createServer (copied into the secure options for TLS) at each bind.
      const common = (server as unknown as { commonServerOptions?: unknown }).commonServerOptions;
      if (typeof common !== 'object' || common === null) return false;
      const current = common as http2.ServerOptions;
      // `settings` is merged, so grpc-js's own (max_concurrent_streams) stay beside the caller's.
      const settings = (current.settings || options.settings) ? { ...current.settings, ...options.settings } : undefined;
      Object.assign(current, options, settings ? { settings } : {});
      return true;
    },
    http2StreamOf(call) {
      if (!supported) return undefined;
      // ServerDuplexStreamImpl (and the other call kinds) keep the intercepting call in `call`.
      let inner = (call as unknown as { call?: InterceptingCall }).call;
      for (let depth = 0; inner && depth <= MAX_INTERCEPTOR_DEPTH; depth++) {
        if (inner.stream !== undefined) return isServerHttp2Stream(inner.stream) ? inner.stream : undefined;
        inner = inner.nextCall;
      }
      return undefined;
    },
  };
}

export const installedGrpcInternals: GrpcInternals = grpcInternalsFor(installedGrpcJsVersion());

export function grpcInternalsSupported(): boolean {
  return installedGrpcInternals.supported;
}

export function setHttp2ServerOptions(server: grpc.Server, options: http2.ServerOptions): boolean {
  return installedGrpcInternals.setHttp2ServerOptions(server, options);
}

export function http2StreamOf(call: ServerCall): http2.ServerHttp2Stream | undefined {
  return installedGrpcInternals.http2StreamOf(call);
}

/** Logs the features given to it as lost, each at most once, in one warning per call naming the grpc-js version. */
export type LostInternalsWarner = (lost: readonly GrpcInternalFeature[]) => void;

/** A warner for one server. */
export function lostInternalsWarner(log: Logger, internals: GrpcInternals): LostInternalsWarner {
  const warned = new Set<GrpcInternalFeature>();
  return (lost) => {
    const fresh = lost.filter((feature) => !warned.has(feature));
    if (fresh.length === 0) return;
    for (const feature of fresh) warned.add(feature);
    const lostText = fresh.map((feature) => LOST_WITHOUT[feature]);
    log.warn({ grpcJsVersion: internals.grpcJsVersion, verifiedRange: VERIFIED_GRPC_JS.range, lost: lostText },
      `grpc-js ${internals.grpcJsVersion} internals unavailable (verified for ${VERIFIED_GRPC_JS.range}); running without ${lostText.join('; and without ')}`);
  };
}
