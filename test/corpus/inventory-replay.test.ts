// Real captures: replay VAmPI (REST) with its OpenAPI spec and DVGA (GraphQL) with its introspection
// schema, and check the inventory and classification against what the spec and the traffic show,
// worked out here independently (naive regex matching of spec paths, direct parsing of bodies).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { parse as parseGraphql, type OperationDefinitionNode } from 'graphql';
import { Inventory } from '../../extproc/src/inventory/inventory.ts';
import { SpecRegistry, type SpecSource } from '../../extproc/src/inventory/spec-registry.ts';
import { replayIntoInventory } from '../../extproc/src/inventory/replay.ts';
import { inventoryReport, type ServiceReport } from '../../extproc/src/inventory/report.ts';
import { readCapture, type CaptureRecord } from '../../extproc/src/replay/record.ts';

const CORPORA = new URL('../../../shared/corpora/', import.meta.url).pathname;
const VAMPI_SPEC = `${CORPORA}specs/vampi-openapi3.yml`;
const DVGA_SCHEMA = `${CORPORA}specs/dvga-introspection.json`;
const vampi = await readCapture(`${CORPORA}dev/vampi.jsonl`);
const dvga = await readCapture(`${CORPORA}dev/dvga.jsonl`);
const NOW = Math.max(...[...vampi, ...dvga].map((r) => r.t_ms)) + Date.parse('2026-11-27T23:40:00Z');

async function replayWithSpec(service: string, source: SpecSource, capture: CaptureRecord[]): Promise<{ inventory: Inventory; report: ServiceReport }> {
  const inventory = new Inventory();
  const load = await new SpecRegistry(inventory).load(service, source);
  assert.equal(load.ok, true);
  replayIntoInventory(inventory, capture);
  const [report] = inventoryReport(inventory, { now: NOW });
  return { inventory, report: report! };
}

/** What the spec says each request is, by naive regex matching (the fewest parameters wins). */
function expectedVampi(): { seen: Map<string, number>; unmatched: string[]; specOps: string[]; deprecated: string[] } {
  const doc = parseYaml(readFileSync(VAMPI_SPEC, 'utf8')) as { paths: Record<string, Record<string, { deprecated?: boolean }>> };
  const specOps: string[] = [];
  const deprecated: string[] = [];
  const routes = Object.entries(doc.paths).map(([path, item]) => {
    for (const [m, op] of Object.entries(item)) {
      specOps.push(`${m.toUpperCase()} ${path}`);
      if (op.deprecated) deprecated.push(`${m.toUpperCase()} ${path}`);
    }
    return { path, methods: Object.keys(item).map((m) => m.toUpperCase()), re: new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`), params: (path.match(/\{/g) ?? []).length };
  }).sort((a, b) => a.params - b.params);
  const seen = new Map<string, number>();
  const unmatched: string[] = [];
  for (const r of vampi) {
    const path = r.request.path.split('?')[0]!;
    const route = routes.find((x) => x.re.test(path) && x.methods.includes(r.request.method));
    if (route) seen.set(`${r.request.method} ${route.path}`, (seen.get(`${r.request.method} ${route.path}`) ?? 0) + 1);
    else unmatched.push(`${r.request.method} ${path}`);
  }
  return { seen, unmatched, specOps, deprecated };
}

test('VAmPI replay with its spec: active, orphan, shadow and zombie as the spec and traffic show', async () => {
  const { inventory, report } = await replayWithSpec('vampi.shop.svc.cluster.local', { kind: 'openapi-file', file: VAMPI_SPEC }, vampi);
  const expected = expectedVampi();
  const ops = report.operations;
  const key = (o: { method: string; path: string }): string => `${o.method} ${o.path}`;
  const active = new Map(ops.filter((o) => o.state === 'active').map((o) => [key(o), o.count]));
  const zombieExpected = [...expected.seen.keys()].filter((k) => expected.deprecated.includes(k));
  assert.deepEqual(active, new Map([...expected.seen].filter(([k]) => !zombieExpected.includes(k))), 'active = spec operations seen, with their request counts');
  assert.deepEqual(ops.filter((o) => o.state === 'zombie').map(key).sort(), zombieExpected.sort());
  assert.deepEqual(ops.filter((o) => o.state === 'orphan').map(key).sort(), expected.specOps.filter((k) => !expected.seen.has(k)).sort(), 'orphan = spec operations never seen');
  const shadow = ops.filter((o) => o.state === 'shadow');
  assert.equal(shadow.reduce((n, o) => n + o.count, 0), expected.unmatched.length, 'every request the spec does not declare lands in a shadow entry');
  assert.ok(expected.unmatched.length > 0);
  console.log(`VAmPI: ${report.counts.active} active, ${report.counts.shadow} shadow (${expected.unmatched.join(', ')}), ${report.counts.zombie} zombie, ${report.counts.orphan} orphan`);
  // Callers, direction and auth as the capture shows them.
  const login = ops.find((o) => key(o) === 'POST /users/v1/login')!;
  assert.ok(login.callers.length > 1);
  const me = inventory.operations().find((o) => o.method === 'GET' && o.template === '/me')!;
  assert.ok(me.authTypes.includes('jwt'), 'VAmPI uses JWT bearer tokens');
  const books = inventory.operations().find((o) => o.method === 'GET' && o.template === '/books/v1')!;
  const fromJob = vampi.filter((r) => r.request.path === '/books/v1' && r.request.method === 'GET' && !r.request.headers.some(([h]) => h.toLowerCase() === 'x-forwarded-for')).length;
  assert.equal(books.eastWest, fromJob, 'direct workload calls are east-west, relayed front-end calls north-south');
  const register = inventory.operations().find((o) => o.method === 'POST' && o.template === '/users/v1/register')!;
  assert.deepEqual(Object.keys(register.requestBody?.properties ?? {}).filter((p) => ['username', 'password', 'email'].includes(p)).sort(), ['email', 'password', 'username']);
});

test('VAmPI replay without a spec: learned templates are the spec\'s paths for every operation the traffic used', () => {
  const inventory = new Inventory();
  replayIntoInventory(inventory, vampi);
  const shape = (p: string): string => p.replace(/\{[^}]*\}/g, '{}');
  const learned = new Set(inventory.operations().map((o) => `${o.method} ${shape(o.template)}`));
  const expected = expectedVampi();
  const missing = [...expected.seen.keys()].map((k) => shape(k)).filter((k) => !learned.has(k));
  assert.deepEqual(missing, [], 'every spec operation seen in traffic is learned exactly');
  const extra = [...learned].filter((k) => ![...expected.seen.keys()].map(shape).includes(k));
  // Whatever else was learned comes from requests the spec does not declare.
  assert.ok(extra.length <= new Set(expected.unmatched).size, `extra templates: ${extra.join(', ')}`);
});

/** Operation names and root fields of every GraphQL request in the DVGA capture, parsed here. */
function expectedDvga(): { names: Set<string>; fields: Set<string> } {
  const names = new Set<string>();
  const fields = new Set<string>();
  for (const r of dvga) {
    let items: unknown[] = [];
    if (r.request.method === 'GET') {
      const q = new URLSearchParams(r.request.path.split('?')[1] ?? '').get('query');
      if (q) items = [{ query: q }];
    } else if (r.request.body_b64) {
      try {
        const json = JSON.parse(Buffer.from(r.request.body_b64, 'base64').toString('utf8'));
        items = Array.isArray(json) ? json : [json];
      } catch { /* not JSON: no operation */ }
    }
    for (const item of items) {
      const { query, operationName } = item as { query?: string; operationName?: string };
      if (typeof query !== 'string') continue;
      let ops: OperationDefinitionNode[];
      try {
        ops = parseGraphql(query).definitions.filter((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition');
      } catch { continue; }
      const op = operationName ? ops.find((o) => o.name?.value === operationName) : ops[0];
      if (!op) continue;
      const roots = op.selectionSet.selections.flatMap((s) => (s.kind === 'Field' ? [s.name.value] : []));
      for (const f of roots) fields.add(`${op.operation} ${f}`);
      names.add(`${op.operation} ${op.name?.value ?? `anonymous(${[...new Set(roots)].sort().join(',')})`}`);
    }
  }
  return { names, fields };
}

test('DVGA replay with its introspection schema: GraphQL operations as entries, root fields classified', async () => {
  const { report } = await replayWithSpec('dvga.content.svc.cluster.local', { kind: 'graphql-introspection-file', file: DVGA_SCHEMA }, dvga);
  const ops = report.operations;
  const expected = expectedDvga();
  const entries = new Set(ops.filter((o) => o.count > 0 && o.graphqlOperation && o.graphqlOperation !== 'query invalid-document').map((o) => o.graphqlOperation!));
  assert.deepEqual(entries, expected.names, 'one entry per GraphQL operation the capture carries');
  const schema = JSON.parse(readFileSync(DVGA_SCHEMA, 'utf8')).data.__schema as { queryType?: { name: string }; mutationType?: { name: string }; subscriptionType?: { name: string }; types: { name: string; fields?: { name: string; isDeprecated?: boolean }[] }[] };
  const declared = new Set<string>();
  for (const [kind, ref] of [['query', schema.queryType], ['mutation', schema.mutationType], ['subscription', schema.subscriptionType]] as const) {
    for (const f of schema.types.find((t) => t.name === ref?.name)?.fields ?? []) declared.add(`${kind} ${f.name}`);
  }
  const orphans = ops.filter((o) => o.state === 'orphan').map((o) => o.graphqlOperation).sort();
  assert.deepEqual(orphans, [...declared].filter((f) => !expected.fields.has(f)).sort(), 'orphan = schema root fields no operation used');
  const undeclaredUse = [...expected.fields].filter((f) => !declared.has(f) && !f.split(' ')[1]!.startsWith('__'));
  for (const f of undeclaredUse) {
    assert.ok(ops.some((o) => o.state === 'shadow' && o.graphqlOperation?.includes(f.split(' ')[1]!)), `${f} (not in the schema) is shadow`);
  }
  assert.ok(undeclaredUse.length > 0, 'the capture probes fields the schema does not have');
  assert.ok(ops.some((o) => o.path === '/graphiql' && o.state === 'shadow'), 'the GraphiQL page is not in the schema');
  const batch = ops.find((o) => o.graphqlOperation === 'mutation anonymous(login)');
  assert.deepEqual(batch?.callers, ['spiffe://cluster.local/ns/payments/sa/payment-worker'], 'the batched login brute force is reported with its caller');
  console.log(`DVGA: ${report.counts.active} active, ${report.counts.shadow} shadow, ${report.counts.zombie} zombie, ${report.counts.orphan} orphan; ${expected.names.size} operations`);
});
