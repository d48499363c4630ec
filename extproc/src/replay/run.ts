// In-process replay: feeds capture records through an Engine (the detectors alone, no Envoy), in
// capture-time order, and records per row what was found and decided. Enforce mode models the real
// stack: a denied request never reaches the app, so its recorded response is not observed.
import { Engine, type PolicyMode } from '../engine/engine.ts';
import type { Decision } from '../engine/decision.ts';
import type { Finding } from '../engine/finding.ts';
import type { DetectorSettingsInput } from '../engine/policy-settings.ts';
import { captureEpoch, toRequestEvent, toResponseEvent, type CaptureRecord } from './record.ts';

export interface RowOutcome {
  record: CaptureRecord;
  /** Findings attributed to this request (request and response phase). */
  findings: Finding[];
  decision: Decision;
  /** A request-phase finding asked for deny or rate-limit: what enforce mode blocks. */
  blockable: boolean;
}

export interface ReplayOptions {
  mode?: PolicyMode;
  settings?: DetectorSettingsInput;
  /** Multiplies gaps between records (0.5 = twice as fast); windows and TTLs follow event time. */
  timeScale?: number;
}

/** Records of several captures merged on their absolute time (each file keeps its own epoch). */
export function mergeCaptures(captures: readonly (readonly CaptureRecord[])[]): { record: CaptureRecord; epoch: number }[] {
  const rows = captures.flatMap((records) => {
    const epoch = captureEpoch(records);
    return records.map((record) => ({ record, epoch }));
  });
  return rows.sort((a, b) => a.epoch + a.record.t_ms - (b.epoch + b.record.t_ms));
}

export function replayInProcess(captures: readonly (readonly CaptureRecord[])[], options: ReplayOptions = {}): RowOutcome[] {
  const engine = new Engine({ denyRules: [], mode: options.mode ?? 'monitor', ...(options.settings ? { settings: options.settings } : {}) });
  const byRequest = new Map<string, Finding[]>();
  engine.addObserver({
    onFinding: (f) => {
      const list = byRequest.get(f.requestId);
      if (list) list.push(f); else byRequest.set(f.requestId, [f]);
    },
    onDetectorError: (detector, error) => { throw new Error(`detector ${detector} failed during replay: ${(error as Error).stack ?? String(error)}`); },
  });
  const scale = options.timeScale ?? 1;
  const outcomes: RowOutcome[] = [];
  for (const { record, epoch } of mergeCaptures(captures)) {
    const request = toRequestEvent(record, epoch, scale);
    const decision = engine.decide(request);
    const requestFindings = byRequest.get(record.id) ?? [];
    const blockable = requestFindings.some((f) => f.enforcement === 'deny' || f.enforcement === 'rate-limit');
    if (decision.action === 'allow') {
      const response = toResponseEvent(record, request);
      if (response !== undefined) engine.observeResponse(request, response);
    }
    outcomes.push({ record, findings: byRequest.get(record.id) ?? [], decision, blockable });
    byRequest.delete(record.id);
  }
  return outcomes;
}
