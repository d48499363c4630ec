// The detector registry: every detector module registers one factory here, and the engine builds
// its detectors from it (unless EngineConfig.detectors replaces the set). Content detectors
// (issue #6) append their factories to DETECTOR_FACTORIES the same way.
import type { Detector } from '../detector.ts';
import type { DetectorContext } from '../detector-context.ts';
import { BolaDetector } from './bola.ts';
import { BrokenAuthDetector } from './broken-auth.ts';
import { ResourceConsumptionDetector } from './resource-consumption.ts';
import { BflaDetector } from './bfla.ts';
import { BusinessFlowDetector } from './business-flows.ts';
import { LateralMovementDetector } from './lateral-movement.ts';
import { CallGraphDetector } from './call-graph.ts';
import { CONTENT_DETECTOR_FACTORIES } from './content.ts';

export type DetectorFactory = (context: DetectorContext) => Detector;

export const DETECTOR_FACTORIES: DetectorFactory[] = [
  (c) => new BolaDetector(c),
  (c) => new BrokenAuthDetector(c),
  (c) => new ResourceConsumptionDetector(c),
  (c) => new BflaDetector(c),
  (c) => new BusinessFlowDetector(c),
  (c) => new LateralMovementDetector(c),
  (c) => new CallGraphDetector(c),
  ...CONTENT_DETECTOR_FACTORIES,
];

/** One fresh instance of every registered detector (each with its own bounded state). */
export function createDefaultDetectors(context: DetectorContext): Detector[] {
  return DETECTOR_FACTORIES.map((factory) => factory(context));
}
