// Internet addresses, the one place they are parsed and written: IPv4/IPv6 text ⇄ network-order
// bytes, the canonical text (RFC 5952 for IPv6), the backend key made of it, the Internet
// checksum (RFC 1071) with the TCP/UDP/ICMPv6 pseudo-header, and Ethernet MAC text ⇄ bytes.
// Ground floor: pure, imports only node:net and the shared type of an address family, so config,
// VRRP, the dataplanes, rtnetlink and the packet builders can all stand on it.

import { isIPv4, isIPv6 } from 'node:net';
import type { Family } from '../state/types';

export type { Family };

export interface ParsedAddress {
  family: Family;
  /** Canonical text: dotted quad, or RFC 5952 IPv6 (lower case, compressed). */
  text: string;
  /** The address as host-order integers of its network-order 32-bit words: 1 word (IPv4) or 4 (IPv6). */
  words: number[];
}

// ---- parsing ------------------------------------------------------------------------------------

/** A dotted quad as an unsigned 32-bit integer, or undefined. Leading zeros are refused (octal ambiguity). */
function parseV4(s: string): number | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = v * 256 + n;
  }
  return v >>> 0;
}

/** The eight 16-bit groups of an IPv6 address (a trailing dotted quad allowed), or undefined. No zone id. */
function parseV6(s: string): number[] | undefined {
  if (!isIPv6(s) || s.includes('%')) return undefined;
  const dbl = s.indexOf('::');
  const head = dbl >= 0 ? s.slice(0, dbl) : s;
  const tail = dbl >= 0 ? s.slice(dbl + 2) : '';
  const groups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const fields = part.split(':');
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i]!;
      if (f.includes('.')) {
        if (i !== fields.length - 1) return undefined;
        const v4 = parseV4(f);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(f)) return undefined;
        out.push(parseInt(f, 16));
      }
    }
    return out;
  };
  const h = groups(head);
  const t = groups(tail);
  if (!h || !t) return undefined;
  if (dbl < 0) return h.length === 8 ? h : undefined;
  const fill = 8 - h.length - t.length;
  if (fill < 1) return undefined;
  return [...h, ...new Array<number>(fill).fill(0), ...t];
}

function v4Text(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}

/**
 * RFC 5952 text of eight groups: lower case hex without leading zeros (4.1, 4.3); the longest run
 * of two or more zero groups becomes "::", the first of equally long runs (4.2.1-4.2.3); an
 * IPv4-mapped address (::ffff:0:0/96) ends in its dotted quad (section 5).
 */
function v6Text(g: number[]): string {
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${v4Text(((g[6]! << 16) | g[7]!) >>> 0)}`;
  }
  let bestStart = -1;
  let bestLen = 1; // a single zero group is written "0", never "::"
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Parse an IPv4 or IPv6 address strictly (no zone id, no prefix, no leading zeros in a dotted quad). undefined when malformed. */
export function parseAddress(s: string): ParsedAddress | undefined {
  if (typeof s !== 'string') return undefined;
  if (isIPv4(s)) {
    const v = parseV4(s);
    return v === undefined ? undefined : { family: 4, text: v4Text(v), words: [v] };
  }
  const g = parseV6(s);
  if (!g) return undefined;
  const words = [0, 2, 4, 6].map((i) => ((g[i]! << 16) | g[i + 1]!) >>> 0);
  return { family: 6, text: v6Text(g), words };
}

function mustParse(s: string): ParsedAddress {
  const a = parseAddress(s);
  if (!a)
    throw new TypeError(
      `expected an IPv4 or IPv6 address (e.g. "10.0.0.10" or "fd00::10"), received ${JSON.stringify(s)}`,
    );
  return a;
}

/** 4 or 6 for a well-formed address, undefined otherwise. */
export function addressFamily(s: string): Family | undefined {
  return parseAddress(s)?.family;
}

/** Canonical text of an address, so "FD00:0::1" and "fd00::1" compare equal. Throws TypeError on a malformed one. */
export function canonicalAddress(s: string): string {
  return mustParse(s).text;
}

/** Compare two addresses as unsigned big-endian numbers (IPv4 sorts before IPv6): <0, 0, >0. */
export function compareAddress(a: string, b: string): number {
  return Buffer.compare(addressToBytes(a), addressToBytes(b));
}

/** Why an address cannot be a VIP or a real server, or undefined if it can. */
export function unusableReason(a: ParsedAddress): string | undefined {
  if (a.family === 4) {
    const v = a.words[0]!;
    if (v === 0) return 'the unspecified address 0.0.0.0';
    if (v === 0xffffffff) return 'the broadcast address';
    if (v >>> 28 === 0xe) return 'a multicast address';
    return undefined;
  }
  if (a.words.every((w) => w === 0)) return 'the unspecified address ::';
  if (a.words[0]! >>> 24 === 0xff) return 'a multicast address';
  return undefined;
}

// ---- bytes --------------------------------------------------------------------------------------

/** The address in network byte order: 4 bytes (IPv4) or 16 (IPv6). Throws TypeError on a malformed one. */
export function addressToBytes(s: string): Buffer {
  const a = mustParse(s);
  const out = Buffer.alloc(a.words.length * 4);
  a.words.forEach((w, i) => out.writeUInt32BE(w, i * 4));
  return out;
}

/**
 * The address in a 16-byte field, network order, IPv4 in the first 4 bytes and the rest zero:
 * the kernel's `union nf_inet_addr` (IPVS) and the BPF layouts' addr/vip fields.
 */
export function addressToBytes16(s: string): Buffer {
  const b = addressToBytes(s);
  if (b.length === 16) return b;
  const out = Buffer.alloc(16);
  b.copy(out, 0);
  return out;
}

/**
 * Canonical text of an address held in network byte order. With `family` 4 the first 4 bytes are
 * read (a 16-byte nf_inet_addr holding IPv4 too); without it the length decides (4 or 16 bytes).
 */
export function addressFromBytes(buf: Uint8Array, family?: Family): string {
  const fam = family ?? (buf.length === 4 ? 4 : buf.length === 16 ? 6 : undefined);
  if (fam === undefined) throw new TypeError(`an IP address is 4 or 16 bytes, received ${buf.length}`);
  const need = fam === 4 ? 4 : 16;
  if (buf.length < need) throw new TypeError(`an IPv${fam} address is ${need} bytes, received ${buf.length}`);
  if (fam === 4) return v4Text(((buf[0]! << 24) | (buf[1]! << 16) | (buf[2]! << 8) | buf[3]!) >>> 0);
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((buf[i]! << 8) | buf[i + 1]!);
  return v6Text(g);
}

// ---- backend identity -------------------------------------------------------------------------------

/**
 * The one text of an endpoint: "address:port", or "[address]:port" for IPv6, the address in
 * canonical text. An address that does not parse is kept as written (bracketed if it has a
 * colon): config refuses those before any endpoint is shown, so this only keeps the function total.
 */
export function hostPort(address: string, port: number | string): string {
  const a = parseAddress(address);
  const text = a ? a.text : address;
  const v6 = a ? a.family === 6 : address.includes(':');
  return v6 ? `[${text}]:${port}` : `${text}:${port}`;
}

/**
 * The one backend identity key: its endpoint text (hostPort), so "FD00:0::1" and "fd00::1" name
 * the same backend everywhere (config, health, dataplanes).
 */
export function backendKey(address: string, port: number): string {
  return hostPort(address, port);
}

// ---- Internet checksum ------------------------------------------------------------------------------

/**
 * RFC 1071 Internet checksum over the concatenation of `parts` (an odd byte at the end of one part
 * pairs with the first byte of the next; the last odd byte is padded with zero). Returns the
 * one's complement of the folded sum: write it as is; a message that already holds its checksum
 * sums to 0.
 */
export function inetChecksum(...parts: Uint8Array[]): number {
  let sum = 0;
  let carry: number | undefined;
  for (const p of parts) {
    let i = 0;
    if (carry !== undefined && p.length > 0) {
      sum += (carry << 8) | p[0]!;
      carry = undefined;
      i = 1;
    }
    for (; i + 1 < p.length; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
    if (i < p.length) carry = p[i]!;
    if (sum > 0x7fffffff) sum = (sum & 0xffff) + (sum >>> 16); // keep it a small integer
  }
  if (carry !== undefined) sum += carry << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * The pseudo-header an upper-layer checksum covers (TCP, UDP, ICMPv6, VRRPv3): IPv4 (RFC 793/768)
 * src 4, dst 4, zero, protocol, length 16 bits = 12 bytes; IPv6 (RFC 8200 8.1) src 16, dst 16,
 * length 32 bits, three zero bytes, next header = 40 bytes. `src`/`dst` are network-order bytes.
 */
export function pseudoHeader(src: Uint8Array, dst: Uint8Array, proto: number, length: number): Buffer {
  if (src.length !== dst.length || (src.length !== 4 && src.length !== 16)) {
    throw new TypeError(
      `pseudo-header addresses must both be 4 or both 16 bytes, received ${src.length} and ${dst.length}`,
    );
  }
  if (src.length === 4) {
    const p = Buffer.alloc(12);
    p.set(src, 0);
    p.set(dst, 4);
    p[9] = proto;
    p.writeUInt16BE(length, 10);
    return p;
  }
  const p = Buffer.alloc(40);
  p.set(src, 0);
  p.set(dst, 16);
  p.writeUInt32BE(length >>> 0, 32);
  p[39] = proto;
  return p;
}

// ---- Ethernet MAC ---------------------------------------------------------------------------------

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** Whether `s` is a MAC address written as six colon-separated hex pairs. */
export function isMac(s: string): boolean {
  return typeof s === 'string' && MAC_RE.test(s);
}

/** "02:00:00:00:00:11" → 6 bytes. Throws TypeError on anything else. */
export function parseMac(s: string): Buffer {
  if (!isMac(s)) throw new TypeError(`expected a MAC address like "02:00:00:00:00:11", received ${JSON.stringify(s)}`);
  return Buffer.from(s.split(':').map((x) => parseInt(x, 16)));
}

/** 6 bytes → "02:00:00:00:00:11" (lower case). */
export function formatMac(b: Uint8Array): string {
  if (b.length !== 6) throw new TypeError(`a MAC address is 6 bytes, received ${b.length}`);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}
