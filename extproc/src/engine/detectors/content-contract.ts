// API3 / API8 request contracts: the request against its OpenAPI operation (ajv, compiled once per
// operation), or, where no spec declares the operation, against the shape its traffic has shown
// (inspect/learned-contract.ts). Undeclared or readOnly properties and prototype-polluting keys are
// mass assignment (API3); wrong types, missing required values and out-of-range values are
// contract violations (API8). Enforce or monitor per operation from policy.
import type { LRUCache } from 'lru-cache';
import type { Detector } from '../detector.ts';
import { operationKey, type Exchange } from '../exchange.ts';
import type { Finding } from '../finding.ts';
import { compilePattern, findingFor, type DetectorContext } from '../detector-context.ts';
import { boundedMap } from '../state.ts';
import { compareWithLearned, learnShape, propertyTypes, type LearnedShape } from '../../inspect/learned-contract.ts';
import type { DecodedBody } from '../../inspect/body.ts';
import type { ContentContext, ContractMode } from '../../inspect/settings.ts';
import { bodyEvidence } from '../../inspect/evidence.ts';
import { prototypePollutionKeys } from '../../inspect/json.ts';
import { queryParams } from '../../inspect/values.ts';

export const CONTENT_CONTRACT_DETECTOR = 'content-contract';

interface Violation { kind: string; location?: string; pointer: string; detail: string }

export class ContentContractDetector implements Detector {
  readonly name = CONTENT_CONTRACT_DETECTOR;
  readonly #content: ContentContext;
  readonly #learned: LRUCache<string, LearnedShape>;
  readonly #modePatterns: { operation: RegExp; mode: ContractMode }[];

  constructor(context: DetectorContext, content: ContentContext) {
    this.#content = content;
    this.#modePatterns = (content.settings.contract.patterns ?? []).map((p) => ({ operation: compilePattern(p.operation, 'contract operation', ''), mode: p.mode }));
    this.#learned = boundedMap(context.clock, { caps: context.settings.caps, ttlMs: 7 * 24 * 3600_000, sizeOf: (k) => 8192 + k.length * 2, persist: { registry: context.state, name: 'contract.learned' } });
  }

  onRequest(exchange: Exchange): Finding[] | undefined {
    const { settings, decoder, contracts } = this.#content;
    const request = exchange.request;
    const decoded = decoder.decode(request.body, request.headers);
    const findings: Finding[] = [];

    if (decoded.content.kind === 'json') {
      const polluting = prototypePollutionKeys(decoded.content.value, decoder.limits.maxJsonNodes);
      if (polluting.length > 0) {
        findings.push(findingFor(this.name, exchange, {
          category: 'API3:2023-BrokenObjectPropertyLevelAuthorization', severity: 'high', enforcement: 'deny',
          summary: `request body sets prototype keys (${polluting.slice(0, 3).join(', ')}): prototype pollution attempt`,
          evidence: { pointers: polluting, body: bodyEvidence(decoded) },
        }));
      }
    }

    const resolved = this.#content.resolveOperation(exchange);
    if (!resolved) {
      findings.push(...this.#learnedContract(exchange, decoded));
      return findings;
    }
    const violations = contracts
      .validateRequest(resolved.operation, decoded, queryParams(request.path, decoder.limits.maxFields), resolved.pathParams)
      // Unparseable bodies are content-body's finding; truncated bodies cannot be judged whole.
      .filter((v) => v.kind !== 'malformed-body' && !(v.kind === 'missing-required' && bodyEvidence(decoded).truncated));
    findings.push(...this.#findings(exchange, decoded, violations, { operationId: resolved.operation.operationId, contract: 'spec' }));
    return findings;
  }

  /** No spec: judge against the operation's learned shape, and learn from requests that pass. */
  #learnedContract(exchange: Exchange, decoded: DecodedBody): Finding[] {
    if (decoded.content.kind !== 'json' || decoded.content.value === null || typeof decoded.content.value !== 'object') return [];
    const properties = propertyTypes(decoded.content.value, this.#content.decoder.limits.maxJsonNodes);
    const key = operationKey(exchange);
    let shape = this.#learned.get(key);
    if (!shape) { shape = { samples: 0, properties: new Map() }; this.#learned.set(key, shape); }
    const violations = compareWithLearned(shape, properties, this.#content.settings.contract.learnedMinSamples);
    if (violations.length === 0) { learnShape(shape, properties); return []; }
    return this.#findings(exchange, decoded, violations, { contract: 'learned', samples: shape.samples });
  }

  #findings(exchange: Exchange, decoded: DecodedBody, violations: readonly Violation[], context: Record<string, unknown>): Finding[] {
    const settings = this.#content.settings;
    const mode = settings.contract.operations[exchange.operation]
      ?? this.#modePatterns.find((p) => p.operation.test(exchange.operation))?.mode ?? settings.contract.default;
    const enforcement = mode === 'enforce' ? 'deny' : 'none';
    const findings: Finding[] = [];
    const massAssignment = violations.filter((v) => v.kind === 'unknown-property');
    const invalid = violations.filter((v) => v.kind !== 'unknown-property');
    if (massAssignment.length > 0) {
      findings.push(findingFor(this.name, exchange, {
        category: 'API3:2023-BrokenObjectPropertyLevelAuthorization', severity: 'high', enforcement,
        summary: `request sets properties the contract does not declare (mass assignment): ${massAssignment.slice(0, 5).map((v) => v.pointer).join(', ')}`,
        evidence: { ...context, properties: massAssignment.map((v) => v.pointer), details: massAssignment.map((v) => v.detail), mode, body: bodyEvidence(decoded) },
      }));
    }
    if (invalid.length > 0) {
      findings.push(findingFor(this.name, exchange, {
        category: 'API8:2023-SecurityMisconfiguration', severity: 'medium', enforcement,
        summary: `request violates its contract: ${invalid.slice(0, 3).map((v) => `${v.location ?? 'body'}${v.pointer} ${v.detail}`).join('; ')}`,
        evidence: { ...context, violations: invalid, mode, body: bodyEvidence(decoded) },
      }));
    }
    return findings;
  }
}
