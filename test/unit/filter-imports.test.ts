// The filter must import nothing Envoy lacks: a missing import makes Envoy reject the module. Stricter
// than filter-module.test.ts: every env import must be one Envoy registers for ABI 0.2.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FILTER_WASM } from '../support/proxy-wasm-host.ts';

// What proxy-wasm-cpp-host registers for ABI 0.2.1 (env.proxy_*), per ../shared/docs/envoy-integration-notes.md §3.
const ENVOY_ABI_0_2_1 = new Set([
  'proxy_log', 'proxy_get_log_level', 'proxy_get_header_map_value', 'proxy_get_header_map_pairs', 'proxy_set_header_map_pairs',
  'proxy_add_header_map_value', 'proxy_replace_header_map_value', 'proxy_remove_header_map_value', 'proxy_get_header_map_size',
  'proxy_get_buffer_bytes', 'proxy_get_buffer_status', 'proxy_set_buffer_bytes', 'proxy_get_property', 'proxy_set_property',
  'proxy_continue_stream', 'proxy_close_stream', 'proxy_send_local_response', 'proxy_set_shared_data', 'proxy_get_shared_data',
  'proxy_register_shared_queue', 'proxy_resolve_shared_queue', 'proxy_enqueue_shared_queue', 'proxy_dequeue_shared_queue',
  'proxy_http_call', 'proxy_grpc_call', 'proxy_grpc_stream', 'proxy_grpc_send', 'proxy_grpc_cancel', 'proxy_grpc_close',
  'proxy_get_status', 'proxy_set_tick_period_milliseconds', 'proxy_define_metric', 'proxy_increment_metric', 'proxy_record_metric',
  'proxy_get_metric', 'proxy_set_effective_context', 'proxy_done', 'proxy_call_foreign_function',
]);

test('the filter imports only env.proxy_* calls of ABI 0.2.1 and wasi_snapshot_preview1.*', () => {
  const module = new WebAssembly.Module(readFileSync(FILTER_WASM));
  const imports = WebAssembly.Module.imports(module);
  assert.ok(imports.length > 0);
  for (const i of imports) {
    assert.equal(i.kind, 'function', `${i.module}.${i.name} is a ${i.kind} import (Envoy accepts functions only)`);
    const ok = (i.module === 'env' && ENVOY_ABI_0_2_1.has(i.name)) || i.module === 'wasi_snapshot_preview1';
    assert.ok(ok, `unexpected import ${i.module}.${i.name}`);
  }
});
