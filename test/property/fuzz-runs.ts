// Run counts for the property campaigns: bounded in `npm test`, multiplied by MESHWARD_FUZZ_SCALE
// for the long campaign (`npm run fuzz` sets it). MESHWARD_FUZZ_SEED replays a reported failure.
import fc from 'fast-check';

const scale = Number(process.env.MESHWARD_FUZZ_SCALE ?? '1');
if (process.env.MESHWARD_FUZZ_SEED) fc.configureGlobal({ seed: Number(process.env.MESHWARD_FUZZ_SEED) });

export function fuzzRuns(base: number): number {
  return Number.isFinite(scale) && scale > 0 ? Math.max(1, Math.round(base * scale)) : base;
}
