// The simulator's API1 campaigns that need more than counting: parameter pollution (order ID in path
// and query, invoice ID in path and header, user in path and body, a repeated query key) and a walk
// over prefixed invoice IDs (INV-2026-004321), among benign users who open their own prefixed
// invoices, sometimes with the ID repeated in the query, and whose frontend sends X-User-Id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simulate } from './simulator.ts';
import { replayInProcess } from '../../extproc/src/replay/run.ts';

const SEEDS = [11, 12, 13];
const runs = SEEDS.map((seed) => replayInProcess([simulate({ seed, campaigns: ['bola-pollution', 'bola-prefixed-walk'] })]));

test('every polluted request is flagged at request time with both places; the prefixed walk by its fifth ID', () => {
  for (const rows of runs) {
    const attack = (kind: string) => rows.filter((o) => o.record.label?.campaign?.startsWith(kind) && o.record.label.phase === 'attack');
    const polluted = attack('bola-pollution');
    assert.equal(polluted.length, 4);
    for (const o of polluted) {
      const f = o.findings.find((x) => x.detector === 'bola' && x.evidence.kind === 'parameter-pollution');
      assert.ok(f, `${o.record.request.method} ${o.record.request.path}`);
      const places = f.evidence.places as { where: string; value: string }[];
      assert.equal(places.length, 2);
      assert.notEqual(places[0]!.value, places[1]!.value);
      assert.ok(o.blockable, 'found before the request was forwarded');
    }
    assert.deepEqual(polluted.map((o) => (o.findings.find((x) => x.evidence.kind === 'parameter-pollution')!.evidence.places as { where: string }[]).map((p) => p.where)),
      [['path', 'query'], ['path', 'header'], ['path', 'body'], ['path', 'query']]);
    const walk = attack('bola-prefixed-walk');
    const first = walk.findIndex((o) => o.findings.some((f) => f.detector === 'bola' && f.evidence.kind === 'counter'));
    assert.equal(first, 4, 'fifth invoice ID');
    assert.match(String(walk[first]!.findings.find((f) => f.evidence.kind === 'counter')!.evidence.pattern), /^INV-2026-\{n:6\}$/);
  }
});

test('benign users opening their own prefixed invoices (listed, created, repeated in the query) are never flagged', () => {
  let invoiceReads = 0;
  let repeated = 0;
  for (const rows of runs) {
    for (const o of rows.filter((r) => r.record.label?.class === 'benign')) {
      const path = o.record.request.path;
      if (!/\/invoices\/INV-/.test(path)) continue;
      invoiceReads++;
      if (path.includes('invoice_id=')) repeated++;
      assert.deepEqual(o.findings.filter((f) => f.detector === 'bola'), [], path);
    }
    const benignBola = rows.filter((r) => r.record.label?.class === 'benign' && r.findings.some((f) => f.detector === 'bola'));
    assert.deepEqual(benignBola.map((r) => r.record.request.path), []);
  }
  assert.ok(invoiceReads > 50 && repeated > 10, `${invoiceReads} invoice reads, ${repeated} with the ID repeated`);
});
