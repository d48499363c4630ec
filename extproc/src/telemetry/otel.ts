// OpenTelemetry for meshward: one span per request meshward decided on (a child of the request's
// own trace when it carries W3C traceparent), decision metrics, and findings as log records, all
// exported by OTLP/HTTP to the user's collector. No raw secrets: spans carry the path without its
// query string, the caller's SPIFFE ID and the decision, never headers.
import { context as otelContext, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type TextMapGetter, type Counter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { LRUCache } from 'lru-cache';
import type { Engine, DecisionRecord } from '../engine/engine.ts';
import type { Headers, RequestEvent, ResponseEvent } from '../engine/event.ts';

export interface TelemetryOptions {
  /** OTLP/HTTP base URL, e.g. http://otel-collector:4318 (signals go to /v1/traces, /v1/metrics). */
  endpoint: string;
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
  readonly #decisions: Counter;
  readonly #propagator = new W3CTraceContextPropagator();
  readonly #pending: LRUCache<string, Span>;

  constructor(options: TelemetryOptions) {
    const base = options.endpoint.replace(/\/+$/, '');
    const resource = resourceFromAttributes({ 'service.name': options.serviceName ?? 'meshward', 'service.namespace': 'meshward' });
    this.#tracerProvider = new TracerProvider({
      resource,
      spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${base}/v1/traces` }), scheduledDelayMillis: 500 })],
    });
    this.#meterProvider = new MeterProvider({
      resource,
      readers: [new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: `${base}/v1/metrics` }),
        exportIntervalMillis: options.metricExportIntervalMs ?? 15_000,
      })],
    });
    this.#tracer = this.#tracerProvider.getTracer('meshward');
    const meter = this.#meterProvider.getMeter('meshward');
    this.#decisions = meter.createCounter('meshward.decisions', { description: 'Requests meshward decided on, by decision' });
    this.#pending = new LRUCache<string, Span>({
      max: options.maxPendingSpans ?? 100_000,
      ttl: options.pendingSpanTtlMs ?? 60_000,
      ttlAutopurge: true,
      // A span evicted before its response (cancelled stream, cap reached) still ends and is exported.
      dispose: (span, _key, reason) => {
        if (reason !== 'delete') {
          span.setAttribute('meshward.response_seen', false);
          span.end();
        }
      },
    });
  }

  /** Subscribes to an engine's decisions and responses. */
  attach(engine: Engine): () => void {
    return engine.addObserver({
      onDecision: (record) => this.#onDecision(record),
      onResponse: (request, response) => this.#onResponse(request, response),
    });
  }

  #onDecision({ request, decision }: DecisionRecord): void {
    this.#decisions.add(1, { decision: decision.action });
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
    const span = this.#pending.get(request.requestId);
    if (!span) return;
    this.#pending.delete(request.requestId);
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
  }

  async shutdown(): Promise<void> {
    this.#pending.clear();
    await this.#tracerProvider.shutdown();
    await this.#meterProvider.shutdown();
  }
}

// Re-exported so callers need not depend on the API package for context handling.
export { otelContext, propagation, trace };
