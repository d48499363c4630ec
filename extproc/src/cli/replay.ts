// `meshward replay FILE.jsonl...`: feeds captured exchanges through the engine (in-process) and
// prints per-class precision/recall, campaign recall, benign false positives and what enforce mode
// would block; --json for machines.
import type { Command } from 'commander';
import { readCapture, RecordError } from '../replay/record.ts';
import { replayInProcess } from '../replay/run.ts';
import { formatReport, scoreReplay } from '../replay/report.ts';

interface ReplayFlags { json?: boolean; timeScale?: string; enforce?: boolean }

export async function runReplay(files: string[], flags: ReplayFlags, out: (s: string) => void = console.log): Promise<void> {
  const timeScale = flags.timeScale === undefined ? 1 : Number(flags.timeScale);
  if (!Number.isFinite(timeScale) || timeScale <= 0) throw new RecordError(`--time-scale must be a positive number, got "${flags.timeScale}"`);
  const captures = [];
  for (const f of files) captures.push(await readCapture(f));
  const outcomes = replayInProcess(captures, { mode: flags.enforce ? 'enforce' : 'monitor', timeScale });
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
    .action(async (files: string[], flags: ReplayFlags) => {
      try {
        await runReplay(files, flags);
      } catch (err) {
        console.error(`meshward replay failed: ${(err as Error).message}`);
        process.exit(err instanceof RecordError || (err as NodeJS.ErrnoException).code === 'ENOENT' ? 2 : 1);
      }
    });
}
