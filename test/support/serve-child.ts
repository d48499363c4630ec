// `meshward serve` as a child process, the way a user runs it: output captured, admin API helper,
// grpc.health.v1 Watch, and the exit code.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath } from 'grpc-health-check';
import { trackChild } from '../../extproc/src/local/children.ts';

const CLI = path.resolve(import.meta.dirname, '../../extproc/src/cli.ts');

export interface ServeChild {
  readonly child: ChildProcess;
  /** stdout and stderr so far (pino JSON lines). */
  output(): string;
  readonly exited: Promise<number | null>;
  admin(urlPath: string, token?: string): Promise<Response>;
  kill(): void;
}

/** Starts `meshward serve ARGS` and waits until its admin server answers /healthz. */
export async function startServe(args: string[], adminPort: number, env: Record<string, string> = {}): Promise<ServeChild> {
  const child = spawn(process.execPath, [CLI, 'serve', '--admin-port', String(adminPort), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  // Killed with this process, however it exits (a failed test or Ctrl-C leaves no server behind).
  trackChild(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const admin = (urlPath: string, token?: string): Promise<Response> =>
    fetch(`http://127.0.0.1:${adminPort}${urlPath}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  let up = false;
  for (let i = 0; i < 300 && !up && child.exitCode === null; i++) {
    up = await admin('/healthz').then((r) => r.ok, () => false);
    if (!up) await new Promise((r) => setTimeout(r, 50));
  }
  if (!up) {
    child.kill('SIGKILL');
    throw new Error(`meshward serve did not come up:\n${out}`);
  }
  return { child, output: () => out, exited, admin, kill: () => { if (child.exitCode === null) child.kill('SIGKILL'); } };
}

/** Opens a grpc.health.v1 Watch on the overall status; every status the server sends is pushed to `statuses`. */
export function watchHealth(port: number, statuses: string[]): { cancel(): void } {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: true, enums: String })) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  const client = new pkg.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = client.Watch!({ service: '' }) as grpc.ClientReadableStream<{ status: string }>;
  call.on('data', (m: { status: string }) => statuses.push(m.status));
  call.on('error', () => {});
  return { cancel: () => { call.cancel(); client.close(); } };
}
