// Injection payloads in values a service is about to consume (third-party API responses): SQL,
// script/HTML, template, command, path traversal, NoSQL operators, JNDI lookups. Each signature is
// linear by construction and runs on values cut to MAX_SCANNED_CHARS.
import { MAX_SCANNED_CHARS } from './sensitive.ts';
import { matchingSignatures, type Signature } from './signatures.ts';

export const INJECTION_SIGNATURES: readonly Signature[] = [
  { name: 'sql', pattern: /'\s{0,8}(?:or|and)\s{1,8}'?[0-9a-z]{1,8}'?\s{0,8}=\s{0,8}'?[0-9a-z]{1,8}|\bunion\s{1,8}(?:all\s{1,8})?select\b|;\s{0,8}drop\s{1,8}table\b|'\s{0,8};\s{0,8}--|\bsleep\s{0,4}\(\s{0,4}[0-9]{1,4}\s{0,4}\)|\bwaitfor\s{1,8}delay\b/i },
  { name: 'script', requires: '<', pattern: /<script[\s>/]|javascript:|\bon(?:error|load|mouseover|focus|click)\s{0,4}=\s{0,4}["'a-z]|<iframe[\s>]/i },
  { name: 'template', pattern: /\{\{\s{0,4}(?:7\s{0,2}\*\s{0,2}7|self\b|config\b|''\.__class__|\(\)\.__class__|[a-z]{1,20}\.constructor)|(?:\$\{|#\{|<%=)\s{0,4}7\s{0,2}\*\s{0,2}7/i },
  { name: 'jndi', pattern: /\$\{(?:jndi|lower|upper|env|sys|::-)[:}]/i },
  { name: 'command', pattern: /(?:;|&&|\|\|?)\s{0,4}(?:cat|curl|wget|nc|bash|sh|rm|powershell|python|perl)\s{1,8}[-/$a-z]|\$\([a-z]{1,20}[\s)]|`[a-z]{1,20}\s[^`]{0,200}`/i },
  { name: 'path-traversal', pattern: /(?:\.\.[/\\]){2,}|%2e%2e(?:%2f|%5c)/i },
  { name: 'nosql', pattern: /"\$(?:where|ne|gt|regex|expr|function)"\s{0,4}:/ },
];

export function injectionSignatures(value: string): string[] {
  const v = value.length > MAX_SCANNED_CHARS ? value.slice(0, MAX_SCANNED_CHARS) : value;
  return matchingSignatures(INJECTION_SIGNATURES, v);
}
