// API10 unsafe consumption: on outbound calls to third-party APIs, the response is checked before
// the app consumes it: against the API's declared schema (when policy gives one), for injection
// payloads in its values, and for redirects into the internal network.
import type { Detector } from '../detector.ts';
import type { Exchange } from '../exchange.ts';
import type { Finding } from '../finding.ts';
import { findingFor } from '../detector-context.ts';
import type { ContentContext } from '../../inspect/settings.ts';
import { bodyEvidence } from '../../inspect/evidence.ts';
import { injectionSignatures } from '../../inspect/injection.ts';
import { pathToPointer, walkJsonStrings } from '../../inspect/json.ts';
import { analyzeUrlValue, classifyAddress } from '../../inspect/ssrf.ts';
import { authorityHost } from '../../inspect/values.ts';

export const CONTENT_UNSAFE_CONSUMPTION_DETECTOR = 'content-unsafe-consumption';

const MESH_SUFFIXES = ['.svc', '.svc.cluster.local', '.cluster.local', '.local', '.internal'];

export class ContentUnsafeConsumptionDetector implements Detector {
  readonly name = CONTENT_UNSAFE_CONSUMPTION_DETECTOR;
  readonly #content: ContentContext;

  constructor(content: ContentContext) {
    this.#content = content;
  }

  /** A third-party API: listed by policy, else any outbound destination outside the mesh. Inbound
   *  traffic is never consumption (the app answers it, it does not consume it). */
  #isThirdParty(exchange: Exchange): boolean {
    if (exchange.request.direction === 'inbound') return false;
    const host = authorityHost(exchange.request.destination ?? exchange.request.authority);
    const listed = this.#content.settings.thirdPartyHosts;
    if (listed.length > 0) return listed.includes(host);
    if (exchange.request.direction !== 'outbound') return false;
    return host.includes('.') && !MESH_SUFFIXES.some((s) => host.endsWith(s)) && classifyAddress(host) === undefined;
  }

  /** In enforce mode every third-party answer is checked before the app consumes it, not a sample. */
  needsResponseBody(exchange: Exchange, mode: 'monitor' | 'enforce'): boolean {
    return mode === 'enforce' && this.#isThirdParty(exchange);
  }

  onResponse(exchange: Exchange): Finding[] | undefined {
    const response = exchange.response;
    if (!response || !this.#isThirdParty(exchange)) return undefined;
    const { decoder, contracts } = this.#content;
    const findings: Finding[] = [];
    const location = response.headers.get('location')?.[0];
    if (response.status >= 300 && response.status < 400 && location !== undefined) {
      const target = analyzeUrlValue(location, 'location', this.#content.settings.ssrf);
      if (target) {
        findings.push(findingFor(this.name, exchange, {
          category: 'API10:2023-UnsafeConsumption', severity: 'high', enforcement: 'deny', blocksResponse: true,
          summary: `third-party API redirects into ${target.reasons.join(', ')} (${target.host})`,
          evidence: { status: response.status, target },
        }));
      }
    }
    if (!response.body || response.body.length === 0) return findings;
    const decoded = decoder.decode(response.body, response.headers);
    const injections: { pointer: string; signatures: string[] }[] = [];
    if (decoded.content.kind === 'json') {
      for (const v of walkJsonStrings(decoded.content.value, decoder.limits.maxJsonNodes)) {
        const signatures = injectionSignatures(v.value);
        if (signatures.length > 0) injections.push({ pointer: pathToPointer(v.path), signatures });
        if (injections.length >= 10) break;
      }
    }
    if (injections.length > 0) {
      findings.push(findingFor(this.name, exchange, {
        category: 'API10:2023-UnsafeConsumption', severity: 'high', enforcement: 'deny', blocksResponse: true,
        summary: `third-party response carries injection payloads (${[...new Set(injections.flatMap((i) => i.signatures))].join(', ')})`,
        evidence: { values: injections, body: bodyEvidence(decoded) },
      }));
    }
    const resolved = this.#content.resolveOperation(exchange);
    if (resolved) {
      const violations = contracts.validateResponse(resolved.operation, response.status, decoded);
      if (violations.length > 0) {
        findings.push(findingFor(this.name, exchange, {
          category: 'API10:2023-UnsafeConsumption', severity: 'medium', enforcement: 'deny', blocksResponse: true,
          summary: `third-party response violates its declared schema: ${violations.slice(0, 3).map((v) => `${v.pointer} ${v.detail}`).join('; ')}`,
          evidence: { operationId: resolved.operation.operationId, violations, body: bodyEvidence(decoded) },
        }));
      }
    }
    return findings;
  }
}
