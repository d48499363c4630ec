// Caps that bound the CPU and memory one body can cost. Defaults are conservative; policy (#7)
// may override them per namespace or operation.

export interface BodyLimits {
  /** Bytes of the (possibly compressed) body inspected; the rest is ignored and reported. */
  maxBodyBytes: number;
  /** Bytes a compressed body may expand to; beyond it decompression stops (bomb). */
  maxDecompressedBytes: number;
  /** Nesting depth of JSON arrays/objects. */
  maxJsonDepth: number;
  /** Number of JSON values (objects, arrays, scalars) in one body. */
  maxJsonNodes: number;
  /** Form fields or multipart parts kept. */
  maxFields: number;
  /** Characters kept per form or multipart field value. */
  maxFieldChars: number;
}

export const DEFAULT_BODY_LIMITS: Readonly<BodyLimits> = Object.freeze({
  maxBodyBytes: 1024 * 1024,
  maxDecompressedBytes: 4 * 1024 * 1024,
  maxJsonDepth: 64,
  maxJsonNodes: 100_000,
  maxFields: 1000,
  maxFieldChars: 64 * 1024,
});
