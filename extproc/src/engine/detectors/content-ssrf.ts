// API7 SSRF: URL-like values in the query, body and headers that point at loopback, link-local,
// private or metadata addresses, or use non-http schemes, after the URL parser has undone the
// usual encodings; URLs through open redirectors known to policy are followed.
import type { Detector } from '../detector.ts';
import type { Exchange } from '../exchange.ts';
import type { Finding } from '../finding.ts';
import { findingFor } from '../detector-context.ts';
import type { ContentContext } from '../../inspect/settings.ts';
import { bodyEvidence } from '../../inspect/evidence.ts';
import { analyzeUrlValue, type SsrfFinding } from '../../inspect/ssrf.ts';
import { requestValues } from '../../inspect/values.ts';

export const CONTENT_SSRF_DETECTOR = 'content-ssrf';
const MAX_REPORTED = 5;

export class ContentSsrfDetector implements Detector {
  readonly name = CONTENT_SSRF_DETECTOR;
  readonly #content: ContentContext;

  constructor(content: ContentContext) {
    this.#content = content;
  }

  onRequest(exchange: Exchange): Finding[] | undefined {
    const { decoder, settings } = this.#content;
    const request = exchange.request;
    const decoded = request.body !== undefined ? decoder.decode(request.body, request.headers) : undefined;
    const hits: (SsrfFinding & { location: string; name: string })[] = [];
    for (const v of requestValues(request, decoded, decoder.limits.maxJsonNodes)) {
      const f = analyzeUrlValue(v.value, v.key, settings.ssrf);
      if (f) hits.push({ ...f, location: v.location, name: v.name.slice(0, 128) });
      if (hits.length >= MAX_REPORTED) break;
    }
    if (hits.length === 0) return undefined;
    const reasons = [...new Set(hits.flatMap((h) => h.reasons))];
    const critical = reasons.includes('metadata') || reasons.includes('loopback');
    return [findingFor(this.name, exchange, {
      category: 'API7:2023-SSRF', severity: critical ? 'critical' : 'high', enforcement: 'deny',
      summary: `request carries a URL aimed at ${reasons.join(', ')} (${hits[0]!.location} ${hits[0]!.name} -> ${hits[0]!.host})`,
      evidence: { targets: hits, ...(decoded ? { body: bodyEvidence(decoded) } : {}) },
    })];
  }
}
