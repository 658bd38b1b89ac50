// VRRP advertisement codec: VRRPv2 (RFC 3768 §5) and VRRPv3 (RFC 5798 §5,
// RFC 9568) for IPv4 and IPv6. Pure: no sockets, no addon.
//
//  v2:  | Ver=2 | Type=1 | VRID | Priority | Count IP | Auth Type | Adver Int (s) | Checksum |
//       | IPv4 address × count | Authentication data (8 octets) |
//  v3:  | Ver=3 | Type=1 | VRID | Priority | Count IPvX | Rsvd(4) Max Adver Int(12, cs) | Checksum |
//       | IPvX address × count |
//
// Checksums: v2 over the VRRP message (auth data included, as keepalived does).
// v3 adds the pseudo-header (RFC 5798 §5.2.8). For IPv4 that was ambiguous:
// keepalived/FRR include an IPv4 pseudo-header, RFC 9568 and Cisco/Juniper do
// not; old keepalived (≤ 1.3.6) used the multicast group as destination even for
// unicast. We send one (configurable) and accept any of the three on receive,
// reporting which matched.

import {
  addressFromBytes,
  addressToBytes,
  canonicalAddress,
  inetChecksum,
  parseAddress,
  pseudoHeader,
} from '../net/inet';

export const VRRP_PROTO = 112;
export const VRRP_MCAST4 = '224.0.0.18';
export const VRRP_MCAST6 = 'ff02::12';
export const VRRP_TYPE_ADVERT = 1;
export const VRRP_AUTH_NONE = 0;
export const VRRP_AUTH_PASS = 1;
export const VRRP_AUTH_LEN = 8;
export const VRRP_HEADER_LEN = 8;

export type Family = 4 | 6;

export interface Advert {
  version: 2 | 3;
  vrid: number;
  priority: number;
  /** Advertisement interval in ms (v2: whole seconds on the wire; v3: centiseconds). */
  intervalMs: number;
  /** The virtual addresses carried, canonical text. */
  addresses: string[];
  /** v2 only: 0 none, 1 simple password, 2 AH (not supported). */
  authType?: number;
}

export type ChecksumVariant = 'v2' | 'pseudo-header' | 'no-pseudo-header' | 'pseudo-header-mcast-dst';

export interface EncodeOptions {
  family: Family;
  /** Source and destination of the IP packet: needed for the v3 pseudo-header. */
  src?: string;
  dst?: string;
  /** v3 over IPv4: include the IPv4 pseudo-header (keepalived default, true) or not (RFC 9568). IPv6 always includes it. */
  v4PseudoHeader?: boolean;
  /** v2 simple password (auth type 1), at most 8 bytes. */
  password?: string;
}

/** The v3 pseudo-header for an advert from `src` to `dst` (IPv4 or IPv6 text). */
function vrrpPseudoHeader(src: string, dst: string, len: number): Buffer {
  return pseudoHeader(addressToBytes(src), addressToBytes(dst), VRRP_PROTO, len);
}

/** The VRRP message (IP payload) for `a`, checksum filled in. */
export function encodeAdvert(a: Advert, opts: EncodeOptions): Buffer {
  const alen = opts.family === 4 ? 4 : 16;
  if (a.version === 2 && opts.family !== 4) throw new TypeError('VRRPv2 carries IPv4 only');
  if (!(a.vrid >= 1 && a.vrid <= 255) || !(a.priority >= 0 && a.priority <= 255))
    throw new TypeError(`VRID must be 1–255 and priority 0–255, got ${a.vrid}/${a.priority}`);
  if (a.addresses.length < 1 || a.addresses.length > 255)
    throw new TypeError(`an advert carries 1–255 addresses, got ${a.addresses.length}`);
  const authLen = a.version === 2 ? VRRP_AUTH_LEN : 0;
  const buf = Buffer.alloc(VRRP_HEADER_LEN + alen * a.addresses.length + authLen);
  buf[0] = (a.version << 4) | VRRP_TYPE_ADVERT;
  buf[1] = a.vrid;
  buf[2] = a.priority;
  buf[3] = a.addresses.length;
  if (a.version === 2) {
    const secs = Math.round(a.intervalMs / 1000);
    if (secs < 1 || secs > 255) throw new TypeError(`VRRPv2 advert interval must be 1–255 s, got ${a.intervalMs} ms`);
    buf[4] = opts.password !== undefined ? VRRP_AUTH_PASS : VRRP_AUTH_NONE;
    buf[5] = secs;
  } else {
    const cs = Math.round(a.intervalMs / 10);
    if (cs < 1 || cs > 0xfff) throw new TypeError(`VRRPv3 advert interval must be 10–40950 ms, got ${a.intervalMs} ms`);
    buf.writeUInt16BE(cs & 0x0fff, 4);
  }
  a.addresses.forEach((addr, i) => {
    const b = addressToBytes(addr);
    if (b.length !== alen) throw new TypeError(`address ${addr} is not IPv${opts.family}`);
    b.copy(buf, VRRP_HEADER_LEN + i * alen);
  });
  if (a.version === 2 && opts.password !== undefined) {
    const pw = Buffer.from(opts.password, 'utf8');
    if (pw.length > VRRP_AUTH_LEN) throw new TypeError('VRRPv2 simple password is at most 8 bytes');
    pw.copy(buf, buf.length - VRRP_AUTH_LEN);
  }
  let sum: number;
  if (a.version === 2) sum = inetChecksum(buf);
  else if (opts.family === 4 && opts.v4PseudoHeader === false) sum = inetChecksum(buf);
  else {
    if (!opts.src || !opts.dst)
      throw new TypeError('the VRRPv3 checksum needs the IP source and destination (pseudo-header)');
    sum = inetChecksum(vrrpPseudoHeader(opts.src, opts.dst, buf.length), buf);
  }
  buf.writeUInt16BE(sum, 6);
  return buf;
}

/** Why a received packet was dropped (stable names: they are counter keys in `status`). */
export type DropReason =
  | 'truncated'
  | 'not-vrrp'
  | 'ttl'
  | 'version'
  | 'type'
  | 'address-count'
  | 'checksum'
  | 'vrid'
  | 'auth'
  | 'address-list'
  | 'interval'
  | 'own'
  | 'peer';

export const DROP_REASONS: readonly DropReason[] = [
  'truncated',
  'not-vrrp',
  'ttl',
  'version',
  'type',
  'address-count',
  'checksum',
  'vrid',
  'auth',
  'address-list',
  'interval',
  'own',
  'peer',
];

/** What the IP layer said about a received VRRP message. */
export interface RxMeta {
  family: Family;
  src: string;
  dst: string;
  /** IPv4 TTL / IPv6 hop limit. */
  ttl: number;
}

/** What the receiving instance expects. */
export interface Expect {
  vrid: number;
  version: 2 | 3;
  /** Configured VIPs; the advert must carry the same set (keepalived drops a mismatch). Omit to skip. */
  addresses?: string[];
  /** v2: our interval in ms (RFC 3768 §7.1: a mismatch MUST be discarded). */
  intervalMs?: number;
  /** v2 simple password; undefined = no authentication expected. */
  password?: string;
  /** Require TTL/hop limit 255 (RFC; keepalived skips it for unicast peers). Default true. */
  checkTtl?: boolean;
  /**
   * Unicast mode: the only senders accepted (canonical text, see ip.ts). Without the TTL check
   * nothing else ties an advert to the segment, so any host that can reach us could send a
   * priority-255 advert and demote the Master. Omit (multicast) to accept any source.
   */
  peers?: readonly string[];
}

export type DecodeResult =
  | { ok: true; advert: Advert; checksum: ChecksumVariant; src: string }
  | { ok: false; reason: DropReason; message: string };

const drop = (reason: DropReason, message: string): DecodeResult => ({ ok: false, reason, message });

/** Canonical text of a received source address; anything unparsable stays as it came (never throws). */
function canonicalIpOrRaw(address: string): string {
  return parseAddress(address)?.text ?? address;
}

/**
 * Decode and validate one VRRP message (the IP payload). Never throws: any
 * input gives either an advert or a drop reason with a message.
 */
export function decodeAdvert(msg: Uint8Array, meta: RxMeta, expect: Expect): DecodeResult {
  const buf = Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
  if (expect.peers && !expect.peers.includes(canonicalIpOrRaw(meta.src)))
    return drop('peer', `sender ${meta.src} is not one of unicast_peers (${expect.peers.join(', ')})`);
  if (buf.length < VRRP_HEADER_LEN)
    return drop('truncated', `${buf.length} bytes is shorter than the 8-byte VRRP header`);
  if (expect.checkTtl !== false && meta.ttl !== 255)
    return drop(
      'ttl',
      `${meta.family === 4 ? 'TTL' : 'hop limit'} ${meta.ttl} is not 255 (the packet was routed or forged)`,
    );
  const version = buf[0]! >> 4;
  const type = buf[0]! & 0x0f;
  if (version !== expect.version || (version === 2 && meta.family !== 4))
    return drop('version', `version ${version} over IPv${meta.family}, expected ${expect.version}`);
  if (type !== VRRP_TYPE_ADVERT) return drop('type', `type ${type} is not an advertisement (1)`);
  const alen = meta.family === 4 ? 4 : 16;
  const count = buf[3]!;
  const authLen = version === 2 ? VRRP_AUTH_LEN : 0;
  const need = VRRP_HEADER_LEN + count * alen + authLen;
  if (count === 0) return drop('address-count', 'address count is 0');
  if (buf.length < need)
    return drop('address-count', `address count ${count} needs ${need} bytes, the message has ${buf.length}`);

  let checksum: ChecksumVariant | undefined;
  if (version === 2) {
    if (inetChecksum(buf) === 0) checksum = 'v2';
  } else if (meta.family === 6) {
    if (inetChecksum(vrrpPseudoHeader(meta.src, meta.dst, buf.length), buf) === 0) checksum = 'pseudo-header';
  } else if (inetChecksum(vrrpPseudoHeader(meta.src, meta.dst, buf.length), buf) === 0) checksum = 'pseudo-header';
  else if (inetChecksum(buf) === 0) checksum = 'no-pseudo-header';
  else if (inetChecksum(vrrpPseudoHeader(meta.src, VRRP_MCAST4, buf.length), buf) === 0)
    checksum = 'pseudo-header-mcast-dst';
  if (!checksum)
    return drop('checksum', `checksum 0x${buf.readUInt16BE(6).toString(16).padStart(4, '0')} does not verify`);

  const vrid = buf[1]!;
  if (vrid !== expect.vrid) return drop('vrid', `VRID ${vrid} is not ours (${expect.vrid})`);

  let intervalMs: number;
  let authType: number | undefined;
  if (version === 2) {
    authType = buf[4]!;
    intervalMs = buf[5]! * 1000;
    const authData = buf.subarray(VRRP_HEADER_LEN + count * alen, need);
    if (expect.password === undefined) {
      if (authType !== VRRP_AUTH_NONE) return drop('auth', `auth type ${authType} received, none configured`);
    } else {
      const pw = Buffer.alloc(VRRP_AUTH_LEN);
      Buffer.from(expect.password, 'utf8').copy(pw);
      if (authType !== VRRP_AUTH_PASS)
        return drop('auth', `auth type ${authType} received, simple password (1) configured`);
      if (!pw.equals(authData)) return drop('auth', 'simple password does not match');
    }
  } else {
    intervalMs = (buf.readUInt16BE(4) & 0x0fff) * 10;
  }

  const addresses: string[] = [];
  for (let i = 0; i < count; i++) {
    const off = VRRP_HEADER_LEN + i * alen;
    addresses.push(addressFromBytes(buf.subarray(off, off + alen)));
  }
  const priority = buf[2]!;
  if (expect.addresses) {
    if (expect.addresses.length !== count)
      return drop('address-count', `advert carries ${count} addresses, ${expect.addresses.length} configured`);
    const mine = new Set(expect.addresses.map(canonicalAddress));
    const missing = addresses.find((a) => !mine.has(a));
    if (missing) return drop('address-list', `advert carries ${missing}, which is not one of our VIPs`);
  }
  if (version === 2 && expect.intervalMs !== undefined && intervalMs !== expect.intervalMs)
    return drop('interval', `advert interval ${intervalMs / 1000}s differs from ours (${expect.intervalMs / 1000}s)`);
  if (intervalMs === 0) return drop('interval', 'advert interval 0');
  return {
    ok: true,
    advert: { version: version as 2 | 3, vrid, priority, intervalMs, addresses, authType },
    checksum,
    src: meta.src,
  };
}

/** An IPv4 header in front of `payload` (for tests and fuzzing: the kernel builds the real one). */
export function encodeIPv4(payload: Uint8Array, src: string, dst: string, ttl = 255, proto = VRRP_PROTO): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h[8] = ttl;
  h[9] = proto;
  addressToBytes(src).copy(h, 12);
  addressToBytes(dst).copy(h, 16);
  h.writeUInt16BE(inetChecksum(h), 10);
  return Buffer.concat([h, payload]);
}

/** Split what an IPv4 raw socket delivers into metadata and the VRRP message. Never throws. */
export function splitIPv4(
  pkt: Uint8Array,
): { ok: true; meta: RxMeta; payload: Buffer } | { ok: false; reason: DropReason; message: string } {
  const b = Buffer.from(pkt.buffer, pkt.byteOffset, pkt.byteLength);
  if (b.length < 20)
    return { ok: false, reason: 'truncated', message: `${b.length} bytes is shorter than an IPv4 header` };
  if (b[0]! >> 4 !== 4) return { ok: false, reason: 'not-vrrp', message: `IP version ${b[0]! >> 4}` };
  const ihl = (b[0]! & 0x0f) * 4;
  const total = b.readUInt16BE(2);
  if (ihl < 20 || b.length < ihl)
    return { ok: false, reason: 'truncated', message: `IPv4 header length ${ihl} does not fit ${b.length} bytes` };
  if (b[9] !== VRRP_PROTO) return { ok: false, reason: 'not-vrrp', message: `IP protocol ${b[9]} is not VRRP (112)` };
  // The kernel hands raw sockets the datagram as received; total length bounds the message.
  const end = Math.min(b.length, total >= ihl ? total : b.length);
  if (total > b.length)
    return {
      ok: false,
      reason: 'truncated',
      message: `IPv4 total length ${total} exceeds the ${b.length} bytes received`,
    };
  return {
    ok: true,
    meta: {
      family: 4,
      src: addressFromBytes(b.subarray(12, 16)),
      dst: addressFromBytes(b.subarray(16, 20)),
      ttl: b[8]!,
    },
    payload: b.subarray(ihl, end),
  };
}
