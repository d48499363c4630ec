// Regression (found by the fuzz campaign and the soak, issue #10): Envoy resets every ext_proc stream
// once it has its answers, so one busy sidecar connection sends hundreds of RST_STREAM frames a
// second. Node's default rapid-reset limit (1000, then 33/s) made the server answer
// GOAWAY(INTERNAL_ERROR) and fail every stream in flight on that connection. A long-lived stream
// spanning 3000 answered-then-reset streams must survive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Engine } from '../../extproc/src/engine/engine.ts';
import { silentLogger } from '../../extproc/src/log.ts';
import { startServer } from '../../extproc/src/server.ts';
import { externalProcessorService } from '../../extproc/src/wire/protos.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../extproc/src/wire/messages.ts';

type Duplex = grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
const requestHeaders: ProcessingRequest = { request: 'request_headers', request_headers: { headers: { headers: [{ key: ':method', raw_value: Buffer.from('GET') }, { key: ':path', raw_value: Buffer.from('/x') }] }, end_of_stream: true } };
const responseHeaders: ProcessingRequest = { request: 'response_headers', response_headers: { headers: { headers: [{ key: ':status', raw_value: Buffer.from('200') }] }, end_of_stream: true } };

test('thousands of answered-then-reset streams do not close the connection under a stream in flight', async () => {
  const server = await startServer(new Engine({ denyRules: [] }), silentLogger, { port: 0 });
  const Ctor = grpc.makeClientConstructor(externalProcessorService(), 'ExternalProcessor');
  const client = new Ctor(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { Process(): Duplex };
  try {
    // The long-lived stream: request headers answered, response still to come (as while an app works).
    const longLived = client.Process();
    const longAnswers: ProcessingResponse[] = [];
    const longStatus = new Promise<grpc.StatusObject>((resolve) => {
      longLived.on('data', (r: ProcessingResponse) => longAnswers.push(r));
      longLived.on('status', resolve);
      longLived.on('error', () => {});
    });
    longLived.write(requestHeaders);
    for (let i = 0; i < 100 && longAnswers.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(longAnswers.length, 1);

    let failed = 0;
    for (let batch = 0; batch < 30; batch++) {
      await Promise.all(Array.from({ length: 100 }, () => new Promise<void>((resolve) => {
        const call = client.Process();
        call.on('data', () => call.cancel()); // answered, then reset: what Envoy does
        call.on('status', (s: grpc.StatusObject) => { if (s.code !== grpc.status.CANCELLED && s.code !== grpc.status.OK) failed++; resolve(); });
        call.on('error', () => {});
        call.write(requestHeaders);
      })));
    }
    assert.equal(failed, 0, 'no reset stream failed otherwise');
    longLived.write(responseHeaders);
    longLived.end();
    const status = await longStatus;
    assert.equal(status.code, grpc.status.OK, `the long-lived stream survived: ${status.details}`);
    assert.equal(longAnswers.length, 2);
  } finally {
    client.close();
    server.forceClose();
  }
});
