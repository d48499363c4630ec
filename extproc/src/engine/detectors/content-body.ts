// Request bodies that cost more than the caps allow to inspect (decompression bombs, JSON nested or
// sized past the limits: API4) or that do not parse as the content type they declare (API8); and
// request or response bodies the server had no capacity to inspect (spec.content.overload decides).
import type { Detector } from '../detector.ts';
import type { Exchange } from '../exchange.ts';
import type { Finding } from '../finding.ts';
import { findingFor } from '../detector-context.ts';
import type { ContentContext } from '../../inspect/settings.ts';
import type { BodyProblemCode, DecodedBody } from '../../inspect/body.ts';
import { bodyEvidence } from '../../inspect/evidence.ts';

export const CONTENT_BODY_DETECTOR = 'content-body';

const RESOURCE_PROBLEMS: ReadonlySet<BodyProblemCode> = new Set(['decompression-bomb', 'json-too-deep', 'json-too-large', 'too-many-fields']);
const MALFORMED_PROBLEMS: ReadonlySet<BodyProblemCode> = new Set(['invalid-json', 'invalid-utf8', 'decompression-failed', 'malformed-multipart']);

export class ContentBodyDetector implements Detector {
  readonly name = CONTENT_BODY_DETECTOR;
  readonly #content: ContentContext;

  constructor(content: ContentContext) {
    this.#content = content;
  }

  onRequest(exchange: Exchange): Finding[] | undefined {
    const { body, headers } = exchange.request;
    if (body === undefined || body.length === 0) return undefined;
    const decoded = this.#content.decoder.decode(body, headers);
    const findings: Finding[] = [];
    const resource = decoded.problems.filter((p) => RESOURCE_PROBLEMS.has(p.code));
    if (resource.length > 0) {
      findings.push(findingFor(this.name, exchange, {
        category: 'API4:2023-UnrestrictedResourceConsumption', severity: 'high', enforcement: 'deny',
        summary: `request body exceeds inspection limits: ${resource[0]!.detail}`,
        evidence: { problems: resource.map((p) => p.code), body: bodyEvidence(decoded), limits: this.#content.decoder.limits },
      }));
    }
    const malformed = decoded.problems.filter((p) => MALFORMED_PROBLEMS.has(p.code));
    if (malformed.length > 0) {
      findings.push(findingFor(this.name, exchange, {
        category: 'API8:2023-SecurityMisconfiguration', severity: 'low', enforcement: 'deny',
        summary: `request body does not parse as its declared type ${decoded.mediaType || '(none)'}: ${malformed[0]!.detail}`,
        evidence: { problems: malformed.map((p) => p.code), mediaType: decoded.mediaType, body: bodyEvidence(decoded) },
      }));
    }
    const skipped = this.#notInspected('request', exchange, decoded);
    if (skipped !== undefined) findings.push(skipped);
    return findings;
  }

  onResponse(exchange: Exchange): Finding[] | undefined {
    const response = exchange.response;
    if (response?.body === undefined || response.body.length === 0) return undefined;
    const skipped = this.#notInspected('response', exchange, this.#content.decoder.decode(response.body, response.headers));
    return skipped === undefined ? undefined : [skipped];
  }

  /** Capacity, not the client's doing: whether an uninspected body passes is the policy's choice
   *  (spec.content.overload), said in the finding either way. A closed policy refuses a request
   *  (403) or, its headers still held by Envoy, stops a response (502) in enforce mode. */
  #notInspected(direction: 'request' | 'response', exchange: Exchange, decoded: DecodedBody): Finding | undefined {
    const skipped = decoded.problems.find((p) => p.code === 'not-inspected');
    if (skipped === undefined) return undefined;
    const closed = this.#content.settings.overload === 'closed';
    return findingFor(this.name, exchange, {
      category: 'API4:2023-UnrestrictedResourceConsumption', severity: closed ? 'medium' : 'info', enforcement: closed ? 'deny' : 'none',
      ...(direction === 'response' && closed ? { blocksResponse: true } : {}),
      summary: closed
        ? `${direction} body could not be inspected (overload policy closed: refused in enforce mode): ${skipped.detail}`
        : `${direction} body ${direction === 'request' ? 'decided on headers only' : 'passed uninspected'}: ${skipped.detail} (overload policy open)`,
      evidence: { problems: ['not-inspected'], direction, overload: closed ? 'closed' : 'open', body: bodyEvidence(decoded) },
    });
  }
}
