// Test harness for the engine and its detectors: builds normalized events (as the wire adapters
// would), runs them through a real Engine, and collects findings and decisions.
import { createHmac } from 'node:crypto';
import { Engine, type EngineConfig } from '../../../extproc/src/engine/engine.ts';
import type { Decision } from '../../../extproc/src/engine/decision.ts';
import type { RequestEvent, ResponseEvent } from '../../../extproc/src/engine/event.ts';
import type { Finding } from '../../../extproc/src/engine/finding.ts';
import type { DetectorSettingsInput } from '../../../extproc/src/engine/policy-settings.ts';

export const T0 = Date.UTC(2026, 10, 27, 12, 0, 0);
/** Small caps so each test's engine is cheap to build. */
export const SMALL_CAPS = { maxEntries: 2000, maxBytes: 4 * 1024 * 1024 };
/** Learning done quickly in unit tests: 10 requests over 1 s. */
export const QUICK_LEARNING = { minDurationMs: 1000, minRequests: 10 };

export interface Send {
  time: number;
  method?: string;
  path: string;
  authority?: string;
  workload?: string;
  client?: string;
  headers?: Record<string, string>;
  body?: unknown;
  status?: number;
  responseBody?: unknown;
  responseHeaders?: Record<string, string>;
}

export interface Sent {
  decision: Decision;
  findings: Finding[];
  requestFindings: Finding[];
}

const toBuffer = (b: unknown): Buffer | undefined =>
  b === undefined ? undefined : Buffer.isBuffer(b) ? b : Buffer.from(typeof b === 'string' ? b : JSON.stringify(b));

export class Harness {
  readonly engine: Engine;
  readonly all: Finding[] = [];
  #seq = 0;

  constructor(settings: DetectorSettingsInput = {}, config: Partial<EngineConfig> = {}) {
    this.engine = new Engine({ denyRules: [], ...config, settings: { caps: SMALL_CAPS, ...settings } });
    this.engine.addObserver({ onFinding: (f) => this.all.push(f) });
  }

  send(s: Send): Sent {
    const requestId = `r${++this.#seq}`;
    const headers = new Map<string, string[]>();
    for (const [k, v] of Object.entries(s.headers ?? {})) headers.set(k.toLowerCase(), [v]);
    if (s.client !== undefined) headers.set('x-forwarded-for', [s.client]);
    const body = toBuffer(s.body);
    const request: RequestEvent = {
      requestId,
      time: s.time,
      caller: { ...(s.workload ? { workload: s.workload } : {}), mtls: s.workload !== undefined, sourceAddress: '10.0.0.1:5000', identitySource: s.workload ? 'filter' : 'none' },
      method: s.method ?? 'GET',
      authority: s.authority ?? 'shop.svc',
      path: s.path,
      headers,
      ...(body ? { body } : {}),
    };
    const before = this.all.length;
    const decision = this.engine.decide(request);
    const requestFindings = this.all.slice(before);
    if (decision.action === 'allow') {
      const rh = new Map<string, string[]>();
      for (const [k, v] of Object.entries(s.responseHeaders ?? {})) rh.set(k.toLowerCase(), [v]);
      const rb = toBuffer(s.responseBody);
      const response: ResponseEvent = { requestId, time: s.time, status: s.status ?? 200, headers: rh, ...(rb ? { body: rb } : {}) };
      this.engine.observeResponse(request, response);
    }
    return { decision, findings: this.all.slice(before), requestFindings };
  }
}

export const WEB = 'spiffe://cluster.local/ns/web/sa/frontend';

/** A compact JWS; alg "none" leaves the signature empty, HS256 signs with the secret. */
export function makeJwt(payload: Record<string, unknown>, options: { alg?: string; secret?: string; kid?: string } = {}): string {
  const alg = options.alg ?? 'HS256';
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${enc({ alg, typ: 'JWT', ...(options.kid ? { kid: options.kid } : {}) })}.${enc(payload)}`;
  if (alg === 'none') return `${input}.`;
  const sig = createHmac('sha256', options.secret ?? 'test-secret').update(input).digest('base64url');
  return `${input}.${sig}`;
}

export function bearer(payload: Record<string, unknown>, options?: Parameters<typeof makeJwt>[1]): Record<string, string> {
  return { authorization: `Bearer ${makeJwt(payload, options)}` };
}

export const ofDetector = (findings: readonly Finding[], detector: string): Finding[] => findings.filter((f) => f.detector === detector);
