// An in-process Kubernetes API server for the policy sources' tests: the real @kubernetes/client-node
// informer and ConfigMap reader talk to it over HTTP (no cluster is available here).
import http from 'node:http';
import * as k8s from '@kubernetes/client-node';

/** A minimal API server for one custom resource: list, watch (JSON lines), status merge-patch; and
 *  ConfigMaps by name (get only, as the chart's RBAC allows), each request recorded. */
export class FakeApiServer {
  readonly objects = new Map<string, Record<string, unknown> & { metadata: Record<string, unknown> }>();
  /** "namespace/name" -> data. */
  readonly configMaps = new Map<string, Record<string, string>>();
  /** "namespace/name" -> binaryData (bytes; served base64-encoded, as the API does). */
  readonly binaryConfigMaps = new Map<string, Record<string, Buffer>>();
  readonly configMapRequests: string[] = [];
  readonly statusPatches: { key: string; body: Record<string, unknown>; contentType: string }[] = [];
  readonly watchers = new Set<http.ServerResponse>();
  listCalls = 0;
  /** Lists to answer with 500 (an API server in trouble). */
  failLists = 0;
  /** Lists never answered (an API server that accepts the connection and hangs). */
  hangLists = 0;
  /** Watches to answer with 410 Gone (their resourceVersion is too old: the client must re-list). */
  goneWatches = 0;
  #rv = 1;
  #server = http.createServer((req, res) => this.#handle(req, res));
  port = 0;

  async start(): Promise<void> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.port = (this.#server.address() as { port: number }).port;
  }

  /** A client configuration pointing at this server (client-node refuses plain http without skipTLSVerify). */
  kubeConfig(): k8s.KubeConfig {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: `http://127.0.0.1:${this.port}`, skipTLSVerify: true }],
      users: [{ name: 'meshward' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'meshward' }],
      currentContext: 'fake',
    });
    return kc;
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  put(obj: Record<string, unknown> & { metadata: Record<string, unknown> }): void {
    const key = `${String(obj.metadata.namespace)}/${String(obj.metadata.name)}`;
    const prev = this.objects.get(key);
    const generation = prev ? Number(prev.metadata.generation) + 1 : 1;
    const next = { ...obj, metadata: { ...obj.metadata, generation, resourceVersion: String(++this.#rv), uid: key }, ...(prev?.status ? { status: prev.status } : {}) };
    this.objects.set(key, next);
    this.#emit(prev ? 'MODIFIED' : 'ADDED', next);
  }

  delete(key: string): void {
    const obj = this.objects.get(key);
    if (!obj) return;
    this.objects.delete(key);
    obj.metadata.resourceVersion = String(++this.#rv);
    this.#emit('DELETED', obj);
  }

  /** Drops every open watch, as a restarting API server or a proxy timeout would. */
  dropWatches(): void {
    for (const w of this.watchers) w.destroy();
    this.watchers.clear();
  }

  /** Every event with its resourceVersion, so a watch resumed from an older version gets what it missed. */
  readonly #events: { rv: number; line: string }[] = [];

  #emit(type: string, object: unknown): void {
    const line = JSON.stringify({ type, object: structuredClone(object) }) + '\n';
    this.#events.push({ rv: this.#rv, line });
    for (const w of this.watchers) w.write(line);
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const base = '/apis/security.meshward.io/v1alpha1';
    if (req.method === 'GET' && url.pathname === `${base}/apisecuritypolicies`) {
      if (url.searchParams.get('watch') === 'true') {
        if (this.goneWatches > 0) {
          this.goneWatches--;
          res.writeHead(410, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 410, reason: 'Expired' }));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        const from = Number(url.searchParams.get('resourceVersion') ?? '0');
        for (const e of this.#events) if (e.rv > from) res.write(e.line);
        this.watchers.add(res);
        res.on('close', () => this.watchers.delete(res));
        return;
      }
      this.listCalls++;
      if (this.hangLists > 0) {
        this.hangLists--;
        return;
      }
      if (this.failLists > 0) {
        this.failLists--;
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 500, message: 'etcd unavailable' }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicyList', metadata: { resourceVersion: String(this.#rv) }, items: [...this.objects.values()] }));
      return;
    }
    if (url.pathname.includes('/configmaps')) {
      this.configMapRequests.push(`${req.method} ${req.url}`);
      const cm = /^\/api\/v1\/namespaces\/([^/]+)\/configmaps\/([^/]+)$/.exec(url.pathname);
      const data = cm && req.method === 'GET' ? this.configMaps.get(`${cm[1]}/${cm[2]}`) : undefined;
      const binary = cm && req.method === 'GET' ? this.binaryConfigMaps.get(`${cm[1]}/${cm[2]}`) : undefined;
      if (!cm || req.method !== 'GET') { res.writeHead(405, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 405 })); return; }
      if (!data && !binary) { res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound' })); return; }
      const binaryData = binary ? { binaryData: Object.fromEntries(Object.entries(binary).map(([k, v]) => [k, v.toString('base64')])) } : {};
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: cm[2], namespace: cm[1] }, ...(data ? { data } : {}), ...binaryData }));
      return;
    }
    const m = /^\/apis\/security\.meshward\.io\/v1alpha1\/namespaces\/([^/]+)\/apisecuritypolicies\/([^/]+)\/status$/.exec(url.pathname);
    if (req.method === 'PATCH' && m) {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => {
        const key = `${m[1]}/${m[2]}`;
        const obj = this.objects.get(key);
        if (!obj) { res.writeHead(404).end('{}'); return; }
        const patch = JSON.parse(body) as { status: Record<string, unknown> };
        this.statusPatches.push({ key, body: patch, contentType: String(req.headers['content-type']) });
        obj.status = patch.status;
        obj.metadata.resourceVersion = String(++this.#rv);
        this.#emit('MODIFIED', obj);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(obj));
      });
      return;
    }
    res.writeHead(404).end('{}');
  }
}
