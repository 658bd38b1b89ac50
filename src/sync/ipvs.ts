// The IPVS sync protocol, version 1 (the Linux kernel's net/netfilter/ipvs/ip_vs_sync.c, what
// `ipvsadm --start-daemon master|backup` and keepalived's lvs_sync_daemon speak): a pure codec,
// and the mapping between its connections and this director's sync entries. Not wired to a
// socket yet: it is the first step towards a mixed IPVS/xdirector pair keeping its sessions.
//
// A message (UDP, port 8848, multicast 224.0.0.81 by default; no authentication in the protocol):
//   u8 reserved (0) | u8 syncid | be16 size (the whole datagram) | u8 nr_conns | s8 version (1) | u16 spare (0)
// then nr_conns connections, each starting on a 4-byte boundary of the message:
//   u8 type (bit 0: IPv6) | u8 protocol | be16 ver_size (version: top 4 bits, 0; size: low 12 bits,
//   this connection's bytes with its options, without the padding after it) | be32 flags |
//   be16 state | be16 cport | be16 vport | be16 dport | be32 fwmark | be32 timeout (s) |
//   caddr | vaddr | daddr (4 or 16 bytes each) | options: u8 type | u8 length | data ...
// Options: 1 sequence data (24 bytes: in_seq and out_seq, three be32 each), 2 persistence-engine
// data, 3 persistence-engine name; a type with bit 7 (64) set may be skipped when unknown.
//
// Decoding follows the kernel's receiver: a bad header or a connection that runs past the
// message drops the whole datagram (IpvsDecodeError); a connection the kernel skips (an unknown
// mandatory option) is skipped and counted.
import type { SyncEntry, SyncForwarding } from './codec';

export const IPVS_SYNC_PORT = 8848;
export const IPVS_SYNC_GROUP = '224.0.0.81';
const HEADER = 8;
const VERSION = 1;
const TYPE_INET6 = 1;
const OPT_SEQ = 1;
const OPT_PE_DATA = 2;
const OPT_PE_NAME = 3;
const OPT_F_PARAM = 64; // IPVS_OPT_F_PARAM: 1 << (IPVS_OPT_PARAM - 1), IPVS_OPT_PARAM 7
const SEQ_BYTES = 24;
const PE_DATA_MAX = 255;
const PE_NAME_MAX = 32; // IP_VS_PENAME_MAXLEN
const SIZE_MASK = 0x0fff;

/** IP_VS_CONN_F_* (include/uapi/linux/ip_vs.h) that this codec and the mapping use. */
export const IPVS_CONN_F = {
  FWD_MASK: 0x0007,
  MASQ: 0x0000,
  LOCALNODE: 0x0001,
  TUNNEL: 0x0002,
  DROUTE: 0x0003,
  BYPASS: 0x0004,
  HASHED: 0x0040,
  INACTIVE: 0x0100,
  SEQ_MASK: 0x0600,
  TEMPLATE: 0x1000,
} as const;

/** enum ip_vs_tcp_state values the mapping uses. */
export const IPVS_TCP_S = { ESTABLISHED: 1, FIN_WAIT: 4, TIME_WAIT: 5, CLOSE: 6, CLOSE_WAIT: 7 } as const;

export interface IpvsSeq {
  initSeq: number;
  delta: number;
  previousDelta: number;
}

export interface IpvsConn {
  family: 4 | 6;
  protocol: number;
  flags: number;
  state: number;
  client: Buffer;
  clientPort: number;
  vip: Buffer;
  vipPort: number;
  dest: Buffer;
  destPort: number;
  fwmark: number;
  /** Seconds the connection has left on the sender. */
  timeoutS: number;
  seq?: { in: IpvsSeq; out: IpvsSeq };
  peData?: Buffer;
  peName?: string;
}

export interface IpvsMessage {
  syncId: number;
  conns: IpvsConn[];
  /** Connections the kernel's receiver would skip too (an unknown mandatory option). */
  skipped: number;
}

export type IpvsDecodeProblem = 'short' | 'size' | 'version' | 'conn';

export class IpvsDecodeError extends Error {
  constructor(
    readonly problem: IpvsDecodeProblem,
    message: string,
  ) {
    super(message);
  }
}

const alen = (family: 4 | 6): number => (family === 4 ? 4 : 16);
const fixedSize = (family: 4 | 6): number => 24 + 3 * alen(family);

function connSize(c: IpvsConn): number {
  let n = fixedSize(c.family);
  if (c.seq) n += 2 + SEQ_BYTES;
  if (c.peData) n += 2 + c.peData.length;
  if (c.peName) n += 2 + Buffer.byteLength(c.peName, 'latin1');
  return n;
}

function checkConn(c: IpvsConn, i: number): void {
  const a = alen(c.family);
  for (const [name, b] of [
    ['client', c.client],
    ['vip', c.vip],
    ['dest', c.dest],
  ] as const)
    if (b.length !== a)
      throw new TypeError(`IPVS connection ${i}: ${name} must be ${a} bytes for IPv${c.family}, got ${b.length}`);
  if (c.peData && (c.peData.length < 1 || c.peData.length > PE_DATA_MAX))
    throw new TypeError(`IPVS connection ${i}: peData must be 1 to ${PE_DATA_MAX} bytes, got ${c.peData.length}`);
  if (c.peName !== undefined && (c.peName.length < 1 || c.peName.length > PE_NAME_MAX))
    throw new TypeError(`IPVS connection ${i}: peName must be 1 to ${PE_NAME_MAX} characters, got ${c.peName.length}`);
  if (c.peName !== undefined && !c.peData)
    throw new TypeError(`IPVS connection ${i}: a peName goes with peData (the kernel refuses a name alone)`);
}

/**
 * The connections as version 1 messages of at most `maxBytes` each (the kernel sends up to the
 * interface MTU less IP and UDP headers; at most 255 connections a message, nr_conns is a u8).
 */
export function encodeIpvsMessages(syncId: number, conns: readonly IpvsConn[], maxBytes = 1472): Buffer[] {
  conns.forEach(checkConn);
  const out: Buffer[] = [];
  let i = 0;
  do {
    let size = HEADER;
    let n = 0;
    while (i + n < conns.length && n < 255) {
      const next = ((size + 3) & ~3) + connSize(conns[i + n]!);
      if (next > maxBytes) break;
      size = next;
      n++;
    }
    if (n === 0 && i < conns.length)
      throw new RangeError(`IPVS connection ${i} needs ${HEADER + connSize(conns[i]!)} bytes, more than ${maxBytes}`);
    const buf = Buffer.alloc(size);
    buf[0] = 0;
    buf[1] = syncId & 0xff;
    buf.writeUInt16BE(size, 2);
    buf[4] = n;
    buf[5] = VERSION;
    let at = HEADER;
    for (let k = 0; k < n; k++) {
      at = (at + 3) & ~3;
      at = writeConn(buf, at, conns[i + k]!);
    }
    out.push(buf);
    i += n;
  } while (i < conns.length);
  return out;
}

function writeConn(buf: Buffer, at: number, c: IpvsConn): number {
  const a = alen(c.family);
  buf[at] = c.family === 6 ? TYPE_INET6 : 0;
  buf[at + 1] = c.protocol;
  buf.writeUInt16BE(connSize(c) & SIZE_MASK, at + 2);
  buf.writeUInt32BE((c.flags & ~IPVS_CONN_F.HASHED) >>> 0, at + 4);
  buf.writeUInt16BE(c.state, at + 8);
  buf.writeUInt16BE(c.clientPort, at + 10);
  buf.writeUInt16BE(c.vipPort, at + 12);
  buf.writeUInt16BE(c.destPort, at + 14);
  buf.writeUInt32BE(c.fwmark >>> 0, at + 16);
  buf.writeUInt32BE(c.timeoutS >>> 0, at + 20);
  let p = at + 24;
  for (const b of [c.client, c.vip, c.dest]) {
    b.copy(buf, p);
    p += a;
  }
  if (c.seq) {
    buf[p++] = OPT_SEQ;
    buf[p++] = SEQ_BYTES;
    for (const s of [c.seq.in, c.seq.out]) {
      buf.writeUInt32BE(s.initSeq >>> 0, p);
      buf.writeUInt32BE(s.delta >>> 0, p + 4);
      buf.writeUInt32BE(s.previousDelta >>> 0, p + 8);
      p += 12;
    }
  }
  if (c.peData) {
    buf[p++] = OPT_PE_DATA;
    buf[p++] = c.peData.length;
    p += c.peData.copy(buf, p);
    if (c.peName) {
      buf[p++] = OPT_PE_NAME;
      buf[p++] = c.peName.length;
      p += buf.write(c.peName, p, 'latin1');
    }
  }
  return p;
}

/** Decodes one datagram as the kernel's version 1 receiver reads it. */
export function decodeIpvsMessage(buf: Buffer): IpvsMessage {
  if (buf.length < HEADER)
    throw new IpvsDecodeError('short', `IPVS sync: ${buf.length} bytes, shorter than the 8-byte header`);
  if (buf.readUInt16BE(2) !== buf.length)
    throw new IpvsDecodeError(
      'size',
      `IPVS sync: the header says ${buf.readUInt16BE(2)} bytes, the datagram has ${buf.length}`,
    );
  if (buf[5] !== VERSION || buf[0] !== 0 || buf.readUInt16BE(6) !== 0)
    throw new IpvsDecodeError(
      'version',
      `IPVS sync: not a version 1 message (version ${buf[5]}, reserved ${buf[0]}, spare ${buf.readUInt16BE(6)}): version 0 senders (net.ipv4.vs.sync_version=0) are not read`,
    );
  const msg: IpvsMessage = { syncId: buf[1]!, conns: [], skipped: 0 };
  const count = buf[4]!;
  let end = HEADER;
  for (let i = 0; i < count; i++) {
    const at = end;
    if (at + 24 + 12 > buf.length)
      throw new IpvsDecodeError('conn', `IPVS sync: connection ${i} of ${count} runs past the message`);
    const verSize = buf.readUInt16BE(at + 2);
    const connEnd = at + (verSize & SIZE_MASK);
    if (connEnd > buf.length)
      throw new IpvsDecodeError('conn', `IPVS sync: connection ${i} of ${count} runs past the message`);
    if (verSize >> 12)
      throw new IpvsDecodeError('conn', `IPVS sync: connection ${i}: unknown connection version ${verSize >> 12}`);
    const c = readConn(buf, at, connEnd, i);
    if (c) msg.conns.push(c);
    else msg.skipped++;
    end = at + (((verSize & SIZE_MASK) + 3) & ~3);
  }
  return msg;
}

/** One connection, undefined when the kernel would skip it, IpvsDecodeError when it would drop the datagram. */
function readConn(buf: Buffer, at: number, end: number, i: number): IpvsConn | undefined {
  const type = buf[at]!;
  let family: 4 | 6;
  if (type & TYPE_INET6) family = 6;
  else if (type === 0) family = 4;
  else throw new IpvsDecodeError('conn', `IPVS sync: connection ${i}: unknown type ${type}`);
  const a = alen(family);
  let p = at + fixedSize(family);
  if (p > end) throw new IpvsDecodeError('conn', `IPVS sync: connection ${i}: shorter than an IPv${family} connection`);
  const c: IpvsConn = {
    family,
    protocol: buf[at + 1]!,
    flags: buf.readUInt32BE(at + 4),
    state: buf.readUInt16BE(at + 8),
    clientPort: buf.readUInt16BE(at + 10),
    vipPort: buf.readUInt16BE(at + 12),
    destPort: buf.readUInt16BE(at + 14),
    fwmark: buf.readUInt32BE(at + 16),
    timeoutS: buf.readUInt32BE(at + 20),
    client: Buffer.from(buf.subarray(at + 24, at + 24 + a)),
    vip: Buffer.from(buf.subarray(at + 24 + a, at + 24 + 2 * a)),
    dest: Buffer.from(buf.subarray(at + 24 + 2 * a, at + 24 + 3 * a)),
  };
  let skip = false;
  while (p < end) {
    if (p + 2 > end) throw new IpvsDecodeError('conn', `IPVS sync: connection ${i}: an option header runs past it`);
    const ptype = buf[p]!;
    const plen = buf[p + 1]!;
    p += 2;
    if (plen === 0 || p + plen > end)
      throw new IpvsDecodeError('conn', `IPVS sync: connection ${i}: option ${ptype} of ${plen} bytes runs past it`);
    const data = buf.subarray(p, p + plen);
    switch (ptype & ~OPT_F_PARAM) {
      case OPT_SEQ:
        if (plen !== SEQ_BYTES || c.seq)
          throw new IpvsDecodeError('conn', `IPVS sync: connection ${i}: a bad or second sequence option`);
        c.seq = {
          in: { initSeq: data.readUInt32BE(0), delta: data.readUInt32BE(4), previousDelta: data.readUInt32BE(8) },
          out: { initSeq: data.readUInt32BE(12), delta: data.readUInt32BE(16), previousDelta: data.readUInt32BE(20) },
        };
        break;
      case OPT_PE_DATA:
        if (c.peData) throw new IpvsDecodeError('conn', `IPVS sync: connection ${i}: a second persistence-data option`);
        c.peData = Buffer.from(data);
        break;
      case OPT_PE_NAME:
        if (plen > PE_NAME_MAX || c.peName !== undefined)
          throw new IpvsDecodeError('conn', `IPVS sync: connection ${i}: a bad or second persistence-engine name`);
        c.peName = data.toString('latin1');
        break;
      default:
        if (!(ptype & OPT_F_PARAM)) skip = true; // an unknown mandatory option: the kernel skips the connection
    }
    p += plen;
  }
  return skip ? undefined : c;
}

const FWD_OF: Record<number, SyncForwarding | undefined> = {
  [IPVS_CONN_F.DROUTE]: 'dr',
  [IPVS_CONN_F.TUNNEL]: 'tunnel',
  [IPVS_CONN_F.MASQ]: 'nat',
};
const TCP_LIVE = new Set<number>([IPVS_TCP_S.ESTABLISHED]);

/**
 * The IPVS connections this director could install, as sync entries (the import planner then
 * applies its rules: our service and backend, same forwarding): TCP connections in ESTABLISHED
 * and UDP ones, with a forwarding method this director has; persistence templates, fwmark
 * services and closing connections are left out (counted in `left`).
 */
export function entriesOfIpvs(conns: readonly IpvsConn[]): { entries: SyncEntry[]; left: number } {
  const entries: SyncEntry[] = [];
  let left = 0;
  for (const c of conns) {
    const forwarding = FWD_OF[c.flags & IPVS_CONN_F.FWD_MASK];
    const live = c.protocol === 17 || (c.protocol === 6 && TCP_LIVE.has(c.state));
    if (!forwarding || !live || c.flags & IPVS_CONN_F.TEMPLATE || c.fwmark !== 0) {
      left++;
      continue;
    }
    entries.push({
      kind: 'refresh',
      family: c.family,
      proto: c.protocol === 6 ? 'tcp' : 'udp',
      forwarding,
      client: c.client,
      clientPort: c.clientPort,
      vip: c.vip,
      vipPort: c.vipPort,
      backend: c.dest,
      backendPort: c.destPort,
      ageMs: 0, // IPVS sends the time left, not the age: the entry is as fresh as the message
    });
  }
  return { entries, left };
}

/** This director's entries as IPVS connections an IPVS backup installs (TCP ESTABLISHED, `timeoutS` left). */
export function ipvsOfEntries(entries: readonly SyncEntry[], timeoutS = 900): IpvsConn[] {
  const fwd = { dr: IPVS_CONN_F.DROUTE, tunnel: IPVS_CONN_F.TUNNEL, nat: IPVS_CONN_F.MASQ } as const;
  return entries.map((e) => ({
    family: e.family,
    protocol: e.proto === 'tcp' ? 6 : 17,
    flags: fwd[e.forwarding],
    state: e.proto === 'tcp' ? IPVS_TCP_S.ESTABLISHED : 0,
    client: e.client,
    clientPort: e.clientPort,
    vip: e.vip,
    vipPort: e.vipPort,
    dest: e.backend,
    destPort: e.backendPort,
    fwmark: 0,
    timeoutS,
  }));
}
