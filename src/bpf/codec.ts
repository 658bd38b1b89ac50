// codec.ts: how typed maps turn keys and values into Buffers and back.
// Pure: never imports the addon. The generated layouts (layouts.generated.ts)
// provide codecs for every xd_* struct; the primitives below cover scalar
// keys and values (array indexes, ring slots).
//
// Byte order: map keys and values are host order (x86-64 and arm64: little
// endian) except fields the C header types as __be16/__be32, which the
// generated codecs keep in network order.
//
// u64 is a bigint everywhere (counters may pass 2^53 in theory; bigint is
// exact). Use Number(x) where a float is fine (rates, charts).

export interface Codec<T> {
  /** Bytes of one encoded value (the map's key_size or value_size). */
  readonly size: number;
  /** Encodes v into buf at offset (default: a new Buffer of `size` bytes). */
  encode(v: T, buf?: Buffer, offset?: number): Buffer;
  /** Decodes `size` bytes of buf at offset. */
  decode(buf: Buffer, offset?: number): T;
}

function checkInt(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new TypeError(`${name}: expected an integer from 0 to ${max}, received ${typeof v} ${String(v)}`);
  }
}

/** A ring buffer map's key and value: it has none (records are read with the addon's ring buffer reader, not looked up). */
export const none: Codec<never> = {
  size: 0,
  encode() {
    throw new TypeError('a ring buffer map has no keys or values to encode: read its records instead');
  },
  decode() {
    throw new TypeError('a ring buffer map has no keys or values to decode: read its records instead');
  },
};

export const u32: Codec<number> = {
  size: 4,
  encode(v, buf = Buffer.alloc(4), offset = 0) {
    checkInt('u32', v, 0xffffffff);
    buf.writeUInt32LE(v, offset);
    return buf;
  },
  decode: (buf, offset = 0) => buf.readUInt32LE(offset),
};

export const u64: Codec<bigint> = {
  size: 8,
  encode(v, buf = Buffer.alloc(8), offset = 0) {
    if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) {
      throw new TypeError(`u64: expected a bigint from 0n to 2n**64n-1n, received ${typeof v} ${String(v)}`);
    }
    buf.writeBigUInt64LE(v, offset);
    return buf;
  },
  decode: (buf, offset = 0) => buf.readBigUInt64LE(offset),
};

/** Raw bytes of a fixed size (opaque keys, tests). */
export function raw(size: number): Codec<Buffer> {
  return {
    size,
    encode(v, buf = Buffer.alloc(size), offset = 0) {
      if (!Buffer.isBuffer(v) || v.length !== size) {
        throw new TypeError(
          `raw(${size}): expected a Buffer of ${size} bytes, received ${Buffer.isBuffer(v) ? `Buffer of ${v.length} bytes` : typeof v}`,
        );
      }
      v.copy(buf, offset);
      return buf;
    },
    decode: (buf, offset = 0) => Buffer.from(buf.subarray(offset, offset + size)),
  };
}

/** Builds a codec from a generated encode/decode pair (e.g. encodeXdService/decodeXdService). */
export function structCodec<T>(size: number, encode: (v: T) => Buffer, decode: (b: Buffer) => T): Codec<T> {
  return {
    size,
    encode(v, buf, offset = 0) {
      const b = encode(v);
      if (!buf) return b;
      b.copy(buf, offset);
      return buf;
    },
    decode: (buf, offset = 0) =>
      decode(offset === 0 && buf.length === size ? buf : buf.subarray(offset, offset + size)),
  };
}

/**
 * Sums per-CPU values: numbers and bigints are added field by field (nested
 * plain objects too); other fields are taken from the first CPU.
 */
export function sumPerCpu<T>(values: readonly T[]): T {
  if (values.length === 0)
    throw new TypeError('sumPerCpu: expected at least one per-CPU value, received an empty array');
  const add = (a: unknown, b: unknown): unknown => {
    if (typeof a === 'bigint' && typeof b === 'bigint') return a + b;
    if (typeof a === 'number' && typeof b === 'number') return a + b;
    if (a && b && typeof a === 'object' && typeof b === 'object' && !Buffer.isBuffer(a) && !Array.isArray(a)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(a))
        out[k] = add((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]);
      return out;
    }
    return a;
  };
  return values.slice(1).reduce<unknown>((acc, v) => add(acc, v), values[0]) as T;
}
