// The content-inspection detectors (issue #6). They share one body decoder, one contract validator
// and the spec resolver (a ContentContext) per engine: the one attached to the detector context
// (the server's, with the spec resolver), else defaults created once for that context; a policy's
// content settings (settings.content) overlay either, per detector context (one per profile).
import type { Detector } from '../detector.ts';
import type { DetectorContext } from '../detector-context.ts';
import type { DetectorFactory } from './index.ts';
import { createContentContext, withContentSettings, type ContentContext } from '../../inspect/settings.ts';
import { ContentBodyDetector } from './content-body.ts';
import { ContentContractDetector } from './content-contract.ts';
import { ContentExposureDetector } from './content-exposure.ts';
import { ContentSsrfDetector } from './content-ssrf.ts';
import { ContentMisconfigDetector } from './content-misconfig.ts';
import { ContentUnsafeConsumptionDetector } from './content-unsafe-consumption.ts';
import { ContentGraphqlDetector } from './content-graphql.ts';
import { ContentGrpcDetector } from './content-grpc.ts';
import { ContentWebSocketDetector } from './content-websocket.ts';

const contexts = new WeakMap<DetectorContext, ContentContext>();

export function contentContextOf(context: DetectorContext): ContentContext {
  let content = contexts.get(context);
  if (!content) {
    const attached = (context as DetectorContext & { content?: ContentContext }).content;
    content = withContentSettings(attached ?? createContentContext(), context.settings.content);
    contexts.set(context, content);
  }
  return content;
}

export const CONTENT_DETECTOR_FACTORIES: readonly DetectorFactory[] = [
  (c) => new ContentBodyDetector(contentContextOf(c)),
  (c) => new ContentContractDetector(c, contentContextOf(c)),
  (c) => new ContentExposureDetector(c, contentContextOf(c)),
  (c) => new ContentSsrfDetector(contentContextOf(c)),
  (c) => new ContentMisconfigDetector(c, contentContextOf(c)),
  (c) => new ContentUnsafeConsumptionDetector(contentContextOf(c)),
  (c) => new ContentGraphqlDetector(contentContextOf(c)),
  (c) => new ContentGrpcDetector(contentContextOf(c)),
  (c) => new ContentWebSocketDetector(c, contentContextOf(c)),
];

/** Every content detector, sharing `content` (settings, spec resolver) within this context. */
export function createContentDetectors(context: DetectorContext, content: ContentContext): Detector[] {
  contexts.set(context, content);
  return CONTENT_DETECTOR_FACTORIES.map((factory) => factory(context));
}
