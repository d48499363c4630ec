// Inventory reports: classification of every service (the data behind `meshward inventory`, its
// --json form and the admin API), and the plain-text table.
import { classifyService, type ClassifiedOperation, type ClassifyOptions } from './classify.ts';
import { namespaceOf } from './facts.ts';
import type { Inventory } from './inventory.ts';

export interface ServiceReport {
  service: string;
  namespace?: string;
  spec?: string;
  graphqlSchema?: string;
  counts: Record<ClassifiedOperation['state'], number>;
  operations: ClassifiedOperation[];
}

export function inventoryReport(inventory: Inventory, options: ClassifyOptions): ServiceReport[] {
  return inventory.services().map((service) => {
    const state = inventory.state(service)!;
    const operations = classifyService(state, inventory.operations(service), options);
    const counts = { active: 0, shadow: 0, zombie: 0, orphan: 0 };
    for (const o of operations) counts[o.state]++;
    const namespace = namespaceOf(service);
    return {
      service,
      ...(namespace ? { namespace } : {}),
      ...(state.spec ? { spec: state.spec.name } : {}),
      ...(state.graphqlSpec ? { graphqlSchema: state.graphqlSpec.name } : {}),
      counts,
      operations,
    };
  });
}

export function renderTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export function renderInventoryTable(reports: ServiceReport[]): string {
  const out: string[] = [];
  for (const r of reports) {
    const c = r.counts;
    out.push(`${r.service}${r.namespace ? ` (namespace ${r.namespace})` : ''}: ${c.active} active, ${c.shadow} shadow, ${c.zombie} zombie, ${c.orphan} orphan` +
      `${r.spec ? `; spec ${r.spec}` : ''}${r.graphqlSchema ? `; GraphQL schema ${r.graphqlSchema}` : ''}`);
    const rows = [['state', 'method', 'path / operation', 'requests', 'last seen', 'callers', 'why']];
    for (const o of r.operations) {
      rows.push([
        o.state, o.method, o.graphqlOperation ? `${o.path} ${o.graphqlOperation}` : o.path, String(o.count),
        o.lastSeen ? new Date(o.lastSeen).toISOString().replace(/\.\d+Z$/, 'Z') : '-',
        o.callers.length > 0 ? `${o.callers.slice(0, 2).join(', ')}${o.callers.length > 2 ? ` +${o.callers.length - 2}` : ''}` : '-',
        o.reason,
      ]);
    }
    out.push(renderTable(rows), '');
  }
  return out.join('\n');
}
