// Route templating: concrete paths -> stable templates (/users/8123 -> /users/{id}), so every
// request carries an operation id. This is the baseline rule set; the inventory (issue #5) learns
// beyond it and the Wasm filter (issue #3) applies the same rules.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NUMBER = /^\d+$/;
const HEX = /^[0-9a-f]{16,}$/i;

export function templateSegment(segment: string): string {
  if (segment.length === 0) return segment;
  if (NUMBER.test(segment)) return '{id}';
  if (segment.length === 36 && UUID.test(segment)) return '{uuid}';
  if (HEX.test(segment)) return '{hex}';
  return segment;
}

export function templatePath(path: string): string {
  return path.split('/').map(templateSegment).join('/');
}
