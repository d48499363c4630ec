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
  /** Istio metadata of the calling workload, when present: inbound from the peer metadata exchange
   *  (filter state downstream_peer), outbound from the own sidecar's node metadata. */
  workloadName?: string;
  namespace?: string;
  /** End user from a bearer JWT, decoded by the filter WITHOUT verification. */
  user?: TokenUser;
  /** SHA-256 (hex) of the bearer token / x-api-key header: never the raw secret. */
  tokenHash?: string;
  apiKeyHash?: string;
}

/** Claims of an unverified bearer JWT; `flags` mark tokens that are forged or sloppy on their face. */
export interface TokenUser {
  sub?: string;
  iss?: string;
  /** Audiences, space-joined when the claim is an array. */
  aud?: string;
  /** Scopes, space-separated (from "scope" or "scp"). */
  scope?: string;
  /** Seconds since the epoch. */
  exp?: number;
  nbf?: number;
  alg?: string;
  flags: readonly TokenFlag[];
}

export type TokenFlag = 'malformed' | 'oversize' | 'alg_none' | 'unsigned' | 'expired' | 'not_yet_valid';

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
  /** Operation id "METHOD authority template" and route template, as the sidecar filter derived them. */
  operation?: string;
  template?: string;
  /** Whether the filter sampled this request (the server then asks Envoy for its body). */
  sampled?: boolean;
  /** Which sidecar listener saw the request: inbound (caller = peer) or outbound (caller = own workload). */
  direction?: 'inbound' | 'outbound';
  /** Outbound only: the host the workload is calling. */
  destination?: string;
  /** The workload whose sidecar saw the request (its node metadata, which no client can set): the
   *  called workload inbound, the calling one outbound. Its namespace policy applies. */
  sidecarWorkload?: SidecarWorkload;
  /** The sidecar runs ext_proc in Envoy's observability mode: the request went on without waiting,
   *  so a deny decided here cannot stop it (only the filter's tables can, from the next request). */
  observedOnly?: boolean;
}

export interface SidecarWorkload {
  namespace?: string;
  name?: string;
  labels?: Readonly<Record<string, string>>;
}

export interface ResponseEvent {
  requestId: string;
  time: number;
  status: number;
  headers: Headers;
  body?: Buffer;
  /** The body is the whole response body (not a prefix cut at Envoy's buffer limit): only then may
   *  it be replaced (redaction). */
  bodyComplete?: boolean;
}
