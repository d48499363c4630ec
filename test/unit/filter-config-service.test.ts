// The admin router and the filter-configuration service: bearer auth in constant time, public
// health routes, bounded bodies, and tables files validated with the shared schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../extproc/src/log.ts';
import { bearerMatches } from '../../extproc/src/admin/server.ts';
import { parseFilterTables, startFilterConfigService } from '../../extproc/src/filter-config/service.ts';
import { FILTER_CONFIG_PATH } from '../../extproc/src/filter-config/route.ts';

const TOKEN = 'unit-admin-token-0123456789';

test('bearerMatches accepts only the exact token', () => {
  assert.equal(bearerMatches(`Bearer ${TOKEN}`, TOKEN), true);
  assert.equal(bearerMatches(`bearer ${TOKEN}`, TOKEN), true);
  for (const h of [undefined, '', 'Bearer', `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, `Basic ${TOKEN}`, `Bearer  ${TOKEN}`]) {
    assert.equal(bearerMatches(h, TOKEN), false, String(h));
  }
});

test('tables files: validated with the shared schema, versioned by content', () => {
  const t = parseFilterTables('t.yaml', 'deny:\n  identities: [spiffe://cluster.local/ns/a/sa/b]\nsampling: {percent: 5}\n');
  assert.match(t.version ?? '', /^[0-9a-f]{16}$/);
  assert.deepEqual(t.deny?.identities, ['spiffe://cluster.local/ns/a/sa/b']);
  assert.equal(parseFilterTables('t.yaml', 'version: v7\n').version, 'v7');
  assert.throws(() => parseFilterTables('t.yaml', 'deny: {identities: x}'), /t\.yaml: \/deny\/identities must be array/);
  assert.throws(() => parseFilterTables('t.yaml', 'refresh: {}'), /must NOT have additional properties \(refresh\)/);
  assert.throws(() => parseFilterTables('t.yaml', 'a: [b'), /not valid YAML/);
});

test('the service serves the tables only with the bearer token; health routes are public; bodies bounded', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mw-fcs-'));
  try {
    await writeFile(path.join(dir, 'token'), `${TOKEN}\n`);
    await writeFile(path.join(dir, 'tables.json'), JSON.stringify({ version: 'v1', deny: { identities: ['x'] } }));
    await writeFile(path.join(dir, 'short'), 'abc');
    await assert.rejects(startFilterConfigService({ host: '127.0.0.1', port: 0, tokenFile: path.join(dir, 'short') }, silentLogger), /at least 16 characters/);
    const svc = await startFilterConfigService({ host: '127.0.0.1', port: 0, tokenFile: path.join(dir, 'token'), tablesFile: path.join(dir, 'tables.json') }, silentLogger);
    try {
      const base = `http://127.0.0.1:${svc.port}`;
      const auth = { authorization: `Bearer ${TOKEN}` };
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      assert.equal((await fetch(`${base}${FILTER_CONFIG_PATH}`)).status, 401);
      const ok = await fetch(`${base}${FILTER_CONFIG_PATH}`, { headers: auth });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('etag'), '"v1"');
      assert.deepEqual(await ok.json(), { version: 'v1', deny: { identities: ['x'] } });
      assert.equal((await fetch(`${base}/nope`, { headers: auth })).status, 404);
      assert.throws(() => svc.store.set({ deny: { identities: [''] } } as never), /filter configuration refused/);
      assert.equal(svc.store.current.version, 'v1', 'a refused document leaves the current one');
      svc.router.register({ method: 'POST', path: '/echo', maxBodyBytes: 10, handle: (r) => ({ status: 200, body: r.body.toString() }) });
      assert.equal((await fetch(`${base}/echo`, { method: 'POST', headers: auth, body: 'short' })).status, 200);
      const big = await fetch(`${base}/echo`, { method: 'POST', headers: auth, body: 'x'.repeat(100_000) }).catch(() => undefined);
      assert.ok(big === undefined || big.status === 413);
    } finally {
      await svc.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
