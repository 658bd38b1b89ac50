// IPVS generic netlink codec: the attribute layout of family "IPVS" version 1, written from
// the kernel's include/uapi/linux/ip_vs.h and the policies in net/netfilter/ipvs/ip_vs_ctl.c.
// Pure: no sockets, no kernel. The netlink and generic netlink headers are the `netlink`
// package's job on the wire; encodeMessage() builds the whole message only so that tests can
// compare bytes with what the kernel's layout says.

import { addressFamily, addressFromBytes, addressToBytes16 } from '../../net/inet';

export const IPVS_GENL_NAME = 'IPVS';
export const IPVS_GENL_VERSION = 1;

/** Generic netlink commands (enum in ip_vs.h). GET_SERVICE/GET_DEST dump replies carry NEW_SERVICE/NEW_DEST. */
export const Cmd = {
  NEW_SERVICE: 1,
  SET_SERVICE: 2,
  DEL_SERVICE: 3,
  GET_SERVICE: 4,
  NEW_DEST: 5,
  SET_DEST: 6,
  DEL_DEST: 7,
  GET_DEST: 8,
  NEW_DAEMON: 9,
  DEL_DAEMON: 10,
  GET_DAEMON: 11,
  SET_CONFIG: 12,
  GET_CONFIG: 13,
  SET_INFO: 14,
  GET_INFO: 15,
  ZERO: 16,
  FLUSH: 17,
} as const;

/** Top-level attributes (IPVS_CMD_ATTR_*). */
export const CmdAttr = { SERVICE: 1, DEST: 2, DAEMON: 3, TIMEOUT_TCP: 4, TIMEOUT_TCP_FIN: 5, TIMEOUT_UDP: 6 } as const;

/** Service attributes (IPVS_SVC_ATTR_*). */
export const SvcAttr = {
  AF: 1, // u16
  PROTOCOL: 2, // u16
  ADDR: 3, // union nf_inet_addr, 16 bytes (IPv4 in the first 4)
  PORT: 4, // __be16
  FWMARK: 5, // u32
  SCHED_NAME: 6, // NUL-terminated string, < IP_VS_SCHEDNAME_MAXLEN (16)
  FLAGS: 7, // struct ip_vs_flags { u32 flags; u32 mask; }
  TIMEOUT: 8, // u32 persistence seconds
  NETMASK: 9, // __be32 read raw: IPv4 mask bytes; IPv6 prefix length (native u32)
  STATS: 10, // nested IPVS_STATS_ATTR_* (u32, bytes u64)
  PE_NAME: 11, // string
  STATS64: 12, // nested IPVS_STATS_ATTR_* (all u64)
} as const;

/** Destination attributes (IPVS_DEST_ATTR_*). */
export const DestAttr = {
  ADDR: 1, // 16 bytes
  PORT: 2, // __be16
  FWD_METHOD: 3, // u32 (IP_VS_CONN_F_FWD_MASK bits)
  WEIGHT: 4, // u32 (int in the kernel; negative -> ERANGE)
  U_THRESH: 5, // u32
  L_THRESH: 6, // u32
  ACTIVE_CONNS: 7, // u32 (read)
  INACT_CONNS: 8, // u32 (read)
  PERSIST_CONNS: 9, // u32 (read)
  STATS: 10,
  ADDR_FAMILY: 11, // u16
  STATS64: 12,
  TUN_TYPE: 13, // u8
  TUN_PORT: 14, // __be16
  TUN_FLAGS: 15, // u16
} as const;

export const StatsAttr = {
  CONNS: 1,
  INPKTS: 2,
  OUTPKTS: 3,
  INBYTES: 4,
  OUTBYTES: 5,
  CPS: 6,
  INPPS: 7,
  OUTPPS: 8,
  INBPS: 9,
  OUTBPS: 10,
  PAD: 11,
} as const;

export const InfoAttr = { VERSION: 1, CONN_TAB_SIZE: 2 } as const;

/** Forwarding methods (IP_VS_CONN_F_*). xdirector programs DROUTE (direct routing) and TUNNEL. */
export const FwdMethod = { MASQ: 0, LOCALNODE: 1, TUNNEL: 2, DROUTE: 3, BYPASS: 4 } as const;
/** Tunnel types (enum ip_vs_tunnel_type, linux/ip_vs.h, kernel >= 5.2 for GUE). */
export const TunType = { IPIP: 0, GUE: 1, GRE: 2 } as const;
/** IP_VS_TUNNEL_ENCAP_FLAG_*: NOCSUM (0) = no outer UDP checksum, as the XDP program sends GUE. */
export const TunFlag = { NOCSUM: 0, CSUM: 1, REMCSUM: 2 } as const;
export const IP_VS_CONN_F_FWD_MASK = 0x7;

/** Service flags (IP_VS_SVC_F_*). */
export const SvcFlag = {
  PERSISTENT: 0x0001,
  HASHED: 0x0002, // set by the kernel, ignore when comparing
  ONEPACKET: 0x0004,
  SCHED1: 0x0008,
  SCHED2: 0x0010,
  SCHED3: 0x0020,
  /** mh: fall back to another server when the chosen one is unavailable (ip_vs_mh.c, not uapi). */
  MH_FALLBACK: 0x0008,
  /** mh: hash the client port too (ip_vs_mh.c, not uapi). */
  MH_PORT: 0x0010,
  SH_FALLBACK: 0x0008,
  SH_PORT: 0x0010,
} as const;

/** Dest flags reported in dumps are not part of the netlink layout; kept for documentation. */
export const AF_INET = 2;
export const AF_INET6 = 10;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_SCTP = 132;

// Netlink constants (linux/netlink.h); the socket layer is the `netlink` package's.
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300; // NLM_F_ROOT | NLM_F_MATCH
export const NLA_F_NESTED = 0x8000;
export const NLA_TYPE_MASK = 0x3fff;
export const NLMSG_HDRLEN = 16;
export const GENL_HDRLEN = 4;
export const IP_VS_SCHEDNAME_MAXLEN = 16;

export type AddressFamily = typeof AF_INET | typeof AF_INET6;

/** A service as the kernel names it: by protocol + address + port (fwmark services are read but never created). */
export interface IpvsServiceKey {
  af: AddressFamily;
  protocol: number;
  /** Textual address ("10.0.0.1", "fd00::1"). */
  addr: string;
  port: number;
  /** Non-zero for fwmark services (then protocol/addr/port are 0 / unspecified). */
  fwmark?: number;
}

export interface IpvsService extends IpvsServiceKey {
  schedName: string;
  /** Service flags, e.g. SvcFlag.MH_PORT. */
  flags: number;
  /** Mask applied by the kernel: new = (old & ~mask) | (flags & mask). Default: all bits. */
  flagsMask?: number;
  /** Persistence timeout in seconds (0 = none). */
  timeout: number;
  /** IPv4: a dotted mask as u32 host value (0xffffffff = /32); IPv6: prefix length (128). */
  netmask: number;
  peName?: string;
}

export interface IpvsStats {
  conns: bigint;
  inpkts: bigint;
  outpkts: bigint;
  inbytes: bigint;
  outbytes: bigint;
  cps: bigint;
  inpps: bigint;
  outpps: bigint;
  inbps: bigint;
  outbps: bigint;
}

export interface IpvsServiceEntry extends IpvsService {
  stats?: IpvsStats;
}

export interface IpvsDest {
  addr: string;
  port: number;
  /** Defaults to the service's family. */
  addrFamily?: AddressFamily;
  fwdMethod: number;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  /** TUNNEL only: TunType (absent = IPIP, what kernels before 5.2 do). */
  tunType?: number;
  /** TUNNEL with GUE: the UDP destination port. */
  tunPort?: number;
  /** TUNNEL with GUE: TunFlag bits. */
  tunFlags?: number;
}

export interface IpvsDestEntry extends IpvsDest {
  activeConns: number;
  inactConns: number;
  persistConns: number;
  stats?: IpvsStats;
}

export interface IpvsInfo {
  /** IP_VS_VERSION_CODE, e.g. 0x010201 for 1.2.1. */
  version: number;
  connTabSize: number;
}

// ---- addresses -------------------------------------------------------------------------------

/** The 16-byte union nf_inet_addr for an address: IPv4 in the first 4 bytes, the rest zero. */
export function encodeInetAddr(addr: string, af: AddressFamily): Buffer {
  const want = af === AF_INET ? 4 : 6;
  if (addressFamily(addr) !== want)
    throw new TypeError(`expected an IPv${want} address, received ${JSON.stringify(addr)}`);
  return addressToBytes16(addr);
}

/** Textual form of a 16-byte (or 4-byte) nf_inet_addr. IPv6 in the canonical compressed form (RFC 5952). */
export function decodeInetAddr(buf: Buffer, af: AddressFamily): string {
  return addressFromBytes(buf, af === AF_INET ? 4 : 6);
}

// ---- attribute writer --------------------------------------------------------------------------

const align4 = (n: number): number => (n + 3) & ~3;

/** One netlink attribute: nla_len u16 (header + payload, unpadded), nla_type u16, payload, pad to 4. */
export function nla(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

export function nlaNested(type: number, children: Buffer[]): Buffer {
  return nla(type | NLA_F_NESTED, Buffer.concat(children));
}

export function nlaU16(type: number, v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return nla(type, b);
}

/** A 16-bit value in network byte order (ports). */
export function nlaBe16(type: number, v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return nla(type, b);
}

export function nlaU32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return nla(type, b);
}

export function nlaString(type: number, s: string): Buffer {
  return nla(type, Buffer.concat([Buffer.from(s, 'utf8'), Buffer.alloc(1)]));
}

// ---- IPVS attribute encoders -------------------------------------------------------------------

/** Service identity attributes (AF + PROTOCOL/ADDR/PORT or FWMARK), the part every service command needs. */
function serviceKeyAttrs(s: IpvsServiceKey): Buffer[] {
  const out = [nlaU16(SvcAttr.AF, s.af)];
  if (s.fwmark) {
    out.push(nlaU32(SvcAttr.FWMARK, s.fwmark));
  } else {
    out.push(nlaU16(SvcAttr.PROTOCOL, s.protocol));
    out.push(nla(SvcAttr.ADDR, encodeInetAddr(s.addr, s.af)));
    out.push(nlaBe16(SvcAttr.PORT, s.port));
  }
  return out;
}

/** IPVS_CMD_ATTR_SERVICE with the identity only (DEL_SERVICE, GET_DEST, DEL/NEW/SET_DEST's service). */
export function encodeServiceKey(s: IpvsServiceKey): Buffer {
  return nlaNested(CmdAttr.SERVICE, serviceKeyAttrs(s));
}

/**
 * IPVS_CMD_ATTR_SERVICE with everything NEW_SERVICE / SET_SERVICE require
 * (ip_vs_genl_parse_service full_entry: SCHED_NAME, FLAGS, TIMEOUT, NETMASK).
 */
export function encodeServiceFull(s: IpvsService): Buffer {
  if (s.schedName.length === 0 || s.schedName.length >= IP_VS_SCHEDNAME_MAXLEN) {
    throw new TypeError(
      `scheduler name must be 1..${IP_VS_SCHEDNAME_MAXLEN - 1} characters, received ${JSON.stringify(s.schedName)}`,
    );
  }
  const flags = Buffer.alloc(8);
  flags.writeUInt32LE(s.flags >>> 0, 0);
  flags.writeUInt32LE((s.flagsMask ?? 0xffffffff) >>> 0, 4);
  const attrs = [...serviceKeyAttrs(s), nlaString(SvcAttr.SCHED_NAME, s.schedName)];
  if (s.peName) attrs.push(nlaString(SvcAttr.PE_NAME, s.peName));
  attrs.push(nla(SvcAttr.FLAGS, flags));
  attrs.push(nlaU32(SvcAttr.TIMEOUT, s.timeout));
  attrs.push(nla(SvcAttr.NETMASK, encodeNetmask(s.af, s.netmask)));
  return nlaNested(CmdAttr.SERVICE, attrs);
}

/**
 * The kernel reads NETMASK with nla_get_be32 and no byte swap: for IPv4 the four mask bytes in
 * network order; for IPv6 it compares the raw value with 1..128, so the prefix length in host order.
 */
function encodeNetmask(af: AddressFamily, netmask: number): Buffer {
  const b = Buffer.alloc(4);
  if (af === AF_INET) b.writeUInt32BE(netmask >>> 0);
  else b.writeUInt32LE(netmask >>> 0);
  return b;
}

function decodeNetmask(af: AddressFamily, b: Buffer): number {
  return af === AF_INET ? b.readUInt32BE(0) : b.readUInt32LE(0);
}

/** IPVS_CMD_ATTR_DEST. full=false: identity only (DEL_DEST). full=true: NEW/SET_DEST fields too. */
export function encodeDest(d: IpvsDest, serviceAf: AddressFamily, full = true): Buffer {
  const af = d.addrFamily ?? serviceAf;
  const attrs = [nla(DestAttr.ADDR, encodeInetAddr(d.addr, af)), nlaBe16(DestAttr.PORT, d.port)];
  if (full) {
    if (!Number.isInteger(d.weight)) throw new TypeError(`weight must be an integer, received ${d.weight}`);
    attrs.push(nlaU32(DestAttr.FWD_METHOD, d.fwdMethod & IP_VS_CONN_F_FWD_MASK));
    // The kernel reads the weight as a u32 into an int: negative values arrive as >= 2^31 and get ERANGE.
    attrs.push(nlaU32(DestAttr.WEIGHT, d.weight >>> 0));
    attrs.push(nlaU32(DestAttr.U_THRESH, d.uThreshold));
    attrs.push(nlaU32(DestAttr.L_THRESH, d.lThreshold));
    if ((d.fwdMethod & IP_VS_CONN_F_FWD_MASK) === FwdMethod.TUNNEL && d.tunType !== undefined) {
      attrs.push(nla(DestAttr.TUN_TYPE, Buffer.from([d.tunType])));
      if (d.tunType === TunType.GUE) {
        attrs.push(nlaBe16(DestAttr.TUN_PORT, d.tunPort ?? 0));
        attrs.push(nlaU16(DestAttr.TUN_FLAGS, d.tunFlags ?? 0));
      }
    }
  }
  attrs.push(nlaU16(DestAttr.ADDR_FAMILY, af));
  return nlaNested(CmdAttr.DEST, attrs);
}

// ---- requests ----------------------------------------------------------------------------------

export interface IpvsRequest {
  cmd: number;
  /** Netlink flags beyond REQUEST|ACK (NLM_F_DUMP for dumps). */
  flags: number;
  /** The attribute payload that follows the generic netlink header. */
  attrs: Buffer;
}

export const req = {
  newService: (s: IpvsService): IpvsRequest => ({ cmd: Cmd.NEW_SERVICE, flags: 0, attrs: encodeServiceFull(s) }),
  setService: (s: IpvsService): IpvsRequest => ({ cmd: Cmd.SET_SERVICE, flags: 0, attrs: encodeServiceFull(s) }),
  delService: (s: IpvsServiceKey): IpvsRequest => ({ cmd: Cmd.DEL_SERVICE, flags: 0, attrs: encodeServiceKey(s) }),
  getService: (s: IpvsServiceKey): IpvsRequest => ({ cmd: Cmd.GET_SERVICE, flags: 0, attrs: encodeServiceKey(s) }),
  dumpServices: (): IpvsRequest => ({ cmd: Cmd.GET_SERVICE, flags: NLM_F_DUMP, attrs: Buffer.alloc(0) }),
  newDest: (s: IpvsServiceKey, d: IpvsDest): IpvsRequest => ({
    cmd: Cmd.NEW_DEST,
    flags: 0,
    attrs: Buffer.concat([encodeServiceKey(s), encodeDest(d, s.af)]),
  }),
  setDest: (s: IpvsServiceKey, d: IpvsDest): IpvsRequest => ({
    cmd: Cmd.SET_DEST,
    flags: 0,
    attrs: Buffer.concat([encodeServiceKey(s), encodeDest(d, s.af)]),
  }),
  delDest: (s: IpvsServiceKey, d: Pick<IpvsDest, 'addr' | 'port' | 'addrFamily'>): IpvsRequest => ({
    cmd: Cmd.DEL_DEST,
    flags: 0,
    attrs: Buffer.concat([
      encodeServiceKey(s),
      encodeDest({ ...d, fwdMethod: 0, weight: 0, uThreshold: 0, lThreshold: 0 }, s.af, false),
    ]),
  }),
  dumpDests: (s: IpvsServiceKey): IpvsRequest => ({ cmd: Cmd.GET_DEST, flags: NLM_F_DUMP, attrs: encodeServiceKey(s) }),
  getInfo: (): IpvsRequest => ({ cmd: Cmd.GET_INFO, flags: 0, attrs: Buffer.alloc(0) }),
  flush: (): IpvsRequest => ({ cmd: Cmd.FLUSH, flags: 0, attrs: Buffer.alloc(0) }),
};

/** The generic netlink header: cmd u8, version u8, reserved u16. */
export function genlHeader(cmd: number, version = IPVS_GENL_VERSION): Buffer {
  const b = Buffer.alloc(GENL_HDRLEN);
  b.writeUInt8(cmd, 0);
  b.writeUInt8(version, 1);
  return b;
}

/** A whole netlink message (nlmsghdr + genlmsghdr + attributes) as it goes on the wire. */
export function encodeMessage(r: IpvsRequest, familyId: number, seq: number, pid: number): Buffer {
  const body = Buffer.concat([genlHeader(r.cmd), r.attrs]);
  const hdr = Buffer.alloc(NLMSG_HDRLEN);
  hdr.writeUInt32LE(NLMSG_HDRLEN + body.length, 0);
  hdr.writeUInt16LE(familyId, 4);
  hdr.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK | r.flags, 6);
  hdr.writeUInt32LE(seq >>> 0, 8);
  hdr.writeUInt32LE(pid >>> 0, 12);
  return Buffer.concat([hdr, body]);
}

// ---- attribute reader --------------------------------------------------------------------------

/** Attributes by type (NLA_F_NESTED / NLA_F_NET_BYTEORDER bits masked off). Later duplicates win. */
export function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
    if (len < 4 || off + len > buf.length)
      throw new RangeError(
        `malformed netlink attribute at offset ${off}: length ${len}, ${buf.length - off} bytes left`,
      );
    out.set(type, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}

function need(m: Map<number, Buffer>, type: number, what: string): Buffer {
  const b = m.get(type);
  if (!b) throw new RangeError(`IPVS reply without ${what}`);
  return b;
}

function u64(b: Buffer | undefined): bigint {
  if (!b) return 0n;
  if (b.length >= 8) return b.readBigUInt64LE(0);
  if (b.length >= 4) return BigInt(b.readUInt32LE(0));
  return 0n;
}

/** Stats: prefer STATS64 (all u64); the legacy STATS nest has u32 counters and u64 bytes. */
export function parseStats(nest: Buffer): IpvsStats {
  const m = parseAttrs(nest);
  return {
    conns: u64(m.get(StatsAttr.CONNS)),
    inpkts: u64(m.get(StatsAttr.INPKTS)),
    outpkts: u64(m.get(StatsAttr.OUTPKTS)),
    inbytes: u64(m.get(StatsAttr.INBYTES)),
    outbytes: u64(m.get(StatsAttr.OUTBYTES)),
    cps: u64(m.get(StatsAttr.CPS)),
    inpps: u64(m.get(StatsAttr.INPPS)),
    outpps: u64(m.get(StatsAttr.OUTPPS)),
    inbps: u64(m.get(StatsAttr.INBPS)),
    outbps: u64(m.get(StatsAttr.OUTBPS)),
  };
}

function pickStats(m: Map<number, Buffer>, s64: number, s32: number): IpvsStats | undefined {
  const b = m.get(s64) ?? m.get(s32);
  return b ? parseStats(b) : undefined;
}

function cString(b: Buffer): string {
  const z = b.indexOf(0);
  return b.subarray(0, z < 0 ? b.length : z).toString('utf8');
}

/** One NEW_SERVICE dump reply (attributes after the genl header). */
export function parseServiceReply(payload: Buffer): IpvsServiceEntry {
  const top = parseAttrs(payload);
  const m = parseAttrs(need(top, CmdAttr.SERVICE, 'IPVS_CMD_ATTR_SERVICE'));
  const af = need(m, SvcAttr.AF, 'service AF').readUInt16LE(0) as AddressFamily;
  if (af !== AF_INET && af !== AF_INET6) throw new RangeError(`IPVS reply with unknown address family ${af}`);
  const fw = m.get(SvcAttr.FWMARK);
  const flagsBuf = m.get(SvcAttr.FLAGS);
  const nm = m.get(SvcAttr.NETMASK);
  const entry: IpvsServiceEntry = {
    af,
    protocol: fw ? 0 : need(m, SvcAttr.PROTOCOL, 'service PROTOCOL').readUInt16LE(0),
    addr: fw ? '' : decodeInetAddr(need(m, SvcAttr.ADDR, 'service ADDR'), af),
    port: fw ? 0 : need(m, SvcAttr.PORT, 'service PORT').readUInt16BE(0),
    schedName: cString(need(m, SvcAttr.SCHED_NAME, 'service SCHED_NAME')),
    flags: flagsBuf ? flagsBuf.readUInt32LE(0) : 0,
    timeout: m.get(SvcAttr.TIMEOUT)?.readUInt32LE(0) ?? 0,
    netmask: nm ? decodeNetmask(af, nm) : 0,
  };
  if (fw) entry.fwmark = fw.readUInt32LE(0);
  const pe = m.get(SvcAttr.PE_NAME);
  if (pe) entry.peName = cString(pe);
  const stats = pickStats(m, SvcAttr.STATS64, SvcAttr.STATS);
  if (stats) entry.stats = stats;
  return entry;
}

/** One NEW_DEST dump reply. serviceAf is used when the kernel omits ADDR_FAMILY (kernels before 4.x). */
export function parseDestReply(payload: Buffer, serviceAf: AddressFamily): IpvsDestEntry {
  const top = parseAttrs(payload);
  const m = parseAttrs(need(top, CmdAttr.DEST, 'IPVS_CMD_ATTR_DEST'));
  const af = (m.get(DestAttr.ADDR_FAMILY)?.readUInt16LE(0) ?? serviceAf) as AddressFamily;
  const u32 = (t: number): number => m.get(t)?.readUInt32LE(0) ?? 0;
  const entry: IpvsDestEntry = {
    addr: decodeInetAddr(need(m, DestAttr.ADDR, 'dest ADDR'), af),
    port: need(m, DestAttr.PORT, 'dest PORT').readUInt16BE(0),
    addrFamily: af,
    fwdMethod: u32(DestAttr.FWD_METHOD) & IP_VS_CONN_F_FWD_MASK,
    weight: m.get(DestAttr.WEIGHT)?.readInt32LE(0) ?? 0,
    uThreshold: u32(DestAttr.U_THRESH),
    lThreshold: u32(DestAttr.L_THRESH),
    activeConns: u32(DestAttr.ACTIVE_CONNS),
    inactConns: u32(DestAttr.INACT_CONNS),
    persistConns: u32(DestAttr.PERSIST_CONNS),
  };
  const tunType = m.get(DestAttr.TUN_TYPE);
  if (entry.fwdMethod === FwdMethod.TUNNEL && tunType && tunType.length >= 1) {
    entry.tunType = tunType[0]!;
    if (entry.tunType === TunType.GUE) {
      entry.tunPort = m.get(DestAttr.TUN_PORT)?.readUInt16BE(0) ?? 0;
      entry.tunFlags = m.get(DestAttr.TUN_FLAGS)?.readUInt16LE(0) ?? 0;
    }
  }
  const stats = pickStats(m, DestAttr.STATS64, DestAttr.STATS);
  if (stats) entry.stats = stats;
  return entry;
}

/** The SET_INFO reply to GET_INFO. */
export function parseInfoReply(payload: Buffer): IpvsInfo {
  const m = parseAttrs(payload);
  return {
    version: need(m, InfoAttr.VERSION, 'INFO VERSION').readUInt32LE(0),
    connTabSize: need(m, InfoAttr.CONN_TAB_SIZE, 'INFO CONN_TAB_SIZE').readUInt32LE(0),
  };
}

/** "1.2.1" from IP_VS_VERSION_CODE. */
export function versionString(code: number): string {
  return `${(code >> 16) & 0xff}.${(code >> 8) & 0xff}.${code & 0xff}`;
}

/** "TCP 10.0.0.1:3306", "UDP [fd00::1]:53", "FWM 5": how ipvsadm and error messages name a service. */
export function serviceLabel(s: IpvsServiceKey): string {
  if (s.fwmark) return `FWM ${s.fwmark}`;
  const p =
    s.protocol === IPPROTO_TCP
      ? 'TCP'
      : s.protocol === IPPROTO_UDP
        ? 'UDP'
        : s.protocol === IPPROTO_SCTP
          ? 'SCTP'
          : `proto ${s.protocol}`;
  return `${p} ${hostPort(s.addr, s.port, s.af)}`;
}

export function hostPort(addr: string, port: number, af?: AddressFamily): string {
  const v6 = af === AF_INET6 || (af === undefined && addr.includes(':'));
  return v6 ? `[${addr}]:${port}` : `${addr}:${port}`;
}
