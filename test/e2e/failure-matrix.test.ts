// Issue #10, failure matrix: what a request gets when the ext_proc server misbehaves or the filter
// crashes, in real Envoy, for a fail-closed and a fail-open listener. README "Failure behaviour"
// documents the same table.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';
import { meshwardExtProcFilter } from '../../extproc/src/local/envoy-config.ts';
import { PROJECT_ROOT } from '../../extproc/src/local/envoy-binary.ts';
import type { DecisionRecord } from '../../extproc/src/engine/engine.ts';
import { startFaultyExtProc, type Fault } from '../support/faulty-ext-proc.ts';
import { FAILURE_MODE_CALLER as CALLER, getThrough, startFailureModeMesh } from '../support/failure-mode-mesh.ts';

const get = getThrough;

describe('ext_proc server faults', () => {
  let mesh: LocalMesh;
  before(async () => {
    mesh = await startFailureModeMesh(0.5);
  });
  after(async () => { await mesh?.stop(); });

  // [fault, fail-closed status, app sees the request when fail-closed]
  const matrix: [Fault, number, boolean][] = [
    ['killed-in-request-phase', 500, false],
    ['killed-in-response-phase', 500, true], // the app already answered; the client still gets no unchecked response
    ['slower-than-timeout', 504, false],
    ['wrong-message-kind', 500, false],
    ['grpc-error', 500, false],
    // A clean close means "continue without me" in the ext_proc protocol, in both modes: this is
    // why meshward never ends a stream cleanly to deny; it answers ImmediateResponse.
    ['clean-close', 200, true],
  ];

  for (const [fault, closedStatus, closedAppSaw] of matrix) {
    test(`${fault}: fail-closed -> ${closedStatus}, fail-open -> 200`, async () => {
      const allowedBefore = (await mesh.serverSidecar.stats('http\\.open\\.ext_proc\\.failure_mode_allowed')).get('http.open.ext_proc.failure_mode_allowed') ?? 0;

      let faulty = await startFaultyExtProc(mesh.extProcPort, fault);
      const closed = await get(mesh, 'closed');
      faulty.close();
      assert.ok(faulty.streams >= 1, 'the request reached the faulty server');
      assert.equal(closed.status, closedStatus, 'fail-closed status');
      assert.equal(closed.appSaw, closedAppSaw);

      faulty = await startFaultyExtProc(mesh.extProcPort, fault);
      const open = await get(mesh, 'open');
      faulty.close();
      assert.equal(open.status, 200, 'fail-open lets the request through');
      assert.equal(open.appSaw, true);
      const allowedAfter = (await mesh.serverSidecar.stats('http\\.open\\.ext_proc\\.failure_mode_allowed')).get('http.open.ext_proc.failure_mode_allowed') ?? 0;
      if (fault !== 'clean-close') assert.ok(allowedAfter > allowedBefore, 'Envoy counted the skipped decision (failure_mode_allowed)');
    });
  }

  test('server unreachable at start of the request: fail-closed 500, fail-open 200', async () => {
    assert.equal(mesh.extProcRunning(), false);
    assert.equal((await get(mesh, 'closed')).status, 500);
    assert.equal((await get(mesh, 'open')).status, 200);
  });
});

describe('filter trap', () => {
  let trapWasm: string;
  before(() => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-trap-'));
    trapWasm = path.join(dir, 'trap.wasm');
    execFileSync(path.join(PROJECT_ROOT, 'node_modules', '.bin', 'asc'), [
      path.join(PROJECT_ROOT, 'test/fixtures/trap-filter/index.ts'), '-o', trapWasm, '--runtime', 'incremental', '--exportStart', '_initialize', '--use', 'abort=',
    ]);
  });

  // Envoy 1.40, measured: the request during which the filter traps gets 503 whatever the policy.
  // After it, FAIL_CLOSED answers 503 to everything; FAIL_OPEN bypasses the filter for the VM's
  // lifetime; FAIL_RELOAD starts a fresh VM, so the filter is back for the next request.
  const cases = [
    { policy: 'FAIL_OPEN', next: 200, nextIdentity: 'envoy-attribute' },
    { policy: 'FAIL_RELOAD', next: 200, nextIdentity: 'filter' },
    { policy: 'FAIL_CLOSED', next: 503, nextIdentity: undefined },
  ] as const;
  for (const { policy, next, nextIdentity } of cases) {
    test(`a filter trap with failure_policy ${policy}: the trapping request 503, the next ${next}`, async () => {
      const decisions: DecisionRecord[] = [];
      const mesh = await startLocalMesh({
        callers: [CALLER],
        httpFilters: () => [
          {
            name: 'envoy.filters.http.wasm',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm',
              config: { name: 'meshward', root_id: 'meshward', failure_policy: policy, vm_config: { runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: trapWasm } } } },
            },
          },
          meshwardExtProcFilter({ extProcCluster: 'meshward_ext_proc', failureModeAllow: false }),
        ],
      });
      mesh.engine.addObserver({ onDecision: (r) => decisions.push(r) });
      try {
        assert.equal((await get(mesh, 'inbound')).status, 200, 'before the trap');
        assert.equal(decisions.at(-1)?.request.caller.identitySource, 'filter');
        const trapped = await fetch(mesh.urlFor(CALLER, 'inbound') + '/__trap');
        await trapped.arrayBuffer();
        assert.equal(trapped.status, 503, 'the request that hit the trap');
        // FAIL_RELOAD reloads with a backoff; give it a moment.
        await new Promise((r) => setTimeout(r, policy === 'FAIL_RELOAD' ? 1500 : 100));
        const decided = decisions.length;
        const after = await get(mesh, 'inbound');
        assert.equal(after.status, next);
        if (nextIdentity !== undefined) {
          assert.equal(decisions.length, decided + 1);
          assert.equal(decisions.at(-1)?.request.caller.workload, mesh.spiffeIdOf(CALLER), 'identity intact either way');
          assert.equal(decisions.at(-1)?.request.caller.identitySource, nextIdentity);
        } else {
          assert.equal(after.appSaw, false);
        }
      } finally {
        await mesh.stop();
      }
    });
  }
});
