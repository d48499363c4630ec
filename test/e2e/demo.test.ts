// The README's main command: the demo runs the real stack and reports what meshward decided.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runDemo } from '../../extproc/src/cli/demo.ts';

test('meshward demo: allowed calls reach the app, denied and forged ones do not', async () => {
  const lines: string[] = [];
  const rows = await runDemo((s) => lines.push(s));
  assert.ok(rows.length >= 5);
  for (const r of rows) {
    assert.match(r.identity, /^spiffe:\/\/cluster\.local\/ns\//, 'every request was seen with its SPIFFE identity');
    assert.equal(r.reachedApp, r.decision === 'allow', `${r.request}: reached the app exactly when allowed`);
    assert.equal(r.status, r.decision === 'allow' ? 200 : 403);
  }
  const forged = rows.find((r) => r.request.includes('forged'));
  assert.ok(forged);
  assert.equal(forged.identity, 'spiffe://cluster.local/ns/payments/sa/payment-worker');
  assert.ok(lines.join('\n').includes('identity meshward saw'), 'prints the table');
});
