// A large decoded body cut down to a bounded sample, so handing it from the decode worker to the
// event loop (structured clone) and walking it there costs well under a millisecond. Arrays keep
// their first items (field paths without array positions, the unit most detectors learn on, are
// usually all present in the first few), objects keep every key until the node budget is spent,
// and the text is cut to what the text scanners read.
import type { DecodedBody } from './body.ts';

export interface SampleLimits {
  /** Items kept per array. */
  arrayItems: number;
  /** JSON values kept in all (objects, arrays, scalars). */
  nodes: number;
  /** Characters of decoded text kept. */
  textChars: number;
}

export const DEFAULT_SAMPLE_LIMITS: Readonly<SampleLimits> = Object.freeze({ arrayItems: 64, nodes: 8192, textChars: 64 * 1024 });

/** The JSON value with arrays cut to `arrayItems` and at most `nodes` values, in document order. */
export function sampleJson(root: unknown, limits: SampleLimits): { value: unknown; cut: boolean } {
  let budget = limits.nodes;
  let cut = false;
  const copy = (v: unknown): unknown => {
    budget--;
    if (v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      for (const item of v) {
        if (out.length >= limits.arrayItems || budget <= 0) { cut = true; break; }
        out.push(copy(item));
      }
      return out;
    }
    // A null-prototype copy: "__proto__" stays an own key, exactly as JSON.parse made it.
    const out: Record<string, unknown> = Object.create(null);
    for (const key of Object.keys(v)) {
      if (budget <= 0) { cut = true; break; }
      out[key] = copy((v as Record<string, unknown>)[key]);
    }
    return Object.setPrototypeOf(out, Object.prototype);
  };
  const value = copy(root);
  return { value, cut };
}

/** The decoded body as a bounded sample; says so in `problems` when anything was left out. */
export function sampleDecodedBody(body: DecodedBody, limits: SampleLimits = DEFAULT_SAMPLE_LIMITS): DecodedBody {
  let content = body.content;
  let cut = false;
  if (content.kind === 'json') {
    const sampled = sampleJson(content.value, limits);
    content = { kind: 'json', value: sampled.value };
    cut = sampled.cut;
  }
  const text = body.text.length > limits.textChars ? body.text.slice(0, limits.textChars) : body.text;
  if (text.length < body.text.length) cut = true;
  const problems = cut
    ? [...body.problems, { code: 'sampled' as const, detail: `large body inspected as a sample (arrays up to ${limits.arrayItems} items, ${limits.nodes} values, ${limits.textChars} characters of text)` }]
    : body.problems;
  return { ...body, content, text, problems };
}
