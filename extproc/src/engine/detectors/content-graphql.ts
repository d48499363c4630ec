// GraphQL abuse, parsed with graphql-js: introspection where policy forbids it, depth, alias,
// batch, cost and directive limits, queries over GET or form posts (cross-site request forgery
// transports), field-suggestion leakage and GraphQL IDEs served to callers; with a schema from
// policy, queries that violate it (unknown fields, wrong argument types) are contract violations.
import type { Detector } from '../detector.ts';
import type { Exchange } from '../exchange.ts';
import type { Finding, Severity } from '../finding.ts';
import { findingFor, isSuccess } from '../detector-context.ts';
import type { ContentContext } from '../../inspect/settings.ts';
import { bodyEvidence } from '../../inspect/evidence.ts';
import { analyzeGraphql, extractGraphql, isGraphqlIde, isGraphqlPath, schemaViolations, suggestionLeaks, type GraphqlMetrics } from '../../inspect/graphql.ts';
import { authorityHost } from '../../inspect/values.ts';

export const CONTENT_GRAPHQL_DETECTOR = 'content-graphql';

interface Violation { check: string; value: number | string; limit?: number | string; severity: Severity }

const RANK: Record<Severity, number> = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };

export class ContentGraphqlDetector implements Detector {
  readonly name = CONTENT_GRAPHQL_DETECTOR;
  readonly #content: ContentContext;

  constructor(content: ContentContext) {
    this.#content = content;
  }

  onRequest(exchange: Exchange): Finding[] | undefined {
    const { decoder, settings } = this.#content;
    const limits = settings.graphql;
    const request = exchange.request;
    const decoded = decoder.decode(request.body, request.headers);
    const extraction = extractGraphql(request, decoded);
    if (extraction.kind === 'none') return undefined;
    if (extraction.kind === 'malformed') {
      return [findingFor(this.name, exchange, {
        category: 'API8:2023-SecurityMisconfiguration', severity: 'low', enforcement: 'deny',
        summary: `malformed GraphQL request: ${extraction.detail}`,
        evidence: { transport: extraction.transport, detail: extraction.detail, body: bodyEvidence(decoded) },
      })];
    }
    const violations: Violation[] = [];
    const syntaxErrors: string[] = [];
    const host = authorityHost(request.authority);
    const schema = settings.graphqlSchemas.find((s) => s.authority === undefined || authorityHost(s.authority) === host)?.schema;
    const invalid: string[] = [];
    if (extraction.batchSize > limits.maxBatch) violations.push({ check: 'batch', value: extraction.batchSize, limit: limits.maxBatch, severity: 'high' });
    const worst: Pick<GraphqlMetrics, 'aliases' | 'depth' | 'cost' | 'directives' | 'duplicateFields'> = { aliases: 0, depth: 0, cost: 0, directives: 0, duplicateFields: 0 };
    let introspection = false;
    let mutation = false;
    for (const op of extraction.operations.slice(0, limits.maxBatch + 1)) {
      const analysis = analyzeGraphql(op.query, op.variables, limits.maxTokens);
      if (!analysis.ok) {
        if (analysis.reason === 'too-many-tokens') violations.push({ check: 'tokens', value: `>${limits.maxTokens}`, limit: limits.maxTokens, severity: 'high' });
        else syntaxErrors.push(analysis.detail);
        continue;
      }
      if (schema && invalid.length < 10) invalid.push(...schemaViolations(schema, analysis.document));
      const m = analysis.metrics;
      worst.aliases = Math.max(worst.aliases, m.aliases);
      worst.depth = Math.max(worst.depth, m.depth);
      worst.cost = Math.max(worst.cost, m.cost);
      worst.directives = Math.max(worst.directives, m.directives);
      worst.duplicateFields = Math.max(worst.duplicateFields, m.duplicateFields);
      introspection ||= m.introspection;
      mutation ||= m.operationType === 'mutation' || m.operationType === 'mixed';
    }
    if (introspection && !limits.allowIntrospection) violations.push({ check: 'introspection', value: 'schema introspection', limit: 'forbidden by policy', severity: 'medium' });
    if (worst.depth > limits.maxDepth) violations.push({ check: 'depth', value: worst.depth, limit: limits.maxDepth, severity: 'high' });
    if (worst.aliases > limits.maxAliases) violations.push({ check: 'aliases', value: worst.aliases, limit: limits.maxAliases, severity: 'high' });
    if (worst.cost > limits.maxCost) violations.push({ check: 'cost', value: worst.cost, limit: limits.maxCost, severity: 'high' });
    if (worst.duplicateFields > limits.maxDuplicateFields) violations.push({ check: 'duplicate-fields', value: worst.duplicateFields, limit: limits.maxDuplicateFields, severity: 'medium' });
    if (worst.directives > limits.maxDirectives) violations.push({ check: 'directives', value: worst.directives, limit: limits.maxDirectives, severity: 'medium' });
    if (mutation && (extraction.transport === 'get' || extraction.transport === 'form')) {
      violations.push({ check: 'csrf-transport', value: `mutation over ${extraction.transport}`, severity: 'medium' });
    }
    const findings: Finding[] = [];
    if (violations.length > 0) {
      const severity = violations.reduce<Severity>((s, v) => (RANK[v.severity] > RANK[s] ? v.severity : s), 'info');
      findings.push(findingFor(this.name, exchange, {
        category: 'GRAPHQL-Abuse', severity, enforcement: 'deny',
        summary: `GraphQL request exceeds policy: ${violations.map((v) => (v.limit !== undefined ? `${v.check} ${v.value} (limit ${v.limit})` : `${v.check} ${v.value}`)).join(', ')}`,
        evidence: { violations, transport: extraction.transport, batchSize: extraction.batchSize, metrics: worst, body: bodyEvidence(decoded) },
      }));
    }
    if (invalid.length > 0) {
      findings.push(findingFor(this.name, exchange, {
        category: 'API8:2023-SecurityMisconfiguration', severity: 'medium', enforcement: 'deny',
        summary: `GraphQL request violates the service schema: ${invalid.slice(0, 3).join('; ')}`,
        evidence: { schemaErrors: invalid.slice(0, 10), transport: extraction.transport },
      }));
    }
    if (syntaxErrors.length > 0) {
      findings.push(findingFor(this.name, exchange, {
        category: 'API8:2023-SecurityMisconfiguration', severity: 'low', enforcement: 'deny',
        summary: `GraphQL document does not parse: ${syntaxErrors[0]}`,
        evidence: { errors: syntaxErrors.slice(0, 5), transport: extraction.transport },
      }));
    }
    return findings;
  }

  onResponse(exchange: Exchange): Finding[] | undefined {
    const { request, response } = exchange;
    if (!response?.body || response.body.length === 0) return undefined;
    const decoded = this.#content.decoder.decode(response.body, response.headers);
    const findings: Finding[] = [];
    if (request.method === 'GET' && isSuccess(response.status) && isGraphqlIde(decoded.mediaType, decoded.text)) {
      findings.push(findingFor(this.name, exchange, {
        category: 'GRAPHQL-Abuse', severity: 'medium', enforcement: 'deny',
        summary: 'a GraphQL IDE is served to this caller (schema exploration surface)',
        evidence: { status: response.status, mediaType: decoded.mediaType },
      }));
    }
    if (decoded.content.kind !== 'json') return findings;
    const leaks = suggestionLeaks(decoded.content.value);
    if (leaks > 0) {
      findings.push(findingFor(this.name, exchange, {
        category: 'GRAPHQL-Abuse', severity: 'low', enforcement: 'none',
        summary: `GraphQL errors suggest field names ("Did you mean"): schema leaks despite introspection limits`,
        evidence: { errorsWithSuggestions: leaks },
      }));
    }
    const requestBody = this.#content.decoder.decode(request.body, request.headers);
    const transport = request.method === 'GET' && isGraphqlPath(request.path) ? 'get' : requestBody.content.kind === 'form' && isGraphqlPath(request.path) ? 'form' : undefined;
    const answered = (decoded.content.value as { data?: unknown } | null)?.data;
    if (transport !== undefined && isSuccess(response.status) && answered !== undefined && answered !== null) {
      findings.push(findingFor(this.name, exchange, {
        category: 'GRAPHQL-Abuse', severity: 'low', enforcement: 'none',
        summary: `GraphQL endpoint executes queries sent ${transport === 'get' ? 'over GET' : 'as a form post'}: cross-site request forgery is possible`,
        evidence: { transport, status: response.status },
      }));
    }
    return findings;
  }
}
