// The decision engine: takes normalized events, runs the static deny rules and every registered
// detector on the exchange, applies the policy mode (monitor: record and allow; enforce: a finding
// that asks for deny or rate-limit becomes a 403/429), and reports decisions and findings to
// observers (logs, telemetry, the demo, replay). It knows nothing of Envoy.
import { LRUCache } from 'lru-cache';
import type { RequestEvent, ResponseEvent } from './event.ts';
import type { Decision, DenyDecision, ResponseVerdict } from './decision.ts';
import { ALLOW, CONTINUE_RESPONSE } from './decision.ts';
import { redactJsonBody } from '../inspect/redact.ts';
import { DenyRules, type DenyRule } from './rules.ts';
import type { Detector } from './detector.ts';
import type { Finding } from './finding.ts';
import { toExchange, type Exchange } from './exchange.ts';
import { createDefaultDetectors } from './detectors/index.ts';
import type { DetectorContext } from './detector-context.ts';
import { resolveDetectorSettings, type DetectorSettingsInput } from './policy-settings.ts';
import { EventClock, LearningTracker } from './state.ts';
import { StateRegistry } from './state-snapshot.ts';
import { CollectionLearner } from './objects.ts';
import { performance } from 'node:perf_hooks';
import { contentContextOf } from './detectors/content.ts';
import { bodyCutEvidence, capBody } from './body-cap.ts';
import { PendingMap } from './pending-map.ts';

export type PolicyMode = 'monitor' | 'enforce';
/** Per-detector override of the policy mode; off = the detector does not run. */
export type DetectorMode = PolicyMode | 'off';
/** Detector name -> its own mode; detectors not listed follow the request's mode. */
export type DetectorModes = Readonly<Record<string, DetectorMode>>;

export interface EngineConfig {
  denyRules: readonly DenyRule[];
  /** monitor (default): findings are recorded, requests pass. enforce: findings that ask for it block. */
  mode?: PolicyMode;
  /** Per-exchange mode (e.g. per namespace policy); overrides `mode` when it returns one. */
  modeFor?: (exchange: Exchange) => PolicyMode | undefined;
  /** Per-request deny rules and detector settings (e.g. the namespace policy of the workload the
   *  request arrived at); undefined = the engine's own. Each distinct profile key gets its own
   *  detector set and state (at most MAX_PROFILES, least recently used evicted). */
  profileFor?: (request: RequestEvent) => EngineProfile | undefined;
  /** Detector thresholds, windows, learning periods and state caps; defaults for anything absent. */
  settings?: DetectorSettingsInput;
  detectorModes?: DetectorModes;
  /** Request and response bodies are inspected up to this many bytes (findings say so); absent = the
   *  inspection's own caps. */
  maxBodyBytes?: number;
  /** Replaces the registered detectors (engine/detectors/index.ts) with this set. */
  detectors?: (context: DetectorContext) => Detector[];
  /** Requests awaiting their response, kept for pairing (oldest evicted beyond it). Default 10,000 (in-flight requests; Envoy times streams out long before). */
  maxPendingExchanges?: number;
}

export interface EngineProfile {
  /** Identifies the settings: equal keys share one detector set. */
  key: string;
  denyRules: readonly DenyRule[];
  settings?: DetectorSettingsInput;
  detectorModes?: DetectorModes;
  maxBodyBytes?: number;
}

/** What a request runs through: the engine's own configuration or a profile's. */
interface Pipeline { rules: DenyRules; detectors: Detector[]; modes: DetectorModes; maxBodyBytes: number | undefined }

/** Detector sets kept for per-request profiles; each has its own bounded state (lru caps). */
const MAX_PROFILES = 16;

export interface DecisionRecord {
  request: RequestEvent;
  decision: Decision;
  /** Findings the request phase produced (empty when none). */
  findings?: readonly Finding[];
  /** Set when the decision stopped a response (its request was allowed earlier). */
  phase?: 'response';
}

export interface EngineObserver {
  onDecision?(record: DecisionRecord): void;
  onResponse?(request: RequestEvent, response: ResponseEvent): void;
  /** Every finding, from the request phase (before the decision is returned) or the response phase. */
  onFinding?(finding: Finding, exchange: Exchange): void;
  /** A detector threw; the exchange went on without it. */
  onDetectorError?(detector: string, error: unknown, exchange: Exchange): void;
  /** How long one detector took on one exchange (milliseconds of event-loop time, for telemetry). */
  onDetectorTiming?(detector: string, phase: DetectorPhase, durationMs: number): void;
}

export type DetectorPhase = 'request' | 'response';

const DEFAULT_MAX_PENDING = 10_000;
const SENTINEL_EXCHANGE: Exchange = {
  request: { requestId: '', time: 0, caller: { mtls: false, identitySource: 'none' }, method: '', authority: '', path: '', headers: new Map() },
  callerKey: '', operation: '', template: '',
};
const PENDING_TTL_MS = 10 * 60_000;

function denyFor(finding: Finding): Decision {
  return {
    action: 'deny',
    status: finding.enforcement === 'rate-limit' ? 429 : 403,
    reason: finding.category,
    rule: finding.detector,
  };
}

export class Engine {
  #rules!: DenyRules;
  #detectorModes: DetectorModes = {};
  /** The engine's own pipeline, built on first use after each reconfigure. */
  #own: Pipeline | undefined;
  #maxBodyBytes: number | undefined;
  #mode: PolicyMode = 'monitor';
  #modeFor: EngineConfig['modeFor'];
  #profileFor: EngineConfig['profileFor'];
  // A dropped profile's maps leave the state registry with it (they are not saved again).
  #profiles = new LRUCache<string, Pipeline>({ max: MAX_PROFILES, dispose: (_set, key) => this.#state.dropScope(key) });
  readonly #requestProfiles = new WeakMap<RequestEvent, Pipeline>();
  #detectors: Detector[] = [];
  #context!: DetectorContext;
  #learning!: LearningTracker;
  #pending!: PendingMap<Exchange>;
  #collections!: CollectionLearner;
  #detectorsBuiltFrom: { identity: string; factory: EngineConfig['detectors'] } | undefined;
  readonly #clock = new EventClock();
  readonly #state = new StateRegistry(this.#clock);
  readonly #observers: EngineObserver[] = [];
  /** Observers that want detector timings; none (the usual case) means no clock reads per detector. */
  readonly #timingObservers: EngineObserver[] = [];

  constructor(config: EngineConfig) {
    this.reconfigure(config);
  }

  /** Replaces rules and mode; in-flight streams keep the decision they already got. Detectors and
   *  their learned state are rebuilt only when the detector settings or set change, so a policy
   *  reload that only flips the mode or the deny rules keeps every baseline. */
  reconfigure(config: EngineConfig): void {
    this.#rules = new DenyRules(config.denyRules);
    this.#detectorModes = config.detectorModes ?? {};
    this.#maxBodyBytes = config.maxBodyBytes;
    this.#own = undefined;
    this.#mode = config.mode ?? 'monitor';
    this.#modeFor = config.modeFor;
    this.#profileFor = config.profileFor;
    this.#profiles.clear(); // deny rules and settings may have changed; sets rebuild on demand
    const settings = resolveDetectorSettings(config.settings);
    const identity = `${JSON.stringify(settings)}|${config.maxPendingExchanges ?? DEFAULT_MAX_PENDING}`;
    if (this.#detectorsBuiltFrom?.identity === identity && this.#detectorsBuiltFrom.factory === config.detectors) return;
    this.#detectorsBuiltFrom = { identity, factory: config.detectors };
    this.#state.forgetMaps(); // the maps built below register again; dropped detectors' maps are not saved
    this.#learning = new LearningTracker(this.#clock, settings.caps, this.#state);
    this.#context = { settings, clock: this.#clock, learning: this.#learning, state: this.#state };
    this.#detectors = (config.detectors ?? createDefaultDetectors)(this.#context);
    this.#collections = new CollectionLearner(this.#clock, settings.caps, this.#state);
    this.#pending = new PendingMap<Exchange>({
      max: Math.max(1, config.maxPendingExchanges ?? DEFAULT_MAX_PENDING),
      ttlMs: PENDING_TTL_MS,
      perf: this.#clock,
    }, SENTINEL_EXCHANGE);
  }

  get detectorNames(): string[] { return this.#detectors.map((d) => d.name); }

  /** The learned state persisted across restarts (snapshot/restore; see state-snapshot.ts). */
  get state(): StateRegistry { return this.#state; }

  addObserver(observer: EngineObserver): () => void {
    this.#observers.push(observer);
    if (observer.onDetectorTiming) this.#timingObservers.push(observer);
    return () => {
      for (const list of [this.#observers, this.#timingObservers]) {
        const i = list.indexOf(observer);
        if (i !== -1) list.splice(i, 1);
      }
    };
  }

  #exchangeOf(request: RequestEvent): Exchange {
    const exchange = toExchange(request);
    const resolved = this.#collections.resolve(request.authority, request.path, true, request.template);
    exchange.resource = `${request.method} ${request.authority} ${resolved.template}`;
    exchange.pathIds = resolved.ids;
    return exchange;
  }

  #requestExchange(request: RequestEvent): Exchange {
    const exchange = this.#exchangeOf(request);
    exchange.serviceHistory = this.#learning.observe(request.authority, request.time);
    return exchange;
  }

  /** The request's pipeline: its profile's, else the engine's own. */
  #pipelineOf(request: RequestEvent): Pipeline {
    return this.#profileOf(request) ?? (this.#own ??= { rules: this.#rules, detectors: this.#detectors, modes: this.#detectorModes, maxBodyBytes: this.#maxBodyBytes });
  }

  #run(phase: 'onRequest' | 'onResponse', exchange: Exchange, pipeline: Pipeline): Finding[] {
    const all: Finding[] = [];
    const timed = this.#timingObservers.length > 0;
    for (const d of pipeline.detectors) {
      const fn = d[phase];
      if (fn === undefined || pipeline.modes[d.name] === 'off') continue;
      const started = timed ? performance.now() : 0;
      try {
        const found = fn.call(d, exchange);
        if (found !== undefined) all.push(...found);
      } catch (error) {
        for (const o of this.#observers) o.onDetectorError?.(d.name, error, exchange);
      }
      if (timed) {
        const durationMs = performance.now() - started;
        const timingPhase = phase === 'onRequest' ? 'request' : 'response';
        for (const o of this.#timingObservers) o.onDetectorTiming!(d.name, timingPhase, durationMs);
      }
    }
    const cut = bodyCutEvidence(exchange);
    if (cut !== undefined) for (const f of all) f.evidence.bodyCut = cut;
    return all;
  }

  /** Hands findings to the observers (logs, OTel) once the verdict has added its evidence
   *  (redaction, deferred enforcement), so every sink sees the final finding. */
  #emit(findings: readonly Finding[], exchange: Exchange): void {
    for (const f of findings) for (const o of this.#observers) o.onFinding?.(f, exchange);
  }

  /** Large bodies are decoded off the event loop before decide/observeResponse look at them (the
   *  synchronous calls then find the decoded sample ready). Returns undefined when nothing needs
   *  waiting for (headers only, small bodies): the caller stays synchronous. */
  prepare(event: RequestEvent | ResponseEvent): Promise<void> | undefined {
    if (event.body === undefined) return undefined;
    this.#capBody(event);
    return contentContextOf(this.#context).decoder.prepare(event.body, event.headers);
  }

  /** The server could not keep this body (memory budget): detectors see it as not inspected, and
   *  spec.content.overload decides whether its request passes. */
  skipBody(event: RequestEvent | ResponseEvent, detail: string): void {
    if (event.body === undefined) return;
    this.#capBody(event);
    contentContextOf(this.#context).decoder.skip(event.body!, event.headers, detail);
  }

  /** The policy's cap applies before decoding, so the decoder never reads past it. */
  #capBody(event: RequestEvent | ResponseEvent): void {
    const request = 'method' in event ? event : this.#pending.get(event.requestId)?.request;
    if (request !== undefined) capBody(event, this.#pipelineOf(request).maxBodyBytes);
  }

  /** The request's profile (deny rules, detectors), when profileFor gives one; remembered per request
   *  so its response runs through the same detectors. */
  #profileOf(request: RequestEvent): Pipeline | undefined {
    if (this.#profileFor === undefined) return undefined;
    let built = this.#requestProfiles.get(request);
    if (built !== undefined) return built;
    const profile = this.#profileFor(request);
    if (profile === undefined) return undefined;
    built = this.#built(profile);
    this.#requestProfiles.set(request, built);
    return built;
  }

  #built(profile: EngineProfile): Pipeline {
    let built = this.#profiles.get(profile.key);
    if (built === undefined) {
      const settings = resolveDetectorSettings(profile.settings);
      const context: DetectorContext = { settings, clock: this.#clock, learning: this.#learning, state: this.#state.scope(profile.key) };
      built = { rules: new DenyRules(profile.denyRules), detectors: (this.#detectorsBuiltFrom?.factory ?? createDefaultDetectors)(context), modes: profile.detectorModes ?? {}, maxBodyBytes: profile.maxBodyBytes };
      this.#profiles.set(profile.key, built);
    }
    return built;
  }

  /** Builds the detectors of profiles policy will ask for, when a policy is applied: building a
   *  detector set takes long enough (bounded maps are allocated up front) that doing it on a
   *  namespace's first request could exceed Envoy's message timeout. */
  prepareProfiles(profiles: readonly EngineProfile[]): void {
    for (const p of profiles) this.#built(p);
  }

  decide(request: RequestEvent): Decision {
    this.#clock.advance(request.time);
    const pipeline = this.#pipelineOf(request);
    let decision = pipeline.rules.evaluate(request);
    let findings: Finding[] = [];
    if (decision.action === 'allow') {
      capBody(request, pipeline.maxBodyBytes);
      const exchange = this.#requestExchange(request);
      this.#pending.set(request.requestId, exchange);
      findings = this.#run('onRequest', exchange, pipeline);
      const mode = this.#modeFor?.(exchange) ?? this.#mode;
      // A detector's own mode (policy spec.detectors[].mode) overrides the request's, either way.
      const enforced = findings.filter((f) => f.enforcement !== 'none' && (pipeline.modes[f.detector] ?? mode) === 'enforce');
      const blocking = enforced.find((f) => f.enforcement === 'deny') ?? enforced[0];
      if (blocking !== undefined) {
        decision = denyFor(blocking);
        // Envoy did not wait for this verdict: say so where the finding is read, so nobody takes
        // the request for stopped. The deny still reaches the filter's tables (enforced.ts).
        if (request.observedOnly === true) blocking.evidence.enforcementDeferred = 'observability mode: this request was not stopped; the sidecar filter refuses the caller from its next request';
      }
      if (decision.action === 'deny') this.#pending.delete(request.requestId);
      this.#emit(findings, exchange);
    }
    const record: DecisionRecord = { request, decision: decision.action === 'allow' ? ALLOW : decision, findings };
    for (const o of this.#observers) o.onDecision?.(record);
    return record.decision;
  }

  /** Runs the response detectors. In enforce mode a response with a body may be stopped (a finding
   *  with blocksResponse) or have sensitive values redacted (findings with redact paths). */
  observeResponse(request: RequestEvent, response: ResponseEvent): ResponseVerdict {
    const exchange = this.#pending.take(request.requestId) ?? this.#exchangeOf(request);
    exchange.response = response;
    const pipeline = this.#pipelineOf(request);
    const body = response.body;
    capBody(response, pipeline.maxBodyBytes);
    const findings = this.#run('onResponse', exchange, pipeline);
    const verdict = this.#responseVerdict(exchange, pipeline, body, findings);
    this.#emit(findings, exchange);
    for (const o of this.#observers) o.onResponse?.(request, response);
    if (verdict.action === 'deny') for (const o of this.#observers) o.onDecision?.({ request, decision: verdict.decision, findings, phase: 'response' });
    return verdict;
  }

  /** Whether the server must ask Envoy for this response's body whatever the filter's sampling said:
   *  a detector acts on the answer before the client receives it (see Detector.needsResponseBody). */
  needsResponseBody(request: RequestEvent, response: ResponseEvent): boolean {
    const pipeline = this.#pipelineOf(request);
    // The pending exchange, else a plain one: this question must not learn from the request again.
    const exchange = this.#pending.get(request.requestId) ?? toExchange(request);
    const mode = this.#modeFor?.(exchange) ?? this.#mode;
    return pipeline.detectors.some((d) => {
      const detectorMode = pipeline.modes[d.name] ?? mode;
      return detectorMode !== 'off' && d.needsResponseBody?.(exchange, detectorMode, response) === true;
    });
  }

  /** Stop, redact or continue; adds the redaction outcome to the findings' evidence. */
  #responseVerdict(exchange: Exchange, pipeline: Pipeline, body: Buffer | undefined, findings: Finding[]): ResponseVerdict {
    const response = exchange.response!;
    if (body === undefined || findings.length === 0) return CONTINUE_RESPONSE;
    const mode = this.#modeFor?.(exchange) ?? this.#mode;
    const enforced = findings.filter((f) => (pipeline.modes[f.detector] ?? mode) === 'enforce');
    const blocking = enforced.find((f) => f.blocksResponse === true && f.enforcement !== 'none');
    if (blocking !== undefined) {
      const decision: DenyDecision = { action: 'deny', status: 502, reason: blocking.category, rule: blocking.detector };
      return { action: 'deny', decision };
    }
    const paths = enforced.flatMap((f) => f.redact ?? []);
    if (paths.length === 0) return CONTINUE_RESPONSE;
    // A body cut by the policy's cap or Envoy's buffer limit is not the whole answer: never rewrite it.
    const rewritten = response.bodyComplete === true && response.body === body ? redactJsonBody(body, response.headers, paths) : undefined;
    for (const f of enforced) if (f.redact) f.evidence.redaction = rewritten ? 'redacted' : 'not possible (body cut, encoded or not JSON): delivered unchanged';
    return rewritten ? { action: 'redact', ...rewritten } : CONTINUE_RESPONSE;
  }

  /** Findings about a request the engine must not learn from (a forged ext_proc stream): observers
   *  get them; no rule, detector, baseline or pending exchange sees the request. */
  reportUntrusted(request: RequestEvent, findings: readonly Finding[]): void {
    const exchange = toExchange(request);
    for (const f of findings) for (const o of this.#observers) o.onFinding?.(f, exchange);
  }

  /** Every detector's standing per-operation list (misconfiguration posture), across the mesh
   *  default's detectors and every policy profile's, by detector and operation. */
  posture(): { detector: string; operation: string; items: readonly unknown[] }[] {
    const out = new Map<string, { detector: string; operation: string; items: unknown[] }>();
    const pipelines = [this.#own ?? { detectors: this.#detectors }, ...this.#profiles.values()];
    for (const p of pipelines) {
      for (const d of p.detectors) {
        for (const entry of d.posture?.() ?? []) {
          const key = `${d.name}\u0000${entry.operation}`;
          const row = out.get(key) ?? { detector: d.name, operation: entry.operation, items: [] };
          row.items.push(...entry.items);
          out.set(key, row);
        }
      }
    }
    return [...out.values()].sort((a, b) => a.operation.localeCompare(b.operation) || a.detector.localeCompare(b.detector));
  }

  /** Requests awaiting their response (bounded by maxPendingExchanges). */
  get pendingExchanges(): number { return this.#pending.size; }
}
