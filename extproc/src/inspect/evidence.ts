// Evidence every content finding carries about the body it judged, so a reader knows whether the
// whole body was inspected or only the part under the caps.
import type { DecodedBody } from './body.ts';

export interface BodyEvidence {
  wireBytes: number;
  /** True when a cap cut the body: the finding covers only the inspected part. */
  truncated: boolean;
  problems?: string[];
}

export function bodyEvidence(body: DecodedBody): BodyEvidence {
  const truncated = body.problems.some((p) => p.code === 'truncated');
  const out: BodyEvidence = { wireBytes: body.wireBytes, truncated };
  if (body.problems.length > 0) out.problems = body.problems.map((p) => p.detail);
  return out;
}
