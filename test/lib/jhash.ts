// The kernel's jhash (include/linux/jhash.h) for tests that predict the XDP program's hashes
// (bpf/hash.h): inputs are host-order 32-bit words.

const rol32 = (w: number, s: number): number => ((w << s) | (w >>> (32 - s))) >>> 0;
const JHASH_INITVAL = 0xdeadbeef;

function jhashFinal(a: number, b: number, c: number): number {
  c = ((c ^ b) - rol32(b, 14)) >>> 0;
  a = ((a ^ c) - rol32(c, 11)) >>> 0;
  b = ((b ^ a) - rol32(a, 25)) >>> 0;
  c = ((c ^ b) - rol32(b, 16)) >>> 0;
  a = ((a ^ c) - rol32(c, 4)) >>> 0;
  b = ((b ^ a) - rol32(a, 14)) >>> 0;
  c = ((c ^ b) - rol32(b, 24)) >>> 0;
  return c;
}

/** jhash_2words(a, b, seed). */
export function jhash2words(a: number, b: number, seed: number): number {
  const init = (JHASH_INITVAL + (2 << 2) + seed) >>> 0;
  return jhashFinal((a + init) >>> 0, (b + init) >>> 0, init);
}
