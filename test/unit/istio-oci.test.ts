// Issue #7: the filter module as an OCI image layout in the Wasm image spec's "compat" variant, the
// format Istio's WasmPlugin fetcher accepts (one tar+gzip layer holding plugin.wasm).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { buildWasmOci } from '../../scripts/build-wasm-oci.ts';
import { DEFAULT_WASM_FILE } from '../../extproc/src/local/mesh.ts';

type Descriptor = { mediaType: string; digest: string; size: number; annotations?: Record<string, string> };
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('wasm OCI artifact', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'meshward-oci-test-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Reads a blob and checks it against its descriptor, as a registry client would. */
  function blob(layout: string, d: Descriptor): Buffer {
    const b = readFileSync(path.join(layout, 'blobs', 'sha256', d.digest.replace(/^sha256:/, '')));
    assert.equal(`sha256:${sha256(b)}`, d.digest, 'content matches its digest');
    assert.equal(b.length, d.size, 'size matches');
    return b;
  }

  test('index -> manifest -> config and one layer whose only file is plugin.wasm, byte-identical to the build', () => {
    const layout = path.join(dir, 'a');
    const r = buildWasmOci(DEFAULT_WASM_FILE, layout, '0.1.0');
    assert.deepEqual(JSON.parse(readFileSync(path.join(layout, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
    assert.equal(index.manifests.length, 1);
    assert.equal(index.manifests[0]!.annotations?.['org.opencontainers.image.ref.name'], '0.1.0');
    assert.equal(index.manifests[0]!.digest, r.manifestDigest);
    const manifest = JSON.parse(blob(layout, index.manifests[0]!).toString()) as { mediaType: string; config: Descriptor; layers: Descriptor[]; annotations: Record<string, string> };
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(manifest.annotations['module.wasm.image/variant'], 'compat', 'required for the OCI layer media type');
    assert.equal(manifest.config.mediaType, 'application/vnd.oci.image.config.v1+json');
    assert.equal(manifest.layers.length, 1, 'exactly one layer');
    assert.equal(manifest.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    const layer = blob(layout, manifest.layers[0]!);
    const config = JSON.parse(blob(layout, manifest.config).toString()) as { rootfs: { diff_ids: string[] } };
    assert.deepEqual(config.rootfs.diff_ids, [`sha256:${sha256(gunzipSync(layer))}`]);
    const layerFile = path.join(dir, 'layer.tar.gz');
    execFileSync('sh', ['-c', `cat > '${layerFile}'`], { input: layer });
    assert.deepEqual(execFileSync('tar', ['-tzf', layerFile], { encoding: 'utf8' }).trim().split('\n'), ['plugin.wasm']);
    const module = execFileSync('tar', ['-xzOf', layerFile, 'plugin.wasm']);
    assert.ok(module.equals(readFileSync(DEFAULT_WASM_FILE)), 'plugin.wasm is the built filter');
    assert.equal(r.moduleSha256, sha256(module), 'the sha256 to put in WasmPlugin.spec.sha256');
    assert.equal(readdirSync(path.join(layout, 'blobs', 'sha256')).length, 3);
  });

  test('deterministic: the same module gives the same digests', () => {
    const a = buildWasmOci(DEFAULT_WASM_FILE, path.join(dir, 'b'), '0.1.0');
    const b = buildWasmOci(DEFAULT_WASM_FILE, path.join(dir, 'c'), '0.1.0');
    assert.equal(a.manifestDigest, b.manifestDigest);
  });
});
