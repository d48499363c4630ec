// A small proxy-wasm ABI 0.2.1 host in Node for logic tests of the compiled filter (build/filter.wasm).
// It implements exactly the imports the filter uses, with Envoy's semantics where they matter
// (host-allocated return buffers, pairs serialization, shared data CAS, NotFound for absent values).
// Real-Envoy behaviour is proven separately in test/e2e/filter-*.test.ts.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../extproc/src/local/envoy-binary.ts';

export const FILTER_WASM = process.env.MESHWARD_FILTER_WASM ?? path.join(PROJECT_ROOT, 'build', 'filter.wasm');

const Status = { Ok: 0, NotFound: 1, BadArgument: 2, CasMismatch: 8 } as const;
const ROOT_CONTEXT = 1;

/** Process-wide shared data (shared by every VM of one Envoy), keyed like Envoy: key -> value + CAS. */
export class SharedData {
  readonly entries = new Map<string, { value: Buffer; cas: number }>();
  #nextCas = 1;
  get(key: string): { value: Buffer; cas: number } | undefined { return this.entries.get(key); }
  set(key: string, value: Buffer, cas: number): number {
    const cur = this.entries.get(key);
    if (cas !== 0 && cur !== undefined && cur.cas !== cas) return Status.CasMismatch;
    this.entries.set(key, { value: Buffer.from(value), cas: this.#nextCas++ });
    return Status.Ok;
  }
}

export interface HttpCall { token: number; cluster: string; headers: [string, string][]; timeoutMs: number }
export interface LocalResponse { status: number; details: string; body: string; headers: [string, string][] }

export interface RequestInput {
  /** Request headers in order; the host returns the first value of a name, as Envoy does. */
  headers: [string, string | Buffer][];
  /** Properties by path segments joined with "\0" (e.g. "connection\0uri_san_peer_certificate"). */
  properties?: Record<string, string | Buffer>;
  /** Bytes proxy_get_header_map_pairs returns instead of the serialized `headers` (malformed maps). */
  rawHeaderMap?: Buffer;
}

export interface RequestResult {
  action: number;
  /** The capture record the filter wrote to filter state wasm.meshward (latin1, as ext_proc sees it). */
  record: string | undefined;
  localResponse: LocalResponse | undefined;
}

export const DEFAULT_PROPERTIES: Record<string, string | Buffer> = {
  'connection\0uri_san_peer_certificate': 'spiffe://cluster.local/ns/default/sa/client',
  'connection\0mtls': Buffer.from([1]),
  'source\0address': '10.1.2.3:41234',
};

export class ProxyWasmHost {
  readonly logs: { level: number; message: string }[] = [];
  readonly httpCalls: HttpCall[] = [];
  /** Host (env.*) calls the filter made during the last request(), by import name. */
  readonly hostCalls = new Map<string, number>();
  /** Property paths (segments joined with "\0") the filter read during the last request(). */
  readonly propertyReads: string[] = [];
  tickPeriodMs = 0;
  /** Wall clock the filter sees (WASI clock_time_get), in nanoseconds. */
  nowNanos = 1_700_000_000_000_000_000n;
  readonly shared: SharedData;
  readonly #metricNames: string[] = [];
  readonly #metricValues: number[] = [];
  readonly #metricTypes: number[] = [];
  #exports!: Record<string, (...args: number[]) => number>;
  #memory!: WebAssembly.Memory;
  #pluginConfig = Buffer.alloc(0);
  #callBody = Buffer.alloc(0);
  #callHeaders: [string, string][] = [];
  #headers: [string, Buffer][] = [];
  #rawHeaderMap: Buffer | undefined;
  #properties: Map<string, Buffer> = new Map();
  #filterState = new Map<string, Buffer>();
  #localResponse: LocalResponse | undefined;
  #nextContext = 2;
  #nextToken = 1;

  private constructor(shared: SharedData) { this.shared = shared; }

  static async load(file = FILTER_WASM, shared = new SharedData()): Promise<ProxyWasmHost> {
    const host = new ProxyWasmHost(shared);
    const module = await WebAssembly.compile(readFileSync(file));
    const instance = await WebAssembly.instantiate(module, host.#imports());
    host.#exports = instance.exports as unknown as Record<string, (...args: number[]) => number>;
    host.#memory = instance.exports.memory as WebAssembly.Memory;
    host.#exports._initialize!();
    return host;
  }

  // --- what tests drive ---------------------------------------------------------------------------

  /** Starts the VM and configures the root context; returns proxy_on_configure's verdict. */
  configure(config: string | object, rootProperties?: Record<string, string | Buffer>): boolean {
    this.#pluginConfig = Buffer.from(typeof config === 'string' ? config : JSON.stringify(config));
    // Properties the root context sees (e.g. Envoy's node metadata); requests set their own.
    if (rootProperties) this.#properties = new Map(Object.entries(rootProperties).map(([k, v]) => [k, Buffer.isBuffer(v) ? v : Buffer.from(v)]));
    this.#exports.proxy_on_context_create!(ROOT_CONTEXT, 0);
    this.#exports.proxy_on_vm_start!(ROOT_CONTEXT, 0);
    return this.#exports.proxy_on_configure!(ROOT_CONTEXT, this.#pluginConfig.length) === 1;
  }

  request(input: RequestInput): RequestResult {
    this.#headers = input.headers.map(([k, v]) => [k, Buffer.isBuffer(v) ? v : Buffer.from(v)]);
    this.#rawHeaderMap = input.rawHeaderMap;
    this.hostCalls.clear();
    this.propertyReads.length = 0;
    const props = input.properties ?? DEFAULT_PROPERTIES;
    this.#properties = new Map(Object.entries(props).map(([k, v]) => [k, Buffer.isBuffer(v) ? v : Buffer.from(v)]));
    this.#filterState.clear();
    this.#localResponse = undefined;
    const ctx = this.#nextContext++;
    this.#exports.proxy_on_context_create!(ctx, ROOT_CONTEXT);
    const action = this.#exports.proxy_on_request_headers!(ctx, this.#headers.length, 1);
    this.#exports.proxy_on_done!(ctx);
    this.#exports.proxy_on_delete!(ctx);
    return { action, record: this.#filterState.get('meshward')?.toString('latin1'), localResponse: this.#localResponse };
  }

  tick(): void { this.#exports.proxy_on_tick!(ROOT_CONTEXT); }

  /** Delivers the response to a pending proxy_http_call (status undefined = the call failed). */
  respond(call: HttpCall, status: number | undefined, body = ''): void {
    this.#callHeaders = status === undefined ? [] : [[':status', String(status)]];
    this.#callBody = Buffer.from(body);
    this.#exports.proxy_on_http_call_response!(ROOT_CONTEXT, call.token, this.#callHeaders.length, this.#callBody.length, 0);
  }

  counter(name: string): number {
    const i = this.#metricNames.indexOf(name);
    return i === -1 ? 0 : this.#metricValues[i]!;
  }

  get metricNames(): readonly string[] { return this.#metricNames; }
  /** Metric type as defined by the filter (0 counter, 1 gauge, 2 histogram); undefined when not defined. */
  metricType(name: string): number | undefined {
    const i = this.#metricNames.indexOf(name);
    return i === -1 ? undefined : this.#metricTypes[i];
  }
  get memoryBytes(): number { return this.#memory.buffer.byteLength; }

  // --- ABI ----------------------------------------------------------------------------------------

  #bytes(ptr: number, len: number): Buffer {
    return Buffer.from(this.#memory.buffer, ptr, len);
  }

  #string(ptr: number, len: number): string { return this.#bytes(ptr, len).toString('utf8'); }

  /** Copies `data` into guest memory allocated by the guest, writes ptr/len to the out-params. */
  #returnBytes(data: Buffer, retPtrPtr: number, retSizePtr: number): void {
    const ptr = data.length === 0 ? 0 : this.#exports.proxy_on_memory_allocate!(data.length);
    if (data.length > 0) new Uint8Array(this.#memory.buffer, ptr, data.length).set(data);
    const view = new DataView(this.#memory.buffer);
    view.setUint32(retPtrPtr, ptr, true);
    view.setUint32(retSizePtr, data.length, true);
  }

  #parsePairs(ptr: number, size: number): [string, string][] {
    if (size === 0) return [];
    const view = new DataView(this.#memory.buffer, ptr, size);
    const n = view.getUint32(0, true);
    const lens: [number, number][] = [];
    for (let i = 0; i < n; i++) lens.push([view.getUint32(4 + i * 8, true), view.getUint32(8 + i * 8, true)]);
    let off = ptr + 4 + n * 8;
    const out: [string, string][] = [];
    for (const [kl, vl] of lens) {
      const k = this.#string(off, kl); off += kl + 1;
      const v = this.#string(off, vl); off += vl + 1;
      out.push([k, v]);
    }
    return out;
  }

  #imports(): WebAssembly.Imports {
    const env = this.#envImports();
    const counted: Record<string, (...args: never[]) => unknown> = {};
    for (const [name, fn] of Object.entries(env)) {
      counted[name] = (...args: never[]) => { this.hostCalls.set(name, (this.hostCalls.get(name) ?? 0) + 1); return fn(...args); };
    }
    return {
      env: counted,
      wasi_snapshot_preview1: {
        clock_time_get: (_id: number, _precision: bigint, retPtr: number) => {
          this.hostCalls.set('clock_time_get', (this.hostCalls.get('clock_time_get') ?? 0) + 1);
          new DataView(this.#memory.buffer).setBigUint64(retPtr, this.nowNanos, true);
          return 0;
        },
        random_get: (ptr: number, len: number) => {
          this.hostCalls.set('random_get', (this.hostCalls.get('random_get') ?? 0) + 1);
          crypto.getRandomValues(new Uint8Array(this.#memory.buffer, ptr, len));
          return 0;
        },
      },
    };
  }

  #envImports(): Record<string, (...args: never[]) => unknown> {
    const u32 = (ptr: number, value: number): void => new DataView(this.#memory.buffer).setUint32(ptr, value >>> 0, true);
    return {
      proxy_log: (level: number, ptr: number, len: number) => { this.logs.push({ level, message: this.#string(ptr, len) }); return Status.Ok; },
      proxy_get_property: (pathPtr: number, pathLen: number, retPtr: number, retLen: number) => {
        const key = this.#bytes(pathPtr, pathLen).toString('latin1');
      this.propertyReads.push(key);
      const v = this.#properties.get(key);
        if (v === undefined) return Status.NotFound;
        this.#returnBytes(v, retPtr, retLen);
        return Status.Ok;
      },
      proxy_set_property: (pathPtr: number, pathLen: number, valPtr: number, valLen: number) => {
        this.#filterState.set(this.#string(pathPtr, pathLen), Buffer.from(this.#bytes(valPtr, valLen)));
        return Status.Ok;
      },
      proxy_get_header_map_value: (mapType: number, keyPtr: number, keyLen: number, retPtr: number, retLen: number) => {
        const key = this.#string(keyPtr, keyLen).toLowerCase();
        const map: [string, Buffer][] = mapType === 0 ? this.#headers
          : mapType === 6 ? this.#callHeaders.map(([k, v]) => [k, Buffer.from(v)]) : [];
        const hit = map.find(([k]) => k.toLowerCase() === key);
        if (!hit) return Status.NotFound;
        this.#returnBytes(hit[1], retPtr, retLen);
        return Status.Ok;
      },
      // Envoy's codecs lowercase header names; the map keeps order and duplicates.
      proxy_get_header_map_pairs: (mapType: number, retPtr: number, retLen: number) => {
        const map: [string, Buffer][] = mapType === 0 ? this.#headers
          : mapType === 6 ? this.#callHeaders.map(([k, v]) => [k, Buffer.from(v)]) : [];
        const raw = mapType === 0 && this.#rawHeaderMap !== undefined ? this.#rawHeaderMap
          : serializePairs(map.map(([k, v]) => [k.toLowerCase(), v] as const));
        this.#returnBytes(raw, retPtr, retLen);
        return Status.Ok;
      },
      proxy_get_buffer_bytes: (type: number, start: number, max: number, retPtr: number, retLen: number) => {
        const buf = type === 7 ? this.#pluginConfig : type === 4 ? this.#callBody : undefined;
        if (buf === undefined) return Status.NotFound;
        this.#returnBytes(buf.subarray(start, start + max), retPtr, retLen);
        return Status.Ok;
      },
      proxy_define_metric: (type: number, namePtr: number, nameLen: number, retId: number) => {
        const name = this.#string(namePtr, nameLen);
        let id = this.#metricNames.indexOf(name);
        if (id === -1) { id = this.#metricNames.length; this.#metricNames.push(name); this.#metricValues.push(0); this.#metricTypes.push(type); }
        u32(retId, id);
        return Status.Ok;
      },
      proxy_increment_metric: (id: number, delta: bigint) => {
        if (id >= this.#metricValues.length) return Status.NotFound;
        this.#metricValues[id]! += Number(delta);
        return Status.Ok;
      },
      proxy_get_metric: (id: number, retPtr: number) => {
        if (id >= this.#metricValues.length) return Status.NotFound;
        new DataView(this.#memory.buffer).setBigUint64(retPtr, BigInt(this.#metricValues[id]!), true);
        return Status.Ok;
      },
      // Gauges (type 1) take the recorded value; Envoy refuses recording a counter.
      proxy_record_metric: (id: number, value: bigint) => {
        if (id >= this.#metricValues.length || this.#metricTypes[id] !== 1) return Status.BadArgument;
        this.#metricValues[id] = Number(value);
        return Status.Ok;
      },
      proxy_send_local_response: (status: number, dPtr: number, dLen: number, bPtr: number, bLen: number, hPtr: number, hLen: number, _grpc: number) => {
        this.#localResponse = { status, details: this.#string(dPtr, dLen), body: this.#string(bPtr, bLen), headers: this.#parsePairs(hPtr, hLen) };
        return Status.Ok;
      },
      proxy_set_tick_period_milliseconds: (ms: number) => { this.tickPeriodMs = ms; return Status.Ok; },
      proxy_http_call: (cPtr: number, cLen: number, hPtr: number, hLen: number, _b: number, _bl: number, _t: number, _tl: number, timeout: number, retToken: number) => {
        const token = this.#nextToken++;
        this.httpCalls.push({ token, cluster: this.#string(cPtr, cLen), headers: this.#parsePairs(hPtr, hLen), timeoutMs: timeout });
        u32(retToken, token);
        return Status.Ok;
      },
      proxy_get_shared_data: (kPtr: number, kLen: number, retPtr: number, retLen: number, retCas: number) => {
        const e = this.shared.get(this.#string(kPtr, kLen));
        if (!e) return Status.NotFound;
        this.#returnBytes(e.value, retPtr, retLen);
        u32(retCas, e.cas);
        return Status.Ok;
      },
      proxy_set_shared_data: (kPtr: number, kLen: number, vPtr: number, vLen: number, cas: number) =>
        this.shared.set(this.#string(kPtr, kLen), Buffer.from(this.#bytes(vPtr, vLen)), cas),
    };
  }
}

/** proxy-wasm pairs serialization, as Envoy returns a string map property (e.g. node metadata LABELS). */
export function propertyPairs(map: Record<string, string>): Buffer {
  return serializePairs(Object.entries(map));
}

/** proxy-wasm pairs serialization of an ordered list (duplicates kept): u32 count, count x (u32 name
 *  length, u32 value length), then each name and value NUL-terminated. */
export function serializePairs(pairs: readonly (readonly [string | Buffer, string | Buffer])[]): Buffer {
  const bufs = pairs.map(([k, v]) => [Buffer.from(k), Buffer.from(v)] as const);
  const head = Buffer.alloc(4 + bufs.length * 8);
  head.writeUInt32LE(bufs.length, 0);
  bufs.forEach(([k, v], i) => { head.writeUInt32LE(k.length, 4 + i * 8); head.writeUInt32LE(v.length, 8 + i * 8); });
  const nul = Buffer.alloc(1);
  return Buffer.concat([head, ...bufs.flatMap(([k, v]) => [k, nul, v, nul])]);
}

/** Header list for a request through the filter. */
export function requestHeaders(method: string, pathAndQuery: string, extra: [string, string | Buffer][] = [], authority = 'orders.shop'): [string, string | Buffer][] {
  return [[':method', method], [':path', pathAndQuery], [':authority', authority], ...extra, ['x-request-id', 'req-1']];
}
