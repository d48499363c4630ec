// spec.content (issues #6/#7): a policy's content settings reach the content detectors of that
// workload's detector set. Policies load as the server loads them: PolicySet -> WorkloadPolicies
// (modeFor/profileFor) over the mesh default's engine settings, with PolicyServerWiring.detectors
// (shared spec resolver and body decoder, `serve --redact` default).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicySet } from '../../extproc/src/policy/precedence.ts';
import { WorkloadPolicies } from '../../extproc/src/policy/workload-policy.ts';
import { engineSettingsFor } from '../../extproc/src/policy/engine-mapping.ts';
import { PolicyServerWiring } from '../../extproc/src/policy/server-wiring.ts';
import { validatePolicyObject } from '../../extproc/src/policy/validate.ts';
import type { ApiSecurityPolicy, PolicySpec } from '../../extproc/src/policy/types.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import type { SensitiveKind } from '../../extproc/src/inspect/sensitive.ts';

const policy = (namespace: string, name: string, spec: PolicySpec): ApiSecurityPolicy =>
  ({ apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name, namespace }, spec }) as ApiSecurityPolicy;

interface Call { method?: string; path?: string; headers?: Record<string, string>; body?: string; namespace?: string; response?: { status: number; headers?: Record<string, string>; body?: string } }

const headersOf = (h: Record<string, string> = {}) => new Map(Object.entries(h).map(([k, v]) => [k, [v]]));

/** The "shop" namespace has `shop`; every other namespace gets the mesh default. */
function engineWith(shop: PolicySpec, meshDefault: PolicySpec = { mode: 'enforce' }, redact: SensitiveKind[] = []) {
  const workloads = new WorkloadPolicies();
  workloads.update(new PolicySet('meshward', [policy('meshward', 'mesh-default', meshDefault), policy('shop', 'shop', shop)]));
  const wiring = new PolicyServerWiring(undefined, {}, redact);
  const engine = new Engine({ ...engineSettingsFor(meshDefault).engine, detectors: wiring.detectors, modeFor: workloads.modeFor, profileFor: workloads.profileFor });
  const findings: Finding[] = [];
  engine.addObserver({ onFinding: (f) => findings.push(f) });
  let n = 0;
  const call = (c: Call = {}) => {
    const request: RequestEvent = {
      requestId: `r${n++}`, time: 1_000_000 + n, caller: { workload: 'spiffe://td/ns/shop/sa/web', mtls: true, identitySource: 'filter' },
      method: c.method ?? 'GET', authority: 'api.shop', path: c.path ?? '/', headers: headersOf(c.headers),
      ...(c.body !== undefined ? { body: Buffer.from(c.body) } : {}), sidecarWorkload: { namespace: c.namespace ?? 'shop' },
    };
    const before = findings.length;
    const d = engine.decide(request);
    if (c.response) {
      engine.observeResponse(request, { requestId: request.requestId, time: request.time + 1, status: c.response.status, headers: headersOf(c.response.headers), ...(c.response.body !== undefined ? { body: Buffer.from(c.response.body), bodyComplete: true } : {}) });
    }
    return { outcome: d.action === 'allow' ? 'allow' : `${d.status}`, findings: findings.slice(before) };
  };
  return { call };
}

const by = (fs: readonly Finding[], detector: string) => fs.filter((f) => f.detector === detector);
const JSON_TYPE = { 'content-type': 'application/json' };

describe('spec.content.contracts', () => {
  /** Learns POST `path`'s shape from consistent requests, then sends one with an extra `role`. */
  const massAssignment = (call: ReturnType<typeof engineWith>['call'], path: string, namespace = 'shop') => {
    for (let i = 0; i < 8; i++) call({ method: 'POST', path, headers: JSON_TYPE, body: JSON.stringify({ name: `u${i}` }), namespace });
    return call({ method: 'POST', path, headers: JSON_TYPE, body: JSON.stringify({ name: 'x', role: 'admin' }), namespace });
  };
  test('monitor for one operation: reported and let through; enforce elsewhere: denied', () => {
    const { call } = engineWith({ mode: 'enforce', content: { contracts: { mode: 'enforce', operations: [{ operation: 'POST /profiles', mode: 'monitor' }] } } });
    const users = massAssignment(call, '/profiles');
    assert.equal(users.outcome, 'allow');
    const f = by(users.findings, 'content-contract');
    assert.ok(f.length > 0, 'still reported');
    assert.ok(f.every((x) => x.enforcement === 'none'));
    const orders = massAssignment(call, '/notes');
    assert.equal(orders.outcome, '403');
    assert.ok(by(orders.findings, 'content-contract').some((x) => x.enforcement === 'deny'));
  });
  test('contracts.mode monitor applies to every operation of that namespace only', () => {
    const { call } = engineWith({ mode: 'enforce', content: { contracts: { mode: 'monitor' } } });
    assert.equal(massAssignment(call, '/settings').outcome, 'allow');
    assert.equal(massAssignment(call, '/settings', 'lab').outcome, '403', 'the mesh default enforces');
  });
  test('a path template in the operation matches any value of the segment', () => {
    const { call } = engineWith({ mode: 'enforce', content: { contracts: { operations: [{ operation: 'POST /carts/{id}/items', mode: 'monitor' }] } } });
    const items = massAssignment(call, '/carts/7/items');
    assert.equal(items.outcome, 'allow');
    assert.ok(by(items.findings, 'content-contract').some((x) => x.enforcement === 'none'));
    assert.equal(massAssignment(call, '/carts/7/notes').outcome, '403', 'another operation keeps enforce');
  });
});

describe('spec.content.graphql', () => {
  const introspection = JSON.stringify({ query: '{ __schema { types { name } } }' });
  test('introspection allowed in one namespace, reported and denied in another', () => {
    const { call } = engineWith({ mode: 'enforce', content: { graphql: { allowIntrospection: true } } });
    const shop = call({ method: 'POST', path: '/graphql', headers: JSON_TYPE, body: introspection });
    assert.deepEqual(by(shop.findings, 'content-graphql'), []);
    assert.equal(shop.outcome, 'allow');
    const lab = call({ method: 'POST', path: '/graphql', headers: JSON_TYPE, body: introspection, namespace: 'lab' });
    assert.ok(by(lab.findings, 'content-graphql').length > 0);
    assert.equal(lab.outcome, '403');
  });
  test('maxAliases from policy is the limit', () => {
    const { call } = engineWith({ mode: 'monitor', content: { graphql: { maxAliases: 2 } } });
    const query = JSON.stringify({ query: '{ a: me { id } b: me { id } c: me { id } }' });
    assert.ok(by(call({ method: 'POST', path: '/graphql', headers: JSON_TYPE, body: query }).findings, 'content-graphql').length > 0);
    assert.deepEqual(by(call({ method: 'POST', path: '/graphql', headers: JSON_TYPE, body: query, namespace: 'lab' }).findings, 'content-graphql'), []);
  });
});

describe('spec.content.ssrf', () => {
  test('an allowed host is not flagged there, and is elsewhere', () => {
    const { call } = engineWith({ mode: 'enforce', content: { ssrf: { allowedHosts: ['10.0.0.5'] } } });
    const path = `/fetch?url=${encodeURIComponent('http://10.0.0.5/hook')}`;
    assert.deepEqual(by(call({ path }).findings, 'content-ssrf'), []);
    assert.ok(by(call({ path, namespace: 'lab' }).findings, 'content-ssrf').length > 0);
  });
});

describe('spec.content.grpc', () => {
  const grpc = (path: string, namespace?: string) => ({ method: 'POST', path, headers: { 'content-type': 'application/grpc' }, ...(namespace ? { namespace } : {}) });
  test('an unknown method is flagged only where knownMethods is set', () => {
    const { call } = engineWith({ mode: 'monitor', content: { grpc: { knownMethods: ['shop.Orders/Get'] } } });
    assert.deepEqual(by(call(grpc('/shop.Orders/Get')).findings, 'content-grpc'), []);
    assert.ok(by(call(grpc('/shop.Orders/Delete')).findings, 'content-grpc').length > 0);
    assert.deepEqual(by(call(grpc('/shop.Orders/Delete', 'lab')).findings, 'content-grpc'), []);
  });
  test('allowReflection lets reflection calls through', () => {
    const { call } = engineWith({ mode: 'monitor', content: { grpc: { allowReflection: true } } });
    const reflection = '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo';
    assert.deepEqual(by(call(grpc(reflection)).findings, 'content-grpc'), []);
    assert.ok(by(call(grpc(reflection, 'lab')).findings, 'content-grpc').length > 0);
  });
});

describe('spec.content.thirdPartyHosts', () => {
  test('a listed host\'s responses are checked (API10); unlisted ones are not', () => {
    const { call } = engineWith({ mode: 'monitor', content: { thirdPartyHosts: ['API.shop'] } });
    const response = { status: 302, headers: { location: 'http://169.254.169.254/latest/meta-data/' } };
    const shop = by(call({ response }).findings, 'content-unsafe-consumption');
    assert.ok(shop.some((f) => f.category.startsWith('API10')));
    assert.deepEqual(by(call({ response, namespace: 'lab' }).findings, 'content-unsafe-consumption'), []);
  });
});

describe('spec.content.exposure', () => {
  const leaky = { status: 200, headers: JSON_TYPE, body: JSON.stringify({ id: 1, contact: 'alice@example.com' }) };
  test('serve --redact stays the default; a policy\'s redact replaces it', () => {
    const { call } = engineWith({ mode: 'enforce', content: { exposure: { alwaysReport: ['email'], redact: [] } } }, { mode: 'enforce', content: { exposure: { alwaysReport: ['email'] } } }, ['email']);
    const redacted = (fs: readonly Finding[]) => by(fs, 'content-exposure').some((f) => (f.redact?.length ?? 0) > 0);
    const lab = call({ path: '/profile', namespace: 'lab', response: leaky });
    assert.ok(by(lab.findings, 'content-exposure').length > 0, 'alwaysReport from policy');
    assert.ok(redacted(lab.findings), '--redact email applies where the policy does not say');
    const shop = call({ path: '/profile', response: leaky });
    assert.ok(by(shop.findings, 'content-exposure').length > 0);
    assert.ok(!redacted(shop.findings), 'the policy turned redaction off');
  });
});

describe('spec.content validation', () => {
  const errorsOf = (content: unknown) => validatePolicyObject({ apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name: 'p', namespace: 'shop' }, spec: { content } }).errors;
  test('bad values are rejected with their field path', () => {
    const cases: [unknown, string][] = [
      [{ exposure: { redact: ['ssn'] } }, 'spec.content.exposure.redact[0]'],
      [{ contracts: { operations: [{ operation: 'post users', mode: 'monitor' }] } }, 'spec.content.contracts.operations[0].operation'],
      [{ contracts: { mode: 'block' } }, 'spec.content.contracts.mode'],
      [{ graphql: { maxDepth: -1 } }, 'spec.content.graphql.maxDepth'],
      [{ websocket: { upgradesPerMinute: 0 } }, 'spec.content.websocket.upgradesPerMinute'],
      [{ grpc: { knownMethods: ['/pkg.Svc/M'] } }, 'spec.content.grpc.knownMethods[0]'],
      [{ ssrf: { openRedirectors: [{ host: 'r.example', parameter: 'next' }] } }, 'spec.content.ssrf.openRedirectors[0].parameter'],
      [{ contracts: { operations: [{ operation: 'POST /a', mode: 'monitor' }, { operation: 'POST /a', mode: 'enforce' }] } }, 'spec.content.contracts.operations[1]'],
      [{ thirdPartyHosts: ['Api.example', 'api.example'] }, 'spec.content.thirdPartyHosts[1]'],
      [{ maxBodyBytes: 10 }, 'spec.content.maxBodyBytes'],
    ];
    for (const [content, path] of cases) {
      const errors = errorsOf(content);
      assert.ok(errors.some((e) => e.path === path), `${JSON.stringify(content)}: ${JSON.stringify(errors)}`);
    }
  });
  test('a full content section is accepted and mapped', () => {
    const content = {
      contracts: { mode: 'monitor', operations: [{ operation: 'POST /users', mode: 'enforce' }] },
      exposure: { alwaysReport: ['private-key'], redact: ['card-number'] },
      ssrf: { allowedHosts: ['relay.svc'], openRedirectors: [{ host: 'r.example', pathPrefix: '/go' }] },
      graphql: { allowIntrospection: true, maxDepth: 8 },
      grpc: { allowReflection: false, knownMethods: ['shop.Orders/Get'] },
      websocket: { requireCredentials: false, upgradesPerMinute: 5 },
      thirdPartyHosts: ['api.stripe.com'],
    };
    assert.deepEqual(errorsOf(content), []);
    const mapped = engineSettingsFor({ content } as PolicySpec).detectors.content;
    assert.deepEqual(mapped?.grpc?.knownMethods, ['/shop.Orders/Get']);
    assert.equal(mapped?.contract?.default, 'monitor');
    assert.match('POST api.shop /users', new RegExp(mapped?.contract?.patterns?.[0]?.operation ?? '$^'));
    assert.equal(engineSettingsFor({ content } as PolicySpec).notApplied.length, 0);
  });
});
