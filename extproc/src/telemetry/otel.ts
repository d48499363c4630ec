// OpenTelemetry for meshward: one span per request meshward decided on (a child of the request's
// own trace when it carries W3C traceparent), metrics (decisions, decision latency, findings by
// category and severity, detector errors and durations, ext_proc stream errors), and findings as log records, all
// exported by OTLP/HTTP to the user's collector. No raw secrets: spans carry the path without its
// query string, the caller's SPIFFE ID and the decision, never headers.
import { context as otelContext, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, INVALID_SPAN_CONTEXT, type Span, type TextMapGetter, type Counter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { LoggerProvider, BatchLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { SeverityNumber, type Logger as OtelLogger } from '@opentelemetry/api-logs';
import { PendingMap } from '../engine/pending-map.ts';
import type { Engine, DecisionRecord } from '../engine/engine.ts';
import type { Headers, RequestEvent, ResponseEvent } from '../engine/event.ts';
import type { Finding, Severity } from '../engine/finding.ts';
import type { Exchange } from '../engine/exchange.ts';
import type { BodyBudgetCounters, ServerCounters, StreamCapCounters } from '../server.ts';
import { uninspectedBodies } from '../inspect/body-pool.ts';

const LOG_SEVERITY: Record<Severity, SeverityNumber> = {
  info: SeverityNumber.INFO, low: SeverityNumber.INFO2, medium: SeverityNumber.WARN, high: SeverityNumber.ERROR, critical: SeverityNumber.FATAL,
};
const MAX_EVIDENCE_CHARS = 4096;
/** How often spans whose response never came are ended (at most; the TTL itself when shorter). */
const PENDING_SWEEP_MS = 5_000;

export interface TelemetryOptions {
  /** OTLP/HTTP base URL, e.g. http://otel-collector:4318 (signals go to /v1/traces, /v1/metrics, /v1/logs).
   *  Absent: no spans or log records, metrics only through Prometheus. */
  endpoint?: string;
  /** Also serve the metrics for Prometheus to scrape (GET http://host:port/metrics, no auth: counts only). */
  prometheus?: { host: string; port: number };
  serviceName?: string;
  metricExportIntervalMs?: number;
  /** Spans of requests whose response never arrives are ended after this long. */
  pendingSpanTtlMs?: number;
  maxPendingSpans?: number;
}

const headerGetter: TextMapGetter<Headers> = {
  keys: (carrier) => [...carrier.keys()],
  get: (carrier, key) => carrier.get(key.toLowerCase())?.[0],
};

function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

export class Telemetry {
  readonly #tracerProvider: TracerProvider;
  readonly #meterProvider: MeterProvider;
  readonly #tracer;
  readonly #loggerProvider: LoggerProvider;
  readonly #log: OtelLogger;
  readonly #decisions: Counter;
  readonly #findings: Counter;
  readonly #detectorErrors: Counter;
  readonly #decisionMs;
  readonly #detectorMs;
  readonly #meter;
  readonly #propagator = new W3CTraceContextPropagator();
  readonly #otlp: boolean;
  readonly #prometheus: PrometheusExporter | undefined;
  readonly #pending: PendingMap<Span>;
  readonly #sweep: NodeJS.Timeout;

  constructor(options: TelemetryOptions) {
    if (options.endpoint === undefined && options.prometheus === undefined) throw new Error('telemetry needs an OTLP endpoint or a Prometheus port');
    const base = options.endpoint?.replace(/\/+$/, '');
    this.#otlp = base !== undefined;
    const resource = resourceFromAttributes({ 'service.name': options.serviceName ?? 'meshward', 'service.namespace': 'meshward' });
    this.#tracerProvider = new TracerProvider({
      resource,
      spanProcessors: base !== undefined ? [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${base}/v1/traces` }), scheduledDelayMillis: 500 })] : [],
    });
    if (options.prometheus) this.#prometheus = new PrometheusExporter({ ...options.prometheus, preventServerStart: true });
    this.#meterProvider = new MeterProvider({
      resource,
      readers: [
        ...(base !== undefined ? [new PeriodicExportingMetricReader({
          exporter: new OTLPMetricExporter({ url: `${base}/v1/metrics` }),
          exportIntervalMillis: options.metricExportIntervalMs ?? 15_000,
        })] : []),
        ...(this.#prometheus ? [this.#prometheus] : []),
      ],
    });
    this.#loggerProvider = new LoggerProvider({
      resource,
      processors: base !== undefined ? [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${base}/v1/logs` }), scheduledDelayMillis: 500 })] : [],
    });
    this.#log = this.#loggerProvider.getLogger('meshward');
    this.#tracer = this.#tracerProvider.getTracer('meshward');
    const meter = this.#meterProvider.getMeter('meshward');
    this.#meter = meter;
    this.#decisions = meter.createCounter('meshward.decisions', { description: 'Requests meshward decided on, by decision' });
    this.#findings = meter.createCounter('meshward.findings', { description: 'Findings, by OWASP category, severity and detector' });
    this.#detectorErrors = meter.createCounter('meshward.detector.errors', { description: 'Exchanges a detector threw on (the exchange went on without it)' });
    meter.createObservableCounter('meshward.inspect.bodies_not_inspected', { description: 'Large bodies the decode workers could not inspect, by reason (queue-full, deadline, worker-failed); spec.content.overload decides whether they pass' })
      .addCallback((r) => { for (const [reason, n] of Object.entries(uninspectedBodies())) r.observe(n, { reason }); });
    this.#decisionMs = meter.createHistogram('meshward.decision.duration', {
      description: 'From the request headers reaching the server to the decision (includes waiting for a sampled body)', unit: 'ms',
    });
    this.#detectorMs = meter.createHistogram('meshward.detector.duration', {
      description: 'Event-loop time one detector took on one exchange, by detector and phase (request, response)', unit: 'ms',
      advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25] },
    });
    // TTLs are enforced by a periodic sweep: lru-cache's ttlAutopurge would start one timer per span.
    this.#pending = new PendingMap<Span>({
      max: options.maxPendingSpans ?? 100_000,
      ttlMs: options.pendingSpanTtlMs ?? 60_000,
      // A span evicted before its response (cancelled stream, cap reached) still ends and is exported.
      onEvicted: (span) => {
        span.setAttribute('meshward.response_seen', false);
        span.end();
      },
    }, trace.wrapSpanContext(INVALID_SPAN_CONTEXT));
    this.#sweep = setInterval(() => this.#pending.purgeStale(), Math.min(options.pendingSpanTtlMs ?? 60_000, PENDING_SWEEP_MS));
    this.#sweep.unref();
  }

  /** Opens the Prometheus endpoint (when configured); rejects naming the port when it cannot. */
  async startPrometheus(): Promise<void> {
    if (!this.#prometheus) return;
    await this.#prometheus.startServer().catch((err: Error) => {
      throw new Error(`prometheus endpoint: cannot listen: ${err.message}`);
    });
  }

  /** Subscribes to an engine's decisions and responses. */
  attach(engine: Engine): () => void {
    return engine.addObserver({
      onDecision: (record) => this.#onDecision(record),
      onResponse: (request, response) => this.#onResponse(request, response),
      onFinding: (finding, exchange) => this.#onFinding(finding, exchange),
      onDetectorError: (detector) => this.#detectorErrors.add(1, { detector }),
      onDetectorTiming: (detector, phase, durationMs) => this.#detectorMs.record(durationMs, { detector, phase }),
    });
  }

  /** Exports the ext_proc server's stream counters (started, failed) as observable counters. */
  observeServer(counters: () => Readonly<ServerCounters & Partial<StreamCapCounters> & Partial<BodyBudgetCounters>> | undefined): void {
    const started = this.#meter.createObservableCounter('meshward.ext_proc.streams', { description: 'ext_proc streams opened by Envoy' });
    const failed = this.#meter.createObservableCounter('meshward.ext_proc.stream_errors', { description: 'ext_proc streams the server ended with a gRPC error (protocol violations, internal errors)' });
    started.addCallback((r) => { const c = counters(); if (c) r.observe(c.streamsStarted); });
    failed.addCallback((r) => { const c = counters(); if (c) r.observe(c.streamsFailed); });
    const refused = this.#meter.createObservableCounter('meshward.ext_proc.streams_refused', { description: 'ext_proc streams refused with RESOURCE_EXHAUSTED because the server held its concurrent-stream cap (Envoy applied the failure mode)' });
    const reaped = this.#meter.createObservableCounter('meshward.ext_proc.streams_reaped', { description: 'ext_proc streams the server ended because they sent nothing for --stream-idle-seconds' });
    refused.addCallback((r) => { const c = counters(); if (c?.streamsRefused !== undefined) r.observe(c.streamsRefused); });
    reaped.addCallback((r) => { const c = counters(); if (c?.streamsReaped !== undefined) r.observe(c.streamsReaped); });
    const overBudget = this.#meter.createObservableCounter('meshward.ext_proc.bodies_over_budget', { description: 'Request and response bodies not held for inspection because the server-wide body budget (--max-buffered-body-mib) was full; spec.content.overload decided whether they passed' });
    const held = this.#meter.createObservableGauge('meshward.ext_proc.body_bytes_held', { description: 'Request and response body bytes held for inspection right now, server-wide', unit: 'By' });
    overBudget.addCallback((r) => { const c = counters(); if (c?.bodiesOverBudget !== undefined) r.observe(c.bodiesOverBudget); });
    held.addCallback((r) => { const c = counters(); if (c?.bodyBytesHeld !== undefined) r.observe(c.bodyBytesHeld); });
  }

  #onFinding(finding: Finding, exchange: Exchange): void {
    this.#findings.add(1, { category: finding.category, severity: finding.severity, detector: finding.detector });
    if (!this.#otlp) return;
    let evidence = JSON.stringify(finding.evidence);
    if (evidence.length > MAX_EVIDENCE_CHARS) evidence = `${evidence.slice(0, MAX_EVIDENCE_CHARS)}…`;
    this.#log.emit({
      eventName: 'meshward.finding',
      timestamp: finding.time,
      severityNumber: LOG_SEVERITY[finding.severity],
      severityText: finding.severity.toUpperCase(),
      body: finding.summary,
      attributes: {
        'meshward.finding.category': finding.category,
        'meshward.finding.detector': finding.detector,
        'meshward.finding.severity': finding.severity,
        'meshward.finding.enforcement': finding.enforcement,
        'meshward.finding.evidence': evidence,
        'meshward.caller': finding.caller,
        'meshward.operation': finding.operation,
        'meshward.request_id': finding.requestId,
      },
      // In the request's trace, so a backend links the finding to the request's spans.
      context: this.#propagator.extract(ROOT_CONTEXT, exchange.request.headers, headerGetter),
    });
  }

  #onDecision({ request, decision }: DecisionRecord): void {
    this.#decisions.add(1, { decision: decision.action });
    this.#decisionMs.record(Math.max(0, Date.now() - request.time), { decision: decision.action });
    if (!this.#otlp) return;
    const parent = this.#propagator.extract(ROOT_CONTEXT, request.headers, headerGetter);
    const span = this.#tracer.startSpan('meshward.decide', {
      kind: SpanKind.INTERNAL,
      startTime: request.time,
      attributes: this.#requestAttributes(request),
    }, parent);
    span.setAttribute('meshward.decision', decision.action);
    if (decision.action === 'deny') {
      span.setAttributes({ 'meshward.reason': decision.reason, 'meshward.rule': decision.rule, 'http.response.status_code': decision.status });
      span.setStatus({ code: SpanStatusCode.OK, message: `denied by ${decision.rule}` });
      span.end();
      return;
    }
    this.#pending.set(request.requestId, span);
  }

  #onResponse(request: RequestEvent, response: ResponseEvent): void {
    const span = this.#pending.take(request.requestId);
    if (!span) return;
    span.setAttribute('http.response.status_code', response.status);
    span.setAttribute('meshward.response_seen', true);
    span.end(response.time);
  }

  #requestAttributes(request: RequestEvent): Record<string, string | boolean> {
    return {
      'meshward.request_id': request.requestId,
      'meshward.caller.workload': request.caller.workload ?? '',
      'meshward.caller.identity_source': request.caller.identitySource,
      'meshward.caller.mtls': request.caller.mtls,
      'http.request.method': request.method,
      'server.address': request.authority,
      'url.path': pathOnly(request.path),
    };
  }

  /** Exports everything buffered now (used at shutdown and by tests). */
  async flush(): Promise<void> {
    await this.#tracerProvider.forceFlush();
    await this.#meterProvider.forceFlush();
    await this.#loggerProvider.forceFlush();
  }

  async shutdown(): Promise<void> {
    clearInterval(this.#sweep);
    this.#pending.clear();
    await this.#tracerProvider.shutdown();
    await this.#meterProvider.shutdown();
    await this.#loggerProvider.shutdown();
  }
}

// Re-exported so callers need not depend on the API package for context handling.
export { otelContext, propagation, trace };
