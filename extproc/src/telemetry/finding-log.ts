// Findings as pino JSON log lines (one per finding, message "finding"), for log pipelines that do
// not take OTLP. Evidence is what detectors put there: hashes, never raw secrets.
import type { Engine } from '../engine/engine.ts';
import type { Logger } from '../log.ts';

export function logFindings(engine: Engine, log: Logger): () => void {
  return engine.addObserver({
    onFinding: (f) => {
      const level = f.severity === 'critical' || f.severity === 'high' ? 'warn' : 'info';
      log[level]({
        finding: { category: f.category, severity: f.severity, detector: f.detector, caller: f.caller, operation: f.operation, requestId: f.requestId, enforcement: f.enforcement, summary: f.summary, evidence: f.evidence },
      }, 'finding');
    },
    onDetectorError: (detector, error) => log.error({ detector, err: error }, 'detector failed on an exchange'),
  });
}
