// Binds an ext_proc stream to the sidecar that opened it. On the mTLS port the client certificate
// names that sidecar (spiffe://TD/ns/NS/sa/SA); the capture record claims which workload's sidecar
// saw the request (node metadata NAMESPACE, SERVICE_ACCOUNT; outbound also its own SPIFFE ID). A
// stream whose claim does not match its certificate was fabricated by whoever holds that certificate:
// the engine must not learn from it.
import type { RequestEvent } from '../engine/event.ts';
import type { Finding } from '../engine/finding.ts';
import type { DenyDecision } from '../engine/decision.ts';
import type { StreamPeer } from '../server-tls.ts';
import type { CaptureRecord } from './capture-record.ts';

export interface BindingMismatch {
  /** The client certificate's SPIFFE ID, or its URI SANs when it has no single workload ID. */
  certificate: string | null;
  uriSans: readonly string[];
  claimed: { namespace: string | null; serviceAccount: string | null; self: string | null };
  reason: string;
}

/** What the stream's sidecar is (open: requests pass when meshward cannot vouch for them; closed: denied). */
export type FailureMode = 'open' | 'closed';

export const FORGED_STREAM_DETECTOR = 'forged-ext-proc-stream';

export const FORGED_STREAM_DENY: DenyDecision = Object.freeze({
  action: 'deny', status: 403, reason: 'forged-ext-proc-stream', rule: FORGED_STREAM_DETECTOR,
});

/** undefined when the stream may be learned from: plaintext port (nothing to bind to) or a claim that
 *  matches the certificate. */
export function checkStreamBinding(peer: StreamPeer, record: CaptureRecord | undefined): BindingMismatch | undefined {
  if (peer.transport === 'plaintext') return undefined;
  const id = peer.identity;
  const claimed = {
    namespace: record?.nodeNamespace ?? null,
    serviceAccount: record?.nodeServiceAccount ?? null,
    self: record?.role === 'outbound' ? record.self ?? null : null,
  };
  const mismatch = (reason: string): BindingMismatch => ({ certificate: id?.spiffeId ?? null, uriSans: peer.uriSans, claimed, reason });
  if (id === undefined) return mismatch('client certificate carries no single SPIFFE workload ID');
  // Istio sets NAMESPACE on every sidecar: a stream without it did not come from a meshward filter.
  if (claimed.namespace === null) return mismatch('stream claims no sidecar namespace (no capture record from the meshward filter)');
  if (claimed.namespace !== id.namespace) return mismatch('claimed sidecar namespace differs from the certificate');
  if (claimed.serviceAccount !== null && claimed.serviceAccount !== id.serviceAccount) return mismatch('claimed sidecar service account differs from the certificate');
  if (claimed.self !== null && claimed.self !== id.spiffeId) return mismatch('claimed outbound caller identity differs from the certificate');
  return undefined;
}

/** The finding a fabricated stream produces. It names the certificate (who really sent it) as the caller. */
export function forgedStreamFinding(request: RequestEvent, mismatch: BindingMismatch, failureMode: FailureMode): Finding {
  return {
    category: 'LATERAL-Movement',
    detector: FORGED_STREAM_DETECTOR,
    severity: 'high',
    caller: mismatch.certificate ?? `certificate:${mismatch.uriSans.join(',') || 'no-uri-san'}`,
    operation: `${request.method} ${request.authority} ${request.path.split('?', 1)[0]}`,
    requestId: request.requestId,
    time: request.time,
    summary: `forged ext_proc stream: ${mismatch.reason}; the request was not learned from`,
    evidence: {
      certificateIdentity: mismatch.certificate,
      certificateUriSans: mismatch.uriSans,
      claimedNamespace: mismatch.claimed.namespace,
      claimedServiceAccount: mismatch.claimed.serviceAccount,
      claimedSelf: mismatch.claimed.self,
      claimedCaller: request.caller.workload ?? null,
      reason: mismatch.reason,
      failureMode,
    },
    enforcement: failureMode === 'closed' ? 'deny' : 'none',
  };
}
