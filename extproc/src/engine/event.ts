// Normalized request/response events: what the engine sees. Nothing here knows about Envoy;
// wire adapters (extproc/src/wire/) translate Envoy's messages into these shapes.

/** Where the caller's identity came from; only the first two are unforgeable by a client. */
export type IdentitySource = 'filter' | 'envoy-attribute' | 'none';

export interface Caller {
  /** SPIFFE ID of the calling workload (peer certificate URI SAN), when the connection was mTLS. */
  workload?: string;
  /** True when the connection to the sidecar was mutual TLS with a client certificate. */
  mtls: boolean;
  /** "ip:port" of the downstream connection. */
  sourceAddress?: string;
  identitySource: IdentitySource;
}

/** Header names are lower-case; a repeated header keeps every value in arrival order. */
export type Headers = ReadonlyMap<string, readonly string[]>;

export interface RequestEvent {
  /** Unique per HTTP request within this server process. */
  requestId: string;
  /** Milliseconds since the epoch when the server received the request headers. */
  time: number;
  caller: Caller;
  method: string;
  authority: string;
  /** Path with query, exactly as received. */
  path: string;
  headers: Headers;
  /** Request body bytes when the body was sent to the server (sampled requests only). */
  body?: Buffer;
}

export interface ResponseEvent {
  requestId: string;
  time: number;
  status: number;
  headers: Headers;
  body?: Buffer;
}
