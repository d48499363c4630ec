// `meshward replay FILE.jsonl...`: feeds captured exchanges through the engine (in-process) and
// prints per-class precision/recall, campaign recall, benign false positives and what enforce mode
// would block; --json for machines.
import type { Command } from 'commander';
import { readCapture, RecordError } from '../replay/record.ts';
import { replayInProcess } from '../replay/run.ts';
import { replayThroughEnvoy } from '../replay/through-envoy.ts';
import { formatReport, scoreReplay } from '../replay/report.ts';

interface ReplayFlags { json?: boolean; timeScale?: string; enforce?: boolean; throughEnvoy?: boolean; speed?: string }

export async function runReplay(files: string[], flags: ReplayFlags, out: (s: string) => void = console.log): Promise<void> {
  const timeScale = flags.timeScale === undefined ? 1 : Number(flags.timeScale);
  if (!Number.isFinite(timeScale) || timeScale <= 0) throw new RecordError(`--time-scale must be a positive number, got "${flags.timeScale}"`);
  const captures = [];
  for (const f of files) captures.push(await readCapture(f));
  const mode = flags.enforce ? 'enforce' : 'monitor';
  if (flags.throughEnvoy) {
    const speed = flags.speed === undefined ? 1 : Number(flags.speed);
    if (!Number.isFinite(speed) || speed <= 0) throw new RecordError(`--speed must be a positive number, got "${flags.speed}"`);
    const { outcomes, undecided } = await replayThroughEnvoy(captures, { mode, speed });
    const report = scoreReplay(outcomes);
    out(flags.json ? JSON.stringify({ ...report, undecided }, null, 2)
      : `${formatReport(report)}\n\nthrough Envoy at ${speed}x: ${outcomes.length - undecided.length} of ${outcomes.length} requests decided by meshward`);
    return;
  }
  const outcomes = replayInProcess(captures, { mode, timeScale });
  const report = scoreReplay(outcomes);
  out(flags.json ? JSON.stringify(report, null, 2) : formatReport(report));
}

export function registerReplay(program: Command): void {
  program.command('replay')
    .description('replay captured exchanges (JSONL) through the detection engine and score them against their labels')
    .argument('<files...>', 'capture files, one JSON record per line')
    .option('--json', 'print the report as JSON')
    .option('--time-scale <factor>', 'multiply the gaps between requests (0.5 = twice as fast)')
    .option('--enforce', 'replay in enforce mode (blocked requests never reach the recorded app)')
    .option('--through-envoy', 'send every record through real Envoy sidecars (SPIFFE mTLS per caller workload, the filter, ext_proc) to an upstream answering the recorded responses')
    .option('--speed <factor>', 'with --through-envoy: replay this many times faster than captured (the server clock follows)')
    .action(async (files: string[], flags: ReplayFlags) => {
      try {
        await runReplay(files, flags);
      } catch (err) {
        console.error(`meshward replay failed: ${(err as Error).message}`);
        process.exit(err instanceof RecordError || (err as NodeJS.ErrnoException).code === 'ENOENT' ? 2 : 1);
      }
    });
}
