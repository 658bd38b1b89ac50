// IP address helpers shared by the config and the ring builders: strict parsing,
// the canonical text form (RFC 5952 for IPv6) that backend keys are made of, and
// the address as 32-bit big-endian words (what the kernel and the BPF maps hold).
// Pure: node:net only.

import { isIPv4, isIPv6 } from 'node:net';
import type { Family } from '../state/types';

export interface ParsedAddress {
  family: Family;
  /** Canonical text: dotted quad, or RFC 5952 compressed lower-case IPv6. */
  text: string;
  /** The address as host-order integers of its network-order 32-bit words: 1 word (IPv4) or 4 (IPv6). */
  words: number[];
}

function parseV4Words(s: string): number | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    // No leading zeros (octal ambiguity), no signs or spaces.
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = v * 256 + n;
  }
  return v >>> 0;
}

function parseV6Groups(s: string): number[] | undefined {
  if (!isIPv6(s) || s.includes('%')) return undefined;
  let head = s;
  let tail = '';
  const dbl = s.indexOf('::');
  if (dbl >= 0) {
    head = s.slice(0, dbl);
    tail = s.slice(dbl + 2);
  }
  const toGroups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const fields = part.split(':');
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i]!;
      if (f.includes('.')) {
        if (i !== fields.length - 1) return undefined;
        const v4 = parseV4Words(f);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(f)) return undefined;
        out.push(parseInt(f, 16));
      }
    }
    return out;
  };
  const h = toGroups(head);
  const t = toGroups(tail);
  if (!h || !t) return undefined;
  if (dbl < 0) return h.length === 8 ? h : undefined;
  const fill = 8 - h.length - t.length;
  if (fill < 1) return undefined;
  return [...h, ...new Array<number>(fill).fill(0), ...t];
}

/** RFC 5952 text: lower case, no leading zeros, longest run (>= 2) of zero groups as "::". */
function formatV6(g: number[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Parse an IPv4 or IPv6 address strictly (no zone id, no prefix). undefined when malformed. */
export function parseAddress(s: string): ParsedAddress | undefined {
  if (typeof s !== 'string') return undefined;
  if (isIPv4(s)) {
    const v = parseV4Words(s);
    if (v === undefined) return undefined;
    return { family: 4, text: [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff].join('.'), words: [v] };
  }
  const g = parseV6Groups(s);
  if (!g) return undefined;
  const words = [0, 2, 4, 6].map((i) => ((g[i]! << 16) | g[i + 1]!) >>> 0);
  return { family: 6, text: formatV6(g), words };
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

/** Canonical text of an address (throws on a malformed one: callers validate first). */
export function canonicalAddress(s: string): string {
  const a = parseAddress(s);
  if (!a) throw new TypeError(`not an IPv4 or IPv6 address: ${JSON.stringify(s)}`);
  return a.text;
}

/** A backend identity key: "address:port", "[v6]:port"; the address in canonical form. */
export function backendKey(address: string, port: number): string {
  const a = parseAddress(address);
  const text = a ? a.text : address;
  return (a ? a.family === 6 : address.includes(':')) ? `[${text}]:${port}` : `${text}:${port}`;
}

/** The address in network byte order: 4 bytes (IPv4) or 16 (IPv6). Throws on a malformed one. */
export function addressToBytes(s: string): Buffer {
  const a = parseAddress(s);
  if (!a) throw new TypeError(`not an IPv4 or IPv6 address: ${JSON.stringify(s)}`);
  const out = Buffer.alloc(a.words.length * 4);
  a.words.forEach((w, i) => out.writeUInt32BE(w, i * 4));
  return out;
}

/** Canonical text of an address held in network byte order (IPv4: the first 4 bytes). */
export function addressFromBytes(buf: Buffer, family: Family): string {
  if (family === 4) return `${buf[0]}.${buf[1]}.${buf[2]}.${buf[3]}`;
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(buf.readUInt16BE(i * 2));
  return formatV6(g);
}
