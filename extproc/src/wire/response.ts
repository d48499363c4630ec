// Engine decision -> Envoy ProcessingResponse. Thin: no decisions here.
import type { Decision, DenyDecision } from '../engine/decision.ts';
import type { HeaderMutation, ProcessingResponse } from './messages.ts';

/** Request headers whose names meshward reserves; a client-sent one is removed before the app sees it. */
export const RESERVED_HEADER_PREFIX = 'x-meshward-';

export function denyResponse(decision: DenyDecision, requestId: string): ProcessingResponse {
  const body = JSON.stringify({
    error: decision.status === 429 ? 'too_many_requests' : decision.status === 502 ? 'bad_gateway' : 'forbidden',
    reason: decision.reason,
    rule: decision.rule,
    request_id: requestId,
  });
  return {
    immediate_response: {
      status: { code: decision.status },
      headers: {
        set_headers: [
          { header: { key: 'content-type', raw_value: Buffer.from('application/json') } },
          { header: { key: 'x-meshward-request-id', raw_value: Buffer.from(requestId) } },
        ],
      },
      body: Buffer.from(body),
      // Shows up as %RESPONSE_CODE_DETAILS% in Envoy access logs; no whitespace allowed.
      details: `meshward_${decision.reason}`,
    },
  };
}

/** Asks Envoy for the request body of this request (the filter sampled it). BUFFERED_PARTIAL, not
 *  BUFFERED: a body over Envoy's buffer limit is inspected up to the limit and still delivered, where
 *  BUFFERED would answer the client 413. */
const SEND_REQUEST_BODY = { request_body_mode: 'BUFFERED_PARTIAL' } as const;

export function requestHeadersResponse(decision: Decision, requestId: string, reservedHeaders: readonly string[], wantBody = false): ProcessingResponse {
  if (decision.action === 'deny') return denyResponse(decision, requestId);
  const mode = wantBody ? { mode_override: SEND_REQUEST_BODY } : {};
  if (reservedHeaders.length === 0) return { request_headers: {}, ...mode };
  const header_mutation: HeaderMutation = { remove_headers: [...reservedHeaders] };
  return { request_headers: { response: { status: 'CONTINUE', header_mutation } }, ...mode };
}

export const CONTINUE_RESPONSES = {
  request_body: { request_body: {} },
  request_trailers: { request_trailers: {} },
  response_headers: { response_headers: {} },
  response_body: { response_body: {} },
  response_trailers: { response_trailers: {} },
} as const satisfies Record<string, ProcessingResponse>;

/** Replaces a buffered response body (redaction); the length header follows the new body. */
export function replacedBodyResponse(body: Buffer): ProcessingResponse {
  return {
    response_body: {
      response: {
        status: 'CONTINUE',
        header_mutation: { set_headers: [{ header: { key: 'content-length', raw_value: Buffer.from(String(body.length)) } }] },
        body_mutation: { body },
      },
    },
  };
}
