// One ext_proc gRPC stream = one HTTP request. Enforces Envoy's protocol (per direction: headers,
// then body chunks, then trailers; exactly one response per message, in order) and hands the
// messages to the engine through the thin request/response adapters. A message whose large body the
// engine decodes off the event loop is answered asynchronously; later messages of the stream wait
// behind it, so answers still go out one per message, in order.
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Engine } from '../engine/engine.ts';
import type { RequestEvent, ResponseEvent } from '../engine/event.ts';
import { ALLOW } from '../engine/decision.ts';
import type { Logger } from '../log.ts';
import type { ProcessingRequest, ProcessingResponse, RequestKind } from './messages.ts';
import { toRequestEvent, toResponseEvent } from './request.ts';
import { CONTINUE_RESPONSES, RESERVED_HEADER_PREFIX, denyResponse, replacedBodyResponse, requestHeadersResponse } from './response.ts';
import { checkStreamBinding, forgedStreamFinding, FORGED_STREAM_DENY, type FailureMode } from './stream-binding.ts';
import type { StreamPeer } from '../server-tls.ts';
import type { BodyBudget, BodyLease } from '../body-budget.ts';

/** Response headers of a sampled response: continue, and send the body (up to Envoy's buffer limit;
 *  BUFFERED would turn a larger response into a 500). */
const RESPONSE_HEADERS_WANT_BODY: ProcessingResponse = { response_headers: {}, mode_override: { response_body_mode: 'BUFFERED_PARTIAL' } };

/** The lease of a body nothing is charged for (no server budget, or an empty body). */
const UNBUDGETED: BodyLease = { bytes: 0, release: () => {} };

/** Phases within one direction, in the only order Envoy may send them. */
const Phase = { None: 0, Headers: 1, Body: 2, Trailers: 3 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

export interface ProtocolError {
  code: GrpcStatus;
  message: string;
}

export type StepResult =
  | { kind: 'respond'; response: ProcessingResponse }
  | { kind: 'silent' } // observability mode: Envoy ignores responses
  | { kind: 'error'; error: ProcessingError };

export class ProcessingError extends Error {
  readonly code: GrpcStatus;
  constructor(code: GrpcStatus, message: string) {
    super(message);
    this.code = code;
  }
}

const KINDS: ReadonlySet<string> = new Set<RequestKind>([
  'request_headers', 'request_body', 'request_trailers', 'response_headers', 'response_body', 'response_trailers',
]);

/** An upgrade (WebSocket) or CONNECT: what follows the headers is a tunnel that ends only when the
 *  connection does, so its "body" is never buffered (Envoy would hold the tunnel until the timeout). */
function opensTunnel(request: RequestEvent): boolean {
  return request.method === 'CONNECT' || request.headers.has('upgrade');
}

/** Who opened the stream and what to do with a request the stream's claim cannot be trusted for. */
export interface StreamBindingOptions {
  peer: StreamPeer;
  failureMode: FailureMode;
}

export class ExtProcStream {
  #requestPhase: Phase = Phase.None;
  #responsePhase: Phase = Phase.None;
  #requestBodyEnded = false;
  #responseBodyEnded = false;
  #immediateResponseSent = false;
  #request: RequestEvent | undefined;
  /** A sampled request with a body is decided when its body arrives (Envoy holds it until then). */
  #decisionPending = false;
  /** Response headers of a sampled response, observed together with its body. */
  #pendingResponse: ResponseEvent | undefined;
  readonly #requestId: string;
  readonly #engine: Engine;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #binding: StreamBindingOptions | undefined;
  /** The last asynchronous answer still pending; later messages queue behind it. */
  #tail: Promise<StepResult> | undefined;
  /** Whether the message being dispatched may wait for an off-thread body decode (handle(), not step()). */
  #offThread = false;
  readonly #bodyBudget: BodyBudget | undefined;
  /** Body bytes this stream keeps, returned by releaseBodies() when the stream ends. */
  readonly #bodyLeases: BodyLease[] = [];

  constructor(requestId: string, engine: Engine, log: Logger, now: () => number = Date.now, binding?: StreamBindingOptions, bodyBudget?: BodyBudget) {
    this.#binding = binding;
    this.#bodyBudget = bodyBudget;
    this.#requestId = requestId;
    this.#engine = engine;
    this.#log = log;
    this.#now = now;
  }

  get requestId(): string { return this.#requestId; }

  /** The stream ended (any way: end, cancel, error, idle reap): its bodies leave the budget. Idempotent. */
  releaseBodies(): void {
    for (const lease of this.#bodyLeases.splice(0)) lease.release();
  }

  /** A lease on the body when it fits the server's budget (released by releaseBodies() at the
   *  latest). If not, undefined: the engine marks it not inspected and the caller must not keep it. */
  #keepBody(event: RequestEvent | ResponseEvent): BodyLease | undefined {
    const bytes = event.body?.length ?? 0;
    if (this.#bodyBudget === undefined || bytes === 0) return UNBUDGETED;
    const lease = this.#bodyBudget.reserve(bytes);
    if (lease !== undefined) {
      this.#bodyLeases.push(lease);
      return lease;
    }
    const budget = this.#bodyBudget;
    this.#engine.skipBody(event, `body of ${bytes} bytes not inspected: server body budget full (${budget.held} of ${budget.maxBytes} bytes held)`);
    const count = budget.reportDue(Date.now());
    if (count !== undefined) this.#log.warn({ requestId: this.#requestId, overBudget: count, heldBytes: budget.held, maxBytes: budget.maxBytes }, 'bodies not inspected: server body budget full (spec.content.overload decides whether they pass)');
    return undefined;
  }

  /** Handles one message on the calling thread (bodies of any size decoded synchronously). Never
   *  throws: protocol violations come back as an error result. Not to be mixed with handle(). */
  step(message: ProcessingRequest): StepResult {
    const result = this.#stepNow(message, false);
    if (result instanceof Promise) throw new Error('meshward: synchronous step produced an asynchronous result');
    return result;
  }

  /** The server's path: handles one message synchronously unless a large body is being decoded off
   *  the event loop (then a promise); results come back in message order either way, never
   *  rejecting: protocol violations come back as an error result. */
  handle(message: ProcessingRequest): StepResult | Promise<StepResult> {
    if (this.#tail !== undefined) return this.#queue(this.#tail.then(() => this.#stepNow(message, true)));
    const result = this.#stepNow(message, true);
    return result instanceof Promise ? this.#queue(result) : result;
  }

  /** Resolves once every message handed to step() has its result. */
  async idle(): Promise<void> {
    while (this.#tail !== undefined) await this.#tail;
  }

  #queue(result: Promise<StepResult>): Promise<StepResult> {
    this.#tail = result;
    void result.then(() => { if (this.#tail === result) this.#tail = undefined; });
    return result;
  }

  #stepNow(message: ProcessingRequest, offThread: boolean): StepResult | Promise<StepResult> {
    try {
      this.#offThread = offThread;
      const response = this.#dispatch(message);
      return response instanceof Promise
        ? response.then((r) => this.#result(message, r), (err: unknown) => this.#failure(err))
        : this.#result(message, response);
    } catch (err) {
      return this.#failure(err);
    }
  }

  #result(message: ProcessingRequest, response: ProcessingResponse): StepResult {
    return message.observability_mode === true ? { kind: 'silent' } : { kind: 'respond', response };
  }

  #failure(err: unknown): StepResult {
    if (err instanceof ProcessingError) return { kind: 'error', error: err };
    this.#log.error({ err, requestId: this.#requestId }, 'ext_proc message handling failed');
    return { kind: 'error', error: new ProcessingError(GrpcStatus.INTERNAL, 'meshward: internal error while processing message') };
  }

  /** Runs `then` at once, or after the engine has decoded the event's large body off the event loop. */
  #afterPrepare<T>(event: RequestEvent | ResponseEvent, then: () => T): T | Promise<T> {
    const ready = this.#offThread ? this.#engine.prepare(event) : undefined;
    return ready === undefined ? then() : ready.then(then);
  }

  #dispatch(message: ProcessingRequest): ProcessingResponse | Promise<ProcessingResponse> {
    if (message === null || typeof message !== 'object') {
      throw new ProcessingError(GrpcStatus.INVALID_ARGUMENT, 'meshward: ProcessingRequest is not a message');
    }
    const kind = message.request;
    if (kind === undefined || !KINDS.has(kind)) {
      throw new ProcessingError(GrpcStatus.INVALID_ARGUMENT, 'meshward: ProcessingRequest has no request oneof set');
    }
    // In observability mode Envoy ignored the answer: the request went on, its later messages are valid.
    if (this.#immediateResponseSent && message.observability_mode !== true) {
      throw new ProcessingError(GrpcStatus.FAILED_PRECONDITION, `meshward: ${kind} received after an immediate response ended the request`);
    }
    switch (kind) {
      case 'request_headers': {
        this.#requestPhase = this.#advance('request', this.#requestPhase, Phase.Headers, kind);
        const { event, conflict, record } = toRequestEvent(this.#requestId, message, this.#now());
        if (conflict !== undefined) this.#log.error({ requestId: this.#requestId, conflict }, 'identity sources disagree');
        const reserved = [...event.headers.keys()].filter((k) => k.startsWith(RESERVED_HEADER_PREFIX));
        const mismatch = this.#binding && checkStreamBinding(this.#binding.peer, record);
        if (mismatch) {
          // Fabricated: reported, never learned from (this.#request stays unset, so neither is its response).
          const failureMode = this.#binding!.failureMode;
          this.#engine.reportUntrusted(event, [forgedStreamFinding(event, mismatch, failureMode)]);
          this.#log.warn({ requestId: this.#requestId, certificate: mismatch.certificate, claimed: mismatch.claimed, reason: mismatch.reason }, 'forged ext_proc stream');
          const response = requestHeadersResponse(failureMode === 'closed' ? FORGED_STREAM_DENY : ALLOW, this.#requestId, reserved);
          if ('immediate_response' in response) this.#immediateResponseSent = true;
          return response;
        }
        this.#request = event;
        if (event.sampled === true && message.request_headers?.end_of_stream !== true && !opensTunnel(event)) {
          // Content detectors need the body: ask for it (BUFFERED_PARTIAL) and decide when it arrives.
          this.#decisionPending = true;
          return requestHeadersResponse(ALLOW, this.#requestId, reserved, true);
        }
        const decision = this.#engine.decide(event);
        // Bodies only for requests the filter sampled: unsampled requests cost headers only.
        const response = requestHeadersResponse(decision, this.#requestId, reserved, event.sampled === true && !opensTunnel(event));
        if ('immediate_response' in response) this.#immediateResponseSent = true;
        return response;
      }
      case 'request_body': {
        this.#requestPhase = this.#advanceBody('request', this.#requestPhase, this.#requestBodyEnded, kind);
        if (message.request_body?.end_of_stream === true) this.#requestBodyEnded = true;
        if (this.#decisionPending && this.#request) {
          // BUFFERED_PARTIAL sends the body (up to Envoy's buffer limit) in this one message.
          this.#decisionPending = false;
          const request: RequestEvent = { ...this.#request, body: message.request_body?.body ?? Buffer.alloc(0) };
          if (this.#keepBody(request) === undefined) {
            // Decided now on the uninspected body, then dropped: nothing of it stays held (the engine
            // keeps this request until its response, which must not keep the body either).
            const decision = this.#engine.decide(request);
            delete request.body;
            if (decision.action !== 'deny') return CONTINUE_RESPONSES.request_body;
            this.#immediateResponseSent = true;
            return denyResponse(decision, this.#requestId);
          }
          this.#request = request;
          return this.#afterPrepare(request, () => {
            const decision = this.#engine.decide(request);
            if (decision.action !== 'deny') return CONTINUE_RESPONSES.request_body;
            this.#immediateResponseSent = true;
            return denyResponse(decision, this.#requestId);
          });
        }
        return CONTINUE_RESPONSES.request_body;
      }
      case 'request_trailers':
        this.#requestPhase = this.#advance('request', this.#requestPhase, Phase.Trailers, kind);
        return CONTINUE_RESPONSES.request_trailers;
      case 'response_headers': {
        this.#responsePhase = this.#advance('response', this.#responsePhase, Phase.Headers, kind);
        if (!this.#request) return CONTINUE_RESPONSES.response_headers;
        if (this.#decisionPending) {
          // The body never came (mode override refused): record the decision late, headers only.
          this.#decisionPending = false;
          this.#engine.decide(this.#request);
        }
        const responseEvent = toResponseEvent(this.#requestId, message, this.#now());
        // Sampled, or a detector must act on this answer before the client gets it (redaction,
        // third-party responses in enforce mode): a sample cannot do that.
        const wantBody = this.#request.sampled === true || this.#engine.needsResponseBody(this.#request, responseEvent);
        if (wantBody && message.response_headers?.end_of_stream !== true && !opensTunnel(this.#request)) {
          this.#pendingResponse = responseEvent;
          return RESPONSE_HEADERS_WANT_BODY;
        }
        this.#engine.observeResponse(this.#request, responseEvent);
        return CONTINUE_RESPONSES.response_headers;
      }
      case 'response_body':
        this.#responsePhase = this.#advanceBody('response', this.#responsePhase, this.#responseBodyEnded, kind);
        if (message.response_body?.end_of_stream === true) this.#responseBodyEnded = true;
        if (this.#pendingResponse && this.#request) {
          // BUFFERED_PARTIAL: the body up to Envoy's buffer limit, in this one message.
          const request = this.#request;
          const response: ResponseEvent = { ...this.#pendingResponse, body: message.response_body?.body ?? Buffer.alloc(0), bodyComplete: message.response_body?.end_of_stream === true };
          this.#pendingResponse = undefined;
          const lease = this.#keepBody(response);
          // Over budget: observed now as not inspected (spec.content.overload decides), never held.
          if (lease === undefined) return this.#answerResponse(request, response);
          // Nothing keeps the response body once answered: its bytes leave the budget then (or when
          // the stream ends first, e.g. cancelled during an off-thread decode).
          const release = (): void => lease.release();
          let answered: ProcessingResponse | Promise<ProcessingResponse>;
          try {
            answered = this.#afterPrepare(response, () => this.#answerResponse(request, response));
          } catch (err) {
            release();
            throw err;
          }
          if (answered instanceof Promise) return answered.finally(release);
          release();
          return answered;
        }
        return CONTINUE_RESPONSES.response_body;
      case 'response_trailers':
        this.#responsePhase = this.#advance('response', this.#responsePhase, Phase.Trailers, kind);
        return CONTINUE_RESPONSES.response_trailers;
    }
    throw new ProcessingError(GrpcStatus.INVALID_ARGUMENT, `meshward: unknown message kind ${String(kind)}`);
  }

  /** The client gets the response as is, redacted, or (headers still held by Envoy, body buffered) a refusal. */
  #answerResponse(request: RequestEvent, response: ResponseEvent): ProcessingResponse {
    const verdict = this.#engine.observeResponse(request, response);
    if (verdict.action === 'deny') {
      this.#immediateResponseSent = true;
      return denyResponse(verdict.decision, this.#requestId);
    }
    if (verdict.action === 'redact') return replacedBodyResponse(verdict.body);
    return CONTINUE_RESPONSES.response_body;
  }

  /** Headers and trailers: each at most once, trailers after headers/body, nothing goes backwards. */
  #advance(direction: string, current: Phase, next: Phase, kind: string): Phase {
    if (next <= current) {
      throw new ProcessingError(GrpcStatus.FAILED_PRECONDITION, `meshward: out-of-order ${kind} (${direction} already past that phase)`);
    }
    return next;
  }

  /** Body chunks: any number after headers (or first, if headers are skipped), none after end_of_stream or trailers. */
  #advanceBody(direction: string, current: Phase, ended: boolean, kind: string): Phase {
    if (current === Phase.Trailers || ended) {
      throw new ProcessingError(GrpcStatus.FAILED_PRECONDITION, `meshward: out-of-order ${kind} (${direction} body already ended)`);
    }
    return Phase.Body;
  }
}
