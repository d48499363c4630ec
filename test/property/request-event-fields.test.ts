// The optional RequestEvent/Caller fields copied from the capture record are absent, never
// present-but-undefined: detectors and state codecs test them with `in` and spread them. toRequestEvent must keep that for any subset
// of capture-record fields the filter sends (the hot path copies them with definedOnly()).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { toRequestEvent, CAPTURE_ATTRIBUTE, EXT_PROC_ATTRIBUTES_KEY } from '../../extproc/src/wire/request.ts';
import type { ProcessingRequest } from '../../extproc/src/wire/messages.ts';

const OPTIONAL_KEYS = ['peer', 'peer.workload', 'peer.namespace', 'self', 'self.workload', 'self.namespace', 'dest', 'src',
  'template', 'op', 'sampled', 'node.namespace', 'node.workload', 'node.labels', 'token.hash', 'apikey', 'jwt.sub', 'jwt.iss', 'jwt.flags'] as const;

function undefinedProps(o: object, at: string): string[] {
  return Object.entries(o).flatMap(([k, v]) => (v === undefined ? [`${at}.${k}`]
    : v !== null && typeof v === 'object' && !(v instanceof Map) && !Array.isArray(v) ? undefinedProps(v, `${at}.${k}`) : []));
}

test('toRequestEvent never leaves an optional field present but undefined, whatever fields the record has', () => {
  fc.assert(fc.property(
    fc.subarray([...OPTIONAL_KEYS]),
    fc.constantFrom('inbound', 'outbound'),
    fc.boolean(),
    fc.stringMatching(/^[a-z0-9.-]{0,12}$/),
    (keys, role, withPeerAttr, value) => {
      const lines = ['mw1', `role=${role}`, 'mtls=1', ...keys.map((k) => `${k}=${k === 'sampled' ? '1' : value}`)];
      const fields: Record<string, { stringValue: string }> = { [CAPTURE_ATTRIBUTE]: { stringValue: `${lines.join('\n')}\n` } };
      if (withPeerAttr) fields['connection.uri_san_peer_certificate'] = { stringValue: 'spiffe://cluster.local/ns/a/sa/b' };
      const request = {
        request: 'request_headers',
        request_headers: { headers: { headers: [{ key: ':path', raw_value: Buffer.from('/x') }] } },
        attributes: { [EXT_PROC_ATTRIBUTES_KEY]: { fields } },
      } as unknown as ProcessingRequest;
      const { event } = toRequestEvent('r1', request, 0);
      // caller.workload and caller.sourceAddress are always set keys (possibly undefined) by design
      // of resolveCaller; everything copied from the record is absent when the record lacks it.
      const { caller, ...rest } = event;
      const { workload: _w, sourceAddress: _s, ...callerRest } = caller;
      assert.deepEqual([...undefinedProps(rest, 'event'), ...undefinedProps(callerRest, 'event.caller')], []);
      // What the record did carry arrived (non-empty values only: the record treats "" as absent).
      if (value.length > 0 && keys.includes('template')) assert.equal(event.template, value);
      if (value.length > 0 && keys.includes('src')) assert.equal(event.caller.sourceAddress, value);
    },
  ), { numRuns: 300 });
});
