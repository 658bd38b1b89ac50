// A small packet builder for datapath fixtures: Ethernet (+ one 802.1Q tag), IPv4 (with options
// and fragment fields), IPv6 (with a fragment header), TCP, UDP, ICMP/ICMPv6 errors quoting an
// inner packet. Every checksum is computed (IPv4 header, TCP/UDP/ICMPv6 with the pseudo-header,
// ICMP), so a packet is what a real host would put on the wire. Pure: no addon, no kernel.
//
// Usage:
//   const frame = ether({ src: CLIENT_MAC, dst: DIRECTOR_MAC },
//                       ipv4({ src: '10.0.0.1', dst: '10.0.0.100' }, tcp({ sport: 40000, dport: 3306, flags: 'S' })));

import { addressToBytes, inetChecksum, parseMac, pseudoHeader } from '../../src/net/inet';

export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_8021Q = 0x8100;
export const ETH_P_IPV6 = 0x86dd;

export const IPPROTO_HOPOPTS = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ROUTING = 43;
export const IPPROTO_FRAGMENT = 44;
export const IPPROTO_AH = 51;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_NONE = 59;
export const IPPROTO_DSTOPTS = 60;

/** "aa:bb:cc:dd:ee:ff" -> 6 bytes. */
export const macBytes = parseMac;

/** IPv4 dotted quad -> 4 bytes, IPv6 text -> 16 bytes (network order). */
export const ipBytes = addressToBytes;

export { inetChecksum };

// ---------------------------------------------------------------- L4

/** A transport payload that can serialise itself once the IP addresses are known. */
export interface L4 {
  proto: number;
  /** Bytes with the checksum filled in; src/dst are the enclosing IP header's addresses. */
  bytes(src: Buffer, dst: Buffer): Buffer;
}

const TCP_FLAG_BITS: Record<string, number> = {
  F: 0x01,
  S: 0x02,
  R: 0x04,
  P: 0x08,
  A: 0x10,
  U: 0x20,
  E: 0x40,
  C: 0x80,
};

export interface TcpSpec {
  sport: number;
  dport: number;
  /** Flag letters as tcpdump prints them: 'S', 'SA', 'A', 'PA', 'R', 'RA', 'F'… Default 'A'. */
  flags?: string;
  seq?: number;
  ack?: number;
  window?: number;
  /** TCP options, padded to a multiple of 4 bytes with zeros (EOL). */
  options?: Buffer;
  payload?: Buffer;
}

function pad4(b: Buffer | undefined): Buffer {
  if (!b || b.length === 0) return Buffer.alloc(0);
  const n = Math.ceil(b.length / 4) * 4;
  return Buffer.concat([b, Buffer.alloc(n - b.length)]);
}

export function tcpFlags(flags: string): number {
  let v = 0;
  for (const c of flags) {
    const bit = TCP_FLAG_BITS[c];
    if (bit === undefined)
      throw new TypeError(`unknown TCP flag ${JSON.stringify(c)} in ${JSON.stringify(flags)}; use F S R P A U E C`);
    v |= bit;
  }
  return v;
}

export function tcp(spec: TcpSpec): L4 {
  return {
    proto: IPPROTO_TCP,
    bytes(src, dst) {
      const opts = pad4(spec.options);
      const payload = spec.payload ?? Buffer.alloc(0);
      const h = Buffer.alloc(20 + opts.length);
      h.writeUInt16BE(spec.sport, 0);
      h.writeUInt16BE(spec.dport, 2);
      h.writeUInt32BE((spec.seq ?? 1000) >>> 0, 4);
      h.writeUInt32BE((spec.ack ?? 0) >>> 0, 8);
      h[12] = ((20 + opts.length) / 4) << 4;
      h[13] = tcpFlags(spec.flags ?? 'A');
      h.writeUInt16BE(spec.window ?? 64240, 14);
      opts.copy(h, 20);
      const seg = Buffer.concat([h, payload]);
      seg.writeUInt16BE(inetChecksum(pseudoHeader(src, dst, IPPROTO_TCP, seg.length), seg), 16);
      return seg;
    },
  };
}

export interface UdpSpec {
  sport: number;
  dport: number;
  payload?: Buffer;
}

export function udp(spec: UdpSpec): L4 {
  return {
    proto: IPPROTO_UDP,
    bytes(src, dst) {
      const payload = spec.payload ?? Buffer.alloc(0);
      const seg = Buffer.alloc(8 + payload.length);
      seg.writeUInt16BE(spec.sport, 0);
      seg.writeUInt16BE(spec.dport, 2);
      seg.writeUInt16BE(seg.length, 4);
      payload.copy(seg, 8);
      let c = inetChecksum(pseudoHeader(src, dst, IPPROTO_UDP, seg.length), seg);
      if (c === 0) c = 0xffff; // RFC 768: 0 means "no checksum"
      seg.writeUInt16BE(c, 6);
      return seg;
    },
  };
}

export interface IcmpErrorSpec {
  type: number;
  code: number;
  /** Next-hop MTU (ICMP type 3 code 4) or MTU (ICMPv6 type 2): the 32-bit word after the checksum. */
  mtu?: number;
  /** The quoted packet (an IP packet as built by ipv4()/ipv6(), usually truncated). */
  quoted: Buffer;
}

/** ICMP (IPv4) message, e.g. destination unreachable / fragmentation needed (3/4). */
export function icmp4(spec: IcmpErrorSpec): L4 {
  return {
    proto: IPPROTO_ICMP,
    bytes() {
      const m = Buffer.alloc(8 + spec.quoted.length);
      m[0] = spec.type;
      m[1] = spec.code;
      // RFC 1191: unused (16 bits) then next-hop MTU (16 bits).
      m.writeUInt16BE((spec.mtu ?? 0) & 0xffff, 6);
      spec.quoted.copy(m, 8);
      m.writeUInt16BE(inetChecksum(m), 2);
      return m;
    },
  };
}

/** ICMPv6 message, e.g. packet too big (type 2, code 0). Checksum includes the pseudo-header. */
export function icmp6(spec: IcmpErrorSpec): L4 {
  return {
    proto: IPPROTO_ICMPV6,
    bytes(src, dst) {
      const m = Buffer.alloc(8 + spec.quoted.length);
      m[0] = spec.type;
      m[1] = spec.code;
      m.writeUInt32BE((spec.mtu ?? 0) >>> 0, 4);
      spec.quoted.copy(m, 8);
      m.writeUInt16BE(inetChecksum(pseudoHeader(src, dst, IPPROTO_ICMPV6, m.length), m), 2);
      return m;
    },
  };
}

/** Already-serialised transport bytes (e.g. a slice of a segment for a fragment). */
export function raw(proto: number, bytes: Buffer): L4 {
  return { proto, bytes: () => bytes };
}

// ---------------------------------------------------------------- L3

export interface Ipv4Spec {
  src: string;
  dst: string;
  ttl?: number;
  tos?: number;
  id?: number;
  df?: boolean;
  /** More-fragments flag. */
  mf?: boolean;
  /** Fragment offset in 8-byte units. */
  fragOffset?: number;
  /** IP options, padded with zeros (EOL) to a multiple of 4 bytes; IHL follows. */
  options?: Buffer;
  /** Override the protocol field (default: the L4's). */
  proto?: number;
}

export function ipv4(spec: Ipv4Spec, l4: L4): Buffer {
  const src = ipBytes(spec.src);
  const dst = ipBytes(spec.dst);
  if (src.length !== 4 || dst.length !== 4)
    throw new TypeError(`ipv4() needs IPv4 addresses, received ${spec.src} -> ${spec.dst}`);
  const opts = pad4(spec.options);
  if (opts.length > 40) throw new TypeError(`IPv4 options are at most 40 bytes, received ${opts.length}`);
  const payload = l4.bytes(src, dst);
  const hl = 20 + opts.length;
  const h = Buffer.alloc(hl);
  h[0] = 0x40 | (hl / 4);
  h[1] = spec.tos ?? 0;
  h.writeUInt16BE(hl + payload.length, 2);
  h.writeUInt16BE(spec.id ?? 0x1234, 4);
  const frag = (spec.df ? 0x4000 : 0) | (spec.mf ? 0x2000 : 0) | ((spec.fragOffset ?? 0) & 0x1fff);
  h.writeUInt16BE(frag, 6);
  h[8] = spec.ttl ?? 64;
  h[9] = spec.proto ?? l4.proto;
  src.copy(h, 12);
  dst.copy(h, 16);
  opts.copy(h, 20);
  h.writeUInt16BE(inetChecksum(h), 10);
  return Buffer.concat([h, payload]);
}

/** One IPv6 extension header; `bytes(next)` serialises it with `next` as its Next Header. */
export interface Ipv6Ext {
  proto: number;
  bytes(next: number): Buffer;
}

/** Hop-by-Hop or Destination Options of `len` bytes (a multiple of 8, 8..2048), filled with one PadN option (RFC 8200 4.2). */
function optionsExt(proto: number, len: number): Ipv6Ext {
  if (len % 8 !== 0 || len < 8 || len > 2048)
    throw new TypeError(`an options header is 8..2048 bytes in steps of 8, received ${len}`);
  return {
    proto,
    bytes(next) {
      const b = Buffer.alloc(len);
      b[0] = next;
      b[1] = len / 8 - 1;
      b[2] = 1; // PadN
      b[3] = len - 4;
      return b;
    },
  };
}
export const hopByHop = (len = 8): Ipv6Ext => optionsExt(IPPROTO_HOPOPTS, len);
export const destOpts = (len = 8): Ipv6Ext => optionsExt(IPPROTO_DSTOPTS, len);

/** A Routing header (RFC 8200 4.4) with `addresses` 16-byte addresses after 4 reserved bytes; segments left 0 = this is the final hop. */
export function routingExt(opts: { type?: number; segmentsLeft?: number; addresses?: string[] } = {}): Ipv6Ext {
  const addrs = (opts.addresses ?? ['2001:db8::fe']).map(ipBytes);
  return {
    proto: IPPROTO_ROUTING,
    bytes(next) {
      const b = Buffer.alloc(8 + 16 * addrs.length);
      b[0] = next;
      b[1] = (b.length - 8) / 8;
      b[2] = opts.type ?? 4; // Segment Routing Header type; 0 is deprecated (RFC 5095)
      b[3] = opts.segmentsLeft ?? 0;
      addrs.forEach((a, i) => a.copy(b, 8 + 16 * i));
      return b;
    },
  };
}

/** A Fragment header (RFC 8200 4.5); offset in 8-byte units. offset 0 and more=false is an atomic fragment. */
export function fragmentExt(offset: number, more: boolean, id = 7): Ipv6Ext {
  return {
    proto: IPPROTO_FRAGMENT,
    bytes(next) {
      const b = Buffer.alloc(8);
      b[0] = next;
      b.writeUInt16BE(((offset & 0x1fff) << 3) | (more ? 1 : 0), 2);
      b.writeUInt32BE(id >>> 0, 4);
      return b;
    },
  };
}

/** An Authentication Header (RFC 4302) of `len` bytes (a multiple of 4, ≥ 12): Payload Len counts 4-byte words minus 2. */
export function ahExt(len = 24): Ipv6Ext {
  return {
    proto: IPPROTO_AH,
    bytes(next) {
      const b = Buffer.alloc(len);
      b[0] = next;
      b[1] = len / 4 - 2;
      b.writeUInt32BE(0x100, 4); // SPI
      b.writeUInt32BE(1, 8); // sequence number
      return b;
    },
  };
}

export interface Ipv6Spec {
  src: string;
  dst: string;
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
  /** Insert a fragment header (offset in 8-byte units). */
  fragment?: { offset: number; more: boolean; id: number };
  /** Extension headers in order after the fixed header (before `fragment`, if both are given). */
  ext?: Ipv6Ext[];
  /** Override the fixed header's Next Header (default: the first extension header's or the L4's). */
  nextHeader?: number;
}

export function ipv6(spec: Ipv6Spec, l4: L4): Buffer {
  const src = ipBytes(spec.src);
  const dst = ipBytes(spec.dst);
  if (src.length !== 16 || dst.length !== 16)
    throw new TypeError(`ipv6() needs IPv6 addresses, received ${spec.src} -> ${spec.dst}`);
  const payload = l4.bytes(src, dst);
  const chain = [
    ...(spec.ext ?? []),
    ...(spec.fragment ? [fragmentExt(spec.fragment.offset, spec.fragment.more, spec.fragment.id)] : []),
  ];
  const parts: Buffer[] = [];
  let next = l4.proto;
  for (let i = chain.length - 1; i >= 0; i--) {
    parts.unshift(chain[i]!.bytes(next));
    next = chain[i]!.proto;
  }
  if (spec.nextHeader !== undefined) next = spec.nextHeader;
  const ext = Buffer.concat(parts);
  const h = Buffer.alloc(40);
  const tc = spec.trafficClass ?? 0;
  h.writeUInt32BE(((6 << 28) | (tc << 20) | ((spec.flowLabel ?? 0) & 0xfffff)) >>> 0, 0);
  h.writeUInt16BE(ext.length + payload.length, 4);
  h[6] = next;
  h[7] = spec.hopLimit ?? 64;
  src.copy(h, 8);
  dst.copy(h, 24);
  return Buffer.concat([h, ext, payload]);
}

// ---------------------------------------------------------------- L2

export interface EtherSpec {
  dst: string;
  src: string;
  /** EtherType of the payload; default from the IP version of the payload (0x0800 / 0x86dd). */
  type?: number;
  /** One 802.1Q tag: VLAN id (and optional priority). */
  vlan?: { id: number; pcp?: number };
}

export function ether(spec: EtherSpec, payload: Buffer): Buffer {
  let type = spec.type;
  if (type === undefined) {
    const version = payload.length > 0 ? payload[0]! >> 4 : 0;
    if (version === 4) type = ETH_P_IP;
    else if (version === 6) type = ETH_P_IPV6;
    else throw new TypeError('ether(): payload is not IPv4/IPv6, pass spec.type');
  }
  const tag = spec.vlan ? 4 : 0;
  const h = Buffer.alloc(14 + tag);
  macBytes(spec.dst).copy(h, 0);
  macBytes(spec.src).copy(h, 6);
  if (spec.vlan) {
    h.writeUInt16BE(ETH_P_8021Q, 12);
    h.writeUInt16BE((((spec.vlan.pcp ?? 0) & 7) << 13) | (spec.vlan.id & 0xfff), 14);
    h.writeUInt16BE(type, 16);
  } else {
    h.writeUInt16BE(type, 12);
  }
  return Buffer.concat([h, payload]);
}

/** An ARP request (who-has `target` tell `sender`), for non-IP fixtures. */
export function arpRequest(senderMac: string, senderIp: string, targetIp: string): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16BE(1, 0); // Ethernet
  b.writeUInt16BE(ETH_P_IP, 2);
  b[4] = 6;
  b[5] = 4;
  b.writeUInt16BE(1, 6); // request
  macBytes(senderMac).copy(b, 8);
  ipBytes(senderIp).copy(b, 14);
  ipBytes(targetIp).copy(b, 24);
  return b;
}
