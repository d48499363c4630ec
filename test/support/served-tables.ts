// An admin router serving the Wasm filter's tables for a policy set (and enforced denies), as
// `meshward serve --admin-port` does, for real-Envoy tests of the filter's table refresh.
import { AdminRouter } from '../../extproc/src/admin/server.ts';
import { FilterConfigStore, registerFilterConfigRoute } from '../../extproc/src/filter-config/route.ts';
import type { EnforcedDenies } from '../../extproc/src/filter-config/enforced.ts';
import { PolicySet } from '../../extproc/src/policy/precedence.ts';
import { PolicyServerWiring } from '../../extproc/src/policy/server-wiring.ts';

export function servedTables(set: PolicySet, enforced?: EnforcedDenies): AdminRouter {
  const store = new FilterConfigStore({});
  const router = new AdminRouter();
  registerFilterConfigRoute(router, store);
  const wiring = new PolicyServerWiring();
  wiring.onApplied({ set, errors: new Map() } as never, set.effectiveFor({ namespace: set.meshNamespace }));
  wiring.serveFilterTables(store, 60_000, enforced);
  return router;
}
