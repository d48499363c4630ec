// The traffic generator's HTTP client: sends a request through a caller's listener with the
// service's host name as authority (as a workload resolving a Kubernetes service would), tags it
// with an x-request-id so meshward's decisions and findings can be matched to the campaign that
// sent it, and counts what happened.
import http from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';

export interface SentRequest {
  id: string;
  campaign: string;
  caller: string;
  service: string;
  method: string;
  path: string;
  status: number;
  ms: number;
}

export interface RequestSpec {
  caller: string;
  service: string;
  method: string;
  path: string;
  /** End user's bearer token. */
  token?: string;
  /** End client address the caller forwards (X-Forwarded-For). */
  clientIp?: string;
  body?: unknown;
  /** Sent as is (e.g. a malformed JSON body). */
  rawBody?: string;
  headers?: Record<string, string>;
}

export interface Response { status: number; json: unknown; ms: number }

export type UrlFor = (caller: string, service: string, variant?: 'meshward' | 'bare') => string;

export class DemoClient {
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  readonly #urlFor: UrlFor;
  readonly #hosts: ReadonlyMap<string, string>;
  readonly #signal: AbortSignal;
  /** Requests by x-request-id, for matching decisions and findings. */
  readonly byId = new Map<string, SentRequest>();
  readonly sent: SentRequest[] = [];

  constructor(urlFor: UrlFor, hosts: ReadonlyMap<string, string>, signal: AbortSignal) {
    this.#urlFor = urlFor;
    this.#hosts = hosts;
    this.#signal = signal;
  }

  /** The URL, headers and (recorded) entry of one request as `campaign`. */
  #prepare(campaign: string, spec: RequestSpec, variant: 'meshward' | 'bare', payload?: string): { url: URL; headers: Record<string, string>; record: SentRequest } {
    this.#signal.throwIfAborted();
    const id = randomUUID();
    const url = new URL(this.#urlFor(spec.caller, spec.service, variant) + spec.path);
    const headers: Record<string, string> = {
      host: this.#hosts.get(spec.service) ?? spec.service,
      'x-request-id': id,
      ...(spec.token ? { authorization: `Bearer ${spec.token}` } : {}),
      ...(spec.clientIp ? { 'x-forwarded-for': spec.clientIp } : {}),
      ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}),
      ...spec.headers,
    };
    const record: SentRequest = { id, campaign, caller: spec.caller, service: spec.service, method: spec.method, path: spec.path, status: 0, ms: 0 };
    if (variant === 'meshward') { this.byId.set(id, record); this.sent.push(record); }
    return { url, headers, record };
  }

  /** Sends one request as `campaign` ("benign" for normal users). Resolves once the response ended. */
  send(campaign: string, spec: RequestSpec, variant: 'meshward' | 'bare' = 'meshward'): Promise<Response> {
    const payload = spec.rawBody ?? (spec.body !== undefined ? JSON.stringify(spec.body) : undefined);
    const { url, headers, record } = this.#prepare(campaign, spec, variant, payload);
    const started = performance.now();
    return new Promise<Response>((resolve, reject) => {
      const req = http.request(url, { method: spec.method, headers, agent: this.#agent, signal: this.#signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          record.status = res.statusCode ?? 0;
          record.ms = performance.now() - started;
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
          resolve({ status: record.status, json, ms: record.ms });
        });
        res.on('error', reject);
      });
      req.on('error', (err) => reject(new Error(`${spec.method} ${spec.path} via ${spec.caller} -> ${spec.service}: ${err.message}`)));
      req.end(payload);
    });
  }

  /** Opens a WebSocket (HTTP/1.1 upgrade) as `campaign` and closes it once answered: 101 when accepted. */
  upgrade(campaign: string, spec: Omit<RequestSpec, 'method' | 'body' | 'rawBody'>): Promise<Response> {
    const { url, headers, record } = this.#prepare(campaign, { ...spec, method: 'GET' }, 'meshward');
    Object.assign(headers, { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64') });
    const started = performance.now();
    return new Promise<Response>((resolve, reject) => {
      // Its own connection: an upgraded one is never reused.
      const req = http.request(url, { headers, agent: false, signal: this.#signal });
      const done = (status: number): void => {
        record.status = status;
        record.ms = performance.now() - started;
        resolve({ status, json: undefined, ms: record.ms });
      };
      req.on('upgrade', (res, socket) => { socket.destroy(); done(res.statusCode ?? 0); });
      req.on('response', (res) => { res.resume(); res.on('end', () => done(res.statusCode ?? 0)); });
      req.on('error', (err) => reject(new Error(`WebSocket ${spec.path} via ${spec.caller} -> ${spec.service}: ${err.message}`)));
      req.end();
    });
  }

  close(): void { this.#agent.destroy(); }
}
