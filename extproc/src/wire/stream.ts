// One ext_proc gRPC stream = one HTTP request. Enforces Envoy's protocol (per direction: headers,
// then body chunks, then trailers; exactly one response per message, in order) and hands the
// messages to the engine through the thin request/response adapters.
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Engine } from '../engine/engine.ts';
import type { RequestEvent } from '../engine/event.ts';
import type { Logger } from '../log.ts';
import type { ProcessingRequest, ProcessingResponse, RequestKind } from './messages.ts';
import { toRequestEvent, toResponseEvent } from './request.ts';
import { CONTINUE_RESPONSES, RESERVED_HEADER_PREFIX, requestHeadersResponse } from './response.ts';

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

export class ExtProcStream {
  #requestPhase: Phase = Phase.None;
  #responsePhase: Phase = Phase.None;
  #requestBodyEnded = false;
  #responseBodyEnded = false;
  #immediateResponseSent = false;
  #request: RequestEvent | undefined;
  readonly #requestId: string;
  readonly #engine: Engine;
  readonly #log: Logger;
  readonly #now: () => number;

  constructor(requestId: string, engine: Engine, log: Logger, now: () => number = Date.now) {
    this.#requestId = requestId;
    this.#engine = engine;
    this.#log = log;
    this.#now = now;
  }

  get requestId(): string { return this.#requestId; }

  /** Handles one message. Never throws: protocol violations come back as an error result. */
  step(message: ProcessingRequest): StepResult {
    try {
      const response = this.#dispatch(message);
      return message.observability_mode === true ? { kind: 'silent' } : { kind: 'respond', response };
    } catch (err) {
      if (err instanceof ProcessingError) return { kind: 'error', error: err };
      this.#log.error({ err, requestId: this.#requestId }, 'ext_proc message handling failed');
      return { kind: 'error', error: new ProcessingError(GrpcStatus.INTERNAL, 'meshward: internal error while processing message') };
    }
  }

  #dispatch(message: ProcessingRequest): ProcessingResponse {
    if (message === null || typeof message !== 'object') {
      throw new ProcessingError(GrpcStatus.INVALID_ARGUMENT, 'meshward: ProcessingRequest is not a message');
    }
    const kind = message.request;
    if (kind === undefined || !KINDS.has(kind)) {
      throw new ProcessingError(GrpcStatus.INVALID_ARGUMENT, 'meshward: ProcessingRequest has no request oneof set');
    }
    if (this.#immediateResponseSent) {
      throw new ProcessingError(GrpcStatus.FAILED_PRECONDITION, `meshward: ${kind} received after an immediate response ended the request`);
    }
    switch (kind) {
      case 'request_headers': {
        this.#requestPhase = this.#advance('request', this.#requestPhase, Phase.Headers, kind);
        const { event, conflict } = toRequestEvent(this.#requestId, message, this.#now());
        if (conflict !== undefined) this.#log.error({ requestId: this.#requestId, conflict }, 'identity sources disagree');
        this.#request = event;
        const decision = this.#engine.decide(event);
        const reserved = [...event.headers.keys()].filter((k) => k.startsWith(RESERVED_HEADER_PREFIX));
        const response = requestHeadersResponse(decision, this.#requestId, reserved);
        if ('immediate_response' in response) this.#immediateResponseSent = true;
        return response;
      }
      case 'request_body': {
        this.#requestPhase = this.#advanceBody('request', this.#requestPhase, this.#requestBodyEnded, kind);
        if (message.request_body?.end_of_stream === true) this.#requestBodyEnded = true;
        return CONTINUE_RESPONSES.request_body;
      }
      case 'request_trailers':
        this.#requestPhase = this.#advance('request', this.#requestPhase, Phase.Trailers, kind);
        return CONTINUE_RESPONSES.request_trailers;
      case 'response_headers': {
        this.#responsePhase = this.#advance('response', this.#responsePhase, Phase.Headers, kind);
        if (this.#request) this.#engine.observeResponse(this.#request, toResponseEvent(this.#requestId, message, this.#now()));
        return CONTINUE_RESPONSES.response_headers;
      }
      case 'response_body':
        this.#responsePhase = this.#advanceBody('response', this.#responsePhase, this.#responseBodyEnded, kind);
        if (message.response_body?.end_of_stream === true) this.#responseBodyEnded = true;
        return CONTINUE_RESPONSES.response_body;
      case 'response_trailers':
        this.#responsePhase = this.#advance('response', this.#responsePhase, Phase.Trailers, kind);
        return CONTINUE_RESPONSES.response_trailers;
    }
    throw new ProcessingError(GrpcStatus.INVALID_ARGUMENT, `meshward: unknown message kind ${String(kind)}`);
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
