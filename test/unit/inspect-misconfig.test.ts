// Misconfiguration signals (issue #6, API8): stack traces and driver errors of common runtimes,
// version banners, credentialed CORS, missing security headers, north-south detection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { corsProblem, isNorthSouth, missingSecurityHeaders, versionBanners, verboseErrorSignatures } from '../../extproc/src/inspect/misconfig.ts';
import type { RequestEvent, ResponseEvent } from '../../extproc/src/engine/event.ts';

const leaks: [string, string][] = [
  ['python-traceback', 'Traceback (most recent call last):\n  File "/app/views.py", line 42, in get_user'],
  ['python-exception', "{\"errors\":[{\"message\":\"'NoneType' object has no attribute 'title'\"}]}"],
  ['python-exception', 'resolve() missing 2 required positional arguments: \'a\' and \'b\''],
  ['sql-error', '(sqlite3.OperationalError) near "aaa": syntax error\n[SQL: SELECT * FROM pastes WHERE title = \'aaa\'\']'],
  ['sql-error', "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version"],
  ['sql-error', 'ERROR: syntax error at or near "OR"'],
  ['sql-error', 'ORA-01756: quoted string not properly terminated'],
  ['sql-error', 'SQLSTATE[42000]: Syntax error or access violation'],
  ['java-stack', 'java.lang.NullPointerException\n\tat com.shop.OrderService.get(OrderService.java:57)'],
  ['dotnet-stack', 'System.NullReferenceException: Object reference not set\n   at Shop.Api.Get() in /src/Api.cs:line 12'],
  ['node-stack', 'TypeError: x is undefined\n    at Object.handler (/app/src/routes.js:10:15)\n    at Layer.handle (/app/node_modules/express/lib/router/layer.js:95:5)'],
  ['node-stack', '{"stack":"Error: boom\\n    at handler (/srv/index.mjs:3:9)\\n    at next (/srv/lib.js:1:1)"}'],
  ['go-panic', 'panic: runtime error: index out of range [3] with length 3\n\ngoroutine 1 [running]:'],
  ['php-error', 'PHP Fatal error:  Uncaught Error: Call to undefined function foo()'],
  ['ruby-stack', "app/controllers/users_controller.rb:12:in `show'"],
  ['debug-page', '<title>Werkzeug Debugger</title>'],
];

for (const [name, text] of leaks) {
  test(`verbose error ${name}: ${JSON.stringify(text.slice(0, 40))}`, () => {
    assert.ok(verboseErrorSignatures(text).includes(name), `got ${verboseErrorSignatures(text).join(',')}`);
  });
}

for (const text of [
  '{"error":"not found"}', '{"message":"Request body is not valid JSON","status":"fail"}',
  '{"errors":[{"message":"Cannot query field \\"x\\" on type \\"Query\\"."}]}',
  'The server encountered an internal error and was unable to complete your request.',
  'We use Java and Python at our company.', 'The file is at /app/x.js', 'price: 1.5 at 10:30',
]) {
  test(`no verbose error in ${JSON.stringify(text.slice(0, 40))}`, () => assert.deepEqual(verboseErrorSignatures(text), []));
}

const crs = JSON.parse(readFileSync(new URL('./fixtures/crs-951-sql-leakage.json', import.meta.url), 'utf8')) as { source: string; leaks: { rule: string; db: string; text: string }[] };

test(`outside corpus: every database error of the OWASP CRS 951xxx regression tests is a verbose error (${crs.leaks.length} cases)`, () => {
  assert.match(crs.source, /coreruleset/);
  const missed = crs.leaks.filter((l) => verboseErrorSignatures(l.text).length === 0).map((l) => `${l.rule} ${l.db}`);
  assert.deepEqual(missed, []);
});

const headers = (o: Record<string, string>) => new Map(Object.entries(o).map(([k, v]) => [k, [v]]));
const req = (h: Record<string, string>, workload?: string): RequestEvent => ({ requestId: 'r', time: 0, caller: { mtls: workload !== undefined, ...(workload ? { workload } : {}), identitySource: 'filter' }, method: 'GET', authority: 'a', path: '/', headers: headers(h) });
const res = (h: Record<string, string>): ResponseEvent => ({ requestId: 'r', time: 0, status: 200, headers: headers(h) });

test('version banners need a version number in Server; X-Powered-By always discloses', () => {
  assert.deepEqual(versionBanners(headers({ server: 'Werkzeug/2.2.2 Python/3.11.2', 'x-powered-by': 'Express' })), ['server: Werkzeug/2.2.2 Python/3.11.2', 'x-powered-by: Express']);
  assert.deepEqual(versionBanners(headers({ server: 'envoy' })), []);
});

test('CORS: wildcard or null origin with credentials, and reflected origin with credentials', () => {
  assert.equal(corsProblem(req({}), res({ 'access-control-allow-origin': '*', 'access-control-allow-credentials': 'true' })), 'wildcard-with-credentials');
  assert.equal(corsProblem(req({}), res({ 'access-control-allow-origin': 'null', 'access-control-allow-credentials': 'true' })), 'null-origin-with-credentials');
  assert.equal(corsProblem(req({ origin: 'https://evil.example' }), res({ 'access-control-allow-origin': 'https://evil.example', 'access-control-allow-credentials': 'true' })), 'reflected-origin-with-credentials');
  assert.equal(corsProblem(req({}), res({ 'access-control-allow-origin': '*' })), undefined, 'public CORS without credentials is fine');
  assert.equal(corsProblem(req({ origin: 'https://a' }), res({ 'access-control-allow-origin': 'https://app.example', 'access-control-allow-credentials': 'true' })), undefined);
});

test('missing security headers depend on content and scheme', () => {
  assert.deepEqual(missingSecurityHeaders(res({ 'content-type': 'application/json' }), false), ['x-content-type-options']);
  assert.deepEqual(missingSecurityHeaders(res({ 'content-type': 'text/html', 'x-content-type-options': 'nosniff' }), true), ['strict-transport-security', 'content-security-policy', 'x-frame-options']);
  assert.deepEqual(missingSecurityHeaders(res({ 'content-type': 'text/html', 'x-content-type-options': 'nosniff', 'content-security-policy': "frame-ancestors 'none'" }), false), []);
});

test('north-south: forwarded by an ingress, or no workload identity', () => {
  assert.equal(isNorthSouth(req({ 'x-forwarded-for': '1.2.3.4' }, 'spiffe://x/ns/a/sa/gw')), true);
  assert.equal(isNorthSouth(req({})), true);
  assert.equal(isNorthSouth(req({}, 'spiffe://x/ns/a/sa/b')), false);
});
