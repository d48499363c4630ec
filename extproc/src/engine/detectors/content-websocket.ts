// WebSocket abuse: upgrades that carry no credential the app could check, and upgrade rates per
// caller above policy (connection floods hold server resources far longer than requests).
import type { LRUCache } from 'lru-cache';
import type { Detector } from '../detector.ts';
import type { Exchange } from '../exchange.ts';
import type { Finding } from '../finding.ts';
import { findingFor, type DetectorContext } from '../detector-context.ts';
import { boundedMap, WindowCount } from '../state.ts';
import type { ContentContext } from '../../inspect/settings.ts';
import { isWebSocketUpgrade, upgradeCredentials } from '../../inspect/websocket.ts';

export const CONTENT_WEBSOCKET_DETECTOR = 'content-websocket';
const MINUTE = 60_000;

export class ContentWebSocketDetector implements Detector {
  readonly name = CONTENT_WEBSOCKET_DETECTOR;
  readonly #content: ContentContext;
  readonly #rates: LRUCache<string, WindowCount>;

  constructor(context: DetectorContext, content: ContentContext) {
    this.#content = content;
    this.#rates = boundedMap(context.clock, { caps: context.settings.caps, ttlMs: 2 * MINUTE }); // a 2-minute window: not persisted
  }

  onRequest(exchange: Exchange): Finding[] | undefined {
    const request = exchange.request;
    if (!isWebSocketUpgrade(request)) return undefined;
    const settings = this.#content.settings.websocket;
    const findings: Finding[] = [];
    const credentials = upgradeCredentials(request);
    if (settings.requireCredentials && credentials.length === 0) {
      findings.push(findingFor(this.name, exchange, {
        category: 'WEBSOCKET-Abuse', severity: 'medium', enforcement: 'deny',
        summary: 'WebSocket upgrade without any credential (no Authorization, cookie, subprotocol token or mesh identity)',
        evidence: { path: request.path.slice(0, 200) },
      }));
    }
    let rate = this.#rates.get(exchange.callerKey);
    if (!rate) { rate = new WindowCount(MINUTE); this.#rates.set(exchange.callerKey, rate); }
    const upgrades = rate.add(request.time);
    if (upgrades > settings.upgradesPerMinute) {
      findings.push(findingFor(this.name, exchange, {
        category: 'WEBSOCKET-Abuse', severity: 'medium', enforcement: 'rate-limit',
        summary: `${upgrades} WebSocket upgrades from this caller in a minute (limit ${settings.upgradesPerMinute})`,
        evidence: { upgrades, limit: settings.upgradesPerMinute, windowMs: MINUTE },
      }));
    }
    return findings;
  }
}
