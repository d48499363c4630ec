// Request -> spec operation matching: servers base paths, concrete before templated paths, path
// parameter styles, parameters inside a segment, methods, query and trailing slash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkSpecDocument } from '../../extproc/src/inventory/spec.ts';
import { matchSpecOperation, matchSpecPath } from '../../extproc/src/inventory/spec-match.ts';

const ok = { responses: { '200': { description: 'ok' } } };
const pathParam = (name: string, style?: string) => ({ name, in: 'path', required: true, schema: { type: 'string' }, ...(style ? { style } : {}) });

const spec = await checkSpecDocument({
  openapi: '3.1.0',
  info: { title: 'shop', version: '2' },
  servers: [{ url: 'https://shop.example.com/api/{version}', variables: { version: { default: 'v2' } } }, { url: '/legacy' }],
  paths: {
    '/users/{id}': { get: { operationId: 'getUser', parameters: [pathParam('id')], ...ok }, delete: { parameters: [pathParam('id')], ...ok } },
    '/users/me': { get: { operationId: 'me', ...ok } },
    '/files/{name}.json': { get: { parameters: [pathParam('name')], ...ok } },
    '/colors/{color}': { get: { parameters: [pathParam('color', 'label')], ...ok } },
    '/points/{point}': { get: { parameters: [pathParam('point', 'matrix')], ...ok } },
    '/reports/{year}/{month}': { get: { parameters: [pathParam('year'), pathParam('month')], ...ok } },
  },
}, 'shop.yaml');

test('base paths from servers (variables at their defaults), longest first', () => {
  assert.deepEqual(spec.basePaths, ['/api/v2', '/legacy']);
  const m = matchSpecOperation(spec, 'GET', '/api/v2/users/42?fields=name');
  assert.equal(m?.operation.operationId, 'getUser');
  assert.equal(m?.basePath, '/api/v2');
  assert.deepEqual(m?.pathParams, { id: '42' });
  assert.equal(matchSpecOperation(spec, 'GET', '/legacy/users/42')?.basePath, '/legacy');
  assert.equal(matchSpecOperation(spec, 'GET', '/users/42'), undefined, 'outside every base path');
  assert.equal(matchSpecOperation(spec, 'GET', '/api/v20/users/42'), undefined, 'a base path ends at a segment boundary');
});

test('concrete paths before templated ones', () => {
  assert.equal(matchSpecOperation(spec, 'GET', '/api/v2/users/me')?.operation.operationId, 'me');
  assert.equal(matchSpecOperation(spec, 'GET', '/api/v2/users/mel')?.operation.operationId, 'getUser');
});

test('method must be declared; the path match is still reported', () => {
  assert.equal(matchSpecOperation(spec, 'PUT', '/api/v2/users/42'), undefined);
  assert.deepEqual(matchSpecPath(spec, '/api/v2/users/42')?.operations.map((o) => o.method).sort(), ['DELETE', 'GET']);
  assert.equal(matchSpecOperation(spec, 'delete', '/api/v2/users/42')?.operation.method, 'DELETE');
});

test('parameter inside a segment, percent-decoded values', () => {
  assert.deepEqual(matchSpecOperation(spec, 'GET', '/api/v2/files/annual%20report.json')?.pathParams, { name: 'annual report' });
  assert.equal(matchSpecOperation(spec, 'GET', '/api/v2/files/annual.xml'), undefined);
});

test('label and matrix styles', () => {
  assert.deepEqual(matchSpecOperation(spec, 'GET', '/api/v2/colors/.blue')?.pathParams, { color: 'blue' });
  assert.equal(matchSpecOperation(spec, 'GET', '/api/v2/colors/blue'), undefined, 'label style needs the dot');
  assert.deepEqual(matchSpecOperation(spec, 'GET', '/api/v2/points/;point=3,4')?.pathParams, { point: '3,4' });
  assert.equal(matchSpecOperation(spec, 'GET', '/api/v2/points/3,4'), undefined, 'matrix style needs ;name=');
});

test('segment counts must agree; empty segments are no parameter values; one trailing slash is forgiven', () => {
  assert.equal(matchSpecOperation(spec, 'GET', '/api/v2/reports/2024'), undefined);
  assert.equal(matchSpecOperation(spec, 'GET', '/api/v2/reports//05'), undefined);
  assert.deepEqual(matchSpecOperation(spec, 'GET', '/api/v2/reports/2024/05/')?.pathParams, { year: '2024', month: '05' });
});
