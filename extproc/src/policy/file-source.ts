// Policies from files (local runs, and the embedded default): loaded at start, reloaded when a file
// changes. The directory is watched, not the file, because editors and ConfigMap mounts replace files
// by rename. A file that becomes invalid keeps its last good policies in force.
import { watch, type FSWatcher } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { PolicyRegistry, type PolicyListener } from './registry.ts';
import { MAX_POLICY_BYTES, parsePolicies, type PolicyError, type PolicyValidationResult } from './validate.ts';

export interface FilePolicySourceOptions {
  files: string[];
  /** meshward's namespace: a selector-less policy there is the mesh-wide default. */
  meshNamespace: string;
  onChange: PolicyListener;
  /** Quiet time after the last change event before reloading (editors write in bursts). */
  debounceMs?: number;
}

export interface FilePolicySource {
  readonly registry: PolicyRegistry;
  /** Re-reads every file now. */
  reload(): Promise<void>;
  close(): void;
}

/** Reads a file without ever holding more than the size limit (+1 byte to detect "too large"). */
async function readBounded(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(MAX_POLICY_BYTES + 1);
    let filled = 0;
    while (filled < buf.length) {
      const { bytesRead } = await handle.read(buf, filled, buf.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled > MAX_POLICY_BYTES) throw new Error(`larger than the ${MAX_POLICY_BYTES}-byte limit`);
    return buf.subarray(0, filled).toString('utf8');
  } finally {
    await handle.close();
  }
}

/** Reads and validates one policy file; read errors become policy errors. */
export async function loadPolicyFile(file: string): Promise<PolicyValidationResult> {
  let text: string;
  try {
    text = await readBounded(file);
  } catch (err) {
    const error: PolicyError = { source: file, path: '(root)', reason: (err as Error).message };
    return { policies: [], errors: [error] };
  }
  const result = parsePolicies(file, text, { baseDir: path.dirname(file) });
  // A spec file is named relative to its policy file; the server loads it from anywhere.
  for (const p of result.policies) {
    p.spec.apiSpecs = p.spec.apiSpecs?.map((s) => (s.file !== undefined ? { ...s, file: path.resolve(path.dirname(file), s.file) } : s));
    if (p.spec.apiSpecs === undefined) delete p.spec.apiSpecs;
  }
  return result;
}

export async function startFilePolicySource(options: FilePolicySourceOptions): Promise<FilePolicySource> {
  const registry = new PolicyRegistry(options.meshNamespace, options.onChange);
  const files = options.files.map((f) => path.resolve(f));
  const reloadOne = async (file: string): Promise<void> => {
    const r = await loadPolicyFile(file);
    registry.update(file, r.policies, r.errors);
  };
  const reload = async (): Promise<void> => { for (const f of files) await reloadOne(f); };
  await reload();

  const timers = new Map<string, NodeJS.Timeout>();
  const watchers: FSWatcher[] = [];
  const dirs = new Map<string, string[]>();
  for (const f of files) dirs.set(path.dirname(f), [...(dirs.get(path.dirname(f)) ?? []), f]);
  for (const [dir, inDir] of dirs) {
    const w = watch(dir, (_event, name) => {
      // Some platforms omit the name: then every file of the directory is reloaded.
      const targets = name ? inDir.filter((f) => path.basename(f) === name.toString()) : inDir;
      for (const file of targets) {
        clearTimeout(timers.get(file));
        timers.set(file, setTimeout(() => { timers.delete(file); void reloadOne(file); }, options.debounceMs ?? 100));
      }
    });
    w.on('error', () => { /* the directory vanished: keep the last good policies */ });
    watchers.push(w);
  }
  return {
    registry,
    reload,
    close: () => {
      for (const w of watchers) w.close();
      for (const t of timers.values()) clearTimeout(t);
    },
  };
}
