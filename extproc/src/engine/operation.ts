// Route templating, baseline rules: concrete paths -> stable templates (/users/8123 -> /users/{id}),
// so every request carries an operation id. The Wasm filter (issue #3) applies exactly these rules,
// so they stay simple, deterministic and per segment; the inventory (extproc/src/inventory/) learns
// templates beyond them and pushes those to the filter as an exact table.
//
// A path is split on "/"; each segment is tested on its own, first match wins:
//   1. empty                                      -> kept ("" between slashes, leading/trailing)
//   2. digits only              /^[0-9]+$/                                   -> {id}
//   3. UUID (36 chars)          8-4-4-4-12 hex digits, any case                -> {uuid}
//   4. hex, 16+ chars           /^[0-9a-fA-F]{16,}$/ with at least one digit   -> {hex}
//   5. email                    /^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$/              -> {email}
//   6. date or date-time        /^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?)?$/ -> {date}
//   7. base64-like token, 20+ chars, only [A-Za-z0-9+=_-] (url-safe or standard alphabet), with at
//      least one digit, one upper-case and one lower-case letter                 -> {token}
//   8. anything else            -> kept as is
// Segments are tested as received (not percent-decoded), as the filter sees them. The hex rule needs
// a digit so long all-letter words over a-f stay static; the token rule needs all three character
// classes so camelCase words ("getAccountInformation") and lower-case slugs stay static.

const NUMBER = /^[0-9]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX = /^[0-9a-f]{16,}$/i;
const EMAIL = /^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$/;
const DATE = /^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?)?$/;
const TOKEN = /^[A-Za-z0-9+=_-]{20,}$/;
const DIGIT = /[0-9]/;
const UPPER = /[A-Z]/;
const LOWER = /[a-z]/;

/** The placeholders the baseline rules produce, in rule order. */
export const BASELINE_PLACEHOLDERS = ['{id}', '{uuid}', '{hex}', '{email}', '{date}', '{token}'] as const;

export function templateSegment(segment: string): string {
  if (segment.length === 0) return segment;
  if (NUMBER.test(segment)) return '{id}';
  if (segment.length === 36 && UUID.test(segment)) return '{uuid}';
  if (HEX.test(segment) && DIGIT.test(segment)) return '{hex}';
  if (EMAIL.test(segment)) return '{email}';
  if (DATE.test(segment)) return '{date}';
  if (TOKEN.test(segment) && DIGIT.test(segment) && UPPER.test(segment) && LOWER.test(segment)) return '{token}';
  return segment;
}

export function templatePath(path: string): string {
  return path.split('/').map(templateSegment).join('/');
}
