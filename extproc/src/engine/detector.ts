// The one interface every detector implements: observe an exchange, update bounded state
// (lru-cache with hard caps and TTLs), maybe emit findings with evidence. One detector per module
// under engine/detectors/.
import type { Exchange } from './exchange.ts';
import type { Finding } from './finding.ts';

export interface Detector {
  /** Unique, stable, kebab-case, e.g. "bola-enumeration". */
  readonly name: string;
  /** Called with the request headers (body present only when sampled). Findings here can block. */
  onRequest?(exchange: Exchange): Finding[] | undefined;
  /** Called when the response headers (and sampled body) are known. Findings here only report. */
  onResponse?(exchange: Exchange): Finding[] | undefined;
}
