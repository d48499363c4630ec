// The compiled filter module exports what the proxy-wasm 0.2.1 host looks up (its imports are
// checked in filter-imports.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DEFAULT_WASM_FILE } from '../../extproc/src/local/mesh.ts';

const module = new WebAssembly.Module(readFileSync(DEFAULT_WASM_FILE));

test('exports the ABI 0.2.1 marker, allocator, memory and an _initialize start', () => {
  const names = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  for (const required of ['proxy_abi_version_0_2_1', 'proxy_on_memory_allocate', 'memory', '_initialize', 'proxy_on_context_create', 'proxy_on_configure', 'proxy_on_request_headers']) {
    assert.ok(names.has(required), `missing export ${required}`);
  }
  assert.ok(!names.has('malloc'), 'an export named malloc would take precedence over proxy_on_memory_allocate');
  assert.equal([...names].filter((n) => n.startsWith('proxy_abi_version_')).length, 1, 'exactly one ABI version marker');
});
