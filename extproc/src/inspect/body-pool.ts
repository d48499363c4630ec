// The worker-thread pool that decodes large bodies off the event loop (piscina: bounded threads and
// a bounded queue). One per process, created on first use; idle threads exit on their own.
import os from 'node:os';
import { Piscina } from 'piscina';
import type { Headers } from '../engine/event.ts';
import type { DecodedBody } from './body.ts';
import { DEFAULT_BODY_LIMITS, type BodyLimits } from './limits.ts';
import { DEFAULT_SAMPLE_LIMITS } from './body-sample.ts';
import type { DecodeTask } from './body-worker.ts';

/** Tasks waiting for a thread at most; beyond it a body is not inspected rather than queued without bound. */
const MAX_QUEUE = 256;

let pool: Piscina<DecodeTask, DecodedBody> | undefined;

/** Why a large body went uninspected: the queue was full, the deadline passed, or the worker failed. */
export type UninspectedReason = 'queue-full' | 'deadline' | 'worker-failed';

const uninspected: Record<UninspectedReason, number> = { 'queue-full': 0, deadline: 0, 'worker-failed': 0 };

/** Bodies left uninspected since start, by reason (the meshward.inspect.bodies_not_inspected metric). */
export function uninspectedBodies(): Readonly<Record<UninspectedReason, number>> {
  return uninspected;
}

/** Classifies a rejected decode and counts it. */
export function countUninspected(err: unknown): UninspectedReason {
  const reason: UninspectedReason = err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError') ? 'deadline'
    : err instanceof Error && /queue is at limit/i.test(err.message) ? 'queue-full'
      : 'worker-failed';
  uninspected[reason]++;
  return reason;
}

function sharedPool(): Piscina<DecodeTask, DecodedBody> {
  if (pool === undefined) {
    // Same extension as this module: .ts when run from source, .js when built.
    const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    pool = new Piscina<DecodeTask, DecodedBody>({
      filename: new URL(`./body-worker${extension}`, import.meta.url).href,
      minThreads: 0,
      maxThreads: Math.max(1, Math.min(4, os.availableParallelism() - 1)),
      maxQueue: MAX_QUEUE,
      idleTimeout: 30_000,
    });
  }
  return pool;
}

/** Starts a worker thread and loads the decoder in it now, so the first large body is not the one
 *  that pays for thread start and module loading (which can exceed the decode deadline). */
export async function warmBodyPool(): Promise<void> {
  await sharedPool().run({ body: new TextEncoder().encode('{"warm":[1]}'), headers: new Map([['content-type', ['application/json']]]), limits: { ...DEFAULT_BODY_LIMITS }, sample: DEFAULT_SAMPLE_LIMITS });
}

/** Decodes one body in a worker thread; rejects on a full queue, a crashed worker or the deadline. */
export function decodeOffThread(body: Buffer, headers: Headers, limits: BodyLimits, deadlineMs: number): Promise<DecodedBody> {
  const copy = new Uint8Array(body); // a private copy the worker may take over (transferred, not cloned)
  const task: DecodeTask = { body: copy, headers, limits, sample: DEFAULT_SAMPLE_LIMITS };
  return sharedPool().run(task, { signal: AbortSignal.timeout(deadlineMs), transferList: [copy.buffer] });
}

/** Stops the pool's threads (tests and shutdown); the next decode starts a fresh pool. */
export async function closeBodyPool(): Promise<void> {
  const closing = pool;
  pool = undefined;
  await closing?.close({ force: true });
}
