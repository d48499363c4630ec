// A real Jaeger v2 (built by scripts/setup-jaeger.sh) on loopback with in-memory storage:
// OTLP/HTTP in, query API out, so tests can read back what meshward exported.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../../extproc/src/local/envoy-binary.ts';
import { trackChild } from '../../extproc/src/local/children.ts';
import { freePort } from '../../extproc/src/local/ports.ts';

export interface Jaeger {
  otlpHttpEndpoint: string;
  queryUrl: string;
  /** Spans of a trace as Jaeger's query API returns them (empty when not found yet). */
  traceSpans(traceId: string): Promise<{ spanID: string; operationName: string; references: { refType: string; spanID: string; traceID: string }[]; tags: { key: string; value: unknown }[] }[]>;
  stop(): Promise<void>;
}

export function jaegerBinary(): string {
  const bin = process.env.JAEGER_BIN ?? path.join(PROJECT_ROOT, '.tools', 'bin', 'jaeger');
  if (!existsSync(bin)) throw new Error(`jaeger not found at ${bin}: run scripts/setup-jaeger.sh (npm test does) or set JAEGER_BIN`);
  return bin;
}

export async function startJaeger(): Promise<Jaeger> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meshward-jaeger-'));
  const [otlp, query, queryGrpc, health] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const config = `
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:${health}
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: 127.0.0.1:${query}
    grpc:
      endpoint: 127.0.0.1:${queryGrpc}
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${otlp}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`;
  const configFile = path.join(dir, 'jaeger.yaml');
  await writeFile(configFile, config);
  const child = spawn(jaegerBinary(), ['--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  trackChild(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`jaeger exited with ${child.exitCode}: ${stderr}`);
    try {
      const res = await fetch(`http://127.0.0.1:${health}/status`);
      if (res.ok) break;
    } catch { /* starting */ }
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`jaeger not healthy after 30 s: ${stderr}`); }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    otlpHttpEndpoint: `http://127.0.0.1:${otlp}`,
    queryUrl: `http://127.0.0.1:${query}`,
    async traceSpans(traceId) {
      const res = await fetch(`http://127.0.0.1:${query}/api/traces/${traceId}`);
      if (res.status === 404) return [];
      const body = await res.json() as { data?: { spans: [] }[] };
      return body.data?.[0]?.spans ?? [];
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 200));
      if (child.exitCode === null) child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
