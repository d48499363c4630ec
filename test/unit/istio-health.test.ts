// Issue #7: the chart probes the server with Kubernetes' gRPC probes (grpc.health.v1.Health/Check on
// the service port). This calls that RPC on a grpc-js server with addHealthService, as the kubelet does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath } from 'grpc-health-check';
import { addHealthService } from '../../extproc/src/health.ts';

test('grpc.health.v1 Check answers SERVING, then NOT_SERVING when set', async () => {
  const server = new grpc.Server();
  const health = addHealthService(server);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: true, enums: String })) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  const client = new pkg.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const check = (service: string): Promise<{ status?: string; code?: number }> => new Promise((resolve) => {
    client.Check!({ service }, (err: grpc.ServiceError | null, res: { status: string }) => resolve(err ? { code: err.code } : { status: res.status }));
  });
  try {
    assert.deepEqual(await check(''), { status: 'SERVING' });
    health.setStatus('', 'NOT_SERVING');
    assert.deepEqual(await check(''), { status: 'NOT_SERVING' });
    assert.deepEqual(await check('no.such.Service'), { code: grpc.status.NOT_FOUND });
  } finally {
    client.close();
    server.forceShutdown();
  }
});
