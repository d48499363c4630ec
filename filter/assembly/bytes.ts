// A growable byte buffer reused across requests: grows (doubling) and never shrinks, so the hot
// path allocates nothing once buffers have reached their working size.

export class ByteBuffer {
  ptr: usize = 0;
  cap: usize = 0;
  len: usize = 0;

  reset(): void { this.len = 0; }

  ensure(extra: usize): void {
    const need = this.len + extra;
    if (need <= this.cap) return;
    let next = this.cap == 0 ? <usize>256 : this.cap * 2;
    while (next < need) next *= 2;
    this.ptr = this.ptr == 0 ? heap.alloc(next) : heap.realloc(this.ptr, next);
    this.cap = next;
  }

  push(b: u8): void {
    this.ensure(1);
    store<u8>(this.ptr + this.len, b);
    this.len++;
  }

  append(p: usize, n: usize): void {
    if (n == 0) return;
    this.ensure(n);
    memory.copy(this.ptr + this.len, p, n);
    this.len += n;
  }

  appendBuffer(b: ArrayBuffer): void { this.append(changetype<usize>(b), <usize>b.byteLength); }

  /** ASCII only (numbers, flags). */
  appendAscii(s: string): void {
    const n = <usize>s.length;
    this.ensure(n);
    for (let i: usize = 0; i < n; i++) store<u8>(this.ptr + this.len + i, <u8>s.charCodeAt(<i32>i));
    this.len += n;
  }

  toString(): string { return String.UTF8.decodeUnsafe(this.ptr, this.len); }
}

/** FNV-1a 32-bit over bytes, continuing from `h` (start with 0x811c9dc5). */
export function fnv1a(h: u32, p: usize, n: usize): u32 {
  for (let i: usize = 0; i < n; i++) {
    h ^= <u32>load<u8>(p + i);
    h *= 0x01000193;
  }
  return h;
}

/** FNV-1a 64-bit over bytes (from the standard offset basis): names a token bucket in its slot. */
export function fnv1a64(p: usize, n: usize): u64 {
  let h: u64 = 0xcbf29ce484222325;
  for (let i: usize = 0; i < n; i++) {
    h ^= <u64>load<u8>(p + i);
    h *= 0x100000001b3;
  }
  return h;
}

export function startsWithIgnoreCase(p: usize, n: usize, prefix: string): bool {
  const m = <usize>prefix.length;
  if (n < m) return false;
  for (let i: usize = 0; i < m; i++) {
    let c = <u32>load<u8>(p + i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c != <u32>prefix.charCodeAt(<i32>i)) return false;
  }
  return true;
}
