// Runs the file policy source on policies written to a temporary file, as `meshward serve --policy FILE`
// does, for tests that apply ApiSecurityPolicy objects to an engine.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Engine } from '../../extproc/src/engine/engine.ts';
import { startPolicyRuntime } from '../../extproc/src/policy/runtime.ts';
import type { PolicyServerWiring } from '../../extproc/src/policy/server-wiring.ts';
import { createLogger } from '../../extproc/src/log.ts';

/** Writes policies ("namespace/name" -> the YAML under `spec:`) to one file and runs the file policy
 *  source on it; `files` are written beside it (specs the policies name). */
export async function startFilePolicies(engine: Engine, specs: Record<string, string>, wiring?: PolicyServerWiring, files: Record<string, string> = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meshward-policies-'));
  const docs = Object.entries(specs).map(([key, spec]) => {
    const [namespace, name] = key.split('/');
    return `apiVersion: security.meshward.io/v1alpha1\nkind: ApiSecurityPolicy\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec:\n${spec}`;
  });
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  await writeFile(path.join(dir, 'policies.yaml'), docs.join('\n---\n'));
  const policies = await startPolicyRuntime({
    source: 'file', files: [path.join(dir, 'policies.yaml')], namespace: 'meshward', engine, log: createLogger('silent'),
    ...(wiring ? { detectors: wiring.detectors, onApplied: wiring.onApplied } : {}),
  });
  return { policies, stop: async () => { await policies.stop(); await rm(dir, { recursive: true, force: true }); } };
}
