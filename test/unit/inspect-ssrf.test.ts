// SSRF analysis (issue #6, API7): internal targets in every encoding the URL parser normalizes,
// non-http schemes, userinfo tricks, open redirectors from policy; public URLs and non-URLs pass.
// Outside corpus: the PayloadsAllTheThings SSRF bypass list (source named in the fixture).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { analyzeUrlValue, classifyAddress } from '../../extproc/src/inspect/ssrf.ts';

const fixture = JSON.parse(readFileSync(new URL('./fixtures/ssrf-payloadsallthethings.json', import.meta.url), 'utf8')) as { source: string; flagged: string[]; needsDnsResolution: string[] };

const cases: [string, string, string[], string[]?][] = [
  ['http://127.0.0.1/admin', 'url', ['loopback']],
  ['http://2130706433/', 'url', ['loopback'], ['numeric-ip-encoding']],
  ['http://0x7f.0x0.0x0.0x1/', 'url', ['loopback'], ['numeric-ip-encoding']],
  ['http://0177.0.0.1/', 'url', ['loopback'], ['numeric-ip-encoding']],
  ['http://017700000001/', 'url', ['loopback'], ['numeric-ip-encoding']],
  ['http://①②⑦.⓪.⓪.①/', 'url', ['loopback'], ['numeric-ip-encoding']],
  ['http://[::1]:8080/', 'url', ['loopback']],
  ['http://[::ffff:127.0.0.1]/', 'url', ['loopback'], ['ipv6-mapped']],
  ['http://[::ffff:169.254.169.254]/latest/meta-data/', 'url', ['metadata'], ['ipv6-mapped']],
  ['http://trusted.example.com@10.0.0.5/', 'url', ['private'], ['userinfo']],
  ['https://192.168.1.1/', 'target', ['private']],
  ['http://172.20.0.1', 'x', ['private']],
  ['http://169.254.10.10/', 'x', ['link-local']],
  ['http://[fe80::1]/', 'x', ['link-local']],
  ['http://[fd00:ec2::254]/latest/meta-data/', 'x', ['metadata']],
  ['http://metadata.google.internal/computeMetadata/v1/', 'x', ['metadata']],
  ['http://redis.default.svc.cluster.local:6379/', 'x', ['internal-hostname']],
  ['//127.0.0.1/x', 'image', ['loopback']],
  ['localhost:6379', 'callback_url', ['internal-hostname']],
  ['10.1.2.3:8080/hook', 'webhook', ['private']],
  ['file:///etc/passwd', 'path', ['non-http-scheme']],
  ['gopher://example.com:70/_x', 'q', ['non-http-scheme']],
  ['HTTP://127.0.0.1/', 'q', ['loopback']],
];

for (const [value, key, reasons, evasions] of cases) {
  test(`flags ${JSON.stringify(value)} (${reasons.join(', ')})`, () => {
    const f = analyzeUrlValue(value, key);
    assert.ok(f, 'expected a finding');
    for (const r of reasons) assert.ok(f.reasons.includes(r as never), `reasons ${f.reasons.join(',')} lack ${r}`);
    for (const e of evasions ?? []) assert.ok(f.evasions.includes(e), `evasions ${f.evasions.join(',')} lack ${e}`);
  });
}

const benign: [string, string][] = [
  ['https://api.example.com/v1/items', 'url'],
  ['https://8.8.8.8/', 'url'],
  ['http://[2001:4860:4860::8888]/', 'url'],
  ['alice@example.com', 'email'],
  ['/users/v1/name1', 'path'],
  ['hello world', 'comment'],
  ['10.1.2.3', 'version'],
  ['mailto:bob@example.com', 'contact'],
  ['data:image/png;base64,iVBORw0KGgo=', 'avatar'],
  ['https://shop.example.com/cart?next=/checkout', 'referrer'],
  ['not a url: 127.0.0.1 mentioned in prose', 'description'],
];

for (const [value, key] of benign) {
  test(`does not flag ${JSON.stringify(value)} under "${key}"`, () => {
    assert.equal(analyzeUrlValue(value, key), undefined);
  });
}

test('allowed hosts from policy are not flagged', () => {
  assert.equal(analyzeUrlValue('http://10.0.0.7/hook', 'url', { allowedHosts: ['10.0.0.7'] }), undefined);
});

test('open redirectors known to policy are followed to their target', () => {
  const options = { openRedirectors: [{ host: 'go.example.com', pathPrefix: '/out' }] };
  const f = analyzeUrlValue('https://go.example.com/out?to=http%3A%2F%2F169.254.169.254%2Flatest%2F', 'url', options);
  assert.ok(f);
  assert.deepEqual(f.reasons.sort(), ['metadata', 'open-redirect']);
  assert.equal(f.host, '169.254.169.254');
  assert.equal(analyzeUrlValue('https://go.example.com/out?to=https%3A%2F%2Fexample.org%2F', 'url', options), undefined);
  assert.equal(analyzeUrlValue('https://go.example.com/other?to=http%3A%2F%2F127.0.0.1%2F', 'url', options), undefined, 'only the redirecting path');
});

test('the host in evidence never carries userinfo credentials', () => {
  const f = analyzeUrlValue('http://user:s3cret@127.0.0.1/', 'url');
  assert.ok(f && !JSON.stringify(f).includes('s3cret'));
});

test(`outside corpus: every PayloadsAllTheThings bypass URL is flagged (${fixture.flagged.length} payloads)`, () => {
  assert.match(fixture.source, /PayloadsAllTheThings/);
  const missed = fixture.flagged.filter((u) => analyzeUrlValue(u, 'url') === undefined);
  assert.deepEqual(missed, []);
});

test('outside corpus: names that resolve to internal addresses only through DNS are out of static reach (documented limit)', () => {
  for (const u of fixture.needsDnsResolution) assert.equal(analyzeUrlValue(u, 'url'), undefined, u);
});

test('address classes', () => {
  assert.equal(classifyAddress('127.0.0.1'), 'loopback');
  assert.equal(classifyAddress('100.64.1.1'), 'private');
  assert.equal(classifyAddress('1.1.1.1'), undefined);
  assert.equal(classifyAddress('not-an-ip'), undefined);
});

test('regex-hostile and huge values cost bounded work and are not URLs', () => {
  for (const v of ['h'.repeat(100_000), `http://${'a.'.repeat(50_000)}`, `${'['.repeat(10_000)}::1`, `http://${'1.'.repeat(5000)}1/`]) {
    assert.doesNotThrow(() => analyzeUrlValue(v, 'url'));
  }
});
