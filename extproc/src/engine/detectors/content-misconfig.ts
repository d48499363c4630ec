// API8 security misconfiguration. Per request: stack traces and driver errors in responses,
// credentialed CORS for any origin, TRACE/TRACK answered. Per operation (the posture list): version
// banners, missing security headers on north-south responses, plaintext east-west calls, and the
// per-request problems above, with first/last seen and counts.
import type { LRUCache } from 'lru-cache';
import type { Detector } from '../detector.ts';
import type { Exchange } from '../exchange.ts';
import type { Finding } from '../finding.ts';
import { findingFor, type DetectorContext } from '../detector-context.ts';
import { boundedMap } from '../state.ts';
import type { ContentContext } from '../../inspect/settings.ts';
import { bodyEvidence } from '../../inspect/evidence.ts';
import { corsProblem, isNorthSouth, missingSecurityHeaders, versionBanners, verboseErrorSignatures, type PostureItem } from '../../inspect/misconfig.ts';

export const CONTENT_MISCONFIG_DETECTOR = 'content-misconfig';
const MAX_POSTURE_ITEMS = 32;

export class ContentMisconfigDetector implements Detector {
  readonly name = CONTENT_MISCONFIG_DETECTOR;
  readonly #content: ContentContext;
  readonly #posture: LRUCache<string, Map<string, PostureItem>>;

  constructor(context: DetectorContext, content: ContentContext) {
    this.#content = content;
    this.#posture = boundedMap(context.clock, { caps: context.settings.caps, ttlMs: 30 * 24 * 3600_000, sizeOf: (k) => 4096 + k.length * 2, persist: { registry: context.state, name: 'misconfig.posture' } });
  }

  /** The standing misconfigurations of every operation seen, most recent operations first. */
  posture(): { operation: string; items: PostureItem[] }[] {
    return [...this.#posture.entries()].map(([operation, items]) => ({ operation, items: [...items.values()] }));
  }

  #note(operation: string, issue: string, detail: string, time: number): void {
    let items = this.#posture.get(operation);
    if (!items) { items = new Map(); this.#posture.set(operation, items); }
    const item = items.get(issue);
    if (item) { item.lastSeen = time; item.count++; item.detail = detail; return; }
    if (items.size < MAX_POSTURE_ITEMS) items.set(issue, { issue, detail, firstSeen: time, lastSeen: time, count: 1 });
  }

  onRequest(exchange: Exchange): Finding[] | undefined {
    const request = exchange.request;
    if (!request.caller.mtls && !isNorthSouth(request)) {
      this.#note(exchange.operation, 'plaintext-east-west', 'service-to-service call without mutual TLS', request.time);
    }
    return undefined;
  }

  onResponse(exchange: Exchange): Finding[] | undefined {
    const { request, response } = exchange;
    if (!response) return undefined;
    const findings: Finding[] = [];
    const time = request.time;
    const op = exchange.operation;

    for (const banner of versionBanners(response.headers)) this.#note(op, `version-banner:${banner.slice(0, banner.indexOf(':'))}`, banner, time);
    if (isNorthSouth(request)) {
      const https = request.headers.get(':scheme')?.[0] === 'https' || request.headers.get('x-forwarded-proto')?.[0] === 'https';
      const missing = missingSecurityHeaders(response, https);
      if (missing.length > 0) this.#note(op, 'missing-security-headers', missing.join(', '), time);
    }

    if ((request.method === 'TRACE' || request.method === 'TRACK') && response.status < 400) {
      this.#note(op, 'trace-enabled', `${request.method} answered ${response.status}`, time);
      findings.push(findingFor(this.name, exchange, {
        category: 'API8:2023-SecurityMisconfiguration', severity: 'medium', enforcement: 'deny',
        summary: `${request.method} is enabled (answered ${response.status}): cross-site tracing`,
        evidence: { method: request.method, status: response.status },
      }));
    }

    const cors = corsProblem(request, response);
    if (cors) {
      this.#note(op, `cors:${cors}`, `Access-Control-Allow-Origin ${response.headers.get('access-control-allow-origin')?.[0] ?? ''} with credentials`, time);
      if (cors !== 'reflected-origin-with-credentials') {
        findings.push(findingFor(this.name, exchange, {
          category: 'API8:2023-SecurityMisconfiguration', severity: 'high', enforcement: 'none',
          summary: `CORS lets any origin read credentialed responses (${cors})`,
          evidence: { problem: cors, allowOrigin: response.headers.get('access-control-allow-origin')?.[0] },
        }));
      }
    }

    if (response.body && response.body.length > 0) {
      const decoded = this.#content.decoder.decode(response.body, response.headers);
      const signatures = decoded.text === '' ? [] : verboseErrorSignatures(decoded.text);
      if (signatures.length > 0) {
        this.#note(op, 'verbose-errors', signatures.join(', '), time);
        findings.push(findingFor(this.name, exchange, {
          category: 'API8:2023-SecurityMisconfiguration', severity: 'medium', enforcement: 'none',
          summary: `response leaks internals: ${signatures.join(', ')}`,
          evidence: { signatures, status: response.status, body: bodyEvidence(decoded) },
        }));
      }
    }
    return findings;
  }
}
