// The one interface every detector implements: observe an exchange, update bounded state
// (lru-cache with hard caps and TTLs), maybe emit findings with evidence. One detector per module
// under engine/detectors/.
import type { Exchange } from './exchange.ts';
import type { Finding } from './finding.ts';
import type { ResponseEvent } from './event.ts';

export interface Detector {
  /** Unique, stable, kebab-case, e.g. "bola-enumeration". */
  readonly name: string;
  /** Called with the request headers (body present only when sampled). Findings here can block. */
  onRequest?(exchange: Exchange): Finding[] | undefined;
  /** Called when the response headers (and sampled body) are known. Findings here only report,
   *  unless a finding asks to stop the response (Finding.blocksResponse) or redact it. */
  onResponse?(exchange: Exchange): Finding[] | undefined;
  /** A standing list per operation (e.g. misconfiguration posture), for the admin API. */
  posture?(): PostureEntry[];
  /** True when this detector must see this exchange's response body whatever the filter's sampling
   *  said: it acts on the answer before the client receives it (redaction, stopping a third-party
   *  response), which a sample cannot do. `mode` is this detector's mode for the exchange;
   *  `response` has the response headers (no body yet). */
  needsResponseBody?(exchange: Exchange, mode: 'monitor' | 'enforce', response: ResponseEvent): boolean;
}

/** What a detector currently holds against one operation (not a per-request finding). */
export interface PostureEntry {
  operation: string;
  items: readonly unknown[];
}
