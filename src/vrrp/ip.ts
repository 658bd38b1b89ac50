// IP address text ⇄ bytes, and the one's-complement checksum. Pure.
import { isIP } from 'node:net';

/** Network-order bytes of an IPv4 (4) or IPv6 (16) address. Throws TypeError on anything else. */
export function ipToBytes(address: string): Buffer {
  const fam = isIP(address);
  if (fam === 4) return Buffer.from(address.split('.').map(Number));
  if (fam !== 6) throw new TypeError(`expected an IPv4 or IPv6 address, got ${JSON.stringify(address)}`);
  let a = address.split('%')[0]!;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    a = a.slice(0, -v4[1]!.length) + ((b[0]! << 8) | b[1]!).toString(16) + ':' + ((b[2]! << 8) | b[3]!).toString(16);
  }
  const [head, tail] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : [];
  const words = tail !== undefined ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(parseInt(w, 16), i * 2));
  return out;
}

/** Canonical text of 4 or 16 network-order bytes (IPv6 in RFC 5952 form). */
export function bytesToIp(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) throw new TypeError(`an IP address is 4 or 16 bytes, got ${b.length}`);
  const w: number[] = [];
  for (let i = 0; i < 16; i += 2) w.push((b[i]! << 8) | b[i + 1]!);
  // Longest run (≥ 2) of zero words becomes "::".
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = w.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Canonical form of an address string (so "fd00:0::1" and "fd00::1" compare equal). */
export function canonicalIp(address: string): string {
  return bytesToIp(ipToBytes(address));
}

/** Compare two same-family addresses as unsigned big-endian numbers: <0, 0, >0. */
export function compareIp(a: string, b: string): number {
  return Buffer.compare(ipToBytes(a), ipToBytes(b));
}

/** RFC 1071 Internet checksum over the concatenation of `parts` (odd lengths padded with zero). */
export function inetChecksum(...parts: Uint8Array[]): number {
  let sum = 0;
  let carry: number | undefined; // an odd trailing byte from the previous part
  for (const p of parts) {
    let i = 0;
    if (carry !== undefined && p.length > 0) {
      sum += (carry << 8) | p[0]!;
      carry = undefined;
      i = 1;
    }
    for (; i + 1 < p.length; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
    if (i < p.length) carry = p[i]!;
    // Fold periodically so the sum stays a small integer.
    if (sum > 0x7fffffff) sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (carry !== undefined) sum += carry << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
