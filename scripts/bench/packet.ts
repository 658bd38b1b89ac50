// A small frame builder for the benchmarks: Ethernet + IPv4/IPv6 + TCP/UDP with
// valid checksums, padded to a length. Pure (no addon, no I/O).
import { addressFamily, addressToBytes, inetChecksum, parseMac, pseudoHeader } from '../../src/net/inet';
import { XdError } from '../../src/errors';

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

export interface FrameSpec {
  srcMac: string;
  dstMac: string;
  family: 4 | 6;
  src: string;
  dst: string;
  proto: 'tcp' | 'udp';
  sport: number;
  dport: number;
  /** TCP flags (default ACK). */
  flags?: number;
  /** L4 payload bytes (default none). */
  payload?: Buffer;
  /** Pad the frame with zeros (Ethernet trailer, not counted in the IP length) to at least this many bytes. */
  minLength?: number;
  /** Round the frame length up to a multiple of this (the generator restores whole 8-byte chunks). */
  multipleOf?: number;
}

export interface Frame {
  bytes: Buffer;
  /** Byte offset of the L4 source port. */
  sportOff: number;
  /** Byte offset of the L4 checksum. */
  csumOff: number;
  /** Byte offset of the source address's last 16-bit word. */
  saddrOff: number;
  /** Byte offset of the IPv4 header checksum (undefined for IPv6, which has none). */
  ipCsumOff?: number;
  /** Length of the real headers + payload (without the Ethernet trailer). */
  ipEnd: number;
}

/** Network-order bytes of `addr`, which must be an IPv`family` address. */
function addrBytes(addr: string, family: 4 | 6): Buffer {
  if (addressFamily(addr) !== family) throw new XdError('XD_ERR_USAGE', `"${addr}" is not an IPv${family} address`);
  return addressToBytes(addr);
}

export function buildFrame(spec: FrameSpec): Frame {
  const payload = spec.payload ?? Buffer.alloc(0);
  const l4Len = (spec.proto === 'tcp' ? 20 : 8) + payload.length;
  const ipHdrLen = spec.family === 4 ? 20 : 40;
  const l3 = 14;
  const l4 = l3 + ipHdrLen;
  const ipEnd = l4 + l4Len;
  let len = Math.max(ipEnd, spec.minLength ?? 0);
  const mult = spec.multipleOf ?? 1;
  len = Math.ceil(len / mult) * mult;
  const b = Buffer.alloc(len);
  parseMac(spec.dstMac).copy(b, 0);
  parseMac(spec.srcMac).copy(b, 6);
  b.writeUInt16BE(spec.family === 4 ? 0x0800 : 0x86dd, 12);
  const protoNum = spec.proto === 'tcp' ? 6 : 17;
  let src: Buffer;
  let dst: Buffer;
  if (spec.family === 4) {
    src = addrBytes(spec.src, 4);
    dst = addrBytes(spec.dst, 4);
    b[l3] = 0x45;
    b.writeUInt16BE(ipHdrLen + l4Len, l3 + 2);
    b.writeUInt16BE(0x4000, l3 + 6); // DF, no fragment
    b[l3 + 8] = 64;
    b[l3 + 9] = protoNum;
    src.copy(b, l3 + 12);
    dst.copy(b, l3 + 16);
    b.writeUInt16BE(inetChecksum(b.subarray(l3, l3 + 20)), l3 + 10);
  } else {
    src = addrBytes(spec.src, 6);
    dst = addrBytes(spec.dst, 6);
    b.writeUInt32BE(0x60000000, l3);
    b.writeUInt16BE(l4Len, l3 + 4);
    b[l3 + 6] = protoNum;
    b[l3 + 7] = 64;
    src.copy(b, l3 + 8);
    dst.copy(b, l3 + 24);
  }
  b.writeUInt16BE(spec.sport, l4);
  b.writeUInt16BE(spec.dport, l4 + 2);
  let csumOff: number;
  if (spec.proto === 'tcp') {
    b.writeUInt32BE(1, l4 + 4); // seq
    b.writeUInt32BE((spec.flags ?? TCP_ACK) & TCP_ACK ? 1 : 0, l4 + 8); // ack
    b[l4 + 12] = 5 << 4;
    b[l4 + 13] = spec.flags ?? TCP_ACK;
    b.writeUInt16BE(65535, l4 + 14);
    csumOff = l4 + 16;
  } else {
    b.writeUInt16BE(l4Len, l4 + 4);
    csumOff = l4 + 6;
  }
  payload.copy(b, l4 + (spec.proto === 'tcp' ? 20 : 8));
  let c = inetChecksum(pseudoHeader(src, dst, protoNum, l4Len), b.subarray(l4, ipEnd));
  if (spec.proto === 'udp' && c === 0) c = 0xffff; // RFC 768: 0 means "no checksum"
  b.writeUInt16BE(c, csumOff);
  return spec.family === 4
    ? { bytes: b, sportOff: l4, csumOff, saddrOff: l3 + 12 + 2, ipCsumOff: l3 + 10, ipEnd }
    : { bytes: b, sportOff: l4, csumOff, saddrOff: l3 + 8 + 14, ipEnd };
}
