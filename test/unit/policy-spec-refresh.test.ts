// Issue #5 (spec sources): policy apiSpecs by URL are re-fetched on their interval with conditional
// requests, a timeout and a size cap, keeping the last good spec on any failure; a configMapRef without
// Kubernetes is reported as not available; spec load results become the SpecsLoaded condition.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Inventory } from '../../extproc/src/inventory/inventory.ts';
import { SpecRegistry } from '../../extproc/src/inventory/spec-registry.ts';
import { fetchSpecText } from '../../extproc/src/inventory/spec.ts';
import { PolicySet } from '../../extproc/src/policy/precedence.ts';
import { DEFAULT_URL_REFRESH_MS, PolicySpecLoader, URL_RETRY_MS, type PolicySpecStatus } from '../../extproc/src/policy/spec-sources.ts';
import { PolicyConditions, specConditions } from '../../extproc/src/policy/status-conditions.ts';
import { configMapKeyText } from '../../extproc/src/policy/configmap-reader.ts';
import type { ApiSecurityPolicy, PolicySpec } from '../../extproc/src/policy/types.ts';
import { streamHugeYaml } from '../helpers/huge-answer.ts';

const policy = (namespace: string, name: string, spec: PolicySpec, generation = 1): ApiSecurityPolicy =>
  ({ apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name, namespace, generation }, spec }) as ApiSecurityPolicy;
const specText = (title: string): string =>
  `openapi: 3.0.3\ninfo: { title: ${title}, version: '1' }\npaths:\n  /orders/{id}: { get: { responses: { '200': { description: ok } } } }\n`;

/** A spec server with ETag (/etag.yaml) or Last-Modified (/dated.yaml) validators and failure modes. */
class SpecServer {
  body = specText('v1');
  version = 1;
  /** What the next answers do instead of serving the spec. */
  mode: 'serve' | 'hang' | 'huge' | 'error' = 'serve';
  readonly requests: { path: string; ifNoneMatch?: string; ifModifiedSince?: string; status: number }[] = [];
  readonly #server = http.createServer((req, res) => this.#handle(req, res));
  base = '';

  async start(): Promise<void> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${(this.#server.address() as { port: number }).port}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const record = (status: number): void => {
      this.requests.push({
        path, status,
        ...(req.headers['if-none-match'] ? { ifNoneMatch: String(req.headers['if-none-match']) } : {}),
        ...(req.headers['if-modified-since'] ? { ifModifiedSince: String(req.headers['if-modified-since']) } : {}),
      });
    };
    if (this.mode === 'hang') { record(0); return; }
    if (this.mode === 'error') { record(503); res.writeHead(503).end('busy'); return; }
    if (this.mode === 'huge') {
      // 11 MB without content-length: the cap must hold while streaming.
      record(200);
      res.writeHead(200, { 'content-type': 'application/yaml' });
      streamHugeYaml(res, 'openapi: 3.0.3\n', 176);
      return;
    }
    const etag = `"v${this.version}"`;
    const lastModified = new Date(Date.UTC(2026, 0, this.version)).toUTCString();
    if (path === '/etag.yaml' && req.headers['if-none-match'] === etag) { record(304); res.writeHead(304, { etag }).end(); return; }
    if (path === '/dated.yaml' && req.headers['if-modified-since'] === lastModified) { record(304); res.writeHead(304).end(); return; }
    record(200);
    res.writeHead(200, { 'content-type': 'application/yaml', ...(path === '/etag.yaml' ? { etag } : { 'last-modified': lastModified }) }).end(this.body);
  }
}

describe('URL specs', () => {
  const server = new SpecServer();
  /** Asserts a recheck fetches nothing until `ms` after the last fetch, and fetches once at `ms`. */
  const nextFetchAfter = async (ms: number, clock: { now: number }, loader: PolicySpecLoader): Promise<void> => {
    const before = server.requests.length;
    clock.now += ms - 1;
    await loader.recheck();
    assert.equal(server.requests.length, before, `no fetch ${ms - 1} ms after the last one`);
    clock.now += 1;
    await loader.recheck();
    assert.equal(server.requests.length, before + 1, `a fetch ${ms} ms after the last one`);
  };
  before(() => server.start());
  after(() => server.close());

  test('re-fetched on the interval: 304s cost no reload, changed content reloads, failures keep the last good spec and are reported', async () => {
    const clock = { now: 0 };
    const inventory = new Inventory();
    let loads = 0;
    const statuses: PolicySpecStatus[][] = [];
    const loader = new PolicySpecLoader(new SpecRegistry(inventory), () => { loads++; }, undefined, {
      now: () => clock.now, onStatus: (s) => statuses.push(s),
    });
    const url = `${server.base}/etag.yaml`;
    const set = new PolicySet('meshward', [policy('shop', 'shop', { apiSpecs: [{ name: 'orders', host: 'orders.shop', url }] })]);
    const title = (): string | undefined => inventory.state('orders.shop')?.spec?.title;
    const status = (): PolicySpecStatus => loader.status()[0]!;
    server.mode = 'serve';

    await loader.sync(set);
    assert.equal(title(), 'v1');
    assert.deepEqual(server.requests.at(-1), { path: '/etag.yaml', status: 200 }, 'the first fetch is unconditional');
    assert.equal(status().loaded, true);
    assert.equal(status().place, `URL ${url}`);
    assert.equal(statuses.length, 1, 'every sync reports its status');

    // No request within the interval; once it passed and nothing changed, a conditional request
    // answered 304, no reload.
    await nextFetchAfter(DEFAULT_URL_REFRESH_MS, clock, loader);
    assert.deepEqual(server.requests.at(-1), { path: '/etag.yaml', ifNoneMatch: '"v1"', status: 304 });
    assert.equal(loads, 1);
    assert.equal(status().loaded, true);

    // Changed content: fetched and reloaded.
    server.body = specText('v2');
    server.version = 2;
    clock.now += DEFAULT_URL_REFRESH_MS;
    await loader.recheck();
    assert.equal(title(), 'v2');
    assert.equal(loads, 2);

    // A 10 MB+ answer (no content-length): refused while streaming, naming the spec.
    server.mode = 'huge';
    clock.now += DEFAULT_URL_REFRESH_MS;
    await loader.recheck();
    assert.match(status().error!, new RegExp(`spec "${server.base}/etag\\.yaml": .*over the 5\\.0 MiB limit for a spec`));
    assert.equal(title(), 'v2');

    // An HTTP error, then the same content as before comes back: the error clears, no reload needed.
    server.mode = 'error';
    clock.now += DEFAULT_URL_REFRESH_MS;
    await loader.recheck();
    assert.match(status().error!, /fetch answered HTTP 503/);
    server.mode = 'serve';
    clock.now += DEFAULT_URL_REFRESH_MS;
    await loader.recheck();
    assert.equal(status().loaded, true);
    assert.equal(status().error, undefined);
    assert.equal(loads, 2);

    // Content that is not a usable spec: SpecInvalid-type problem, last good kept, retried once it changes.
    server.body = 'openapi: 3.0.3\npaths: 7\n';
    server.version = 3;
    clock.now += DEFAULT_URL_REFRESH_MS;
    await loader.recheck();
    assert.equal(status().problem, 'invalid');
    assert.match(status().error!, /at #/);
    assert.equal(title(), 'v2');
    clock.now += DEFAULT_URL_REFRESH_MS;
    await loader.recheck();
    assert.equal(server.requests.at(-1)!.status, 304, 'the failed content is not fetched or parsed again');
    assert.equal(status().problem, 'invalid', 'and stays reported');
  });

  test('a server that never answers is refused after the timeout, and retried after URL_RETRY_MS', async () => {
    const clock = { now: 0 };
    const inventory = new Inventory();
    const loader = new PolicySpecLoader(new SpecRegistry(inventory), () => {}, undefined, { urlTimeoutMs: 1000, now: () => clock.now });
    const url = `${server.base}/etag.yaml`;
    server.mode = 'serve';
    server.body = specText('v2');
    await loader.sync(new PolicySet('meshward', [policy('shop', 'shop', { apiSpecs: [{ name: 'orders', host: 'orders.shop', url }] })]));
    const title = (): string | undefined => inventory.state('orders.shop')?.spec?.title;
    const status = (): PolicySpecStatus => loader.status()[0]!;
    assert.equal(title(), 'v2');
    // A server that never answers: refused after the timeout, the last good spec stays.
    server.mode = 'hang';
    clock.now += DEFAULT_URL_REFRESH_MS;
    await loader.recheck();
    assert.equal(title(), 'v2');
    assert.equal(status().loaded, false);
    assert.equal(status().problem, 'unavailable');
    assert.match(status().error!, /no complete answer within 1000 ms/);
    assert.equal(status().inForce, `${server.base}/etag.yaml`);
    // A failed fetch is retried after URL_RETRY_MS, not a whole refresh interval later.
    await nextFetchAfter(URL_RETRY_MS, clock, loader);

    server.mode = 'serve';
  });

  test('servers with Last-Modified only get If-Modified-Since', async () => {
    const clock = { now: 0 };
    const inventory = new Inventory();
    const loader = new PolicySpecLoader(new SpecRegistry(inventory), () => {}, undefined, { urlRefreshMs: 1000, now: () => clock.now });
    server.mode = 'serve';
    server.body = specText('dated');
    await loader.sync(new PolicySet('meshward', [policy('shop', 'shop', { apiSpecs: [{ name: 'orders', url: `${server.base}/dated.yaml` }] })]));
    assert.equal(inventory.state('orders')?.spec?.title, 'dated');
    await nextFetchAfter(1000, clock, loader);
    const last = server.requests.at(-1)!;
    assert.equal(last.status, 304);
    assert.equal(last.ifModifiedSince, new Date(Date.UTC(2026, 0, server.version)).toUTCString());
    assert.equal(last.ifNoneMatch, undefined);
  });

  test('a token in the URL query never reaches status, logs or the spec name', async () => {
    const inventory = new Inventory();
    const logged: unknown[] = [];
    const log = { info: (o: unknown) => logged.push(o), warn: (o: unknown) => logged.push(o) } as never;
    const loader = new PolicySpecLoader(new SpecRegistry(inventory), () => {}, log, { urlTimeoutMs: 300 });
    server.mode = 'error';
    await loader.sync(new PolicySet('meshward', [policy('shop', 'shop', { apiSpecs: [{ name: 'orders', url: `${server.base}/etag.yaml?access_token=s3cr3t` }] })]));
    server.mode = 'serve';
    const everything = JSON.stringify([loader.status(), logged, specConditions(loader.status()).get('shop/shop')]);
    assert.match(everything, /etag\.yaml\?<query hidden>/);
    assert.doesNotMatch(everything, /s3cr3t/);
  });

  test('fetchSpecText: unconditional without validators; an unreachable server is a clear error', async () => {
    const first = await fetchSpecText(`${server.base}/etag.yaml`);
    assert.equal(first.modified, true);
    await assert.rejects(fetchSpecText('http://127.0.0.1:1/spec.yaml', { timeoutMs: 2000 }), /spec "http:\/\/127\.0\.0\.1:1\/spec\.yaml": cannot fetch/);
  });
});

describe('ConfigMap specs without Kubernetes, and SpecsLoaded', () => {
  test('file mode: a configMapRef is reported as not available, clearly, and nothing else is affected', async () => {
    const inventory = new Inventory();
    const loader = new PolicySpecLoader(new SpecRegistry(inventory));
    await loader.sync(new PolicySet('meshward', [policy('shop', 'shop', { apiSpecs: [{ name: 'orders', configMapRef: { name: 'orders-openapi', key: 'openapi.yaml' } }] }, 4)]));
    const [s] = loader.status();
    assert.equal(s!.loaded, false);
    assert.equal(s!.problem, 'unavailable');
    assert.equal(s!.error, 'ConfigMap shop/orders-openapi, key openapi.yaml: not available: ConfigMaps are read only with --policy-source kubernetes (with files, mount the ConfigMap and use apiSpecs[].file)');
    const [condition] = specConditions(loader.status()).get('shop/shop')!;
    assert.equal(condition!.status, 'False');
    assert.equal(condition!.reason, 'SpecUnavailable');
    assert.equal(condition!.observedGeneration, 4);
    assert.match(condition!.message!, /^orders \(ConfigMap shop\/orders-openapi, key openapi\.yaml\): ConfigMap shop\/orders-openapi, key openapi\.yaml: not available/);
  });

  test('a spec file that is not there is reported as unavailable, naming the file, and read once it appears', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(`${tmpdir()}/meshward-spec-`);
    try {
      const file = `${dir}/orders.yaml`;
      const inventory = new Inventory();
      const loader = new PolicySpecLoader(new SpecRegistry(inventory));
      await loader.sync(new PolicySet('meshward', [policy('shop', 'shop', { apiSpecs: [{ name: 'orders', file }] })]));
      assert.equal(loader.status()[0]!.problem, 'unavailable');
      assert.equal(loader.status()[0]!.error, `file ${file}: cannot read it (ENOENT)`);
      await writeFile(file, specText('appeared'));
      await loader.recheck();
      assert.equal(inventory.state('orders')?.spec?.title, 'appeared');
      assert.equal(loader.status()[0]!.loaded, true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a ConfigMap key in data or binaryData; a missing key names the ConfigMap, the key and the keys there are', () => {
    const meta = { resourceVersion: '7' };
    assert.deepEqual(configMapKeyText({ metadata: meta, data: { 'a.yaml': 'x' } }, 'shop', 'cm', 'a.yaml'), { text: 'x', resourceVersion: '7' });
    assert.equal(configMapKeyText({ binaryData: { 'b.json': Buffer.from('{"ok":1}').toString('base64') } }, 'shop', 'cm', 'b.json').text, '{"ok":1}');
    assert.throws(() => configMapKeyText({ data: { z: '', a: '' } }, 'shop', 'cm', 'openapi.yaml'), /^ConfigMapReadError: ConfigMap shop\/cm has no key "openapi\.yaml" \(it has: a, z\)$/);
    assert.throws(() => configMapKeyText({}, 'shop', 'cm', 'k'), /ConfigMap shop\/cm has no key "k" \(it is empty\)/);
  });

  test('SpecsLoaded per policy: True lists the specs; False names each failing spec; invalid content outranks an unreadable source', () => {
    const base = { policy: 'shop/shop', generation: 2, service: 's' };
    const ok: PolicySpecStatus = { ...base, reference: 'shop/shop: a', name: 'a', place: 'file a.yaml', loaded: true };
    const unavailable: PolicySpecStatus = { ...base, reference: 'shop/shop: b', name: 'b', place: 'URL http://x/b', loaded: false, problem: 'unavailable', error: 'spec "http://x/b": fetch answered HTTP 503' };
    const invalid: PolicySpecStatus = { ...base, reference: 'shop/shop: c', name: 'c', place: 'ConfigMap shop/c, key k', loaded: false, problem: 'invalid', error: 'spec "ConfigMap shop/c, key k": at #/paths: must be object', inForce: 'old' };
    const other: PolicySpecStatus = { ...ok, policy: 'web/web', generation: 1 };
    const out = specConditions([ok, unavailable, invalid, other], 'T');
    assert.deepEqual(out.get('web/web'), [{ type: 'SpecsLoaded', status: 'True', reason: 'Loaded', message: 'loaded: a (file a.yaml)', observedGeneration: 1, lastTransitionTime: 'T' }]);
    const [shop] = out.get('shop/shop')!;
    assert.equal(shop!.reason, 'SpecInvalid');
    assert.equal(shop!.message, 'b (URL http://x/b): spec "http://x/b": fetch answered HTTP 503; c (ConfigMap shop/c, key k): spec "ConfigMap shop/c, key k": at #/paths: must be object; service s keeps its last good spec old; loaded: a (file a.yaml)');
    assert.equal(specConditions([ok, unavailable])!.get('shop/shop')![0]!.reason, 'SpecUnavailable');
  });

  test('PolicyConditions tells listeners only about policies whose conditions changed', () => {
    const conditions = new PolicyConditions();
    const heard: string[] = [];
    conditions.onChange((p) => heard.push(p));
    const loaded = (message: string) => specConditions([{ policy: 'shop/shop', reference: 'r', name: 'a', place: 'file a', service: 's', loaded: true }], message);
    conditions.replaceAll(loaded('T1'));
    conditions.replaceAll(loaded('T2'));
    assert.deepEqual(heard, ['shop/shop'], 'a new time alone is not a change');
    conditions.replaceAll(new Map());
    assert.deepEqual(heard, ['shop/shop', 'shop/shop']);
    assert.deepEqual(conditions.get('shop/shop'), []);
  });
});
