// Issue #7: `meshward policy validate` and `meshward render`, run as a user would (child process).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../../extproc/src/local/envoy-binary.ts';
import { parseManifests } from '../helpers/istio.ts';

function meshward(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['extproc/src/cli.ts', ...args], { cwd: PROJECT_ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('meshward policy validate', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-cli-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('valid files: exit 0, one line per policy, notes for fields not applied yet', () => {
    const examples = readdirSync(path.join(PROJECT_ROOT, 'istio', 'examples')).filter((f) => f.endsWith('.yaml')).map((f) => path.join('istio', 'examples', f));
    const r = meshward('policy', 'validate', ...examples);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('ok: ')).length, examples.length);
    assert.match(r.stdout, /^ok: istio\/examples\/shop-enforce\.yaml: shop\/shop \(mode enforce, failure mode closed\)$/m);
    assert.doesNotMatch(r.stdout, /^note: /m, 'every field of the examples is applied (nothing reported as not applied)');
  });

  test('an invalid file among valid ones: exit 1 and every error with file, field path and reason', () => {
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, [
      'apiVersion: security.meshward.io/v1alpha1',
      'kind: ApiSecurityPolicy',
      'metadata: { name: bad, namespace: shop }',
      'spec:',
      '  mode: enforcing',
      '  rateLimit: []',
      '  businessFlows: [{ name: f, apiSpec: missing, steps: [{ operation: POST /a }, { operation: POST /b }] }]',
    ].join('\n'));
    const r = meshward('policy', 'validate', 'istio/examples/mesh-default.yaml', bad);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^ok: istio\/examples\/mesh-default\.yaml/m);
    assert.deepEqual(r.stderr.trim().split('\n'), [
      `error: ${bad}: spec.rateLimit: unknown field`,
      `error: ${bad}: spec.mode: must be one of: monitor, enforce`,
    ]);
    // Once the schema passes, the reference to a missing spec is what is reported.
    writeFileSync(bad, readFileSync(bad, 'utf8').replace('mode: enforcing', 'mode: enforce').replace('  rateLimit: []\n', ''));
    const r2 = meshward('policy', 'validate', bad);
    assert.equal(r2.code, 1);
    assert.equal(r2.stderr.trim(), `error: ${bad}: spec.businessFlows[0].apiSpec: refers to "missing", which is not in spec.apiSpecs`);
  });

  test('conflicts across files: the same policy twice, or two policies for the same namespace and selector', () => {
    const doc = (name: string): string => `apiVersion: security.meshward.io/v1alpha1\nkind: ApiSecurityPolicy\nmetadata: { name: ${name}, namespace: shop }\nspec: { mode: enforce }\n`;
    const one = path.join(dir, 'one.yaml');
    const two = path.join(dir, 'two.yaml');
    writeFileSync(one, doc('a'));
    writeFileSync(two, `${doc('b')}---\n${doc('a')}`);
    const r = meshward('policy', 'validate', one, two);
    assert.equal(r.code, 1);
    assert.deepEqual(r.stderr.trim().split('\n'), [
      `error: ${two}: shop/a: defined again (also in ${one})`,
      `error: ${two}: shop/b: conflicts with shop/a (same namespace and selector; shop/a would apply)`,
    ]);
  });

  test('a missing file: exit 1 with the reason; no file at all: usage error, exit 2', () => {
    const r = meshward('policy', 'validate', path.join(dir, 'absent.yaml'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /absent\.yaml: \(root\): ENOENT/);
    assert.equal(meshward('policy', 'validate').code, 2);
  });
});

describe('meshward render', () => {
  test('prints the chart manifests for the namespace', () => {
    const r = meshward('render', '--namespace', 'sec');
    assert.equal(r.code, 0, r.stderr);
    const docs = parseManifests(r.stdout);
    assert.deepEqual(docs.map((d) => d.kind).sort(), ['ApiSecurityPolicy', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'Deployment', 'EnvoyFilter', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'ServiceAccount', 'WasmPlugin']);
    assert.equal(docs.find((d) => d.kind === 'Deployment')!.metadata.namespace, 'sec');
    // mTLS to the server by default: ext_proc goes through the chart's own cluster (Istio's SDS certificates).
    assert.match(r.stdout, /cluster_name: meshward-ext-proc-mtls/);
    assert.match(r.stdout, /spiffe:\/\/cluster\.local\/ns\/sec\/sa\/meshward/);
  });

  test('a values file is merged over the defaults; a bad one is a usage error', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-render-'));
    try {
      const values = path.join(dir, 'values.yaml');
      writeFileSync(values, 'extProc: { gateway: true }\nwasm: { enabled: false }\n');
      const docs = parseManifests(meshward('render', '-n', 'sec', '-f', values).stdout);
      assert.equal(docs.some((d) => d.kind === 'WasmPlugin'), false);
      const ef = docs.find((d) => d.kind === 'EnvoyFilter')!;
      const patches = (ef.spec as { configPatches: { applyTo: string; match: { context: string } }[] }).configPatches;
      assert.deepEqual(patches.filter((p) => p.applyTo === 'HTTP_FILTER').map((p) => p.match.context), ['SIDECAR_INBOUND', 'GATEWAY']);
      writeFileSync(values, '- a list\n');
      const bad = meshward('render', '-n', 'sec', '-f', values);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /must be a YAML mapping/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(meshward('render').code, 2, '--namespace is required');
  });
});
