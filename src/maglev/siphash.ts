// SipHash (Aumasson & Bernstein) as the Linux kernel implements it in lib/siphash.c:
// SipHash-2-4 (`siphash`) and, on 64-bit kernels, `hsiphash` = SipHash-1-3 truncated
// to its low 32 bits ("on 64-bit, we make HalfSipHash1-3 actually be SipHash1-3").
// IPVS's mh scheduler hashes with hsiphash, so xdirector needs the exact function to
// build the same table and pick the same real server as the kernel.
//
// 64-bit words are kept as (hi, lo) pairs of uint32 so no BigInt is needed on the hot
// path; the key is two 64-bit words as in the kernel's `siphash_key_t`/`hsiphash_key_t`
// (64-bit) and the message is read little-endian, 8 bytes at a time.
// Pure: no I/O, no imports.

/** A 128-bit SipHash key as two 64-bit words, like the kernel's `{ u64 key[2]; }`. */
export interface SipKey {
  k0: bigint;
  k1: bigint;
}

const MASK64 = (1n << 64n) - 1n;

/** Key words as uint32: [k0hi, k0lo, k1hi, k1lo]. */
export type SipKeyWords = readonly [number, number, number, number];

export function sipKeyWords(key: SipKey): SipKeyWords {
  const k0 = BigInt.asUintN(64, key.k0);
  const k1 = BigInt.asUintN(64, key.k1);
  return [Number(k0 >> 32n), Number(k0 & 0xffffffffn), Number(k1 >> 32n), Number(k1 & 0xffffffffn)];
}

/**
 * SipHash-c-d of `data` under `key`; returns the 64-bit result as [hi, lo] uint32 words.
 * c = compression rounds, d = finalisation rounds (2-4: siphash; 1-3: 64-bit hsiphash).
 * One function with the state in locals (v0..v3 as hi/lo pairs) and SIPROUND inlined:
 * the ring builders hash thousands of keys and this is their cold-start cost.
 */
export function sipHashWords(data: Uint8Array, key: SipKeyWords, c: number, d: number): [number, number] {
  // PREAMBLE: "somepseudorandomlygeneratedbytes" xored with the key (v0,v2 ^= k0; v1,v3 ^= k1).
  let v0h = (0x736f6d65 ^ key[0]) >>> 0,
    v0l = (0x70736575 ^ key[1]) >>> 0;
  let v1h = (0x646f7261 ^ key[2]) >>> 0,
    v1l = (0x6e646f6d ^ key[3]) >>> 0;
  let v2h = (0x6c796765 ^ key[0]) >>> 0,
    v2l = (0x6e657261 ^ key[1]) >>> 0;
  let v3h = (0x74656462 ^ key[2]) >>> 0,
    v3l = (0x79746573 ^ key[3]) >>> 0;
  let t = 0,
    u = 0;
  const len = data.length;
  const whole = len - (len % 8);
  // b = len << 56 | the last 0..7 bytes, little-endian.
  let bh = ((len & 0xff) << 24) >>> 0;
  let bl = 0;
  for (let i = whole; i < len; i++) {
    const sh = (i - whole) * 8;
    if (sh < 32) bl = (bl | (data[i]! << sh)) >>> 0;
    else bh = (bh | (data[i]! << (sh - 32))) >>> 0;
  }
  // Blocks, then the final block b (rounds c), then finalisation (rounds d).
  for (let pos = 0; pos <= whole; pos += 8) {
    let mh: number, ml: number;
    if (pos < whole) {
      ml = (data[pos]! | (data[pos + 1]! << 8) | (data[pos + 2]! << 16) | (data[pos + 3]! << 24)) >>> 0;
      mh = (data[pos + 4]! | (data[pos + 5]! << 8) | (data[pos + 6]! << 16) | (data[pos + 7]! << 24)) >>> 0;
    } else {
      mh = bh;
      ml = bl;
    }
    v3h = (v3h ^ mh) >>> 0;
    v3l = (v3l ^ ml) >>> 0;
    const rounds = pos < whole ? c : c + 1 + d;
    for (let r = 0; r < rounds; r++) {
      if (pos === whole && r === c) {
        // end of the last compression: v0 ^= b; v2 ^= 0xff; then d finalisation rounds
        v0h = (v0h ^ mh) >>> 0;
        v0l = (v0l ^ ml) >>> 0;
        v2l = (v2l ^ 0xff) >>> 0;
        continue;
      }
      // SIPROUND (lib/siphash.c)
      // v0 += v1; v1 = rol64(v1, 13); v1 ^= v0; v0 = rol64(v0, 32);
      t = v0l + v1l;
      v0h = (v0h + v1h + (t > 0xffffffff ? 1 : 0)) >>> 0;
      v0l = t >>> 0;
      t = ((v1h << 13) | (v1l >>> 19)) >>> 0;
      v1l = ((v1l << 13) | (v1h >>> 19)) >>> 0;
      v1h = t;
      v1h = (v1h ^ v0h) >>> 0;
      v1l = (v1l ^ v0l) >>> 0;
      t = v0h;
      v0h = v0l;
      v0l = t;
      // v2 += v3; v3 = rol64(v3, 16); v3 ^= v2;
      t = v2l + v3l;
      v2h = (v2h + v3h + (t > 0xffffffff ? 1 : 0)) >>> 0;
      v2l = t >>> 0;
      t = ((v3h << 16) | (v3l >>> 16)) >>> 0;
      v3l = ((v3l << 16) | (v3h >>> 16)) >>> 0;
      v3h = t;
      v3h = (v3h ^ v2h) >>> 0;
      v3l = (v3l ^ v2l) >>> 0;
      // v0 += v3; v3 = rol64(v3, 21); v3 ^= v0;
      t = v0l + v3l;
      v0h = (v0h + v3h + (t > 0xffffffff ? 1 : 0)) >>> 0;
      v0l = t >>> 0;
      t = ((v3h << 21) | (v3l >>> 11)) >>> 0;
      v3l = ((v3l << 21) | (v3h >>> 11)) >>> 0;
      v3h = t;
      v3h = (v3h ^ v0h) >>> 0;
      v3l = (v3l ^ v0l) >>> 0;
      // v2 += v1; v1 = rol64(v1, 17); v1 ^= v2; v2 = rol64(v2, 32);
      t = v2l + v1l;
      v2h = (v2h + v1h + (t > 0xffffffff ? 1 : 0)) >>> 0;
      v2l = t >>> 0;
      t = ((v1h << 17) | (v1l >>> 15)) >>> 0;
      v1l = ((v1l << 17) | (v1h >>> 15)) >>> 0;
      v1h = t;
      v1h = (v1h ^ v2h) >>> 0;
      v1l = (v1l ^ v2l) >>> 0;
      t = v2h;
      v2h = v2l;
      v2l = t;
    }
    if (pos < whole) {
      v0h = (v0h ^ mh) >>> 0;
      v0l = (v0l ^ ml) >>> 0;
    }
  }
  u = (v0h ^ v1h ^ v2h ^ v3h) >>> 0;
  t = (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
  return [u, t];
}

/** The kernel's `siphash()` (SipHash-2-4), 64-bit result. */
export function siphash(data: Uint8Array, key: SipKey): bigint {
  const [hi, lo] = sipHashWords(data, sipKeyWords(key), 2, 4);
  return ((BigInt(hi) << 32n) | BigInt(lo)) & MASK64;
}

/** The kernel's `hsiphash()` on 64-bit: SipHash-1-3, low 32 bits. */
export function hsiphash(data: Uint8Array, key: SipKey): number {
  return sipHashWords(data, sipKeyWords(key), 1, 3)[1];
}

const four = new Uint8Array(4);

/**
 * The kernel's `hsiphash_1u32(first, key)` on 64-bit (what `hsiphash(&v, 4, key)` compiles to):
 * a 4-byte message whose little-endian value is `first`.
 */
export function hsiphash1u32(first: number, key: SipKeyWords): number {
  four[0] = first & 0xff;
  four[1] = (first >>> 8) & 0xff;
  four[2] = (first >>> 16) & 0xff;
  four[3] = (first >>> 24) & 0xff;
  return sipHashWords(four, key, 1, 3)[1];
}
