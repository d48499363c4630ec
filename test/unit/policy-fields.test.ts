// Policy fields applied in the engine (issue #7): per-detector enabled/mode, callGraph allow-lists
// and prefix denies (both modes), rate limits per caller with a burst (token bucket), declared
// business flows, JWKS from a URL, and the body cap. Policies are loaded the way the server loads
// them: a PolicySet through WorkloadPolicies (the engine's modeFor/profileFor hooks) over the mesh
// default's engine settings (policy/runtime.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PolicySet } from '../../extproc/src/policy/precedence.ts';
import { WorkloadPolicies } from '../../extproc/src/policy/workload-policy.ts';
import { engineSettingsFor } from '../../extproc/src/policy/engine-mapping.ts';
import type { ApiSecurityPolicy, PolicySpec } from '../../extproc/src/policy/types.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { RemoteJwks, remoteJwksFor } from '../../extproc/src/engine/jwks-remote.ts';
import { decodeBody } from '../../extproc/src/inspect/body.ts';
import { makeJwt } from './detectors/harness.ts';

const policy = (namespace: string, name: string, spec: PolicySpec): ApiSecurityPolicy =>
  ({ apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name, namespace }, spec }) as ApiSecurityPolicy;

interface Call { workload?: string | undefined; method?: string; path?: string; at?: number; headers?: Record<string, string>; body?: string; namespace?: string }

/** An engine configured as `meshward serve` configures it: the mesh default's settings, and the
 *  "shop" namespace policy per request through the workload hooks. */
function engineWith(shop: PolicySpec, meshDefault: PolicySpec = { mode: 'monitor' }) {
  const workloads = new WorkloadPolicies();
  workloads.update(new PolicySet('meshward', [policy('meshward', 'mesh-default', meshDefault), policy('shop', 'shop', shop)]));
  const engine = new Engine({ ...engineSettingsFor(meshDefault).engine, modeFor: workloads.modeFor, profileFor: workloads.profileFor });
  const findings: Finding[] = [];
  engine.addObserver({ onFinding: (f) => findings.push(f) });
  let n = 0;
  const call = (c: Call = {}) => {
    const request: RequestEvent = {
      requestId: `r${n++}`, time: 1_000_000 + (c.at ?? n), caller: { ...(c.workload !== undefined ? { workload: c.workload } : {}), mtls: true, identitySource: 'filter' },
      method: c.method ?? 'GET', authority: 'orders.shop', path: c.path ?? '/orders', headers: new Map(Object.entries(c.headers ?? {}).map(([k, v]) => [k, [v]])),
      ...(c.body !== undefined ? { body: Buffer.from(c.body) } : {}), sidecarWorkload: { namespace: c.namespace ?? 'shop' },
    };
    const before = findings.length;
    const d = engine.decide(request);
    return { outcome: d.action === 'allow' ? 'allow' : `${d.status}`, findings: findings.slice(before), request };
  };
  return { engine, call };
}

const detectorsOf = (fs: readonly Finding[]): string[] => [...new Set(fs.map((f) => f.detector))];
const SHOP = 'spiffe://td/ns/shop/sa/web';
const OTHER = 'spiffe://td/ns/lab/sa/tool';

describe('per-detector enabled and mode', () => {
  const limit = { name: 'one', path: '/orders', requests: 1, per: 'minute' as const };
  test('mode monitor on an enforce policy: the detector only reports', () => {
    const { call } = engineWith({ mode: 'enforce', rateLimits: [limit], detectors: [{ name: 'resource', mode: 'monitor' }] });
    assert.equal(call({ workload: SHOP }).outcome, 'allow');
    const second = call({ workload: SHOP });
    assert.equal(second.outcome, 'allow');
    assert.ok(second.findings.some((f) => f.detector === 'resource-consumption' && f.enforcement === 'rate-limit'), 'still reported');
  });
  test('mode enforce on a monitor policy: that detector enforces, the others only report', () => {
    const { call } = engineWith({ mode: 'monitor', rateLimits: [limit], callGraph: { default: 'deny', allow: [] }, detectors: [{ name: 'resource', mode: 'enforce' }] });
    assert.equal(call({ workload: SHOP }).outcome, 'allow', 'call-graph finding only reported (policy mode monitor)');
    const second = call({ workload: SHOP });
    assert.equal(second.outcome, '429');
    assert.deepEqual(detectorsOf(second.findings).sort(), ['call-graph', 'resource-consumption']);
  });
  test('enabled false: the detector does not run for that workload, and does elsewhere', () => {
    const { call } = engineWith({ mode: 'enforce', rateLimits: [limit], detectors: [{ name: 'resource', enabled: false }] }, { mode: 'enforce', rateLimits: [limit] });
    for (let i = 0; i < 3; i++) assert.deepEqual(detectorsOf(call({ workload: SHOP }).findings), []);
    call({ workload: SHOP, namespace: 'lab' });
    assert.equal(call({ workload: SHOP, namespace: 'lab' }).outcome, '429', 'the mesh default still limits other namespaces');
  });
  test('none of these fields is reported as not applied', () => {
    const s = engineSettingsFor({ detectors: [{ name: 'bola', enabled: false }, { name: 'auth', mode: 'enforce' }] });
    assert.deepEqual(s.notApplied, []);
    assert.deepEqual(s.engine.detectorModes, { bola: 'off', 'broken-auth': 'enforce' });
  });
});

describe('callGraph', () => {
  const allowList: PolicySpec['callGraph'] = {
    default: 'deny',
    allow: [{ from: 'spiffe://td/ns/shop/*' }, { from: 'spiffe://td/ns/ops/sa/admin', methods: ['GET'], paths: ['/orders/*'] }],
  };
  test('default deny, enforce: listed callers (exact or prefix) pass, others get 403 with a finding', () => {
    const { call } = engineWith({ mode: 'enforce', callGraph: allowList });
    assert.equal(call({ workload: SHOP }).outcome, 'allow');
    assert.equal(call({ workload: 'spiffe://td/ns/ops/sa/admin', path: '/orders/7' }).outcome, 'allow');
    const lateral = call({ workload: OTHER });
    assert.equal(lateral.outcome, '403');
    assert.equal(lateral.findings.find((f) => f.detector === 'call-graph')?.category, 'LATERAL-Movement');
    const wrongMethod = call({ workload: 'spiffe://td/ns/ops/sa/admin', method: 'DELETE', path: '/orders/7' });
    assert.equal(wrongMethod.outcome, '403');
    assert.equal(wrongMethod.findings.find((f) => f.detector === 'call-graph')?.category, 'API5:2023-BFLA', 'a listed caller outside its methods/paths');
    assert.equal(call({ workload: 'spiffe://td/ns/ops/sa/admin', path: '/users/1' }).outcome, '403');
    assert.equal(call({ workload: undefined }).outcome, '403', 'no workload identity is not on the list');
    assert.equal(call({ workload: 'spiffe://td/ns/shopping/sa/x' }).outcome, '403', 'prefix ns/shop/ does not cover ns/shopping/');
  });
  test('default deny, monitor: the same findings, nothing blocked', () => {
    const { call } = engineWith({ mode: 'monitor', callGraph: allowList });
    const r = call({ workload: OTHER });
    assert.equal(r.outcome, 'allow');
    assert.equal(r.findings.filter((f) => f.detector === 'call-graph').length, 1);
    assert.deepEqual(call({ workload: SHOP }).findings.filter((f) => f.detector === 'call-graph'), []);
  });
  test('deny rules with caller prefixes: 403 in enforce, a finding in monitor', () => {
    const callGraph = { deny: [{ from: 'spiffe://td/ns/lab/*', paths: ['/orders*'] }] };
    const enforce = engineWith({ mode: 'enforce', callGraph });
    assert.equal(enforce.call({ workload: OTHER }).outcome, '403');
    assert.equal(enforce.call({ workload: OTHER, path: '/health' }).outcome, 'allow', 'outside the rule\'s paths');
    assert.equal(enforce.call({ workload: SHOP }).outcome, 'allow');
    const monitor = engineWith({ mode: 'monitor', callGraph });
    const r = monitor.call({ workload: OTHER });
    assert.equal(r.outcome, 'allow');
    assert.deepEqual(r.findings.filter((f) => f.detector === 'call-graph').map((f) => f.evidence.rule), ['callGraph.deny[0]']);
  });
});

describe('rateLimits caller and burst', () => {
  test('burst: a token bucket of `burst` tokens refilled at requests per period; only matching callers', () => {
    const { call } = engineWith({ mode: 'enforce', rateLimits: [{ name: 'batch', caller: 'spiffe://td/ns/batch/*', path: '/orders', requests: 1, per: 'second', burst: 3 }] });
    const batch = 'spiffe://td/ns/batch/sa/job';
    const at0 = [0, 1, 2, 3].map((i) => call({ workload: batch, at: i }).outcome);
    assert.deepEqual(at0, ['allow', 'allow', 'allow', '429'], 'burst of 3, then empty');
    assert.equal(call({ workload: batch, at: 500 }).outcome, '429', 'half a token refilled');
    assert.equal(call({ workload: batch, at: 1010 }).outcome, 'allow', 'one token a second');
    assert.equal(call({ workload: batch, at: 1020 }).outcome, '429');
    for (let i = 0; i < 10; i++) assert.equal(call({ workload: SHOP, at: 1030 + i }).outcome, 'allow', 'callers the rule does not name are not limited');
    assert.deepEqual([call({ workload: 'spiffe://td/ns/batch/sa/other', at: 1040 }).outcome], ['allow'], 'each matching caller has its own bucket');
  });
  test('without burst: the sliding-window count as before; caller exact match', () => {
    const { call } = engineWith({ mode: 'enforce', rateLimits: [{ name: 'exact', caller: SHOP, requests: 2, per: 'minute' }] });
    assert.deepEqual([0, 1, 2].map((i) => call({ workload: SHOP, at: i * 10_000 }).outcome), ['allow', 'allow', '429']);
    assert.equal(call({ workload: SHOP, at: 59_000 }).outcome, '429', 'a window, not a bucket: nothing refilled within the minute');
    assert.equal(call({ workload: 'spiffe://td/ns/shop/sa/web2', at: 59_001 }).outcome, 'allow');
  });
});

describe('businessFlows', () => {
  const checkout: PolicySpec = {
    mode: 'enforce',
    businessFlows: [{ name: 'checkout', withinSeconds: 900, steps: [{ operation: 'POST /orders' }, { operation: 'POST /orders/{id}/payments', maxPerFlow: 1 }] }],
  };
  test('a later step without the earlier one within withinSeconds is a finding (403 in enforce)', () => {
    const { call } = engineWith(checkout);
    const skipped = call({ workload: SHOP, method: 'POST', path: '/orders/5/payments' });
    assert.equal(skipped.outcome, '403');
    assert.deepEqual(skipped.findings.map((f) => [f.detector, f.category, f.evidence.flow]), [['business-flows', 'API6:2023-SensitiveBusinessFlows', 'checkout']]);
    assert.equal(call({ workload: SHOP, method: 'POST', path: '/orders', at: 1000 }).outcome, 'allow');
    assert.equal(call({ workload: SHOP, method: 'POST', path: '/orders/5/payments', at: 2000 }).outcome, 'allow');
    assert.equal(call({ workload: OTHER, method: 'POST', path: '/orders/5/payments', at: 2001 }).outcome, '403', 'another caller\'s first step does not count');
    assert.equal(call({ workload: SHOP, method: 'POST', path: '/orders', at: 3000 }).outcome, 'allow');
    assert.equal(call({ workload: SHOP, method: 'POST', path: '/orders/6/payments', at: 1000 + 901_000 }).outcome, '403', 'the run began more than 900 s ago');
  });
  test('maxPerFlow per step per caller per run', () => {
    const { call } = engineWith(checkout);
    call({ workload: SHOP, method: 'POST', path: '/orders', at: 0 });
    assert.equal(call({ workload: SHOP, method: 'POST', path: '/orders/1/payments', at: 10 }).outcome, 'allow');
    const again = call({ workload: SHOP, method: 'POST', path: '/orders/1/payments', at: 20 });
    assert.equal(again.outcome, '429');
    assert.equal(again.findings[0]?.evidence.maxPerFlow, 1);
    call({ workload: SHOP, method: 'POST', path: '/orders', at: 1_000_000 });
    assert.equal(call({ workload: SHOP, method: 'POST', path: '/orders/2/payments', at: 1_000_010 }).outcome, 'allow', 'a new run starts its own counts');
  });
  test('declared flows take precedence over the name heuristics for their steps', () => {
    const declared = engineWith({ mode: 'enforce', businessFlows: [{ name: 'onboarding', steps: [{ operation: 'POST /users' }] }] });
    const heuristic = engineWith({ mode: 'enforce' });
    const outcomes = (e: ReturnType<typeof engineWith>) => Array.from({ length: 8 }, (_, i) => e.call({ workload: SHOP, method: 'POST', path: '/users', at: i * 100 }).outcome);
    assert.deepEqual(outcomes(declared), Array(8).fill('allow'), 'the declared flow sets no rate: the "signup" heuristic is not applied');
    assert.ok(outcomes(heuristic).includes('429'), 'without the declaration the signup heuristic limits it');
    assert.deepEqual(engineSettingsFor(checkout).notApplied, []);
  });
});

/** A local JWKS endpoint whose answer a test can change; counts requests. */
async function jwksServer() {
  const state = { body: '{"keys":[]}', status: 200, hang: false, hits: 0 };
  const server = http.createServer((req, res) => {
    state.hits++;
    if (state.hang) return; // never answers
    res.writeHead(state.status, { 'content-type': 'application/json' }).end(state.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  return { state, url, close: () => { server.closeAllConnections(); server.close(); } };
}

const octKey = (kid: string, secret: string) => ({ kty: 'oct', kid, k: Buffer.from(secret).toString('base64url') });
const jwksOf = (...keys: object[]) => JSON.stringify({ keys });

describe('jwt.issuers[].jwksUri', () => {
  test('tokens verify against the fetched set; a rotated key is picked up on its unknown kid', async () => {
    const srv = await jwksServer();
    try {
      srv.state.body = jwksOf(octKey('k1', 'first-secret'));
      let now = 0;
      remoteJwksFor(srv.url, { now: () => now }); // the instance the detector will share, on a test clock
      const iss = 'https://idp.test/';
      const { call } = engineWith({ mode: 'enforce', jwt: { issuers: [{ issuer: iss, jwksUri: srv.url }] } });
      const auth = (secret: string, kid: string) => ({ authorization: `Bearer ${makeJwt({ iss, sub: 'u1', exp: 4_000_000_000 }, { secret, kid })}` });
      const sigFindings = (fs: Finding[]) => fs.filter((f) => /signature/.test(f.summary));
      assert.deepEqual(sigFindings(call({ workload: SHOP, headers: auth('first-secret', 'k1') }).findings), [], 'not judged before the first fetch');
      await remoteJwksFor(srv.url).settled();
      assert.equal(call({ workload: SHOP, headers: auth('first-secret', 'k1') }).outcome, 'allow');
      const forged = call({ workload: SHOP, headers: auth('guessed-secret', 'k1') });
      assert.equal(forged.outcome, '403');
      assert.equal(sigFindings(forged.findings)[0]?.evidence.verdict, 'invalid');
      assert.equal(sigFindings(forged.findings)[0]?.evidence.jwksUri, srv.url);
      srv.state.body = jwksOf(octKey('k2', 'second-secret'));
      const hits = srv.state.hits;
      const early = call({ workload: SHOP, headers: auth('second-secret', 'k2') });
      assert.equal(sigFindings(early.findings)[0]?.evidence.verdict, 'no-key');
      await remoteJwksFor(srv.url).settled();
      assert.equal(srv.state.hits, hits, 'unknown kid within a minute of the last fetch: no refetch');
      now = 61_000;
      const rotated = call({ workload: SHOP, headers: auth('second-secret', 'k2') });
      assert.equal(sigFindings(rotated.findings)[0]?.evidence.verdict, 'no-key', 'unknown kid: reported, and a refetch starts');
      await remoteJwksFor(srv.url).settled();
      assert.equal(srv.state.hits, hits + 1);
      assert.equal(call({ workload: SHOP, headers: auth('second-secret', 'k2') }).outcome, 'allow');
      assert.deepEqual(engineSettingsFor({ jwt: { issuers: [{ issuer: iss, jwksUri: srv.url }] } }).notApplied, []);
    } finally { srv.close(); }
  });

  test('refresh cadence, unknown-kid limit, and the last good set kept on every kind of failure', async () => {
    const srv = await jwksServer();
    try {
      let now = 0;
      const remote = new RemoteJwks(srv.url, { now: () => now, refreshMs: 600_000, unknownKidIntervalMs: 60_000, timeoutMs: 300, maxBytes: 4096 });
      srv.state.body = jwksOf(octKey('k1', 's'));
      assert.equal(remote.current(), undefined);
      await remote.settled();
      const good = remote.current();
      assert.ok(good);
      assert.equal(srv.state.hits, 1);
      now = 30_000; remote.unknownKey(); await remote.settled();
      assert.equal(srv.state.hits, 1, 'an unknown kid within a minute of the last fetch: no refetch');
      now = 61_000; remote.unknownKey(); remote.unknownKey(); await remote.settled();
      assert.equal(srv.state.hits, 2, 'after a minute: one refetch');
      for (const [name, breakIt] of [
        ['HTTP 500', () => { srv.state.status = 500; }],
        ['not JSON', () => { srv.state.status = 200; srv.state.body = '<html>'; }],
        ['not a JWKS', () => { srv.state.body = '{"keys":"x"}'; }],
        ['over the size cap', () => { srv.state.body = jwksOf({ kty: 'oct', kid: 'big', k: 'A'.repeat(5000) }); }],
        ['timeout', () => { srv.state.hang = true; }],
      ] as const) {
        breakIt();
        now += 700_000; // due for its regular refresh
        const version = remote.version;
        assert.ok(remote.current(), `${name}: the last good set is served while fetching`);
        await remote.settled();
        assert.ok(remote.lastError, `${name}: the failure is recorded`);
        assert.equal(remote.version, version, `${name}: the set is unchanged`);
        assert.ok(remote.current(), `${name}: the last good set stays`);
      }
      assert.match(remote.lastError ?? '', /abort|timeout/i);
      assert.throws(() => new RemoteJwks('file:///etc/passwd'), /only https and http/);
      const { call } = engineWith({ mode: 'enforce', jwt: { issuers: [{ issuer: 'https://x/', jwksUri: 'https://[' }, { issuer: 'https://y/', jwksUri: 'file:///etc/passwd' }] } });
      assert.equal(call({ workload: SHOP }).outcome, 'allow', 'unusable URIs (rejected by validation) never break the engine');
    } finally { srv.close(); }
  });
});

describe('sampling.maxBodyBytes', () => {
  test('bodies are cut at the workload\'s cap; the decoder and findings say so; other workloads keep theirs', () => {
    const { call } = engineWith({ mode: 'monitor', sampling: { maxBodyBytes: 64 }, rateLimits: [{ name: 'one', requests: 1, per: 'minute' }] });
    const body = JSON.stringify({ note: 'x'.repeat(200) });
    const headers = { 'content-type': 'application/json' };
    const first = call({ workload: SHOP, method: 'POST', body, headers });
    assert.equal(first.request.body?.length, 64, 'detectors see only the first 64 bytes');
    const decoded = decodeBody(first.request.body, first.request.headers);
    assert.equal(decoded.wireBytes, body.length);
    assert.ok(decoded.problems.some((p) => p.code === 'truncated' && /64-byte cap \(sampling\.maxBodyBytes\)/.test(p.detail)));
    assert.ok(!decoded.problems.some((p) => p.code === 'invalid-json'), 'a cut document is not malformed');
    assert.ok(!first.findings.some((f) => f.detector === 'content-body'), 'no malformed-body finding for the cut');
    const second = call({ workload: SHOP, method: 'POST', body, headers });
    const limited = second.findings.find((f) => f.detector === 'resource-consumption');
    assert.deepEqual(limited?.evidence.bodyCut, { request: { wireBytes: body.length, inspectedBytes: 64 } });
    const elsewhere = call({ workload: SHOP, method: 'POST', body, headers, namespace: 'lab' });
    assert.equal(elsewhere.request.body?.length, body.length, 'the mesh default sets no cap');
    assert.deepEqual(engineSettingsFor({ sampling: { maxBodyBytes: 64 } }).notApplied, []);
  });
});
