// Replays the labelled developer corpus (../shared/corpora/dev: VAmPI REST, DVGA GraphQL, traffic
// nobody here wrote) through the engine in-process and scores it against the labels. Prints the
// per-class precision/recall table; asserts every API1, API2 and API6 campaign is flagged with its
// own category, and benign false positives stay at or below 0.5 % of benign requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readCapture } from '../../extproc/src/replay/record.ts';
import { replayInProcess } from '../../extproc/src/replay/run.ts';
import { formatReport, scoreReplay } from '../../extproc/src/replay/report.ts';

// The shared corpora sit beside the repository (../shared), in CI as here.
const DIR = new URL('../../../shared/corpora/dev', import.meta.url).pathname;
const FILES = ['vampi.jsonl', 'dvga.jsonl'].map((f) => `${DIR}/${f}`);
const REQUIRED_CLASSES = ['API1-BOLA', 'API2-AUTH', 'API6-FLOW'];

test('dev corpus: every API1/API2/API6 campaign flagged, benign false positives <= 0.5 %', { skip: !FILES.every(existsSync) && 'corpus not present' }, async () => {
  const captures = await Promise.all(FILES.map(readCapture));
  const report = scoreReplay(replayInProcess(captures));
  console.log(formatReport(report));

  const required = report.campaigns.filter((c) => REQUIRED_CLASSES.includes(c.class));
  assert.ok(required.length >= REQUIRED_CLASSES.length, 'the corpus has campaigns of every required class');
  for (const c of required) {
    assert.ok(c.flaggedAsClass, `campaign ${c.campaign} (${c.class}) flagged with its own category`);
  }
  assert.ok(report.benignRows > 0);
  assert.ok(report.benignFalsePositiveRate <= 0.005,
    `benign false positives ${report.benignFlagged}/${report.benignRows}: ${report.falsePositives.slice(0, 5).map((f) => `${f.id} ${f.detector}`).join('; ')}`);
});

test('dev corpus: enforce mode blocks no benign request and still stops every required campaign', { skip: !FILES.every(existsSync) && 'corpus not present' }, async () => {
  const captures = await Promise.all(FILES.map(readCapture));
  const outcomes = replayInProcess(captures, { mode: 'enforce' });
  const benignDenied = outcomes.filter((o) => o.record.label?.class === 'benign' && o.decision.action === 'deny');
  assert.ok(benignDenied.length <= Math.floor(0.005 * outcomes.filter((o) => o.record.label?.class === 'benign').length),
    `benign requests denied: ${benignDenied.map((o) => o.record.id).join(', ')}`);
  for (const cls of REQUIRED_CLASSES) {
    const campaigns = new Set(outcomes.filter((o) => o.record.label?.class === cls).map((o) => o.record.label?.campaign));
    for (const campaign of campaigns) {
      const denied = outcomes.filter((o) => o.record.label?.campaign === campaign && o.decision.action === 'deny');
      assert.ok(denied.length > 0, `enforce mode denied requests of ${campaign}`);
    }
  }
});
