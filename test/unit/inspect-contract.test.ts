// Request and response contracts with ajv (issue #6, API3/API8): unknown properties (mass
// assignment), readOnly properties, wrong types, missing required, out-of-range values, parameters,
// response exposure, recursive schemas, compile-once caching and invalid specs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBody } from '../../extproc/src/inspect/body.ts';
import { ContractValidator, toJsonSchema, type OpenApiOperation } from '../../extproc/src/inspect/contract.ts';

const json = (v: unknown) => decodeBody(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)), new Map([['content-type', ['application/json']]]));
const form = (s: string) => decodeBody(Buffer.from(s), new Map([['content-type', ['application/x-www-form-urlencoded']]]));
const kinds = (vs: { kind: string; pointer: string }[]) => vs.map((v) => `${v.kind} ${v.pointer}`).sort();

const userSchema = {
  type: 'object',
  required: ['username', 'password'],
  properties: {
    id: { type: 'integer', readOnly: true },
    username: { type: 'string', minLength: 3, maxLength: 20 },
    password: { type: 'string', writeOnly: true },
    email: { type: 'string', format: 'email', nullable: true },
    age: { type: 'integer', minimum: 0, maximum: 150 },
    plan: { type: 'string', enum: ['free', 'pro'] },
    address: { type: 'object', properties: { city: { type: 'string' } } },
    meta: { type: 'object', additionalProperties: true },
  },
};

const register: OpenApiOperation = {
  operationId: 'register',
  parameters: [
    { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100 } },
    { name: 'team', in: 'path', required: true, schema: { type: 'string', pattern: '^[a-z]+$' } },
  ],
  requestBody: { required: true, content: { 'application/json': { schema: userSchema }, 'application/x-www-form-urlencoded': { schema: userSchema } } },
  responses: {
    '200': { content: { 'application/json': { schema: { type: 'object', properties: { id: { type: 'integer' }, username: { type: 'string' }, password: { type: 'string', writeOnly: true } } } } } },
    default: { content: { 'application/json': { schema: { type: 'object', properties: { message: { type: 'string' } } } } } },
  },
};

test('a body that follows the contract has no violations', () => {
  const v = new ContractValidator();
  assert.deepEqual(v.validateRequest(register, json({ username: 'alice', password: 'x', email: null, address: { city: 'Oslo' }, meta: { any: 1 } }), [], { team: 'ops' }), []);
});

test('undeclared properties are mass assignment, at any depth; open objects stay open', () => {
  const v = new ContractValidator();
  const out = v.validateRequest(register, json({ username: 'alice', password: 'x', isAdmin: true, role: 'admin', address: { city: 'a', balance: 9 }, meta: { anything: 1 } }), []);
  assert.deepEqual(kinds(out), ['unknown-property /address/balance', 'unknown-property /isAdmin', 'unknown-property /role']);
});

test('readOnly properties may not be sent (they are server-assigned)', () => {
  const out = new ContractValidator().validateRequest(register, json({ id: 1, username: 'alice', password: 'x' }), []);
  assert.deepEqual(kinds(out), ['unknown-property /id']);
});

test('wrong types, missing required and out-of-range values are classified', () => {
  const out = new ContractValidator().validateRequest(register, json({ username: 1, age: 200, plan: 'gold', email: 'not-an-email' }), []);
  assert.deepEqual(kinds(out), ['missing-required ', 'out-of-range /age', 'out-of-range /email', 'out-of-range /plan', 'wrong-type /username']);
  assert.ok(out.every((x) => !x.detail.includes('gold')), 'details never echo the submitted value');
});

test('query and path parameters are validated with type coercion; unknown query parameters are fine', () => {
  const v = new ContractValidator();
  assert.deepEqual(v.validateRequest(register, json({ username: 'alice', password: 'x' }), [['limit', '10'], ['utm', 'x']], { team: 'ops' }), []);
  const bad = v.validateRequest(register, json({ username: 'alice', password: 'x' }), [['limit', '1000']], { team: 'OPS1' });
  assert.deepEqual(kinds(bad), ['out-of-range /limit', 'out-of-range /team']);
});

test('form bodies are checked against the form schema', () => {
  const out = new ContractValidator().validateRequest(register, form('username=alice&password=x&isAdmin=true'), []);
  assert.deepEqual(kinds(out), ['unknown-property /isAdmin']);
});

test('missing body, undeclared content type and malformed JSON are violations', () => {
  const v = new ContractValidator();
  assert.deepEqual(kinds(v.validateRequest(register, decodeBody(undefined, new Map()), [])), ['missing-body ']);
  const xml = decodeBody(Buffer.from('<a/>'), new Map([['content-type', ['application/xml']]]));
  assert.deepEqual(kinds(v.validateRequest(register, xml, [])), ['unexpected-content-type ']);
  assert.deepEqual(kinds(v.validateRequest(register, json('{"username":'), [])), ['malformed-body ']);
});

test('responses: undeclared and writeOnly properties are exposure; status falls back to default', () => {
  const v = new ContractValidator();
  assert.deepEqual(v.validateResponse(register, 200, json({ id: 1, username: 'a' })), []);
  assert.deepEqual(kinds(v.validateResponse(register, 200, json({ id: 1, username: 'a', password: 'h', ssn: '1' }))), ['unknown-property /password', 'unknown-property /ssn']);
  assert.deepEqual(kinds(v.validateResponse(register, 500, json({ message: 'x', stack: 'y' }))), ['unknown-property /stack']);
});

test('validators are compiled once per operation and reused', () => {
  const v = new ContractValidator();
  const body = json({ username: 'alice', password: 'x' });
  v.validateRequest(register, body, [['limit', '1']], { team: 'a' });
  const after = v.compilations;
  assert.equal(after, 3); // query params, path params, JSON body
  for (let i = 0; i < 20; i++) v.validateRequest(register, json({ username: `u${i}xx`, password: 'x' }), [['limit', '2']], { team: 'b' });
  assert.equal(v.compilations, after);
  // Another JSON media type maps to the same declared entry: no new compilation.
  v.validateRequest(register, decodeBody(Buffer.from('{"username":"abc","password":"x"}'), new Map([['content-type', ['application/vnd.x+json']]])), []);
  assert.equal(v.compilations, after);
});

test('recursive (dereferenced, cyclic) schemas compile and validate', () => {
  const node: Record<string, unknown> = { type: 'object', properties: { name: { type: 'string' } } };
  (node.properties as Record<string, unknown>).children = { type: 'array', items: node };
  const op: OpenApiOperation = { requestBody: { content: { 'application/json': { schema: node } } } };
  const schema = toJsonSchema(node, 'request');
  assert.ok(JSON.stringify(schema).includes('#/$defs/'));
  const v = new ContractValidator();
  assert.deepEqual(v.validateRequest(op, json({ name: 'a', children: [{ name: 'b', children: [] }] }), []), []);
  assert.deepEqual(kinds(v.validateRequest(op, json({ name: 'a', children: [{ name: 'b', admin: true }] }), [])), ['unknown-property /children/0/admin']);
});

test('recursive schemas that kept their internal $ref (as the spec loader leaves them) resolve against the spec document', () => {
  const specDocument = { components: { schemas: { Comment: { type: 'object', properties: { text: { type: 'string' }, replies: { type: 'array', items: { $ref: '#/components/schemas/Comment' } } } } } } };
  const op: OpenApiOperation = { specDocument, requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/Comment' } } } } };
  const v = new ContractValidator();
  assert.deepEqual(v.validateRequest(op, json({ text: 'a', replies: [{ text: 'b', replies: [] }] }), []), []);
  assert.deepEqual(kinds(v.validateRequest(op, json({ text: 'a', replies: [{ text: 'b', pinned: true }] }), [])), ['unknown-property /replies/0/pinned']);
  assert.deepEqual(v.compileErrors, []);
});

test('allOf composition is closed as a whole, not per branch', () => {
  const op: OpenApiOperation = { requestBody: { content: { 'application/json': { schema: {
    allOf: [{ type: 'object', properties: { a: { type: 'string' } } }, { type: 'object', properties: { b: { type: 'string' } } }],
  } } } } };
  const v = new ContractValidator();
  assert.deepEqual(v.validateRequest(op, json({ a: 'x', b: 'y' }), []), []);
  assert.deepEqual(kinds(v.validateRequest(op, json({ a: 'x', c: 'z' }), [])), ['unknown-property /c']);
});

test('OpenAPI 3.0 boolean exclusiveMinimum is honoured', () => {
  const op: OpenApiOperation = { requestBody: { content: { 'application/json': { schema: { type: 'object', properties: { n: { type: 'number', minimum: 0, exclusiveMinimum: true } } } } } } };
  const v = new ContractValidator();
  assert.deepEqual(kinds(v.validateRequest(op, json({ n: 0 }), [])), ['out-of-range /n']);
  assert.deepEqual(v.validateRequest(op, json({ n: 0.5 }), []), []);
});

test('an invalid schema in a spec is recorded once and skipped, never thrown', () => {
  const op: OpenApiOperation = { operationId: 'broken', requestBody: { content: { 'application/json': { schema: { type: 'object', properties: { a: { $ref: '#/nowhere' } } } } } } };
  const v = new ContractValidator();
  assert.deepEqual(v.validateRequest(op, json({ a: 1 }), []), []);
  assert.deepEqual(v.validateRequest(op, json({ a: 2 }), []), []);
  assert.equal(v.compileErrors.length, 1);
  assert.match(v.compileErrors[0]!, /^broken /);
});

test('__proto__ in a body validated by ajv pollutes nothing', () => {
  const v = new ContractValidator();
  v.validateRequest(register, json('{"username":"abc","password":"x","__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}'), []);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('through the inventory spec loader and matcher: path parameters, recursive components, mass assignment', async () => {
  const { parseSpec } = await import('../../extproc/src/inventory/spec.ts');
  const { specOperationResolver } = await import('../../extproc/src/inspect/spec-resolver.ts');
  const { toExchange } = await import('../../extproc/src/engine/exchange.ts');
  const spec = await parseSpec(JSON.stringify({
    openapi: '3.0.3', info: { title: 't', version: '1' }, servers: [{ url: 'https://api.example.com/v2' }],
    paths: { '/threads/{threadId}/comments': {
      parameters: [{ name: 'threadId', in: 'path', required: true, schema: { type: 'integer' } }],
      post: { requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/Comment' } } } }, responses: { '201': { description: 'ok' } } },
    } },
    components: { schemas: { Comment: { type: 'object', properties: { text: { type: 'string' }, replies: { type: 'array', items: { $ref: '#/components/schemas/Comment' } } } } } },
  }), 'recursive.json');
  const resolve = specOperationResolver([{ authority: 'comments.svc', spec }]);
  const exchange = (path: string) => toExchange({ requestId: 'r', time: 0, caller: { mtls: true, identitySource: 'filter' }, method: 'POST', authority: 'comments.svc:8080', path, headers: new Map() });
  const resolved = resolve(exchange('/v2/threads/7/comments'));
  assert.ok(resolved);
  assert.deepEqual(resolved.pathParams, { threadId: '7' });
  assert.equal(resolve(exchange('/v2/threads/8/comments'))!.operation, resolved.operation, 'one stable object per operation, so validators stay cached');
  const v = new ContractValidator();
  assert.deepEqual(kinds(v.validateRequest(resolved.operation, json({ text: 'a', replies: [{ text: 'b', isAdmin: true }] }), [], resolved.pathParams)), ['unknown-property /replies/0/isAdmin']);
  const bad = resolve(exchange('/v2/threads/abc/comments'))!;
  assert.deepEqual(kinds(v.validateRequest(bad.operation, json({ text: 'a' }), [], bad.pathParams)), ['wrong-type /threadId']);
  assert.equal(resolve(exchange('/v2/other')), undefined);
  assert.deepEqual(v.compileErrors, []);
});
