// A local mesh with one fail-closed and one fail-open inbound listener and its ext_proc server stopped,
// so a test can put its own server (faulty, or capped) on mesh.extProcPort; and a GET through it.
import { startLocalMesh, type LocalMesh } from '../../extproc/src/local/mesh.ts';

export const FAILURE_MODE_CALLER = 'web/frontend';

export async function startFailureModeMesh(messageTimeoutSeconds: number): Promise<LocalMesh> {
  const mesh = await startLocalMesh({
    callers: [FAILURE_MODE_CALLER],
    inbound: [{ name: 'closed', failureModeAllow: false }, { name: 'open', failureModeAllow: true }],
    messageTimeoutSeconds,
  });
  await mesh.stopExtProc();
  return mesh;
}

/** GET /orders/1 from the caller through `inbound`: the status, and whether the app saw the request. */
export async function getThrough(mesh: LocalMesh, inbound: string, caller = FAILURE_MODE_CALLER): Promise<{ status: number; appSaw: boolean }> {
  const before = mesh.app.received.length;
  const res = await fetch(mesh.urlFor(caller, inbound) + '/orders/1');
  await res.arrayBuffer();
  return { status: res.status, appSaw: mesh.app.received.length > before };
}
