// Server configuration file: valid files load; every invalid one names the field and the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseServerConfig } from '../../extproc/src/config.ts';

test('a valid YAML configuration loads with defaults filled in', () => {
  const c = parseServerConfig('t.yaml', `
server: { port: 9000 }
denyRules:
  - { name: r1, identity: "spiffe://cluster.local/ns/a/sa/b", method: DELETE, path: "/admin/*" }
  - { identity: "spiffe://cluster.local/ns/a/sa/c" }
`);
  assert.equal(c.server.port, 9000);
  assert.equal(c.server.host, '127.0.0.1');
  assert.equal(c.denyRules.length, 2);
  assert.equal(c.denyRules[1]!.name, 'deny-1');
  assert.deepEqual(parseServerConfig('empty', '').denyRules, []);
});

for (const [text, field] of [
  ['bogus: 1', '$.bogus'],
  ['server: { port: 70000 }', '$.server.port'],
  ['server: { prot: 1 }', '$.server.prot'],
  ['server: { maxMessageBytes: 10 }', '$.server.maxMessageBytes'],
  ['denyRules: {}', '$.denyRules'],
  ['denyRules: [ { identity: "bob" } ]', '$.denyRules[0].identity'],
  ['denyRules: [ { identity: "spiffe://x/ns/a/sa/b", method: "get" } ]', '$.denyRules[0].method'],
  ['denyRules: [ { identity: "spiffe://x/ns/a/sa/b", path: "admin" } ]', '$.denyRules[0].path'],
  ['denyRules: [ { identity: "spiffe://x/ns/a/sa/b", colour: "red" } ]', '$.denyRules[0].colour'],
  ['[1, 2', '$'],
  ['- a\n- b', '$'],
] as const) {
  test(`rejects ${JSON.stringify(text)} naming ${field}`, () => {
    assert.throws(() => parseServerConfig('cfg.yaml', text), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.ok(err.message.startsWith(`cfg.yaml: ${field}:`), err.message);
      return true;
    });
  });
}

test('an oversized file is rejected before parsing', () => {
  assert.throws(() => parseServerConfig('big', 'a'.repeat(2 * 1024 * 1024)), /larger than/);
});
