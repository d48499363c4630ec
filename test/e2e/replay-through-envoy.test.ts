// Issue #4, replay through the real stack: the VAmPI capture sent through real Envoy sidecars (one
// SPIFFE client certificate per caller workload), the filter and ext_proc, to an upstream answering
// the recorded responses, compressed 20x with the server clock on capture time. The same campaigns
// must be flagged as in the in-process replay, with no more benign false positives than allowed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readCapture } from '../../extproc/src/replay/record.ts';
import { replayThroughEnvoy } from '../../extproc/src/replay/through-envoy.ts';
import { replayInProcess } from '../../extproc/src/replay/run.ts';
import { formatReport, scoreReplay } from '../../extproc/src/replay/report.ts';

const CORPUS = new URL('../../../shared/corpora/dev/vampi.jsonl', import.meta.url).pathname;

test('VAmPI through Envoy at 20x: the campaigns the engine flags in-process are flagged through the stack', async () => {
  const capture = await readCapture(CORPUS);
  const { outcomes, undecided } = await replayThroughEnvoy([capture], { speed: 20 });
  const report = scoreReplay(outcomes);
  console.log(formatReport(report));
  assert.equal(undecided.length, 0, `every request reached the ext_proc server: ${JSON.stringify(undecided.slice(0, 5))}`);
  assert.equal(outcomes.length, capture.length);

  const inProcess = scoreReplay(replayInProcess([capture]));
  const required = inProcess.campaigns.filter((x) => x.flaggedAsClass);
  assert.ok(required.some((c) => c.class === 'API1-BOLA') && required.some((c) => c.class === 'API2-AUTH') && required.some((c) => c.class === 'API6-FLOW'));
  for (const c of required) {
    const through = report.campaigns.find((x) => x.campaign === c.campaign);
    assert.ok(through?.flaggedAsClass, `${c.campaign} flagged as ${c.class} through Envoy as in-process`);
  }
  assert.ok(report.benignFalsePositiveRate <= 0.005, `benign false positives ${report.benignFlagged}/${report.benignRows}`);
});
