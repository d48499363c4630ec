// Packs build/filter.wasm as an OCI image layout that Istio's WasmPlugin accepts: the "compat"
// variant of the Wasm image spec (one tar+gzip layer holding plugin.wasm, manifest annotation
// module.wasm.image/variant=compat), so any OCI tool can push it, e.g.
//   skopeo copy oci:build/filter-oci:0.1.0 docker://REGISTRY/meshward/filter:0.1.0
// Deterministic: the same module gives the same digests. Usage: node scripts/build-wasm-oci.ts [wasm] [outDir] [tag]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

export const WASM_VARIANT_ANNOTATION = 'module.wasm.image/variant';
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json';
const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

export interface OciBuildResult {
  outDir: string;
  manifestDigest: string;
  /** sha256 of plugin.wasm: the value for WasmPlugin.spec.sha256. */
  moduleSha256: string;
}

export function buildWasmOci(wasmFile: string, outDir: string, tag: string): OciBuildResult {
  const module = readFileSync(wasmFile);
  const work = mkdtempSync(path.join(os.tmpdir(), 'meshward-oci-'));
  try {
    copyFileSync(wasmFile, path.join(work, 'plugin.wasm'));
    const tar = execFileSync('tar', ['--create', '--file=-', '--format=ustar', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--mode=0644', '-C', work, 'plugin.wasm']);
    const layer = gzipSync(tar, { level: 9 });
    const config = Buffer.from(JSON.stringify({
      architecture: 'wasm', os: 'wasip1', created: '1970-01-01T00:00:00Z',
      rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(tar)}`] }, config: {},
    }));
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: { mediaType: CONFIG_TYPE, digest: `sha256:${sha256(config)}`, size: config.length },
      layers: [{ mediaType: LAYER_TYPE, digest: `sha256:${sha256(layer)}`, size: layer.length }],
      annotations: { [WASM_VARIANT_ANNOTATION]: 'compat' },
    }));
    rmSync(outDir, { recursive: true, force: true });
    const blobs = path.join(outDir, 'blobs', 'sha256');
    mkdirSync(blobs, { recursive: true });
    for (const blob of [layer, config, manifest]) writeFileSync(path.join(blobs, sha256(blob)), blob);
    writeFileSync(path.join(outDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    writeFileSync(path.join(outDir, 'index.json'), JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: MANIFEST_TYPE, digest: `sha256:${sha256(manifest)}`, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }));
    return { outDir, manifestDigest: `sha256:${sha256(manifest)}`, moduleSha256: sha256(module) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const root = path.resolve(import.meta.dirname, '..');
  const [wasm = path.join(root, 'build', 'filter.wasm'), out = path.join(root, 'build', 'filter-oci'), tag = '0.1.0'] = process.argv.slice(2);
  const r = buildWasmOci(wasm, out, tag);
  console.log(`wasm OCI layout: ${r.outDir} (tag ${tag}, manifest ${r.manifestDigest}); WasmPlugin sha256: ${r.moduleSha256}`);
}
