// Spec loading: valid OpenAPI 3.0/3.1 loads with $refs resolved; every kind of bad spec gets an
// error naming the spec and the place, and the service keeps its last good spec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseSpec, loadSpecFile, SpecError } from '../../extproc/src/inventory/spec.ts';
import { SpecRegistry } from '../../extproc/src/inventory/spec-registry.ts';
import { Inventory } from '../../extproc/src/inventory/inventory.ts';
import { streamHugeYaml } from '../helpers/huge-answer.ts';

const dir = mkdtempSync(join(tmpdir(), 'meshward-spec-'));

function doc(version: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    openapi: version,
    info: { title: 'shop', version: '1' },
    paths: {
      '/users/{id}': {
        get: {
          parameters: [{ $ref: '#/components/parameters/Id' }],
          responses: {
            '200': { description: 'ok', content: { 'application/json': { schema: { $ref: '#/components/schemas/User' } } } },
            '404': { description: 'none', content: { 'application/json': { schema: { $ref: '#/components/schemas/Problem' } } } },
          },
        },
      },
    },
    components: {
      parameters: { Id: { name: 'id', in: 'path', required: true, schema: { type: 'integer' } } },
      schemas: { Problem: { type: 'object', properties: { title: { type: 'string' } } }, User: { type: 'object', properties: { name: { type: 'string' }, manager: { $ref: '#/components/schemas/User' } } } },
    },
    ...extra,
  };
}

async function specError(text: string, name = 'bad.yaml', maxBytes?: number): Promise<SpecError> {
  try {
    await parseSpec(text, name, maxBytes ? { maxBytes } : {});
  } catch (err) {
    assert.ok(err instanceof SpecError, `expected a SpecError, got ${String(err)}`);
    assert.equal(err.spec, name);
    assert.ok(err.message.includes(`"${name}"`), 'the message names the spec');
    return err;
  }
  assert.fail('the spec was accepted');
}

for (const version of ['3.0.3', '3.1.0']) {
  test(`OpenAPI ${version} loads with $refs resolved (recursive schemas keep an internal $ref)`, async () => {
    const spec = await parseSpec(stringify(doc(version)), 'shop.yaml');
    assert.equal(spec.openapi, version);
    assert.equal(spec.operations.length, 1);
    const op = spec.operations[0]!;
    assert.equal(op.method, 'GET');
    assert.equal(op.parameters[0]!.name, 'id', 'parameter $ref resolved');
    const responses = op.operation.responses as Record<string, any>;
    assert.equal(responses['404'].content['application/json'].schema.properties.title.type, 'string', 'schema $ref resolved');
    // A recursive schema keeps its internal $ref, which resolves in the document.
    assert.equal(responses['200'].content['application/json'].schema.$ref, '#/components/schemas/User');
    assert.equal((spec.document as any).components.schemas.User.type, 'object');
  });
}

test('invalid spec: the error names the place in the document', async () => {
  const bad = doc('3.0.3');
  (bad.paths as any)['/users/{id}'].get.responses['200'] = { descriptio: 'typo' };
  const err = await specError(stringify(bad));
  assert.match(err.place, /^#\/paths\/~1users~1\{id\}\/get\/responses\/200/);
});

test('YAML syntax error: line and column', async () => {
  const err = await specError('openapi: 3.0.3\ninfo:\n  title: [unclosed\n');
  assert.match(err.place, /^line \d+, column \d+$/);
});

test('a 10 MB spec is refused before parsing', async () => {
  const big = stringify(doc('3.0.3', { 'x-padding': 'x'.repeat(10 * 1024 * 1024) }));
  const err = await specError(big);
  assert.match(err.message, /over the 5\.0 MiB limit/);
  const file = join(dir, 'huge.yaml');
  writeFileSync(file, big);
  await assert.rejects(loadSpecFile(file), (e: unknown) => e instanceof SpecError && e.spec === file && /limit/.test(e.message));
});

test('cyclic $ref (a reference loop that never reaches a schema) is refused with its place', async () => {
  const cyclic = doc('3.0.3');
  (cyclic.components as any).schemas.A = { $ref: '#/components/schemas/B' };
  (cyclic.components as any).schemas.B = { $ref: '#/components/schemas/A' };
  const err = await specError(stringify(cyclic));
  assert.match(err.place, /^#\/components\/schemas\/[AB]\/\$ref$/);
  assert.match(err.message, /reference loop/);
});

test('unsupported features: Swagger 2.0, other OpenAPI versions, external $refs', async () => {
  let err = await specError(stringify({ swagger: '2.0', info: { title: 'x', version: '1' }, paths: {} }));
  assert.equal(err.place, '#/swagger');
  err = await specError(stringify({ ...doc('3.0.3'), openapi: '4.0.0' }));
  assert.equal(err.place, '#/openapi');
  const external = doc('3.1.0');
  (external.paths as any)['/users/{id}'].get.responses['200'] = { $ref: 'http://example.com/responses.yaml#/Ok' };
  err = await specError(stringify(external));
  assert.equal(err.place, '#/paths/~1users~1{id}/get/responses/200/$ref');
  assert.match(err.message, /external \$ref/);
  err = await specError('[1, 2, 3]');
  assert.equal(err.place, '#');
});

test('a missing $ref target names the reference', async () => {
  const missing = doc('3.0.3');
  (missing.paths as any)['/users/{id}'].get.parameters = [{ $ref: '#/components/parameters/Nope' }];
  const err = await specError(stringify(missing));
  assert.match(err.message, /Nope/);
});

test('the service keeps its last good spec when a new one is bad', async () => {
  const inventory = new Inventory();
  const registry = new SpecRegistry(inventory);
  const good = join(dir, 'good.yaml');
  writeFileSync(good, stringify(doc('3.1.0')));
  assert.deepEqual(await registry.load('shop.svc', { kind: 'openapi-file', file: good }), { ok: true, name: good });
  const before = inventory.state('shop.svc')!.spec;
  const badFile = join(dir, 'bad.yaml');
  writeFileSync(badFile, 'openapi: 3.1.0\npaths: [\n');
  for (const source of [
    { kind: 'openapi-file' as const, file: badFile },
    { kind: 'openapi-file' as const, file: join(dir, 'missing.yaml') },
    { kind: 'openapi-text' as const, name: 'inline', text: 'x'.repeat(6 * 1024 * 1024) },
  ]) {
    const result = await registry.load('shop.svc', source);
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.inForce === good, 'reports the spec still in force');
    assert.equal(inventory.state('shop.svc')!.spec, before, 'the last good spec stays');
  }
  const status = registry.status()[0]!;
  assert.equal(status.inForce, good);
  assert.match(status.lastError ?? '', /inline/);
});

test('specs by URL: loaded over HTTP with the same size cap; HTTP errors and oversize bodies are clear errors', async () => {
  const { createServer } = await import('node:http');
  const { loadSpecUrl } = await import('../../extproc/src/inventory/spec.ts');
  const good = stringify(doc('3.1.0'));
  const server = createServer((req, res) => {
    if (req.url === '/good.yaml') res.end(good);
    else if (req.url === '/huge.yaml') {
      // No content-length: the cap must hold while streaming.
      streamHugeYaml(res, 'openapi: 3.1.0\n', 200);
    } else {
      res.statusCode = 404;
      res.end('no');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    assert.equal((await loadSpecUrl(`${base}/good.yaml`)).operations.length, 1);
    await assert.rejects(loadSpecUrl(`${base}/missing.yaml`), (e: unknown) => e instanceof SpecError && e.spec === `${base}/missing.yaml` && /HTTP 404/.test(e.message));
    await assert.rejects(loadSpecUrl(`${base}/huge.yaml`, { maxBytes: 1024 * 1024 }), (e: unknown) => e instanceof SpecError && /limit/.test(e.message));
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
