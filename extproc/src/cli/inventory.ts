// `meshward inventory`: the API inventory without a running server. It reads the inventory the
// server persisted (--db, the SQLite file, opened read-only so it works next to a running server)
// and/or replays recorded captures (--capture, corpus JSONL) on top of it, in memory; nothing is
// written. Specs given with --spec / --graphql-schema classify the result.
//   meshward inventory [--json]              classification table (or JSON)
//   meshward inventory diff --spec FILE      diff against a spec
//   meshward inventory export [--service H]  discovered API as OpenAPI 3.1 (JSON)
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { diffAgainstSpec } from '../inventory/diff.ts';
import { exportOpenApi } from '../inventory/export.ts';
import { serviceOf } from '../inventory/facts.ts';
import { Inventory } from '../inventory/inventory.ts';
import { replayFileIntoInventory } from '../inventory/replay.ts';
import { inventoryReport, renderInventoryTable, renderTable } from '../inventory/report.ts';
import { loadSpecFile } from '../inventory/spec.ts';
import { SpecRegistry } from '../inventory/spec-registry.ts';
import { InventoryStore } from '../inventory/store.ts';

interface SourceOptions {
  db?: string;
  capture: string[];
  spec: string[];
  graphqlSchema: string[];
  now?: string;
  windowDays?: string;
}

interface InventoryOptions extends SourceOptions {
  service?: string;
  json?: boolean;
}

class UsageError extends Error {}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

function addSourceOptions(cmd: Command): Command {
  return cmd
    .option('--db <file>', 'inventory SQLite file as the server persists it (opened read-only)')
    .option('--capture <file>', 'replay a recorded capture (corpus JSONL); repeatable', collect, [])
    .option('--graphql-schema <[service=]file>', 'GraphQL introspection result for a service; repeatable', collect, [])
    .option('--now <iso-time>', 'classify as of this time (default: now)')
    .option('--window-days <n>', 'active window: operations not seen for this long count as orphans (default 7)');
}

/** "service=file", or "file" when there is exactly one service to give it to. */
function splitAssignment(value: string, services: string[], what: string): { service: string; file: string } {
  const eq = value.indexOf('=');
  if (eq > 0 && !existsSync(value)) return { service: serviceOf(value.slice(0, eq)), file: value.slice(eq + 1) };
  if (services.length !== 1) throw new UsageError(`${what} "${value}": say which service it is for (SERVICE=FILE); services seen: ${services.join(', ') || 'none'}`);
  return { service: services[0]!, file: value };
}

async function buildInventory(opts: SourceOptions, specs: string[]): Promise<Inventory> {
  if (!opts.db && opts.capture.length === 0) throw new UsageError('nothing to read: give --db FILE and/or --capture FILE');
  const inventory = new Inventory();
  if (opts.db) {
    if (!existsSync(opts.db)) throw new UsageError(`--db ${opts.db}: no such file`);
    InventoryStore.open(opts.db, inventory, { readOnly: true }).store.close();
  }
  for (const file of opts.capture) {
    if (!existsSync(file)) throw new UsageError(`--capture ${file}: no such file`);
    await replayFileIntoInventory(inventory, file);
  }
  const registry = new SpecRegistry(inventory);
  for (const value of specs) {
    const { service, file } = splitAssignment(value, inventory.services(), '--spec');
    const r = await registry.load(service, { kind: 'openapi-file', file });
    if (!r.ok) throw new UsageError(r.error.message);
  }
  for (const value of opts.graphqlSchema) {
    const { service, file } = splitAssignment(value, inventory.services(), '--graphql-schema');
    const r = await registry.load(service, { kind: 'graphql-introspection-file', file });
    if (!r.ok) throw new UsageError(r.error.message);
  }
  return inventory;
}

function classifyOptions(opts: SourceOptions): { now: number; activeWindowMs?: number } {
  const now = opts.now ? Date.parse(opts.now) : Date.now();
  if (!Number.isFinite(now)) throw new UsageError(`--now "${opts.now}" is not a time`);
  const days = opts.windowDays !== undefined ? Number(opts.windowDays) : undefined;
  if (days !== undefined && !(days > 0)) throw new UsageError(`--window-days "${opts.windowDays}" must be a positive number`);
  return { now, ...(days !== undefined ? { activeWindowMs: days * 86_400_000 } : {}) };
}

function pickService(inventory: Inventory, requested: string | undefined): string {
  const services = inventory.services();
  if (requested) {
    const s = serviceOf(requested);
    if (!services.includes(s)) throw new UsageError(`--service ${requested}: not in the inventory (services: ${services.join(', ') || 'none'})`);
    return s;
  }
  if (services.length !== 1) throw new UsageError(`give --service: the inventory has ${services.length} services (${services.join(', ')})`);
  return services[0]!;
}

async function run(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (err) {
    console.error(`meshward inventory: ${(err as Error).message}`);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
}

export function registerInventory(program: Command): void {
  // Every option lives on `inventory` itself: commander lets them stand before or after the
  // subcommand name, so `meshward inventory diff --spec FILE` and `--db` anywhere both work.
  const inventory = addSourceOptions(program.command('inventory')
    .description('the API inventory (active / shadow / zombie / orphan) from a persisted inventory and/or recorded captures'))
    .option('--spec <[service=]file>', 'OpenAPI 3.0/3.1 spec for a service (for diff: the spec to diff against); repeatable', collect, [])
    .option('--service <host>', 'the service, for diff and export (needed when the inventory has several)')
    .option('--json', 'print JSON instead of a table')
    .action(async (opts: InventoryOptions) => run(async () => {
      const inv = await buildInventory(opts, opts.spec);
      const reports = inventoryReport(inv, classifyOptions(opts)).filter((r) => !opts.service || r.service === serviceOf(opts.service));
      console.log(opts.json ? JSON.stringify({ services: reports, stats: inv.stats() }, null, 2) : renderInventoryTable(reports));
    }));

  inventory.command('diff')
    .description('diff the observed API of a service against a spec (--spec FILE)')
    .action(async (_: unknown, cmd: Command) => run(async () => {
      const opts = cmd.parent!.opts() as InventoryOptions;
      if (opts.spec.length !== 1) throw new UsageError('diff needs exactly one --spec FILE');
      const inv = await buildInventory(opts, []);
      const service = pickService(inv, opts.service);
      const spec = await loadSpecFile(opts.spec[0]!);
      const report = diffAgainstSpec(service, inv.operations(service), spec, classifyOptions(opts));
      if (opts.json) {
        console.log(JSON.stringify(report, null, 2));
        return;
      }
      const c = report.counts;
      console.log(`${service} against ${report.spec}: ${c.active} active, ${c.shadow} shadow, ${c.zombie} zombie, ${c.orphan} orphan`);
      console.log(renderTable([['state', 'method', 'path', 'requests', 'why'], ...report.operations.map((o) => [o.state, o.method, o.graphqlOperation ? `${o.path} ${o.graphqlOperation}` : o.path, String(o.count), o.reason])]));
      for (const u of report.undeclared) {
        const parts = [
          u.queryParameters.length ? `query parameters ${u.queryParameters.join(', ')}` : '',
          u.statusCodes.length ? `status codes ${u.statusCodes.join(', ')}` : '',
          u.requestContentTypes.length ? `content types ${u.requestContentTypes.join(', ')}` : '',
        ].filter(Boolean);
        console.log(`undeclared on ${u.method} ${u.specPath}: ${parts.join('; ')}`);
      }
    }));

  inventory.command('export')
    .description('the observed API of a service as an OpenAPI 3.1 document (JSON) with inferred schemas')
    .action(async (_: unknown, cmd: Command) => run(async () => {
      const opts = cmd.parent!.opts() as InventoryOptions;
      const inv = await buildInventory(opts, opts.spec);
      const service = pickService(inv, opts.service);
      console.log(JSON.stringify(exportOpenApi(service, inv.operations(service)), null, 2));
    }));
}
