// The inventory on the server's admin HTTP API (bearer token, see admin/server.ts):
//   GET  /inventory                  classification of every service (?service=HOST for one)
//   GET  /inventory/export?service=  the discovered API as OpenAPI 3.1
//   GET  /inventory/diff?service=    diff against the spec in force
//   POST /inventory/diff?service=    diff against the spec in the body (YAML or JSON)
//   GET  /inventory/templates        learned template table (what the filter gets)
//   GET  /inventory/specs            spec in force and last load error per service
//   PUT  /inventory/specs?service=   load the spec in the body; on error the last good one stays (422)
import type { AdminRequest, AdminResponse, AdminRouter } from '../admin/server.ts';
import type { ClassifyOptions } from './classify.ts';
import { diffAgainstSpec } from './diff.ts';
import { exportOpenApi } from './export.ts';
import { serviceOf } from './facts.ts';
import type { Inventory } from './inventory.ts';
import { inventoryReport } from './report.ts';
import { SpecError, parseSpec } from './spec.ts';
import type { SpecRegistry } from './spec-registry.ts';

const MAX_SPEC_BODY = 5 * 1024 * 1024;

export interface InventoryRouteOptions {
  activeWindowMs?: number;
  now?: () => number;
}

function badRequest(message: string): AdminResponse {
  return { status: 400, body: { error: 'bad_request', message } };
}

export function registerInventoryRoutes(router: AdminRouter, inventory: Inventory, specs: SpecRegistry, options: InventoryRouteOptions = {}): void {
  const classifyOptions = (): ClassifyOptions => ({
    now: (options.now ?? Date.now)(),
    ...(options.activeWindowMs !== undefined ? { activeWindowMs: options.activeWindowMs } : {}),
  });
  const serviceParam = (req: AdminRequest): string | undefined => {
    const s = req.query.get('service');
    return s ? serviceOf(s) : undefined;
  };
  const knownService = (req: AdminRequest): string | AdminResponse => {
    const service = serviceParam(req);
    if (!service) return badRequest('the "service" query parameter is required');
    if (!inventory.state(service)) return { status: 404, body: { error: 'unknown_service', service } };
    return service;
  };

  router.register({
    method: 'GET', path: '/inventory',
    handle: (req) => {
      const service = serviceParam(req);
      const reports = inventoryReport(inventory, classifyOptions()).filter((r) => !service || r.service === service);
      return { status: 200, body: { services: reports, stats: inventory.stats() } };
    },
  });
  router.register({
    method: 'GET', path: '/inventory/export',
    handle: (req) => {
      const service = knownService(req);
      if (typeof service !== 'string') return service;
      return { status: 200, body: exportOpenApi(service, inventory.operations(service)) };
    },
  });
  router.register({
    method: 'GET', path: '/inventory/diff',
    handle: (req) => {
      const service = knownService(req);
      if (typeof service !== 'string') return service;
      const spec = inventory.state(service)?.spec;
      if (!spec) return { status: 404, body: { error: 'no_spec', message: `no spec in force for ${service}; POST one to diff against it` } };
      return { status: 200, body: diffAgainstSpec(service, inventory.operations(service), spec, classifyOptions()) };
    },
  });
  router.register({
    method: 'POST', path: '/inventory/diff', maxBodyBytes: MAX_SPEC_BODY,
    handle: async (req) => {
      const service = knownService(req);
      if (typeof service !== 'string') return service;
      try {
        const spec = await parseSpec(req.body.toString('utf8'), req.query.get('name') ?? 'request body');
        return { status: 200, body: diffAgainstSpec(service, inventory.operations(service), spec, classifyOptions()) };
      } catch (err) {
        if (err instanceof SpecError) return { status: 422, body: { error: 'bad_spec', spec: err.spec, place: err.place, message: err.message } };
        throw err;
      }
    },
  });
  router.register({ method: 'GET', path: '/inventory/templates', handle: () => ({ status: 200, body: inventory.learnedTemplates() }) });
  router.register({ method: 'GET', path: '/inventory/specs', handle: () => ({ status: 200, body: { specs: specs.status() } }) });
  router.register({
    method: 'PUT', path: '/inventory/specs', maxBodyBytes: MAX_SPEC_BODY,
    handle: async (req) => {
      const service = serviceParam(req);
      if (!service) return badRequest('the "service" query parameter is required');
      const name = req.query.get('name') ?? `${service} (admin upload)`;
      const result = await specs.load(service, { kind: 'openapi-text', name, text: req.body.toString('utf8') });
      if (result.ok) return { status: 200, body: { service, inForce: result.name } };
      return { status: 422, body: { error: 'bad_spec', spec: result.error.spec, place: result.error.place, message: result.error.message, inForce: result.inForce ?? null } };
    },
  });
}
