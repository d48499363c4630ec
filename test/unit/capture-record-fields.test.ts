// The capture record's issue-#3 fields as the server reads them, and how resolveCaller maps them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCaptureRecord } from '../../extproc/src/wire/capture-record.ts';
import { CAPTURE_ATTRIBUTE, EXT_PROC_ATTRIBUTES_KEY, PEER_URI_ATTRIBUTE, toRequestEvent } from '../../extproc/src/wire/request.ts';
import type { ProcessingRequest } from '../../extproc/src/wire/messages.ts';

function request(record: string, attrs: Record<string, string> = {}): ProcessingRequest {
  const fields: Record<string, { stringValue: string }> = { [CAPTURE_ATTRIBUTE]: { stringValue: record } };
  for (const [k, v] of Object.entries(attrs)) fields[k] = { stringValue: v };
  return {
    request: 'request_headers',
    request_headers: { headers: { headers: [{ key: ':method', raw_value: Buffer.from('GET') }, { key: ':path', raw_value: Buffer.from('/u/1') }] } },
    attributes: { [EXT_PROC_ATTRIBUTES_KEY]: { fields } },
  };
}

test('JWT fields: numbers only when they are integers; unknown flags dropped; absent without jwt keys', () => {
  const r = parseCaptureRecord('mw1\njwt.sub=a%40b\njwt.exp=12x\njwt.nbf=-5\njwt.flags=expired,bogus,alg_none\n');
  assert.deepEqual(r?.user, { sub: 'a@b', nbf: -5, flags: ['expired', 'alg_none'] });
  assert.equal(parseCaptureRecord('mw1\npeer=x\n')?.user, undefined);
});

test('truncated keys make template and operation untrusted; sampled is tri-state', () => {
  const r = parseCaptureRecord('mw1\ntemplate=/a/{id}\nop=GET h /a/{id}\nsampled=1\ntrunc=path,template,op\n');
  assert.deepEqual([r?.template, r?.operation, r?.sampled], [undefined, undefined, true]);
  assert.deepEqual(r?.truncated, ['path', 'template', 'op']);
  assert.equal(parseCaptureRecord('mw1\nsampled=0\n')?.sampled, false);
  assert.equal(parseCaptureRecord('mw1\n')?.sampled, undefined);
});

test('inbound record: caller from the peer, annotations on the event', () => {
  const { event } = toRequestEvent('r1', request('mw1\npeer=spiffe://td/ns/a/sa/b\nmtls=1\ntemplate=/u/{id}\nop=GET h /u/{id}\nsampled=1\napikey=abc\npeer.workload=web\n',
    { [PEER_URI_ATTRIBUTE]: 'spiffe://td/ns/a/sa/b' }), 0);
  assert.equal(event.caller.workload, 'spiffe://td/ns/a/sa/b');
  assert.equal(event.caller.apiKeyHash, 'abc');
  assert.equal(event.caller.workloadName, 'web');
  assert.deepEqual([event.operation, event.template, event.sampled, event.direction, event.destination], ['GET h /u/{id}', '/u/{id}', true, 'inbound', undefined]);
  assert.ok(!('user' in event.caller), 'absent fields are absent, not undefined');
});

test('outbound record: the caller is the own workload and the destination is set', () => {
  const { event, conflict } = toRequestEvent('r2', request('mw1\nrole=outbound\nself=spiffe://td/ns/a/sa/me\nself.namespace=a\nself.workload=me-v1\ndest=orders.shop\nmethod=GET\n'), 0);
  assert.equal(conflict, undefined);
  assert.equal(event.caller.workload, 'spiffe://td/ns/a/sa/me');
  assert.equal(event.caller.identitySource, 'filter');
  assert.deepEqual([event.caller.namespace, event.caller.workloadName], ['a', 'me-v1']);
  assert.deepEqual([event.direction, event.destination], ['outbound', 'orders.shop']);
});
