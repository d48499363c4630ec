// The filter reports its Wasm linear memory as gauges: at configure, on every tick and every 4096
// requests, so Envoy's /stats shows each VM's memory and the largest of them (the benchmarks watch
// it stay flat).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProxyWasmHost, SharedData, requestHeaders } from '../support/proxy-wasm-host.ts';

const MAX = 'meshward_filter_wasm_memory_bytes';
const vm = (i: number) => `meshward_filter_vm${i}_wasm_memory_bytes`;

test('the memory gauges hold the linear memory size, set at configure and on every tick', async () => {
  const host = await ProxyWasmHost.load();
  assert.equal(host.configure({}), true);
  assert.equal(host.metricType(MAX), 1, 'a gauge, not a counter');
  assert.equal(host.metricType(vm(0)), 1);
  assert.equal(host.counter(MAX), host.memoryBytes);
  assert.equal(host.counter(vm(0)), host.memoryBytes);
  assert.equal(host.counter(MAX) % 65536, 0);
  assert.equal(host.tickPeriodMs, 1000, 'ticks run without a refresh too, so the gauges stay current');
  // A 1 MiB header value makes the VM grow its memory; the next tick reports the new size.
  const before = host.memoryBytes;
  host.request({ headers: requestHeaders('GET', '/x', [['x-api-key', Buffer.alloc(1 << 20, 0x61)]]) });
  assert.ok(host.memoryBytes > before, 'memory grew');
  assert.equal(host.counter(vm(0)), before, 'not reported on every request');
  host.tick();
  assert.equal(host.counter(vm(0)), host.memoryBytes);
  assert.equal(host.counter(MAX), host.memoryBytes);
});

test('between ticks the gauges follow growth every 4096 requests', async () => {
  const host = await ProxyWasmHost.load();
  assert.equal(host.configure({}), true);
  const before = host.memoryBytes;
  host.request({ headers: requestHeaders('GET', '/x', [['x-api-key', Buffer.alloc(1 << 20, 0x61)]]) });
  const grown = host.memoryBytes;
  assert.ok(grown > before);
  for (let i = 0; i < 4094; i++) host.request({ headers: requestHeaders('GET', '/x') });
  assert.equal(host.counter(vm(0)), before, '4095 requests: not yet');
  host.request({ headers: requestHeaders('GET', '/x') });
  assert.equal(host.counter(vm(0)), host.memoryBytes, 'the 4096th request reports');
  assert.ok(host.counter(MAX) >= grown);
});

test('each VM of one Envoy gets its own bounded gauge name (vm0..vm15, then reused)', async () => {
  const shared = new SharedData();
  const names: string[] = [];
  for (let i = 0; i < 18; i++) {
    const host = await ProxyWasmHost.load(undefined, shared);
    assert.equal(host.configure({}), true);
    const own = host.metricNames.filter((n) => /^meshward_filter_vm\d+_wasm_memory_bytes$/.test(n));
    assert.equal(own.length, 1);
    names.push(own[0]!);
    assert.equal(host.configure({ version: 'again' }), true);
    assert.equal(host.metricNames.filter((n) => n.startsWith('meshward_filter_vm')).length, 1, 'a reconfiguration keeps the VM its name');
  }
  assert.deepEqual(names.slice(0, 16), Array.from({ length: 16 }, (_, i) => vm(i)));
  assert.deepEqual(names.slice(16), [vm(0), vm(1)], 'the 17th VM (e.g. after reloads) reuses index 0');
});
