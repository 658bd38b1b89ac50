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

function jhashMix(a: number, b: number, c: number): [number, number, number] {
  a = (a - c) >>> 0;
  a = (a ^ rol32(c, 4)) >>> 0;
  c = (c + b) >>> 0;
  b = (b - a) >>> 0;
  b = (b ^ rol32(a, 6)) >>> 0;
  a = (a + c) >>> 0;
  c = (c - b) >>> 0;
  c = (c ^ rol32(b, 8)) >>> 0;
  b = (b + a) >>> 0;
  a = (a - c) >>> 0;
  a = (a ^ rol32(c, 16)) >>> 0;
  c = (c + b) >>> 0;
  b = (b - a) >>> 0;
  b = (b ^ rol32(a, 19)) >>> 0;
  a = (a + c) >>> 0;
  c = (c - b) >>> 0;
  c = (c ^ rol32(b, 4)) >>> 0;
  b = (b + a) >>> 0;
  return [a, b, c];
}

/** jhash2(w, 5, seed): the kernel's jhash over five 32-bit words (an IPv6 address and a port). */
export function jhash5words(w: readonly [number, number, number, number, number], seed: number): number {
  const init = (JHASH_INITVAL + (5 << 2) + seed) >>> 0;
  const [a, b, c] = jhashMix((w[0] + init) >>> 0, (w[1] + init) >>> 0, (w[2] + init) >>> 0);
  return jhashFinal((a + w[3]) >>> 0, (b + w[4]) >>> 0, c);
}

/** jhash_2words(a, b, seed). */
export function jhash2words(a: number, b: number, seed: number): number {
  const init = (JHASH_INITVAL + (2 << 2) + seed) >>> 0;
  return jhashFinal((a + init) >>> 0, (b + init) >>> 0, init);
}
