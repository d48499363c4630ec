// The content detectors through the engine (issue #6): one positive and one negative case per
// check, in enforce mode, so a finding that asks for it really turns into a 403/429.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { Engine } from '../../extproc/src/engine/engine.ts';
import type { RequestEvent, ResponseEvent } from '../../extproc/src/engine/event.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { createContentDetectors } from '../../extproc/src/engine/detectors/content.ts';
import { createContentContext, type ContentSettings } from '../../extproc/src/inspect/settings.ts';
import type { OpenApiOperation } from '../../extproc/src/inspect/contract.ts';
import type { ContentMisconfigDetector } from '../../extproc/src/engine/detectors/content-misconfig.ts';

const SPIFFE = 'spiffe://cluster.local/ns/web/sa/frontend';

const registerOp: OpenApiOperation = {
  operationId: 'register',
  requestBody: { content: { 'application/json': { schema: { type: 'object', required: ['username'], properties: { username: { type: 'string' }, email: { type: 'string' } } } } } },
  responses: { '200': { content: { 'application/json': { schema: { type: 'object', properties: { id: { type: 'integer' }, username: { type: 'string' } } } } } } },
};

function setup(settings: Partial<ContentSettings> = {}) {
  const content = createContentContext(settings, (ex) => (ex.template === '/register' ? { operation: registerOp, pathParams: {} } : undefined));
  let misconfig: ContentMisconfigDetector | undefined;
  const engine = new Engine({
    denyRules: [], mode: 'enforce',
    detectors: (c) => {
      const ds = createContentDetectors(c, content);
      misconfig = ds.find((d) => d.name === 'content-misconfig') as ContentMisconfigDetector;
      return ds;
    },
  });
  const findings: Finding[] = [];
  engine.addObserver({ onFinding: (f) => findings.push(f), onDetectorError: (d, e) => { throw new Error(`${d} threw: ${String(e)}`); } });
  let n = 0;
  const send = (req: Omit<Partial<RequestEvent>, 'body'> & { body?: Buffer | string; json?: unknown }, res?: Partial<ResponseEvent> & { json?: unknown; text?: string }) => {
    const before = findings.length;
    const body = req.json !== undefined ? Buffer.from(JSON.stringify(req.json)) : typeof req.body === 'string' ? Buffer.from(req.body) : req.body;
    const headers = new Map<string, string[]>(req.headers ? [...req.headers].map(([k, v]) => [k, [...v]]) : []);
    if (req.json !== undefined) headers.set('content-type', ['application/json']);
    const request: RequestEvent = {
      requestId: `r${++n}`, time: 1_000_000 + n * 1000,
      caller: req.caller ?? { workload: SPIFFE, mtls: true, identitySource: 'filter' },
      method: req.method ?? 'POST', authority: req.authority ?? 'users.svc', path: req.path ?? '/register', headers,
      ...(body !== undefined ? { body } : {}),
      ...(req.direction ? { direction: req.direction } : {}),
    };
    const decision = engine.decide(request);
    if (res) {
      const rh = new Map<string, string[]>(res.headers ? [...res.headers].map(([k, v]) => [k, [...v]]) : []);
      let rb: Buffer | undefined = res.body;
      if (res.json !== undefined) { rh.set('content-type', ['application/json']); rb = Buffer.from(JSON.stringify(res.json)); }
      if (res.text !== undefined) rb = Buffer.from(res.text);
      engine.observeResponse(request, { requestId: request.requestId, time: request.time, status: res.status ?? 200, headers: rh, ...(rb ? { body: rb } : {}) });
    }
    return { decision, findings: findings.slice(before) };
  };
  return { send, posture: () => misconfig!.posture() };
}

const detectorsOf = (fs: Finding[]) => fs.map((f) => `${f.detector}:${f.category}`).sort();

test('contract: mass assignment is denied (API3); a conforming body passes', () => {
  const { send } = setup();
  const bad = send({ json: { username: 'eve', isAdmin: true } });
  assert.equal(bad.decision.action, 'deny');
  assert.deepEqual(detectorsOf(bad.findings), ['content-contract:API3:2023-BrokenObjectPropertyLevelAuthorization']);
  assert.deepEqual(bad.findings[0]!.evidence.properties, ['/isAdmin']);
  const good = send({ json: { username: 'ann' } });
  assert.equal(good.decision.action, 'allow');
  assert.deepEqual(good.findings, []);
});

test('contract: wrong types are API8; an operation in monitor mode reports without denying', () => {
  const { send } = setup({ contract: { default: 'enforce', operations: { 'POST users.svc /register': 'monitor' }, learnedMinSamples: 5 } });
  const r = send({ json: { username: 7 } });
  assert.equal(r.decision.action, 'allow');
  assert.deepEqual(detectorsOf(r.findings), ['content-contract:API8:2023-SecurityMisconfiguration']);
  assert.equal(r.findings[0]!.enforcement, 'none');
});

test('contract without a spec: after a consistent shape, a privileged new property is mass assignment and a type change is API8', () => {
  const { send } = setup();
  for (let i = 0; i < 5; i++) assert.deepEqual(send({ path: '/signup', json: { username: `u${i}`, password: 'p', email: `u${i}@example.com` } }).findings, []);
  const admin = send({ path: '/signup', json: { username: 'eve', password: 'p', email: 'e@example.com', admin: true } });
  assert.equal(admin.decision.action, 'deny');
  assert.deepEqual(admin.findings[0]?.evidence.properties, ['/admin']);
  assert.equal(admin.findings[0]?.evidence.contract, 'learned');
  assert.deepEqual(send({ path: '/signup', json: { username: 'ann', password: 'p', email: 'a@example.com', nickname: 'a' } }).findings, [], 'an ordinary new property is drift, not an attack');
  const typed = send({ path: '/signup', json: { username: 1, password: [], email: 'x@example.com' } });
  assert.deepEqual(detectorsOf(typed.findings), ['content-contract:API8:2023-SecurityMisconfiguration']);
});

test('contract without a spec: nothing is judged before the operation has shown a shape', () => {
  const { send } = setup();
  assert.deepEqual(send({ path: '/fresh', json: { role: 'admin' } }).findings, []);
});

test('contract: __proto__ keys are denied even without a spec', () => {
  const { send } = setup();
  const r = send({ path: '/other', body: '{"__proto__":{"isAdmin":true}}', headers: new Map([['content-type', ['application/json']]]) });
  assert.equal(r.decision.action, 'deny');
  assert.match(r.findings[0]!.summary, /prototype pollution/);
});

test('body: a gzip bomb is denied as resource consumption (API4); a normal gzip body passes', () => {
  const { send } = setup();
  const bomb = send({ path: '/upload', body: zlib.gzipSync(Buffer.alloc(32 * 1024 * 1024)), headers: new Map([['content-type', ['application/json']], ['content-encoding', ['gzip']]]) });
  assert.equal(bomb.decision.action, 'deny');
  assert.deepEqual(detectorsOf(bomb.findings), ['content-body:API4:2023-UnrestrictedResourceConsumption']);
  const ok = send({ path: '/upload', body: zlib.gzipSync(Buffer.from('{"a":1}')), headers: new Map([['content-type', ['application/json']], ['content-encoding', ['gzip']]]) });
  assert.deepEqual(ok.findings, []);
});

test('body: malformed JSON under a JSON content type is API8', () => {
  const { send } = setup();
  const r = send({ path: '/upload', body: '{"a":', headers: new Map([['content-type', ['application/json']]]) });
  assert.deepEqual(detectorsOf(r.findings), ['content-body:API8:2023-SecurityMisconfiguration']);
});

test('a body over the inspection cap is inspected up to the cap and the finding says so', () => {
  const { send } = setup({ body: { ...createContentContext().settings.body, maxBodyBytes: 64 } });
  const r = send({ path: '/fetch', body: `url=http://169.254.169.254/&pad=${'x'.repeat(500)}`, headers: new Map([['content-type', ['application/x-www-form-urlencoded']]]) });
  assert.deepEqual(detectorsOf(r.findings), ['content-ssrf:API7:2023-SSRF']);
  assert.equal((r.findings[0]!.evidence.body as { truncated: boolean }).truncated, true);
});

test('ssrf: an internal URL in the body is denied (API7); a public one passes', () => {
  const { send } = setup();
  const r = send({ path: '/webhooks', json: { callback: 'http://0x7f.1:6379/' } });
  assert.equal(r.decision.action, 'deny');
  assert.equal(r.findings[0]!.category, 'API7:2023-SSRF');
  assert.equal(r.findings[0]!.severity, 'critical');
  assert.deepEqual(send({ path: '/webhooks', json: { callback: 'https://hooks.example.com/x' } }).findings, []);
  assert.equal(send({ method: 'GET', path: '/preview?url=file%3A%2F%2F%2Fetc%2Fpasswd' }).decision.action, 'deny');
});

test('exposure: private keys in a response are reported; undeclared response properties once per operation', () => {
  const { send } = setup();
  const key = send({ method: 'GET', path: '/keys' }, { json: { pem: '-----BEGIN PRIVATE KEY-----\nMIIB' } });
  assert.deepEqual(detectorsOf(key.findings), ['content-exposure:API3:2023-BrokenObjectPropertyLevelAuthorization']);
  assert.ok(!JSON.stringify(key.findings).includes('MIIB'), 'evidence never carries the secret');
  const first = send({ json: { username: 'ann' } }, { json: { id: 1, username: 'ann', passwordHash: 'x' } });
  assert.deepEqual(first.findings[0]?.evidence.properties, ['/passwordHash']);
  assert.deepEqual(send({ json: { username: 'bob' } }, { json: { id: 2, username: 'bob', passwordHash: 'y' } }).findings, []);
  assert.deepEqual(send({ json: { username: 'cy' } }, { json: { id: 3, username: 'cy' } }).findings, []);
});

test('exposure: an established caller that suddenly receives a new sensitive field is reported', () => {
  const { send } = setup({ exposure: { alwaysReport: [], callerWarmup: 5, operationWarmup: 5, commonAmongCallers: 3, redact: [] } });
  for (let i = 0; i < 6; i++) assert.deepEqual(send({ method: 'GET', path: '/me' }, { json: { name: 'ann', email: 'ann@example.com' } }).findings, []);
  const r = send({ method: 'GET', path: '/me' }, { json: { name: 'ann', email: 'ann@example.com', ssn: '123-45-6789' } });
  assert.deepEqual(detectorsOf(r.findings), ['content-exposure:API3:2023-BrokenObjectPropertyLevelAuthorization']);
  assert.match(r.findings[0]!.summary, /national-id in \/ssn/);
  assert.deepEqual(send({ method: 'GET', path: '/me' }, { json: { name: 'ann', email: 'ann@example.com', ssn: '123-45-6789' } }).findings, [], 'learned after the first time');
});

test('exposure: a field the operation routinely gives to other identities (a login token) is not sudden', () => {
  const { send } = setup({ exposure: { alwaysReport: [], callerWarmup: 5, operationWarmup: 5, commonAmongCallers: 3, redact: [] } });
  const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';
  for (const user of ['a', 'b', 'c']) send({ path: '/login', caller: { workload: `spiffe://x/ns/u/sa/${user}`, mtls: true, identitySource: 'filter' } }, { json: { token } });
  for (let i = 0; i < 6; i++) send({ path: '/login' }, { json: { message: 'wrong password' } });
  assert.deepEqual(send({ path: '/login' }, { json: { token } }).findings, []);
});

test('misconfig: stack traces, credentialed wildcard CORS and TRACE are findings; banners and headers go to the posture', () => {
  const { send, posture } = setup();
  const trace = send({ method: 'GET', path: '/items', headers: new Map([['x-forwarded-for', ['1.2.3.4']]]) }, {
    status: 500, text: 'Traceback (most recent call last):\n  File "/app/x.py", line 3, in <module>',
    headers: new Map([['server', ['Werkzeug/2.2.2 Python/3.11.2']], ['access-control-allow-origin', ['*']], ['access-control-allow-credentials', ['true']]]),
  });
  assert.deepEqual(detectorsOf(trace.findings), ['content-misconfig:API8:2023-SecurityMisconfiguration', 'content-misconfig:API8:2023-SecurityMisconfiguration']);
  const ok = send({ method: 'GET', path: '/items' }, { status: 404, json: { error: 'not found' } });
  assert.deepEqual(ok.findings, []);
  assert.equal(send({ method: 'TRACE', path: '/items' }, { status: 200 }).findings[0]?.summary.startsWith('TRACE is enabled'), true);
  assert.deepEqual(send({ method: 'TRACE', path: '/items' }, { status: 405 }).findings, []);
  const items = posture().find((p) => p.operation === 'GET users.svc /items')!.items.map((i) => i.issue).sort();
  assert.deepEqual(items, ['cors:wildcard-with-credentials', 'missing-security-headers', 'verbose-errors', 'version-banner:server']);
  send({ method: 'GET', path: '/plain', caller: { mtls: false, sourceAddress: '10.0.0.9:5000', workload: 'spiffe://x/ns/a/sa/b', identitySource: 'filter' } }, { status: 200 });
  assert.ok(posture().some((p) => p.items.some((i) => i.issue === 'plaintext-east-west')));
});

test('unsafe consumption: a third-party response with injection payloads or an internal redirect is API10', () => {
  const { send } = setup({ thirdPartyHosts: ['api.partner.com'] });
  const r = send({ method: 'GET', authority: 'api.partner.com', path: '/rates', direction: 'outbound' }, { json: { note: "<script>alert(1)</script>", q: "' OR '1'='1" } });
  assert.deepEqual(detectorsOf(r.findings), ['content-unsafe-consumption:API10:2023-UnsafeConsumption']);
  assert.deepEqual(r.findings[0]!.evidence.values, [{ pointer: '/note', signatures: ['script'] }, { pointer: '/q', signatures: ['sql'] }]);
  const redirect = send({ method: 'GET', authority: 'api.partner.com', path: '/r', direction: 'outbound' }, { status: 302, headers: new Map([['location', ['http://169.254.169.254/']]]) });
  assert.equal(redirect.findings[0]?.category, 'API10:2023-UnsafeConsumption');
  assert.deepEqual(send({ method: 'GET', authority: 'api.partner.com', path: '/rates', direction: 'outbound' }, { json: { rate: 1.2, note: 'fine' } }).findings, []);
  assert.deepEqual(send({ method: 'GET', authority: 'users.svc', path: '/x' }, { json: { note: '<script>x</script>' } }).findings, [], 'internal services are not third parties');
});

test('grpc: reflection and methods outside the descriptor set are denied; declared methods pass', () => {
  const { send } = setup({ grpc: { knownMethods: ['/shop.Orders/Get'], allowReflection: false } });
  const grpc = new Map([['content-type', ['application/grpc']]]);
  assert.equal(send({ path: '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo', headers: grpc }).decision.action, 'deny');
  assert.equal(send({ path: '/shop.Orders/Delete', headers: grpc }).findings[0]?.category, 'GRPC-Abuse');
  assert.deepEqual(send({ path: '/shop.Orders/Get', headers: grpc }).findings, []);
});

test('websocket: upgrades without credentials are denied; a flood is rate-limited', () => {
  const { send } = setup({ websocket: { requireCredentials: true, upgradesPerMinute: 3 } });
  const anon = { method: 'GET', path: '/ws', caller: { mtls: false, sourceAddress: '1.2.3.4:1', identitySource: 'none' as const }, headers: new Map([['upgrade', ['websocket']]]) };
  assert.equal(send(anon).decision.action, 'deny');
  const authed = { method: 'GET', path: '/ws', headers: new Map([['upgrade', ['websocket']], ['authorization', ['Bearer x']]]) };
  assert.deepEqual(send(authed).findings, []);
  send(authed); send(authed);
  const flood = send(authed);
  assert.equal(flood.decision.action, 'deny');
  assert.equal(flood.decision.action === 'deny' ? flood.decision.status : 0, 429);
});

test('graphql through the engine: alias overload denied, a normal query passes', () => {
  const { send } = setup();
  const aliases = `query { ${Array.from({ length: 40 }, (_, i) => `a${i}: systemHealth`).join(' ')} }`;
  assert.equal(send({ path: '/graphql', json: { query: aliases } }).decision.action, 'deny');
  assert.deepEqual(send({ path: '/graphql', json: { query: '{ pastes(limit: 5) { id } }' } }).findings, []);
});
