// Issue #10, item 4: a client cannot forge what meshward trusts. Through real Envoy (SPIFFE mTLS, the
// Wasm filter, ext_proc), inbound and outbound, requests carry every internal name meshward uses
// (x-meshward-* headers, capture-record keys and format, filter-state names, x-replay-id, XFCC,
// Istio peer metadata, traceparent and request-id games) in every case, duplicated, and in
// percent/UTF-8/CR-LF forms. Identity, operation id, sampling decision and the filter's annotations
// must equal those of the same request without them, and no reserved header reaches the app.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import type { RequestEvent } from '../../extproc/src/engine/event.ts';
import { REPLAY_ID_HEADER } from '../../extproc/src/replay/through-envoy.ts';
import { FASTPATH_FILTER_STATE } from '../../extproc/src/local/envoy-config.ts';
import { RESERVED_HEADER_PREFIX } from '../../extproc/src/wire/response.ts';
import { rawRequest } from '../support/raw-http.ts';

const HOST = 'orders.shop';
const CLIENT = 'web/frontend';
const ADMIN_ID = 'spiffe://cluster.local/ns/kube-system/sa/admin';
const SAMPLED_OP = `POST ${HOST} /orders/{id}`;
const sampling = { percent: 0, seed: 'spoof-seed', alwaysOperations: [SAMPLED_OP] };

type HeaderList = [string, string | Buffer][];

/** Every name the filter writes into its capture record (filter/assembly/index.ts, record.ts). */
const RECORD_KEYS = ['peer', 'mtls', 'src', 'role', 'self', 'self.namespace', 'self.workload', 'dest', 'peer.workload', 'peer.namespace',
  'node.namespace', 'node.workload', 'node.sa', 'node.labels', 'method', 'authority', 'path', 'template', 'op', 'jwt.alg', 'jwt.sub', 'jwt.iss',
  'jwt.aud', 'jwt.scope', 'jwt.exp', 'jwt.nbf', 'jwt.flags', 'token.hash', 'apikey', 'sampled', 'sample.reason', 'cfg', 'trunc'];
const FORGED_VALUE: Record<string, string> = {
  peer: ADMIN_ID, mtls: '1', src: '10.0.0.1:1', role: 'outbound', self: ADMIN_ID, dest: 'evil.example', op: `DELETE ${HOST} /admin`,
  template: '/admin', sampled: '1', 'sample.reason': 'suspect', 'jwt.sub': 'admin', 'jwt.iss': 'https://idp', 'jwt.flags': '',
  'token.hash': 'f'.repeat(64), apikey: 'e'.repeat(64), 'node.namespace': 'kube-system', 'peer.namespace': 'kube-system',
};
const forgedRecord = `mw1\n${RECORD_KEYS.map((k) => `${k}=${FORGED_VALUE[k] ?? 'x'}`).join('\n')}\n`;
const RESERVED = ['x-meshward-peer', 'x-meshward-capture', 'x-meshward-request-id', 'x-meshward-fastpath', 'x-meshward-identity',
  'x-meshward-operation', 'x-meshward-op', 'x-meshward-sampled', 'x-meshward-role', 'x-meshward-self', 'x-meshward-user', 'x-meshward-caller'];
const cases = (s: string): string[] => [s, s.toUpperCase(), s.replace(/(^|-)([a-z])/g, (_m, p: string, c: string) => p + c.toUpperCase())];
const percent = (s: string): string => encodeURIComponent(s).replace(/-/g, '%2D').replace(/\./g, '%2E');

/** Forgery attempts: a name and the headers it adds to an otherwise identical request. */
const ATTEMPTS: { name: string; headers: HeaderList }[] = [
  { name: 'every x-meshward-* header, in three cases', headers: RESERVED.flatMap((h) => cases(h).map((n): [string, string] => [n, n.endsWith('fastpath') ? 'deny' : ADMIN_ID])) },
  { name: 'duplicated reserved headers', headers: [['x-meshward-peer', ADMIN_ID], ['x-meshward-peer', ADMIN_ID], ['X-Meshward-Peer', 'x'], ['x-meshward-sampled', '1'], ['x-meshward-sampled', '0']] },
  { name: 'capture-record keys as header names', headers: RECORD_KEYS.map((k): [string, string] => [k, FORGED_VALUE[k] ?? 'x']) },
  { name: 'capture-record keys prefixed', headers: RECORD_KEYS.flatMap((k): [string, string][] => [[`x-meshward-${k}`, FORGED_VALUE[k] ?? 'x'], [`meshward-${k}`, FORGED_VALUE[k] ?? 'x']]) },
  { name: 'a whole capture record, percent-encoded (header values carry no newlines)', headers: [['x-meshward-capture', percent(forgedRecord)], ['wasm.meshward', percent(forgedRecord)], ['meshward', forgedRecord.replace(/\n/g, ' ')]] },
  { name: 'filter-state names as headers', headers: [['wasm.meshward', 'mw1'], [FASTPATH_FILTER_STATE, '1'], ['meshward_fastpath', '1'], ['filter_state', 'wasm.meshward=mw1'], ['x-envoy-filter-state', 'wasm.meshward']] },
  { name: 'percent-encoded and UTF-8 names and values', headers: [
    ['x-meshward%2Dpeer', ADMIN_ID], ['x%2Dmeshward-peer', ADMIN_ID], [percent('x-meshward-peer'), ADMIN_ID],
    ['x-meshward-peer', Buffer.from(`${ADMIN_ID}\u00e9\u2028`, 'utf8')], ['x-meshward-capture', Buffer.from([0x6d, 0x77, 0x31, 0xc0, 0x8a, 0x70, 0x65, 0x65, 0x72, 0x3d, 0x41])],
    ['peer', `${percent('\n')}peer=${ADMIN_ID}`], ['x-meshward-peer', '%0d%0apeer=' + ADMIN_ID]] },
  { name: 'XFCC, SPIFFE and Istio peer-metadata headers', headers: [
    ['x-forwarded-client-cert', `By=spiffe://cluster.local/ns/shop/sa/orders;Hash=00;URI=${ADMIN_ID}`], ['x-forwarded-client-cert', `URI=${ADMIN_ID}`],
    ['x-spiffe-id', ADMIN_ID], ['x-client-cert', ADMIN_ID], ['x-ssl-client-san', ADMIN_ID],
    ['x-envoy-peer-metadata', Buffer.from(JSON.stringify({ NAMESPACE: 'kube-system', WORKLOAD_NAME: 'admin' })).toString('base64')], ['x-envoy-peer-metadata-id', 'sidecar~10.0.0.1~admin.kube-system~kube-system.svc.cluster.local'],
    ['x-istio-attributes', 'source.principal=' + ADMIN_ID], ['x-envoy-internal', 'true'], ['x-envoy-external-address', '10.0.0.1'], ['x-envoy-original-path', '/admin']] },
  { name: 'x-replay-id and x-request-id games', headers: [[REPLAY_ID_HEADER, 'r-1'], [REPLAY_ID_HEADER, 'r-2'], ['x-request-id', 'forced-sample-0000'], ['x-request-id', '']] },
  { name: 'traceparent games', headers: [
    ['traceparent', `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`], ['traceparent', `00-${'0'.repeat(32)}-${'0'.repeat(16)}-ff`],
    ['tracestate', 'meshward=sampled:1,mw=peer:admin'], ['x-b3-sampled', '1'], ['x-b3-flags', '1'], ['x-datadog-sampling-priority', '2'], ['baggage', `meshward.peer=${ADMIN_ID},sampled=1`]] },
  { name: 'operation and template overrides', headers: [['x-http-method-override', 'DELETE'], ['x-original-url', '/admin'], ['x-rewrite-url', '/admin'], ['x-forwarded-prefix', '/admin'], ['x-envoy-decorator-operation', 'DELETE /admin']] },
];

interface Trusted {
  workload?: string; identitySource: string; mtls: boolean; sourceHost?: string; workloadName?: string; namespace?: string;
  user?: unknown; tokenHash?: string; apiKeyHash?: string; operation?: string; template?: string; sampled?: boolean;
  direction?: string; destination?: string; sidecarWorkload?: unknown;
}

/** What meshward trusts about a request: everything a forgery must not change. */
function trusted(e: RequestEvent): Trusted {
  const c = e.caller;
  return {
    workload: c.workload, identitySource: c.identitySource, mtls: c.mtls, sourceHost: c.sourceAddress?.replace(/:\d+$/, ''),
    workloadName: c.workloadName, namespace: c.namespace, user: c.user, tokenHash: c.tokenHash, apiKeyHash: c.apiKeyHash,
    operation: e.operation, template: e.template, sampled: e.sampled, direction: e.direction, destination: e.destination, sidecarWorkload: e.sidecarWorkload,
  };
}

function reservedHeadersAt(headers: Record<string, unknown>): string[] {
  return Object.keys(headers).filter((k) => k.toLowerCase().startsWith(RESERVED_HEADER_PREFIX));
}

for (const role of ['inbound', 'outbound'] as const) {
  describe(`spoofing through real Envoy, ${role} filter`, () => {
    let mesh: LocalMesh;
    const events: RequestEvent[] = [];

    before(async () => {
      mesh = await startLocalMesh({
        callers: [CLIENT],
        server: 'shop/orders',
        pluginConfig: { role: 'inbound', sampling },
        ...(role === 'outbound' ? { outboundFilter: { pluginConfig: { role: 'outbound', sampling } } } : {}),
      });
      mesh.engine.addObserver({ onDecision: (r) => events.push(r.request) });
    });
    after(async () => { await mesh?.stop(); });

    /** Sends a request and returns what ext_proc saw of it, by direction, and what the app received. */
    async function send(method: string, path: string, headers: HeaderList, body?: string): Promise<{ status: number; seen: Map<string, RequestEvent>; app: Record<string, unknown> | undefined }> {
      const from = events.length;
      const appFrom = mesh.app.received.length;
      const res = await rawRequest(mesh.urlFor(CLIENT), { method, path, headers: [['host', HOST], ...headers], ...(body !== undefined ? { body } : {}) });
      const seen = new Map(events.slice(from).map((e) => [e.direction ?? 'none', e]));
      return { status: res.status, seen, app: mesh.app.received.slice(appFrom)[0]?.headers as Record<string, unknown> | undefined };
    }

    const expectedDirections = role === 'outbound' ? ['inbound', 'outbound'] : ['inbound'];

    for (const [method, path, body] of [['GET', '/orders/8123', undefined], ['POST', '/orders/77', '{"qty":1}']] as const) {
      test(`${method} ${path}: no forgery changes identity, operation, sampling or annotations`, async () => {
        const baseline = await send(method, path, body !== undefined ? [['content-type', 'application/json']] : [], body);
        assert.equal(baseline.status, 200);
        assert.deepEqual([...baseline.seen.keys()].sort(), expectedDirections);
        const inbound = baseline.seen.get('inbound')!;
        assert.equal(inbound.caller.workload, mesh.spiffeIdOf(CLIENT));
        assert.equal(inbound.operation, `${method} ${HOST} /orders/{id}`);
        assert.equal(inbound.sampled, method === 'POST', 'only the policy-listed operation is sampled');
        if (role === 'outbound') {
          const out = baseline.seen.get('outbound')!;
          assert.equal(out.caller.workload, mesh.spiffeIdOf(CLIENT), 'outbound: the caller is the sidecar\'s own workload');
          assert.equal(out.destination, HOST);
        }
        for (const attempt of ATTEMPTS) {
          const forged = await send(method, path, [...(body !== undefined ? [['content-type', 'application/json'] as [string, string]] : []), ...attempt.headers], body);
          assert.equal(forged.status, 200, `${attempt.name}: answered like the baseline`);
          assert.deepEqual([...forged.seen.keys()].sort(), expectedDirections, `${attempt.name}: ext_proc saw the request in every sidecar (no skip)`);
          for (const d of expectedDirections) {
            assert.deepEqual(trusted(forged.seen.get(d)!), trusted(baseline.seen.get(d)!), `${attempt.name}: ${d} annotations unchanged`);
          }
          assert.ok(forged.app, `${attempt.name}: the app got the request`);
          assert.deepEqual(reservedHeadersAt(forged.app), [], `${attempt.name}: no x-meshward-* header reaches the app`);
        }
      });
    }

    test('CR/LF, bare LF, NUL and obs-fold in header values are refused by Envoy or leave identity unchanged', async () => {
      const port = Number(new URL(mesh.urlFor(CLIENT)).port);
      const injections = [
        '', // control: the harness gets an answer and ext_proc sees the request
        `x-meshward-peer: a\r\npeer=${ADMIN_ID}\r\n`,
        `x-meshward-peer: a\rpeer=${ADMIN_ID}\r\n`,
        `x-other: a\nx-meshward-peer: ${ADMIN_ID}\r\n`,
        `x-meshward-peer: a\r\n peer=${ADMIN_ID}\r\n`,
        `x-meshward-peer: a\0peer=${ADMIN_ID}\r\n`,
        `x-meshward-capture: mw1\r\n\tpeer=${ADMIN_ID}\r\n`,
      ];
      const statuses: number[] = [];
      for (const injection of injections) {
        const from = events.length;
        const appFrom = mesh.app.received.length;
        const head = await new Promise<string>((resolve, reject) => {
          // Written without half-closing (Envoy treats a half-close as the client going away); with
          // "connection: close" Envoy closes after its answer.
          const socket = net.connect(port, '127.0.0.1', () => socket.write(`GET /orders/1 HTTP/1.1\r\nhost: ${HOST}\r\n${injection}connection: close\r\n\r\n`));
          let data = '';
          const timer = setTimeout(() => socket.destroy(), 5000);
          socket.on('data', (d: Buffer) => { data += d.toString('latin1'); });
          socket.on('close', () => { clearTimeout(timer); resolve(data); });
          socket.on('error', reject);
        });
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
        if (injection === '') {
          assert.equal(status, 200, 'control request answered');
          assert.equal(events.length - from, role === 'outbound' ? 2 : 1, 'control request seen by ext_proc');
        }
        // 0: Envoy closed the connection without an answer (a refusal too).
        assert.ok(status === 400 || status === 200 || status === 0, `${JSON.stringify(injection)}: refused (400 or closed) or passed, got ${status}`);
        statuses.push(status);
        for (const e of events.slice(from)) assert.equal(e.caller.workload, mesh.spiffeIdOf(CLIENT), `${JSON.stringify(injection)}: identity unchanged`);
        for (const a of mesh.app.received.slice(appFrom)) {
          assert.deepEqual(reservedHeadersAt(a.headers as Record<string, unknown>), [], `${JSON.stringify(injection)}: nothing reserved reaches the app`);
        }
      }
      console.log(`# ${role}: header injections answered ${statuses.join(', ')}`);
    });
  });
}
