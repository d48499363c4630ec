// Security gap #7/#10: an ext_proc stream is bound to the client certificate that opened it. Unit level:
// the binding rules, the certificate's SPIFFE identity, the stream handler on a mismatch (reported,
// never learned from, decided by the failure mode), the filter's node.sa field, the TLS options of
// the config file and of `meshward serve`. The real-Envoy proof is test/e2e/ext-proc-mtls.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkStreamBinding, FORGED_STREAM_DETECTOR } from '../../extproc/src/wire/stream-binding.ts';
import { parseCaptureRecord } from '../../extproc/src/wire/capture-record.ts';
import { peerFromSubjectAltName, type StreamPeer } from '../../extproc/src/server-tls.ts';
import { ExtProcStream } from '../../extproc/src/wire/stream.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { silentLogger } from '../../extproc/src/log.ts';
import { CAPTURE_ATTRIBUTE, EXT_PROC_ATTRIBUTES_KEY } from '../../extproc/src/wire/request.ts';
import type { ProcessingRequest } from '../../extproc/src/wire/messages.ts';
import { parseServerConfig } from '../../extproc/src/config.ts';
import { ProxyWasmHost, requestHeaders } from '../support/proxy-wasm-host.ts';
import { generatePki } from '../../extproc/src/local/certs.ts';

const CLI = path.resolve(import.meta.dirname, '../../extproc/src/cli.ts');
const WEB = peerFromSubjectAltName('URI:spiffe://cluster.local/ns/web/sa/frontend, DNS:frontend.web.svc');
const record = (text: string) => parseCaptureRecord(`mw1\n${text}`) ?? undefined;

describe('the client certificate\'s identity', () => {
  test('exactly one SPIFFE workload URI SAN is an identity; anything else is none', () => {
    assert.deepEqual(WEB, { transport: 'mtls', uriSans: ['spiffe://cluster.local/ns/web/sa/frontend'],
      identity: { spiffeId: 'spiffe://cluster.local/ns/web/sa/frontend', trustDomain: 'cluster.local', namespace: 'web', serviceAccount: 'frontend' } });
    for (const san of [undefined, 'DNS:frontend.web.svc', 'URI:spiffe://td/ns/a/sa/b, URI:spiffe://td/ns/c/sa/d', 'URI:https://example.com/x', 'URI:spiffe://td/ns/a/sa/b/extra', 'URI:spiffe://td/ns//sa/b']) {
      const peer = peerFromSubjectAltName(san);
      assert.equal(peer.transport === 'mtls' ? peer.identity : 'plaintext', undefined, String(san));
    }
  });
});

describe('checkStreamBinding', () => {
  test('plaintext: nothing to bind to', () => {
    assert.equal(checkStreamBinding({ transport: 'plaintext' }, record('node.namespace=anything\n')), undefined);
  });
  test('a claim matching the certificate is accepted, with or without a service account', () => {
    assert.equal(checkStreamBinding(WEB, record('node.namespace=web\nnode.sa=frontend\n')), undefined);
    assert.equal(checkStreamBinding(WEB, record('node.namespace=web\n')), undefined);
    assert.equal(checkStreamBinding(WEB, record('role=outbound\nself=spiffe://cluster.local/ns/web/sa/frontend\nnode.namespace=web\n')), undefined);
  });
  test('each kind of mismatch is reported with the certificate and the claim', () => {
    const cases: [string, StreamPeer, ReturnType<typeof record>, RegExp][] = [
      ['another namespace', WEB, record('node.namespace=shop\nnode.sa=frontend\n'), /namespace differs/],
      ['another service account', WEB, record('node.namespace=web\nnode.sa=orders\n'), /service account differs/],
      ['outbound, another own identity', WEB, record('role=outbound\nself=spiffe://cluster.local/ns/web/sa/admin\nnode.namespace=web\n'), /outbound caller identity differs/],
      ['no capture record', WEB, undefined, /no sidecar namespace/],
      ['a record without node metadata', WEB, record('peer=spiffe://cluster.local/ns/x/sa/y\n'), /no sidecar namespace/],
      ['a certificate without a workload ID', peerFromSubjectAltName('DNS:x'), record('node.namespace=web\n'), /no single SPIFFE workload ID/],
    ];
    for (const [name, peer, claim, reason] of cases) {
      const m = checkStreamBinding(peer, claim);
      assert.ok(m, name);
      assert.match(m.reason, reason, name);
      assert.equal(m.claimed.namespace, claim?.nodeNamespace ?? null, name);
    }
    assert.equal(checkStreamBinding(WEB, record('node.namespace=shop\n'))!.certificate, 'spiffe://cluster.local/ns/web/sa/frontend');
  });
});

function headersMessage(recordText: string): ProcessingRequest {
  return {
    request: 'request_headers',
    request_headers: { headers: { headers: [[':method', 'GET'], [':path', '/orders/1?token=secret'], [':authority', 'orders.shop']].map(([key, v]) => ({ key, raw_value: Buffer.from(v!) })) }, end_of_stream: true },
    attributes: { [EXT_PROC_ATTRIBUTES_KEY]: { fields: { [CAPTURE_ATTRIBUTE]: { stringValue: `mw1\npeer=spiffe://cluster.local/ns/pay/sa/ledger\nmtls=1\n${recordText}` } } } },
  } as ProcessingRequest;
}

describe('ExtProcStream on the mTLS port', () => {
  const run = (failureMode: 'open' | 'closed', recordText: string) => {
    const engine = new Engine({ denyRules: [] });
    const seen = { decisions: 0, responses: 0, findings: [] as Finding[] };
    engine.addObserver({ onDecision: () => { seen.decisions++; }, onResponse: () => { seen.responses++; }, onFinding: (f) => seen.findings.push(f) });
    const stream = new ExtProcStream('s1', engine, silentLogger, () => 1_000, { peer: WEB, failureMode });
    const first = stream.step(headersMessage(recordText));
    return { engine, seen, stream, first };
  };

  test('fail-closed (the default): a forged claim gets 403, one high finding, nothing learned', () => {
    const { seen, first } = run('closed', 'node.namespace=shop\n');
    assert.equal(first.kind, 'respond');
    const immediate = (first as { response: { immediate_response?: { status: { code: number }; details: string } } }).response.immediate_response;
    assert.equal(immediate?.status.code, 403);
    assert.equal(immediate?.details, 'meshward_forged-ext-proc-stream');
    assert.equal(seen.decisions, 0, 'decide() never ran: no rule, detector, baseline or inventory saw it');
    assert.equal(seen.findings.length, 1);
    const f = seen.findings[0]!;
    assert.deepEqual([f.detector, f.severity, f.caller, f.enforcement], [FORGED_STREAM_DETECTOR, 'high', 'spiffe://cluster.local/ns/web/sa/frontend', 'deny']);
    assert.equal(f.evidence.claimedNamespace, 'shop');
    assert.equal(f.evidence.claimedCaller, 'spiffe://cluster.local/ns/pay/sa/ledger');
    assert.ok(!JSON.stringify(f).includes('secret'), 'the query string (tokens) is not in the finding');
  });

  test('fail-open: the request continues, still reported and never learned from (its response neither)', () => {
    const { seen, stream, first } = run('open', 'node.namespace=shop\n');
    assert.ok(first.kind === 'respond' && 'request_headers' in first.response);
    const after = stream.step({ request: 'response_headers', response_headers: { headers: { headers: [{ key: ':status', raw_value: Buffer.from('200') }] }, end_of_stream: true } } as ProcessingRequest);
    assert.equal(after.kind, 'respond');
    assert.deepEqual([seen.decisions, seen.responses, seen.findings.length, seen.findings[0]!.enforcement], [0, 0, 1, 'none']);
  });

  test('a matching claim is decided as before', () => {
    const { seen, engine, first } = run('closed', 'node.namespace=web\nnode.sa=frontend\n');
    assert.ok(first.kind === 'respond' && 'request_headers' in first.response);
    assert.equal(seen.decisions, 1);
    assert.equal(seen.findings.filter((f) => f.detector === FORGED_STREAM_DETECTOR).length, 0);
    assert.equal(engine.pendingExchanges, 1);
  });
});

test('the filter puts Istio\'s SERVICE_ACCOUNT node metadata into the record as node.sa', async () => {
  const host = await ProxyWasmHost.load();
  assert.equal(host.configure({}), true);
  const properties = { 'xds\0node\0metadata\0NAMESPACE': 'shop', 'xds\0node\0metadata\0SERVICE_ACCOUNT': 'orders', 'xds\0node\0metadata\0WORKLOAD_NAME': 'orders-v1' };
  const r = parseCaptureRecord(host.request({ headers: requestHeaders('GET', '/orders/1'), properties }).record);
  assert.deepEqual([r?.nodeNamespace, r?.nodeServiceAccount], ['shop', 'orders']);
});

describe('TLS configuration', () => {
  test('config file: server.tls, insecurePlaintext and forgedStreamFailureMode', () => {
    const c = parseServerConfig('c.yaml', 'server: { tls: { certFile: a.crt, keyFile: a.key, clientCaFile: ca.crt, refreshSeconds: 5 }, forgedStreamFailureMode: open }');
    assert.deepEqual(c.server.tls, { certFile: 'a.crt', keyFile: 'a.key', clientCaFile: 'ca.crt', refreshIntervalMs: 5000 });
    assert.equal(c.server.forgedStreamFailureMode, 'open');
    const bad: [string, RegExp][] = [
      ['server: { tls: { certFile: a.crt, keyFile: a.key } }', /\$\.server\.tls\.clientCaFile: must be a file path/],
      ['server: { tls: { certFile: a, keyFile: b, clientCaFile: c, refreshSeconds: 0 } }', /refreshSeconds: must be a number from 1 to 86400/],
      ['server: { tls: { certFile: a, keyFile: b, clientCaFile: c, pin: x } }', /\$\.server\.tls\.pin: unknown field/],
      ['server: { tls: { certFile: a, keyFile: b, clientCaFile: c }, insecurePlaintext: true }', /insecurePlaintext: contradicts server\.tls/],
      ['server: { insecurePlaintext: "yes" }', /insecurePlaintext: must be true or false/],
      ['server: { forgedStreamFailureMode: sometimes }', /forgedStreamFailureMode: must be "open" or "closed"/],
    ];
    for (const [text, error] of bad) assert.throws(() => parseServerConfig('c.yaml', text), error, text);
  });

  test('meshward serve: plaintext off loopback only when chosen; unusable TLS files exit 2 with the reason', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-tls-cli-'));
    const notPem = path.join(dir, 'not.pem');
    writeFileSync(notPem, 'hello\n');
    const pki = await generatePki(path.join(dir, 'pki'), [{ namespace: 'a', serviceAccount: 'x' }, { namespace: 'b', serviceAccount: 'y' }]);
    const [x, y] = [pki.workloads.get('a/x')!, pki.workloads.get('b/y')!];
    const cases: [string[], RegExp][] = [
      [['--tls-cert', x.certFile, '--tls-key', y.keyFile, '--tls-client-ca', pki.caFile], /does not fit certificate/],
      [['--host', '0.0.0.0'], /refusing plaintext ext_proc on 0\.0\.0\.0/],
      [['--tls-cert', notPem], /--tls-cert, --tls-key and --tls-client-ca go together/],
      [['--tls-cert', path.join(dir, 'missing.crt'), '--tls-key', notPem, '--tls-client-ca', notPem], /TLS certificate .*missing\.crt: cannot read/],
      [['--tls-cert', notPem, '--tls-key', notPem, '--tls-client-ca', notPem], /not a PEM certificate/],
      [['--insecure-plaintext', '--tls-cert', notPem, '--tls-key', notPem, '--tls-client-ca', notPem], /contradicts the TLS options/],
      [['--forged-stream-failure-mode', 'maybe'], /must be open or closed/],
    ];
    for (const [args, error] of cases) {
      const r = spawnSync(process.execPath, [CLI, 'serve', '--port', '0', ...args], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, error, args.join(' '));
    }
  });
});
