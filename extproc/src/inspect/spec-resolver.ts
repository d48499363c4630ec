// Spec operations for content inspection, through the inventory's own matcher (issue #5): one spec
// per service authority, or one spec for every authority.
import { matchSpecOperation } from '../inventory/spec-match.ts';
import type { ApiSpec, SpecOperation } from '../inventory/spec.ts';
import type { Inventory } from '../inventory/inventory.ts';
import type { OpenApiOperation } from './contract.ts';
import type { OperationResolver } from './settings.ts';
import { authorityHost } from './values.ts';

export interface ServiceSpec {
  /** Service host (":authority" without port); absent = any host. */
  authority?: string;
  spec: ApiSpec;
}

// One stable object per spec operation (path-item parameters merged in), so the contract
// validator's per-operation cache keeps hitting.
const merged = new WeakMap<SpecOperation, OpenApiOperation>();
function contractOperation(op: SpecOperation, spec: ApiSpec): OpenApiOperation {
  let out = merged.get(op);
  if (!out) {
    out = { ...(op.operation as OpenApiOperation), parameters: op.parameters as unknown as OpenApiOperation['parameters'], specDocument: spec.document };
    merged.set(op, out);
  }
  return out;
}

export function specOperationResolver(specs: readonly ServiceSpec[]): OperationResolver {
  return (exchange) => {
    const host = authorityHost(exchange.request.authority);
    for (const s of specs) {
      if (s.authority !== undefined && authorityHost(s.authority) !== host) continue;
      const m = matchSpecOperation(s.spec, exchange.request.method, exchange.request.path);
      if (m) return { operation: contractOperation(m.operation, s.spec), pathParams: m.pathParams };
    }
    return undefined;
  };
}

/** The specs the inventory holds, one per service in name order (what the resolver above takes). */
export function inventoryServiceSpecs(inventory: Inventory): ServiceSpec[] {
  const out: ServiceSpec[] = [];
  for (const service of inventory.services().sort()) {
    const spec = inventory.state(service)?.spec;
    if (spec) out.push({ authority: service, spec });
  }
  return out;
}
