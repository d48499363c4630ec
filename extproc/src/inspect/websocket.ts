// WebSocket upgrades: HTTP/1.1 "Upgrade: websocket" or HTTP/2 extended CONNECT (RFC 8441), and
// whether the upgrade carries any credential the app could check.
import type { RequestEvent } from '../engine/event.ts';

export function isWebSocketUpgrade(request: RequestEvent): boolean {
  const upgrade = request.headers.get('upgrade')?.[0]?.toLowerCase() ?? '';
  if (upgrade.split(',').some((p) => p.trim() === 'websocket')) return true;
  return request.method === 'CONNECT' && request.headers.get(':protocol')?.[0]?.toLowerCase() === 'websocket';
}

/** Credentials a server may check on the handshake: Authorization, a cookie, a subprotocol token, a query token, or a mesh identity. */
export function upgradeCredentials(request: RequestEvent): string[] {
  const found: string[] = [];
  if (request.headers.has('authorization')) found.push('authorization');
  if (request.headers.has('cookie')) found.push('cookie');
  if (request.headers.has('sec-websocket-protocol')) found.push('subprotocol');
  const q = request.path.indexOf('?');
  if (q !== -1) {
    const params = new URLSearchParams(request.path.slice(q + 1));
    if (['token', 'access_token', 'auth', 'jwt', 'ticket'].some((k) => params.has(k))) found.push('query-token');
  }
  if (request.caller.workload !== undefined && request.caller.mtls) found.push('mesh-identity');
  return found;
}
