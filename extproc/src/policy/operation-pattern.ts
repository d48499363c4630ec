// Operation strings in policy ("METHOD /template", "/orders/*") as regular expressions on the
// engine's operation id "METHOD host template": one translation for every policy field that names
// operations (agent scopes, flows, rate limits, contract modes).

export function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** "/orders/*" -> regex fragment; exact otherwise. */
export function pathPattern(p: string): string {
  return p.endsWith('*') ? `${escapeRegex(p.slice(0, -1))}.*` : escapeRegex(p);
}

/** "METHOD /template" from policy -> regex on the engine's operation id "METHOD host template". */
export function operationPattern(op: string): string {
  const [method, p] = op.split(' ', 2) as [string, string];
  return `^${escapeRegex(method)} \\S+ ${pathPattern(p).replace(/\\\{[^}]*\\\}/g, '[^/]+')}$`;
}
