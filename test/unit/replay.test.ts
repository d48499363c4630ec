// The replay tool: record parsing (clear errors for bad input), time base from the Date header,
// scoring, and the CLI (table and --json, exit codes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { captureEpoch, readCapture, toCaptureRecord, toRequestEvent, RecordError, type CaptureRecord } from '../../extproc/src/replay/record.ts';
import { replayInProcess } from '../../extproc/src/replay/run.ts';
import { scoreReplay, categoryPrefixOf } from '../../extproc/src/replay/report.ts';

const WEB = 'spiffe://cluster.local/ns/web/sa/frontend';
const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64');

function rec(i: number, over: Partial<CaptureRecord> = {}): CaptureRecord {
  return {
    id: `app-${String(i).padStart(4, '0')}`, t_ms: i * 100, authority: 'app.svc', caller_workload: WEB, client_ip: '10.0.0.1',
    request: { method: 'GET', path: `/orders/${1000 + i}`, headers: [['X-Forwarded-For', '10.0.0.1']], body_b64: null },
    response: { status: 200, headers: [['Date', 'Fri, 27 Nov 2026 23:27:57 GMT']], body_b64: b64({ id: 1000 + i }) },
    label: { class: 'API1-BOLA', campaign: 'walk', phase: 'attack', success: true },
    ...over,
  };
}

test('bad records get an error naming the line and what is wrong', () => {
  for (const [value, msg] of [
    [[], /not a JSON object/], [{ t_ms: 1 }, /"id"/], [{ id: 'x', t_ms: 'a' }, /t_ms/], [{ id: 'x', t_ms: 1, authority: 'a' }, /request/],
    [{ id: 'x', t_ms: 1, authority: 'a', request: { method: 'GET', path: '/', headers: [['a']] } }, /headers/],
    [{ id: 'x', t_ms: 1, authority: 'a', request: { method: 'GET', path: '/', headers: [] }, response: { status: '200' } }, /status/],
  ] as const) {
    assert.throws(() => toCaptureRecord(value, 'f.jsonl:7'), (e: Error) => e instanceof RecordError && /^f\.jsonl:7: /.test(e.message) && msg.test(e.message));
  }
});

test('readCapture: blank lines skipped, non-JSON line reported with its number', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mw-replay-'));
  const good = join(dir, 'good.jsonl');
  writeFileSync(good, `${JSON.stringify(rec(1))}\n\n${JSON.stringify(rec(2))}\n`);
  assert.equal((await readCapture(good)).length, 2);
  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, `${JSON.stringify(rec(1))}\n{oops\n`);
  await assert.rejects(readCapture(bad), /bad\.jsonl:2: not JSON/);
});

test('time base comes from the first Date header; events carry identity, headers and bodies', () => {
  const records = [rec(3), rec(4)];
  const epoch = captureEpoch(records);
  assert.equal(epoch, Date.parse('Fri, 27 Nov 2026 23:27:57 GMT') - 300);
  const e = toRequestEvent(records[0]!, epoch);
  assert.equal(e.time, Date.parse('Fri, 27 Nov 2026 23:27:57 GMT'));
  assert.equal(e.caller.workload, WEB);
  assert.deepEqual(e.headers.get('x-forwarded-for'), ['10.0.0.1']);
});

test('without Date headers the time base comes from token iat, so valid tokens never look expired or early', () => {
  const iat = 1_800_000_000;
  const token = Buffer.from(JSON.stringify({ sub: 'a', iat, nbf: iat, exp: iat + 120 })).toString('base64url');
  const r = rec(5, { request: { method: 'GET', path: '/me', headers: [['Authorization', `Bearer eyJhbGciOiJIUzI1NiJ9.${token}.c2ln`]] }, response: { status: 200, headers: [] } });
  const epoch = captureEpoch([r]);
  assert.equal(epoch + r.t_ms, iat * 1000);
});

test('scoring: a sequential walk campaign is flagged after a few requests; a benign reader is not', () => {
  const records: CaptureRecord[] = [];
  for (let i = 0; i < 12; i++) records.push(rec(i));
  for (let i = 0; i < 12; i++) {
    records.push(rec(100 + i, { client_ip: '10.0.0.2', request: { method: 'GET', path: '/orders', headers: [['X-Forwarded-For', '10.0.0.2']] }, label: { class: 'benign' } }));
  }
  records.sort((a, b) => a.t_ms - b.t_ms);
  const report = scoreReplay(replayInProcess([records]));
  const walk = report.campaigns.find((c) => c.campaign === 'walk')!;
  assert.equal(walk.flagged, true);
  assert.equal(walk.firstFlaggedAt, 5);
  assert.equal(report.benignFlagged, 0);
  const cls = report.classes.find((c) => c.class === 'API1-BOLA')!;
  assert.equal(cls.attackRows, 12);
  assert.equal(cls.flaggedAsClass, 8);
  assert.equal(cls.precision, 1);
  assert.equal(categoryPrefixOf('API2-AUTH'), 'API2:');
  assert.equal(categoryPrefixOf('INJECTION'), undefined);
});

test('CLI: meshward replay prints the table, --json parses, a missing file exits 2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mw-replay-cli-'));
  const file = join(dir, 'c.jsonl');
  writeFileSync(file, Array.from({ length: 8 }, (_, i) => JSON.stringify(rec(i))).join('\n'));
  const run = (...args: string[]) => spawnSync(process.execPath, ['extproc/src/cli.ts', 'replay', ...args], { encoding: 'utf8' });
  const table = run(file);
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /API1-BOLA/);
  const json = run(file, '--json');
  assert.equal(JSON.parse(json.stdout).campaigns[0].campaign, 'walk');
  const missing = run(join(dir, 'nope.jsonl'));
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /meshward replay failed/);
});
