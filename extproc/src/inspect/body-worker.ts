// Worker-thread side of the body decode pool (see body-pool.ts): decodes one large body under its
// caps and returns a bounded sample, so the event loop never parses or walks a megabyte itself.
import type { Headers } from '../engine/event.ts';
import { decodeBody, type DecodedBody } from './body.ts';
import type { BodyLimits } from './limits.ts';
import { sampleDecodedBody, type SampleLimits } from './body-sample.ts';

export interface DecodeTask {
  body: Uint8Array;
  headers: Headers;
  limits: BodyLimits;
  sample: SampleLimits;
}

export default function decodeTask(task: DecodeTask): DecodedBody {
  const body = Buffer.from(task.body.buffer, task.body.byteOffset, task.body.byteLength);
  return sampleDecodedBody(decodeBody(body, task.headers, task.limits), task.sample);
}
