// Sensitive-data recognizers for one string value. Every regular expression here sees untrusted
// text, so each is linear by construction (bounded quantifiers, no nested or overlapping
// repetition; checked by test/unit/inspect-regex-safety.test.ts), runs only after a cheap
// substring pre-check, and only on values cut to MAX_SCANNED_CHARS.

export const SENSITIVE_KINDS = [
  'email', 'phone', 'card-number', 'national-id', 'iban', 'jwt', 'cloud-key', 'private-key', 'password-hash', 'credential',
] as const;
export type SensitiveKind = (typeof SENSITIVE_KINDS)[number];

export interface SensitiveHit { kind: SensitiveKind; detail: string }

export const MAX_SCANNED_CHARS = 8192;

export const SENSITIVE_PATTERNS = {
  // Email and JWT run anchored on tokens (see tokensOf), never as unanchored searches.
  email: /^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}$/,
  phoneWhole: /^\+?[0-9 ().-]{7,24}$/,
  phoneSeparators: /[ ().-]+/,
  cardCandidate: /(?:^|[^0-9])([0-9](?:[ -]?[0-9]){12,18})(?:$|[^0-9])/g,
  ssn: /(?:^|[^0-9-])([0-9]{3})-([0-9]{2})-([0-9]{4})(?:$|[^0-9-])/,
  cpf: /(?:^|[^0-9])([0-9]{3}\.[0-9]{3}\.[0-9]{3}-[0-9]{2})(?:$|[^0-9])/,
  dni: /^([0-9]{8})-?([A-Za-z])$/,
  iban: /^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$/,
  jwt: /^eyJ[A-Za-z0-9_-]{5,4096}\.eyJ[A-Za-z0-9_-]{5,8192}\.[A-Za-z0-9_-]{0,1024}$/,
  cloudKey: /(?:^|[^A-Za-z0-9])(?:(?:AKIA|ASIA)[A-Z0-9]{16}|AIza[0-9A-Za-z_-]{35}|gh[pousr]_[A-Za-z0-9]{36}|xox[baprs]-[A-Za-z0-9-]{10,200}|sk_live_[0-9A-Za-z]{24,99})(?:$|[^A-Za-z0-9])/,
  privateKey: /-----BEGIN (?:[A-Z0-9]{1,12} ){0,2}PRIVATE KEY-----/,
  passwordHash: /(?:^|[^A-Za-z0-9$])(?:\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}|\$argon2(?:id|i|d)\$|\$[156]\$[^$\s]{1,16}\$[./A-Za-z0-9]{22,86}|pbkdf2_sha(?:1|256|512)\$[0-9]{1,7}\$|\{SSHA\}|\{SHA\})/,
  hexDigest: /^(?:[a-f0-9]{32}|[a-f0-9]{40}|[a-f0-9]{64}|[a-f0-9]{128})$/i,
} as const;

const PASSWORD_KEYS = ['password', 'passwd', 'pwd', 'passphrase', 'secret', 'hash'];

/** Maximal runs of characters that can form an email or a JWT, split at everything else. Linear. */
export function tokensOf(value: string): string[] {
  const out: string[] = [];
  let start = -1;
  for (let i = 0; i <= value.length; i++) {
    const c = i < value.length ? value.charCodeAt(i) : 32;
    const tokenChar = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 46 || c === 95 || c === 45 || c === 64 || c === 37 || c === 43;
    if (tokenChar) { if (start === -1) start = i; }
    else if (start !== -1) { if (i - start <= 16384) out.push(value.slice(start, i)); start = -1; }
  }
  return out;
}

function digitsOf(s: string): string {
  let d = '';
  for (const ch of s) if (ch >= '0' && ch <= '9') d += ch;
  return d;
}

export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) { d *= 2; if (d > 9) d -= 9; }
    sum += d;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/** Issuer prefixes and lengths of the major card brands; a Luhn pass alone is 1 in 10. */
function plausibleCard(d: string): boolean {
  const n2 = Number(d.slice(0, 2)), n4 = Number(d.slice(0, 4));
  if (d.startsWith('4')) return d.length === 13 || d.length === 16 || d.length === 19; // Visa
  if ((n2 >= 51 && n2 <= 55) || (n4 >= 2221 && n4 <= 2720)) return d.length === 16; // Mastercard
  if (n2 === 34 || n2 === 37) return d.length === 15; // Amex
  if (d.startsWith('6011') || d.startsWith('65')) return d.length >= 16 && d.length <= 19; // Discover
  if (n4 >= 3528 && n4 <= 3589) return d.length >= 16 && d.length <= 19; // JCB
  return false;
}

/** International (+ and 8-15 digits), or grouped like a national number: groups after the first
 *  have 3+ digits and the last 4+ ("(415) 555-0100", "555-0100"), unlike dates, SSNs or CPFs. */
function phoneShaped(value: string): boolean {
  const digits = digitsOf(value).length;
  if (value.startsWith('+')) return digits >= 8 && digits <= 15;
  const groups = value.split(SENSITIVE_PATTERNS.phoneSeparators).filter((g) => g !== '');
  if (groups.length < 2 || digits < 7 || digits > 11) return false;
  return groups.slice(1).every((g) => g.length >= 3) && groups[groups.length - 1]!.length >= 4;
}

function ssnValid(area: string, group: string, serial: string): boolean {
  const a = Number(area);
  return a !== 0 && a !== 666 && a < 900 && group !== '00' && serial !== '0000';
}

export function cpfValid(formatted: string): boolean {
  const d = digitsOf(formatted);
  if (d.length !== 11 || d === d[0]!.repeat(11)) return false;
  const check = (len: number): number => {
    let sum = 0;
    for (let i = 0; i < len; i++) sum += (d.charCodeAt(i) - 48) * (len + 1 - i);
    const r = (sum * 10) % 11;
    return r === 10 ? 0 : r;
  };
  return check(9) === d.charCodeAt(9) - 48 && check(10) === d.charCodeAt(10) - 48;
}

const DNI_LETTERS = 'TRWAGMYFPDXBNJZSQVHLCKE';
export function dniValid(digits: string, letter: string): boolean {
  return DNI_LETTERS[Number(digits) % 23] === letter.toUpperCase();
}

export function ibanValid(iban: string): boolean {
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const ch of rearranged) {
    const v = ch >= 'A' && ch <= 'Z' ? String(ch.charCodeAt(0) - 55) : ch;
    for (const digit of v) remainder = (remainder * 10 + (digit.charCodeAt(0) - 48)) % 97;
  }
  return remainder === 1;
}

function cardHit(text: string): boolean {
  const re = new RegExp(SENSITIVE_PATTERNS.cardCandidate.source, 'g');
  let m: RegExpExecArray | null;
  let tries = 0;
  while ((m = re.exec(text)) !== null && tries++ < 50) {
    const d = digitsOf(m[1]!);
    if (plausibleCard(d) && luhnValid(d)) return true;
    re.lastIndex = m.index + 1;
  }
  return false;
}

/** Recognizes sensitive content in one value; `key` is the property name holding it (lower-cased hints). */
export function scanSensitive(raw: string, key: string): SensitiveHit[] {
  const hits: SensitiveHit[] = [];
  const value = raw.length > MAX_SCANNED_CHARS ? raw.slice(0, MAX_SCANNED_CHARS) : raw;
  const k = key.toLowerCase();
  const trimmed = value.trim();
  const tokens = value.includes('@') || value.includes('eyJ') ? tokensOf(value) : [];
  if (tokens.some((t) => t.includes('@') && SENSITIVE_PATTERNS.email.test(t))) hits.push({ kind: 'email', detail: 'email address' });
  if (trimmed.length <= 24 && SENSITIVE_PATTERNS.phoneWhole.test(trimmed) && phoneShaped(trimmed)) hits.push({ kind: 'phone', detail: 'phone number' });
  if (value.length >= 13 && cardHit(value)) hits.push({ kind: 'card-number', detail: 'payment card number (Luhn-valid, known issuer prefix)' });
  if (value.includes('-')) {
    const ssn = SENSITIVE_PATTERNS.ssn.exec(value);
    if (ssn && ssnValid(ssn[1]!, ssn[2]!, ssn[3]!)) hits.push({ kind: 'national-id', detail: 'US social security number' });
  }
  if (value.includes('.')) {
    const cpf = SENSITIVE_PATTERNS.cpf.exec(value);
    if (cpf && cpfValid(cpf[1]!)) hits.push({ kind: 'national-id', detail: 'Brazilian CPF (check digits valid)' });
  }
  const dni = trimmed.length <= 10 ? SENSITIVE_PATTERNS.dni.exec(trimmed) : null;
  if (dni && dniValid(dni[1]!, dni[2]!)) hits.push({ kind: 'national-id', detail: 'Spanish DNI (check letter valid)' });
  const compact = trimmed.length <= 42 ? trimmed.replaceAll(' ', '').toUpperCase() : '';
  if (compact.length >= 15 && SENSITIVE_PATTERNS.iban.test(compact) && ibanValid(compact)) hits.push({ kind: 'iban', detail: 'IBAN (mod-97 valid)' });
  if (tokens.some((t) => t.startsWith('eyJ') && SENSITIVE_PATTERNS.jwt.test(t))) hits.push({ kind: 'jwt', detail: 'JSON Web Token' });
  if (SENSITIVE_PATTERNS.cloudKey.test(value)) hits.push({ kind: 'cloud-key', detail: 'cloud or SaaS access key' });
  if (value.includes('PRIVATE KEY-----') && SENSITIVE_PATTERNS.privateKey.test(value)) hits.push({ kind: 'private-key', detail: 'PEM private key' });
  const passwordKey = PASSWORD_KEYS.some((p) => k.includes(p));
  if ((value.includes('$') || value.includes('{')) && SENSITIVE_PATTERNS.passwordHash.test(value)) hits.push({ kind: 'password-hash', detail: 'password hash (crypt format)' });
  else if (passwordKey && SENSITIVE_PATTERNS.hexDigest.test(trimmed)) hits.push({ kind: 'password-hash', detail: `hex digest in field "${key.slice(0, 40)}"` });
  else if (passwordKey && !k.includes('hash') && trimmed.length > 0 && trimmed.length <= 128) hits.push({ kind: 'credential', detail: `value of field "${key.slice(0, 40)}"` });
  return hits;
}
