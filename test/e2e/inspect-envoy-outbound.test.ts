// API10 unsafe consumption through the real stack (issue #6): the meshward filters on the client
// sidecar's outbound listener (role "outbound"); sampling is 0 %, yet in enforce mode ext_proc asks for
// every third-party response body (Engine.needsResponseBody) and checks it before the calling
// workload consumes it: a poisoned answer cannot slip through as "not sampled".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import type { Finding } from '../../extproc/src/engine/finding.ts';
import { createContentDetectors } from '../../extproc/src/engine/detectors/content.ts';
import { createContentContext } from '../../extproc/src/inspect/settings.ts';
import { rawRequest } from '../support/raw-http.ts';

const PARTNER = 'api.partner.example';
const CLIENT = 'default/client';
let mesh: LocalMesh;
const findings: Finding[] = [];

before(async () => {
  const content = createContentContext({ thirdPartyHosts: [PARTNER] });
  mesh = await startLocalMesh({
    callers: [CLIENT],
    pluginConfig: { version: 'e2e-in' },
    outboundFilter: { pluginConfig: { role: 'outbound', sampling: { percent: 0 } } },
    engine: { denyRules: [], mode: 'enforce', detectors: (c) => createContentDetectors(c, content) },
  });
  mesh.engine.addObserver({ onFinding: (f) => findings.push(f) });
});

after(async () => { await mesh?.stop(); });

test('a third-party response carrying injection payloads is stopped on the outbound side in enforce mode (502, the app never sees it); a clean one passes', async () => {
  // The sample app echoes the request body in its response: it plays the third party here.
  const send = (body: string) => rawRequest(mesh.urlFor(CLIENT), { method: 'POST', path: '/rates', headers: [['host', PARTNER], ['content-type', 'application/json']], body });
  const clean = await send('{"currency":"EUR"}');
  assert.equal(clean.status, 200);
  assert.equal(findings.length, 0);
  const res = await send(JSON.stringify({ note: '<script>document.location="//evil"</script>' }));
  assert.equal(res.status, 502);
  assert.doesNotMatch(res.body, /script|evil/);
  assert.equal(JSON.parse(res.body).reason, 'API10:2023-UnsafeConsumption');
  const api10 = findings.filter((f) => f.category === 'API10:2023-UnsafeConsumption');
  assert.equal(api10.length, 1, JSON.stringify(findings.map((f) => f.summary)));
  assert.deepEqual(api10[0]!.evidence.values, [{ pointer: '/echo', signatures: ['script'] }]);
});
