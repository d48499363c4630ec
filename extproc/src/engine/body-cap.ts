// The policy's body cap (sampling.maxBodyBytes): a body longer than the cap is replaced by its
// first `cap` bytes before any detector or decoder sees it, and the cut is remembered with the
// cut Buffer so the decoder (a cut document is not malformed) and findings can say so.
import type { Exchange } from './exchange.ts';

export interface BodyCut {
  /** Bytes the body had on the wire. */
  wireBytes: number;
  /** Bytes inspected: the cap. */
  inspectedBytes: number;
}

const cuts = new WeakMap<Buffer, BodyCut>();

/** Cuts `event.body` to `cap` bytes when it is longer (idempotent: a cut body is within the cap). */
export function capBody(event: { body?: Buffer }, cap: number | undefined): void {
  const body = event.body;
  if (cap === undefined || body === undefined || body.length <= cap) return;
  const cut = body.subarray(0, cap);
  cuts.set(cut, { wireBytes: body.length, inspectedBytes: cap });
  event.body = cut;
}

/** How a body was cut, when the policy's cap cut it. */
export function bodyCutOf(body: Buffer | undefined): BodyCut | undefined {
  return body === undefined ? undefined : cuts.get(body);
}

/** Evidence for every finding on an exchange whose request or response body the cap cut. */
export function bodyCutEvidence(exchange: Exchange): { request?: BodyCut; response?: BodyCut } | undefined {
  const request = bodyCutOf(exchange.request.body);
  const response = bodyCutOf(exchange.response?.body);
  if (request === undefined && response === undefined) return undefined;
  return { ...(request ? { request } : {}), ...(response ? { response } : {}) };
}
