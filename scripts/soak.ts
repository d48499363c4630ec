// `npm run soak [-- --minutes N --rate R]`: the soak run (default 30 minutes at 100 requests/s; env
// SOAK_MINUTES and SOAK_RATE work too). Prints a sample line per minute and a JSON summary; exit 1
// when an unexpected error occurred, RSS grew more than 10% (or 20 MB), or open fds grew by more than 8.
import { parseArgs } from 'node:util';
import { growth, runSoak, soakFailures } from '../test/support/soak.ts';

const { values } = parseArgs({ options: { minutes: { type: 'string' }, rate: { type: 'string' } } });
const minutes = Number(values.minutes ?? process.env.SOAK_MINUTES ?? 30);
const rate = Number(values.rate ?? process.env.SOAK_RATE ?? 100);
if (!(minutes > 0) || !(rate > 0)) {
  console.error('soak: --minutes and --rate must be positive numbers');
  process.exit(2);
}
console.log(`soak: ${minutes} min at ${rate} requests/s through real Envoy and meshward serve`);
const result = await runSoak({
  durationMs: minutes * 60_000, ratePerSecond: rate, sampleEveryMs: Math.min(60_000, Math.max(1000, minutes * 60_000 / 60)),
  onSample: (s) => console.log(JSON.stringify(s)),
});
const failures = soakFailures(result, { rssFraction: 0.10, rssMb: 20, fds: 8 });
console.log(JSON.stringify({ sent: result.sent, outcomes: result.outcomes, growth: growth(result.samples), failures }, null, 2));
process.exit(failures.length === 0 ? 0 : 1);
