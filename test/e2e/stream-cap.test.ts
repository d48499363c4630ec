// Issue #10 item 3, in real Envoy: the ext_proc server's concurrent-stream cap. With the cap at 2 and
// two requests held open (their bodies still uploading, so the app has not answered and each keeps
// its ext_proc stream), a third request's stream is refused with RESOURCE_EXHAUSTED and Envoy applies
// the listener's failure mode: fail-closed 500 with the app never reached, fail-open 200 with Envoy's
// failure_mode_allowed counted; the server counts every refusal. Once the held requests finish, the
// slots are free again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { LocalMesh } from '../../extproc/src/local/mesh.ts';
import { FAILURE_MODE_CALLER as CALLER, getThrough, startFailureModeMesh } from '../support/failure-mode-mesh.ts';
import { Engine } from '../../extproc/src/engine/engine.ts';
import { silentLogger } from '../../extproc/src/log.ts';
import { startServer, type RunningServer } from '../../extproc/src/server.ts';

const get = getThrough;

/** A POST whose body keeps uploading until finish(): the app cannot answer, the ext_proc stream stays open. */
function heldUpload(url: string): { finish(): Promise<number> } {
  const req = http.request(url + '/uploads', { method: 'POST', headers: { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' } });
  const status = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
    req.on('error', reject);
  });
  req.write('first part;');
  return { finish: () => { req.end('last part'); return status; } };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(check(), what);
}

describe('concurrent-stream cap in real Envoy', () => {
  let mesh: LocalMesh;
  let server: RunningServer;
  before(async () => {
    // The mesh's own server gives way to one with a cap of 2 on the same port.
    mesh = await startFailureModeMesh(2);
    server = await startServer(new Engine({ denyRules: [] }), silentLogger, { port: mesh.extProcPort, maxConcurrentStreams: 2 });
  });
  after(async () => { server?.forceClose(); await mesh?.stop(); });

  for (const inbound of ['closed', 'open'] as const) {
    test(`${inbound}: the third concurrent request gets the failure-mode outcome; slots free again after`, async () => {
      assert.equal((await get(mesh, inbound)).status, 200, 'below the cap, requests pass');
      const refusedBefore = server.counters.streamsRefused;
      const stat = `http.${inbound}.ext_proc.failure_mode_allowed`;
      const allowedBefore = (await mesh.serverSidecar.stats(stat.replaceAll('.', '\\.'))).get(stat) ?? 0;

      const held = [heldUpload(mesh.urlFor(CALLER, inbound)), heldUpload(mesh.urlFor(CALLER, inbound))];
      await until(() => server.counters.streamsActive === 2, 'two streams held');
      const third = await get(mesh, inbound);
      assert.equal(server.counters.streamsRefused, refusedBefore + 1, 'the server refused the third stream');
      const allowedAfter = (await mesh.serverSidecar.stats(stat.replaceAll('.', '\\.'))).get(stat) ?? 0;
      if (inbound === 'closed') {
        assert.equal(third.status, 500, 'fail-closed: Envoy answers 500');
        assert.equal(third.appSaw, false, 'fail-closed: the app never saw it');
        assert.equal(allowedAfter, allowedBefore);
      } else {
        assert.equal(third.status, 200, 'fail-open: the request proceeds');
        assert.equal(third.appSaw, true);
        assert.equal(allowedAfter, allowedBefore + 1, 'Envoy counted the skipped decision');
      }

      assert.deepEqual(await Promise.all(held.map((h) => h.finish())), [200, 200], 'the held requests complete');
      await until(() => server.counters.streamsActive === 0, 'the held streams closed');
      assert.equal((await get(mesh, inbound)).status, 200, 'capacity is back');
      assert.equal(server.counters.streamsRefused, refusedBefore + 1);
    });
  }
});
