// Stream binding (extproc/src/wire/stream-binding.ts) over arbitrary certificates and claims: a stream
// is learned from exactly when its claimed sidecar namespace equals the certificate's and its claimed
// service account (when present) equals the certificate's: never by a prefix or a case-folded form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkStreamBinding } from '../../extproc/src/wire/stream-binding.ts';
import { parseCaptureRecord } from '../../extproc/src/wire/capture-record.ts';
import { peerFromSubjectAltName } from '../../extproc/src/server-tls.ts';

/** Kubernetes-name-like segments, plus look-alikes (case, prefixes). */
const segment = fc.oneof(
  fc.constantFrom('web', 'Web', 'web-', 'we', 'shop', 'frontend', 'kube-system', 'a'),
  fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/),
);

test('learned from iff the claimed namespace and service account match the certificate', () => {
  fc.assert(fc.property(segment, segment, segment, fc.option(segment, { nil: undefined }), (certNs, certSa, claimNs, claimSa) => {
    const peer = peerFromSubjectAltName(`URI:spiffe://cluster.local/ns/${certNs}/sa/${certSa}`);
    const record = parseCaptureRecord(`mw1\nnode.namespace=${claimNs}\n${claimSa !== undefined ? `node.sa=${claimSa}\n` : ''}`) ?? undefined;
    const accepted = checkStreamBinding(peer, record) === undefined;
    assert.equal(accepted, claimNs === certNs && (claimSa === undefined || claimSa === certSa));
  }), { numRuns: 2000 });
});
