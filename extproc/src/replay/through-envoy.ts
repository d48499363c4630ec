// Replay through the real stack: each record is sent by a client-side Envoy presenting the caller
// workload's SPIFFE certificate, through the server-side Envoy (meshward filter, ext_proc) to a
// replay upstream that answers the recorded response. Timing is preserved or compressed by a factor;
// the ext_proc server's event clock runs on capture time, so detector windows see the original rates.
import http from 'node:http';
import { startLocalMesh } from '../local/mesh.ts';
import type { AppRequest } from '../local/upstream-app.ts';
import type { Finding } from '../engine/finding.ts';
import type { DecisionRecord } from '../engine/engine.ts';
import { ALLOW } from '../engine/decision.ts';
import { mergeCaptures, type ReplayOptions, type RowOutcome } from './run.ts';
import { RecordError, type CaptureRecord } from './record.ts';

export const REPLAY_ID_HEADER = 'x-replay-id';
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'host', 'upgrade', 'te', 'trailer', 'proxy-connection']);

export interface ThroughEnvoyOptions extends ReplayOptions {
  /** Compression: 10 replays ten times faster than captured (the server's clock is scaled to match). */
  speed?: number;
}

/** "spiffe://cluster.local/ns/web/sa/frontend" -> "web/frontend" (the local mesh's trust domain). */
function workloadName(spiffeId: string): string {
  const m = /^spiffe:\/\/cluster\.local\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(spiffeId);
  if (!m) throw new RecordError(`caller_workload ${JSON.stringify(spiffeId)}: through-envoy replay needs spiffe://cluster.local/ns/<ns>/sa/<sa>`);
  return `${m[1]}/${m[2]}`;
}

function send(url: string, r: CaptureRecord, agent: http.Agent): Promise<number> {
  const headers: Record<string, string> = { host: r.authority, [REPLAY_ID_HEADER]: r.id };
  for (const [k, v] of r.request.headers) if (!HOP_BY_HOP.has(k.toLowerCase())) headers[k] = v;
  const body = r.request.body_b64 ? Buffer.from(r.request.body_b64, 'base64') : undefined;
  return new Promise((resolve) => {
    const req = http.request(url + r.request.path, { method: r.request.method, headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

export interface ThroughEnvoyResult {
  outcomes: RowOutcome[];
  /** Records the ext_proc server never decided on (Envoy answered without it), with the status seen. */
  undecided: { id: string; status: number }[];
}

export async function replayThroughEnvoy(captures: readonly (readonly CaptureRecord[])[], options: ThroughEnvoyOptions = {}): Promise<ThroughEnvoyResult> {
  const rows = mergeCaptures(captures);
  if (rows.length === 0) return { outcomes: [], undecided: [] };
  const speed = options.speed ?? 1;
  if (!(speed > 0)) throw new RecordError(`speed must be positive, got ${speed}`);
  const byId = new Map(rows.map((r) => [r.record.id, r.record]));
  const callers = [...new Set(rows.map((r) => {
    if (!r.record.caller_workload) throw new RecordError(`${r.record.id}: through-envoy replay needs a caller_workload (the client certificate to present)`);
    return workloadName(r.record.caller_workload);
  }))];

  const captureStart = rows[0]!.epoch + rows[0]!.record.t_ms;
  let wallStart = Date.now();
  const answer = (req: AppRequest): { status: number; headers: [string, string][]; body: Buffer } => {
    const rec = byId.get(String(req.headers[REPLAY_ID_HEADER] ?? ''));
    if (!rec) return { status: 599, headers: [], body: Buffer.from('unknown replay id') };
    return {
      status: rec.response?.status ?? 200,
      headers: (rec.response?.headers ?? []).filter(([k]) => !HOP_BY_HOP.has(k.toLowerCase())),
      body: rec.response?.body_b64 ? Buffer.from(rec.response.body_b64, 'base64') : Buffer.alloc(0),
    };
  };
  const mesh = await startLocalMesh({
    callers,
    server: 'replay/upstream',
    engine: { denyRules: [], mode: options.mode ?? 'monitor', ...(options.settings ? { settings: options.settings } : {}) },
    // Every body goes to the server, as the in-process replay sees them.
    pluginConfig: { sampling: { percent: 100, seed: 'replay' } },
    appHandler: answer,
    serverClock: () => captureStart + (Date.now() - wallStart) * speed,
    messageTimeoutSeconds: 5,
  });
  const decisions = new Map<string, DecisionRecord>();
  const findings = new Map<string, Finding[]>();
  const replayIdOf = new Map<string, string>();
  const addFindings = (id: string, list: readonly Finding[]): void => {
    const have = findings.get(id);
    if (have) have.push(...list); else findings.set(id, [...list]);
  };
  mesh.engine.addObserver({
    // Request-phase findings arrive with the decision (onFinding fires before the request is mapped).
    onDecision: (d) => {
      const id = d.request.headers.get(REPLAY_ID_HEADER)?.[0];
      if (id === undefined) return;
      decisions.set(id, d);
      replayIdOf.set(d.request.requestId, id);
      addFindings(id, d.findings ?? []);
    },
    // Response-phase findings: the request is mapped by then.
    onFinding: (f) => {
      const id = replayIdOf.get(f.requestId);
      if (id !== undefined) addFindings(id, [f]);
    },
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const statuses = new Map<string, number>();
  try {
    wallStart = Date.now();
    const inFlight: Promise<void>[] = [];
    for (const { record, epoch } of rows) {
      const due = wallStart + (epoch + record.t_ms - captureStart) / speed;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const url = mesh.urlFor(workloadName(record.caller_workload!));
      inFlight.push(send(url, record, agent).then((status) => { statuses.set(record.id, status); }));
    }
    await Promise.all(inFlight);
  } finally {
    agent.destroy();
    await mesh.stop();
  }
  const undecided: ThroughEnvoyResult['undecided'] = [];
  const outcomes = rows.map(({ record }) => {
    const d = decisions.get(record.id);
    if (!d) undecided.push({ id: record.id, status: statuses.get(record.id) ?? 0 });
    const requestFindings = d?.findings ?? [];
    return {
      record,
      findings: findings.get(record.id) ?? [],
      decision: d?.decision ?? ALLOW,
      blockable: requestFindings.some((f) => f.enforcement === 'deny' || f.enforcement === 'rate-limit'),
    };
  });
  return { outcomes, undecided };
}
