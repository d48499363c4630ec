// Test helpers for the Istio install: render the chart with the real Helm, and translate the rendered
// WasmPlugin and EnvoyFilter into the Envoy HTTP filter configs Istio would give a sidecar.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { PROJECT_ROOT } from '../../extproc/src/local/envoy-binary.ts';
import { CHART_DIR } from '../../extproc/src/cli/render.ts';

type Json = Record<string, unknown>;
export type Manifest = Json & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } & Json; spec?: Json };

/** Helm from $HELM_BIN, the project's own build (npm run setup), or PATH. */
export function helmBinary(): string {
  const candidates = [process.env.HELM_BIN, path.join(PROJECT_ROOT, '.meshward', 'bin', 'helm')].filter((c): c is string => !!c);
  for (const c of candidates) if (existsSync(c)) return c;
  try {
    return execFileSync('sh', ['-c', 'command -v helm'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('helm not found: run `npm run setup` (builds it into .meshward/bin) or set HELM_BIN');
  }
}

/** istio.io/api release whose CRDs the chart's Istio resources are checked against (scripts/setup-istio-schemas.sh). */
export const ISTIO_API_VERSION = 'v1.32.0';

/** Istio's own CRDs (openAPIV3Schema per kind and version), from the istio.io/api Go module. */
export function istioCrdSchemas(): Map<string, unknown> {
  let dir: string;
  try {
    const info = JSON.parse(execFileSync('go', ['mod', 'download', '-json', `istio.io/api@${ISTIO_API_VERSION}`], { cwd: os.tmpdir(), encoding: 'utf8', env: { ...process.env, GOFLAGS: '-mod=mod' } })) as { Dir: string };
    dir = info.Dir;
  } catch (err) {
    throw new Error(`Istio CRD schemas unavailable (run \`npm run setup\`; needs Go): ${(err as Error).message}`);
  }
  const out = new Map<string, unknown>();
  for (const crd of parseManifests(readFileSync(path.join(dir, 'kubernetes', 'customresourcedefinitions.gen.yaml'), 'utf8'))) {
    const spec = crd.spec as { group: string; names: { kind: string }; versions: { name: string; schema: { openAPIV3Schema: unknown } }[] };
    for (const v of spec.versions) out.set(`${spec.group}/${v.name}/${spec.names.kind}`, v.schema.openAPIV3Schema);
  }
  return out;
}

export function parseManifests(yaml: string): Manifest[] {
  return YAML.parseAllDocuments(yaml).map((d) => d.toJS() as Manifest | null).filter((d): d is Manifest => d !== null);
}

/** `helm template RELEASE istio/chart --namespace NS -f values` (Kubernetes version pinned for kubeVersion checks). */
export function helmTemplate(release: string, namespace: string, values: Json = {}): Manifest[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-helm-'));
  try {
    const valuesFile = path.join(dir, 'values.yaml');
    writeFileSync(valuesFile, YAML.stringify(values));
    const out = execFileSync(helmBinary(), ['template', release, CHART_DIR, '--namespace', namespace, '--kube-version', '1.31.0', '-f', valuesFile], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
    return parseManifests(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function byKindAndName(docs: Manifest[]): Manifest[] {
  const key = (d: Manifest): string => `${d.kind}/${d.metadata.namespace ?? ''}/${d.metadata.name}`;
  return [...docs].sort((a, b) => key(a).localeCompare(key(b)));
}

export function only(docs: Manifest[], kind: string): Manifest {
  const found = docs.filter((d) => d.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0]!;
}

/** The HTTP filter an EnvoyFilter inserts for one context (patch.value, which Istio applies verbatim). */
export function extProcFilterFrom(envoyFilter: Manifest, context: string): Json {
  const patches = (envoyFilter.spec as { configPatches: { match: { context: string }; patch: { operation: string; value: Json } }[] }).configPatches;
  const p = patches.find((c) => c.match.context === context);
  if (!p) throw new Error(`EnvoyFilter ${envoyFilter.metadata.name} has no patch for ${context}`);
  return p.patch.value;
}

const FAIL_STRATEGY: Record<string, string> = { FAIL_CLOSE: 'FAIL_CLOSED', FAIL_OPEN: 'FAIL_OPEN', FAIL_RELOAD: 'FAIL_RELOAD' };

/**
 * The Envoy Wasm HTTP filter Istio generates from a WasmPlugin (pilot: extensions.go buildWasmConfig /
 * toEnvoyHTTPFilter): name "<namespace>.<name>", root_id = pluginName, configuration = pluginConfig as
 * a JSON string, runtime v8, no vm_id, failure policy from failStrategy (default FAIL_CLOSE), and the
 * module as a local file (istio-agent fetches the OCI image and rewrites the remote code to a file).
 */
export function wasmFilterFrom(plugin: Manifest, moduleFile: string): Json {
  const spec = plugin.spec as { pluginName?: string; pluginConfig?: Json; failStrategy?: string };
  return {
    name: 'envoy.filters.http.wasm',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm',
      config: {
        name: `${plugin.metadata.namespace}.${plugin.metadata.name}`,
        root_id: spec.pluginName ?? '',
        failure_policy: FAIL_STRATEGY[spec.failStrategy ?? 'FAIL_CLOSE'],
        configuration: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: JSON.stringify(spec.pluginConfig ?? {}) },
        vm_config: { runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: moduleFile } } },
      },
    },
  };
}
