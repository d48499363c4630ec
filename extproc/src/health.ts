// grpc.health.v1.Health on the ext_proc server: what Kubernetes' gRPC probes (the Helm chart's
// startup/readiness/liveness probes) call. Overall status "" is SERVING while the server accepts streams.
import type * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';

export type { ServingStatus };

/** Registers the health service on `server`; the returned object changes the reported status. */
export function addHealthService(server: grpc.Server, initial: ServingStatus = 'SERVING'): HealthImplementation {
  const health = new HealthImplementation({ '': initial });
  health.addToServer(server);
  return health;
}
