// A named text signature: a regular expression that sees untrusted text, linear by construction
// (checked by test/unit/inspect-regex-safety.test.ts), with an optional substring precondition.

export interface Signature {
  name: string;
  pattern: RegExp;
  /** A substring the text must contain before the pattern runs (cheap, and keeps patterns simple). */
  requires?: string;
}

export function matchingSignatures(signatures: readonly Signature[], text: string): string[] {
  return signatures.filter((s) => (s.requires === undefined || text.includes(s.requires)) && s.pattern.test(text)).map((s) => s.name);
}
