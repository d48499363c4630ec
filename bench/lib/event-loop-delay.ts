// Event-loop delay as the time a timer fired late, for benchmarks and the tests that report it.
// perf_hooks.monitorEventLoopDelay records the whole interval between its timer's callbacks, so an
// idle loop at resolution 1 ms reads ~1.1 ms; the delay is that interval minus the resolution (as
// Elastic's APM agent and the OpenTelemetry runtime-node discussion, open-telemetry/
// opentelemetry-js-contrib#2794, subtract it). The raw interval is kept beside it, named as such.
import { monitorEventLoopDelay, type Histogram } from 'node:perf_hooks';

export interface EventLoopDelay {
  /** Samples taken (timer callbacks). */
  count: number;
  /** How late the timer fired, in ms (interval minus resolution, at least 0). */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The histogram's raw interval percentiles, in ms (delay plus resolution). */
  rawIntervalP99Ms: number;
  resolutionMs: number;
}

export interface EventLoopDelayMonitor {
  /** Forgets what was recorded (for example after a warm-up). */
  reset(): void;
  /** Stops recording and returns the delay seen since start (or the last reset). */
  stop(): EventLoopDelay;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

export function summariseDelay(histogram: Histogram, resolutionMs: number): EventLoopDelay {
  const late = (ns: number): number => round2(Math.max(0, ns / 1e6 - resolutionMs));
  return {
    count: histogram.count,
    p50Ms: late(histogram.percentile(50)),
    p99Ms: late(histogram.percentile(99)),
    maxMs: late(histogram.max),
    rawIntervalP99Ms: round2(histogram.percentile(99) / 1e6),
    resolutionMs,
  };
}

/** Starts measuring this process's event-loop delay at `resolutionMs` (default 1 ms). */
export function monitorDelay(resolutionMs = 1): EventLoopDelayMonitor {
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  return {
    reset: () => histogram.reset(),
    stop: () => { histogram.disable(); return summariseDelay(histogram, resolutionMs); },
  };
}
