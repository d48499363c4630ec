// Spec authors' `pattern` regexes run against client data, so a spec must not be able to hand an
// attacker catastrophic backtracking. ajv compiles them through this engine instead of `new RegExp`:
// - A pattern V8's linear-time engine can run (no backreferences or lookarounds, small bounded
//   repeats) is compiled normally, and V8 is told to rerun any regexp that backtracks more than
//   50,000 times on that linear engine: normal inputs keep the fast backtracking engine, hostile
//   ones cost linear time.
// - Any other pattern is not trusted until recheck (a ReDoS checker, automaton + fuzzing) has found
//   it safe. The check runs asynchronously (never on the request path); until it answers, and for
//   good when it finds the pattern vulnerable or cannot decide, the pattern is not enforced, and
//   `unenforcedPatterns()` lists it with the reason, so operators see what their spec lost.
// Unicode-mode syntax (\p{...}, \u{...}) needs the `u` flag, which the linear engine lacks; such
// patterns take the recheck route.
import v8 from 'node:v8';
import { check } from 'recheck';
import type { RegExpEngine, RegExpLike } from 'ajv/dist/types/index.js';

v8.setFlagsFromString('--enable-experimental-regexp-engine');
v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');

export type PatternVerdict = 'linear' | 'checking' | 'safe' | 'vulnerable' | 'unknown' | 'invalid';

interface Entry { verdict: PatternVerdict; regexp?: RegExp; reason?: string }

const MAX_PATTERNS = 10_000;
const MAX_PATTERN_LENGTH = 4096;
const RECHECK_TIMEOUT_MS = 10_000;
const entries = new Map<string, Entry>();
const UNICODE_ONLY = /\\[pPu]\{|[\uD800-\uDFFF]/;

function linearCompatible(pattern: string): boolean {
  if (UNICODE_ONLY.test(pattern)) return false;
  try { new RegExp(pattern, 'l'); return true; } catch { return false; }
}

function vet(pattern: string, entry: Entry): void {
  entry.verdict = 'checking';
  check(pattern, 'u', { timeout: RECHECK_TIMEOUT_MS }).then((diagnostics) => {
    if (diagnostics.status === 'safe') entry.verdict = 'safe';
    else if (diagnostics.status === 'vulnerable') { entry.verdict = 'vulnerable'; entry.reason = `vulnerable to catastrophic backtracking (${diagnostics.complexity.type})`; }
    else { entry.verdict = 'unknown'; entry.reason = `ReDoS check could not decide: ${diagnostics.error.kind}`; }
  }, (err: unknown) => { entry.verdict = 'unknown'; entry.reason = `ReDoS check failed: ${String(err).slice(0, 120)}`; });
}

function entryFor(pattern: string, unicode: boolean): Entry {
  const key = `${unicode ? 'u' : ''}/${pattern}`;
  let entry = entries.get(key);
  if (entry !== undefined) return entry;
  if (entries.size >= MAX_PATTERNS) entries.delete(entries.keys().next().value!);
  entry = { verdict: 'checking' };
  entries.set(key, entry);
  if (pattern.length > MAX_PATTERN_LENGTH) {
    Object.assign(entry, { verdict: 'invalid', reason: `longer than ${MAX_PATTERN_LENGTH} characters` });
  } else if (linearCompatible(pattern)) {
    entry.verdict = 'linear';
    entry.regexp = new RegExp(pattern); // no `u`: the linear engine's fallback needs it off (checked compatible above)
  } else {
    try {
      entry.regexp = new RegExp(pattern, unicode ? 'u' : '');
      vet(pattern, entry);
    } catch (err) {
      Object.assign(entry, { verdict: 'invalid', reason: (err as Error).message });
    }
  }
  return entry;
}

/** ajv's `code.regExp`: a RegExpLike that enforces the pattern only once it is known to be safe. */
export const safeRegExp: RegExpEngine = Object.assign((pattern: string, flags: string): RegExpLike => {
  const entry = entryFor(pattern, flags.includes('u'));
  if (entry.verdict === 'invalid') throw new Error(`pattern ${JSON.stringify(pattern.slice(0, 80))}: ${entry.reason ?? 'invalid'}`);
  return {
    test: (s: string): boolean => (entry.verdict === 'linear' || entry.verdict === 'safe' ? entry.regexp!.test(s) : true),
  };
}, { code: 'meshward.safeRegExp' });

/** Patterns that are not (or not yet) enforced, with why. */
export function unenforcedPatterns(): { pattern: string; verdict: PatternVerdict; reason: string }[] {
  const out: { pattern: string; verdict: PatternVerdict; reason: string }[] = [];
  for (const [key, e] of entries) {
    if (e.verdict === 'linear' || e.verdict === 'safe') continue;
    out.push({ pattern: key.slice(key.indexOf('/') + 1), verdict: e.verdict, reason: e.reason ?? 'ReDoS check pending' });
  }
  return out;
}

/** Resolves once no pattern check is pending (tests, and a server that wants verdicts before serving). */
export async function patternChecksSettled(timeoutMs = RECHECK_TIMEOUT_MS * 2): Promise<void> {
  const end = Date.now() + timeoutMs;
  while ([...entries.values()].some((e) => e.verdict === 'checking') && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}
