// Simulated shop traffic (benign users with realistic variety plus one campaign of each kind per
// seed) replayed through the engine. Per detector: campaign recall >= 95 %; benign requests flagged
// <= 0.5 %; object enumeration flagged within 10 foreign IDs; enforce mode blocks what monitor
// mode reports as blockable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CAMPAIGN_KINDS, simulate, type CampaignKind } from './simulator.ts';
import { replayInProcess, type RowOutcome } from '../../extproc/src/replay/run.ts';
import { isAlert } from '../../extproc/src/replay/report.ts';

const SEEDS = [1, 2, 3, 4];
const KINDS = Object.keys(CAMPAIGN_KINDS) as CampaignKind[];

interface Run { seed: number; monitor: RowOutcome[]; enforce: RowOutcome[] }
const runs: Run[] = SEEDS.map((seed) => {
  const records = simulate({ seed, campaigns: KINDS });
  return { seed, monitor: replayInProcess([records]), enforce: replayInProcess([records], { mode: 'enforce' }) };
});
const kindOf = (campaign: string): CampaignKind => KINDS.find((k) => campaign.startsWith(`${k}-`))!;
const campaignsOf = (rows: readonly RowOutcome[]): Map<string, RowOutcome[]> => {
  const m = new Map<string, RowOutcome[]>();
  for (const o of rows) {
    const c = o.record.label?.campaign;
    if (c) m.set(c, [...(m.get(c) ?? []), o]);
  }
  return m;
};

test('simulator: every benign and campaign request is labelled and the traffic has the promised variety', () => {
  const records = simulate({ seed: 1, campaigns: KINDS });
  assert.ok(records.every((r) => r.label && (r.label.class === 'benign' || r.label.campaign)));
  const benign = records.filter((r) => r.label?.class === 'benign');
  const users = new Set(benign.map((r) => r.request.headers.find(([k]) => k === 'Authorization')?.[1]).filter(Boolean));
  assert.ok(users.size > 40, 'many users');
  assert.ok(benign.some((r) => r.request.path.includes('/admin/')), 'admins doing admin work');
  assert.ok(benign.some((r) => /limit=100\b/.test(r.request.path)) && benign.some((r) => /page=2/.test(r.request.path)), 'pagination');
  assert.ok(benign.some((r) => r.response?.status === 401), 'mistyped passwords');
  assert.equal(new Set(records.map((r) => r.label?.campaign).filter(Boolean)).size, KINDS.length);
  assert.deepEqual(simulate({ seed: 1, campaigns: KINDS }), records, 'deterministic per seed');
});

test('per detector campaign recall >= 95 % and benign requests flagged <= 0.5 %', () => {
  const perDetector = new Map<string, { campaigns: number; flagged: number }>();
  let benign = 0;
  let benignFlagged = 0;
  const misses: string[] = [];
  for (const run of runs) {
    for (const o of run.monitor) {
      if (o.record.label?.class !== 'benign') continue;
      benign++;
      if (o.findings.some(isAlert)) benignFlagged++;
    }
    for (const [campaign, rows] of campaignsOf(run.monitor)) {
      const { detector } = CAMPAIGN_KINDS[kindOf(campaign)];
      const s = perDetector.get(detector) ?? { campaigns: 0, flagged: 0 };
      s.campaigns++;
      if (rows.some((o) => o.findings.some((f) => f.detector === detector && isAlert(f)))) s.flagged++;
      else misses.push(campaign);
      perDetector.set(detector, s);
    }
  }
  console.log([...perDetector].map(([d, s]) => `${d.padEnd(22)} campaigns ${s.campaigns}  flagged ${s.flagged}  recall ${((100 * s.flagged) / s.campaigns).toFixed(1)}%`).join('\n'));
  console.log(`benign: ${benign} requests, ${benignFlagged} flagged (${((100 * benignFlagged) / benign).toFixed(2)}%)`);
  assert.equal(perDetector.size, new Set(Object.values(CAMPAIGN_KINDS).map((k) => k.detector)).size);
  for (const [detector, s] of perDetector) assert.ok(s.flagged / s.campaigns >= 0.95, `${detector}: ${s.flagged}/${s.campaigns}; missed ${misses.join(', ')}`);
  assert.ok(benignFlagged / benign <= 0.005, `benign flagged ${benignFlagged}/${benign}`);
});

test('object enumeration is flagged within 10 foreign IDs', () => {
  for (const run of runs) {
    for (const [campaign, rows] of campaignsOf(run.monitor)) {
      if (CAMPAIGN_KINDS[kindOf(campaign)].detector !== 'bola') continue;
      const attack = rows.filter((o) => o.record.label?.phase === 'attack');
      const first = attack.findIndex((o) => o.findings.some((f) => f.detector === 'bola'));
      assert.ok(first >= 0 && first < 10, `${campaign}: first flagged at foreign ID ${first + 1}`);
    }
  }
});

test('enforce mode blocks what monitor mode reports as blockable, and no more benign traffic', () => {
  for (const run of runs) {
    const enforced = new Map(run.enforce.map((o) => [o.record.id, o]));
    let blockable = 0;
    let blocked = 0;
    for (const [campaign, rows] of campaignsOf(run.monitor)) {
      const first = rows.find((o) => o.blockable);
      if (first === undefined) continue;
      assert.equal(enforced.get(first.record.id)?.decision.action, 'deny', `${campaign}: first blockable request ${first.record.id} denied in enforce`);
      for (const o of rows.filter((r) => r.blockable)) {
        blockable++;
        if (enforced.get(o.record.id)?.decision.action === 'deny') blocked++;
      }
    }
    assert.ok(blocked / blockable >= 0.9, `seed ${run.seed}: enforce blocked ${blocked}/${blockable} of the requests monitor marked blockable`);
    const benign = run.enforce.filter((o) => o.record.label?.class === 'benign');
    const denied = benign.filter((o) => o.decision.action === 'deny');
    assert.ok(denied.length <= 0.005 * benign.length, `seed ${run.seed}: benign denied ${denied.length}/${benign.length}`);
    // Monitor mode itself never blocks.
    assert.ok(run.monitor.every((o) => o.decision.action === 'allow'));
  }
});
