// The connection sync wire format (pure: no sockets, no maps, no addon). One UDP datagram is one
// message: a header, entries, and an HMAC-SHA256 over both, truncated to 16 bytes.
//
//   header (28 bytes, network order)
//     0  magic "XDSY"        4  version (1)     5  flags (0)      6  entry count (u16)
//     8  sender id (u32)     12 sequence (u64)  20 sent at (u64, wall-clock ms)
//   entry (26 bytes IPv4, 62 IPv6)
//     0  kind (1 handshake, 2 takeover, 3 refresh)   1  family (4|6)   2  protocol (6|17)
//     3  forwarding (0 dr, 1 tunnel, 2 nat)          4  client port    6  VIP port
//     8  age (u32 ms: from the flow's last packet on the sender to "sent at")
//     12 client address, VIP, backend address (4 or 16 bytes each), then the backend port (u16)
//   trailer: HMAC-SHA256(key, header + entries), first 16 bytes
//
// The backend is named by its address (and port: NAT rewrites to it), never by an index: indexes
// are each director's own. A receiver installs an entry only for a backend of its own config
// (src/sync/plan.ts), so the address is a choice among its backends, not a destination.
// NAT: `forwarding` 2 and the backend port are what a reverse entry (keyed by the reply's
// 5-tuple: backend:port -> client:cport) needs; masquerading adds nothing else.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const MAGIC = 0x58445359; // "XDSY"
export const VERSION = 1;
export const HEADER_SIZE = 28;
export const MAC_SIZE = 16;
/** A datagram that fits a 1500-byte MTU with IPv6 and UDP headers (48 bytes) to spare. */
export const MAX_MESSAGE = 1400;
export const MIN_KEY_BYTES = 16;

export const KIND = { handshake: 1, takeover: 2, refresh: 3 } as const;
export type Kind = keyof typeof KIND;
export const FORWARDING = { dr: 0, tunnel: 1, nat: 2 } as const;
export type SyncForwarding = keyof typeof FORWARDING;
const KIND_NAME = new Map<number, Kind>(Object.entries(KIND).map(([k, v]) => [v, k as Kind]));
const FWD_NAME = new Map<number, SyncForwarding>(Object.entries(FORWARDING).map(([k, v]) => [v, k as SyncForwarding]));

export interface SyncEntry {
  kind: Kind;
  family: 4 | 6;
  proto: 'tcp' | 'udp';
  forwarding: SyncForwarding;
  /** Client address, 4 or 16 bytes (network order). */
  client: Buffer;
  clientPort: number;
  /** VIP, 4 or 16 bytes. */
  vip: Buffer;
  vipPort: number;
  /** Backend address, 4 or 16 bytes. */
  backend: Buffer;
  backendPort: number;
  /** Milliseconds from the flow's last packet on the sender to the message's sentAtMs (capped at 2^32-1). */
  ageMs: number;
}

export interface SyncMessage {
  sender: number;
  seq: bigint;
  /** Wall-clock ms when the message was sent (the lag of its entries is measured from it). */
  sentAtMs: number;
  entries: SyncEntry[];
}

export function entrySize(family: 4 | 6): number {
  return 14 + 3 * (family === 4 ? 4 : 16);
}

/** Why a datagram was dropped: each is counted under its name. */
export type DecodeProblem = 'short' | 'magic' | 'version' | 'length' | 'hmac' | 'entry';

export class SyncDecodeError extends Error {
  constructor(
    readonly problem: DecodeProblem,
    message: string,
  ) {
    super(message);
  }
}

function mac(key: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', key).update(body).digest().subarray(0, MAC_SIZE);
}

/**
 * Encodes messages of at most MAX_MESSAGE bytes: as many as `entries` needs (none given: one
 * empty message, the heartbeat). `nextSeq` is called once per message.
 */
export function encodeMessages(
  key: Buffer,
  sender: number,
  nextSeq: () => bigint,
  sentAtMs: number,
  entries: readonly SyncEntry[],
): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  do {
    let size = HEADER_SIZE + MAC_SIZE;
    let n = 0;
    while (i + n < entries.length && size + entrySize(entries[i + n].family) <= MAX_MESSAGE && n < 0xffff) {
      size += entrySize(entries[i + n].family);
      n++;
    }
    const buf = Buffer.alloc(size);
    buf.writeUInt32BE(MAGIC, 0);
    buf.writeUInt8(VERSION, 4);
    buf.writeUInt8(0, 5);
    buf.writeUInt16BE(n, 6);
    buf.writeUInt32BE(sender >>> 0, 8);
    buf.writeBigUInt64BE(nextSeq(), 12);
    buf.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(sentAtMs))), 20);
    let at = HEADER_SIZE;
    for (let k = 0; k < n; k++) at = writeEntry(buf, at, entries[i + k]);
    mac(key, buf.subarray(0, at)).copy(buf, at);
    out.push(buf);
    i += n;
  } while (i < entries.length);
  return out;
}

function badAddress(name: string, alen: number, e: SyncEntry): never {
  const b = name === 'client' ? e.client : name === 'vip' ? e.vip : e.backend;
  throw new TypeError(`sync entry ${name}: expected ${alen} bytes for IPv${e.family}, received ${b.length}`);
}

function writeEntry(buf: Buffer, at: number, e: SyncEntry): number {
  const alen = e.family === 4 ? 4 : 16;
  if (e.client.length !== alen) badAddress('client', alen, e);
  if (e.vip.length !== alen) badAddress('vip', alen, e);
  if (e.backend.length !== alen) badAddress('backend', alen, e);
  buf[at] = KIND[e.kind];
  buf[at + 1] = e.family;
  buf[at + 2] = e.proto === 'tcp' ? 6 : 17;
  buf[at + 3] = FORWARDING[e.forwarding];
  buf.writeUInt16BE(e.clientPort, at + 4);
  buf.writeUInt16BE(e.vipPort, at + 6);
  buf.writeUInt32BE(Math.min(0xffffffff, Math.max(0, Math.floor(e.ageMs))), at + 8);
  // Byte by byte, and no temporaries: this runs for every exported flow, and a native copy()
  // per 4-byte address costs more than the loop.
  let p = at + 12;
  for (let k = 0; k < alen; k++) buf[p + k] = e.client[k]!;
  p += alen;
  for (let k = 0; k < alen; k++) buf[p + k] = e.vip[k]!;
  p += alen;
  for (let k = 0; k < alen; k++) buf[p + k] = e.backend[k]!;
  p += alen;
  buf.writeUInt16BE(e.backendPort, p);
  return p + 2;
}

/**
 * Decodes and authenticates one datagram. Throws SyncDecodeError (never anything else) for
 * anything short of a well-formed message under `key`: the HMAC is checked before any entry is
 * read, so an unauthenticated sender cannot reach the entry parser. The entries' addresses are
 * views of `buf` (no copies: import decodes tens of thousands a second): do not reuse it.
 */
export function decodeMessage(key: Buffer, buf: Buffer): SyncMessage {
  if (buf.length < HEADER_SIZE + MAC_SIZE)
    throw new SyncDecodeError(
      'short',
      `${buf.length} bytes: shorter than a header and its HMAC (${HEADER_SIZE + MAC_SIZE})`,
    );
  if (buf.length > MAX_MESSAGE)
    throw new SyncDecodeError('length', `${buf.length} bytes: longer than a sync message (${MAX_MESSAGE})`);
  if (buf.readUInt32BE(0) !== MAGIC) throw new SyncDecodeError('magic', 'not a sync message (bad magic)');
  if (buf.readUInt8(4) !== VERSION)
    throw new SyncDecodeError('version', `sync message version ${buf.readUInt8(4)}: this director speaks ${VERSION}`);
  const bodyLen = buf.length - MAC_SIZE;
  const want = mac(key, buf.subarray(0, bodyLen));
  if (!timingSafeEqual(want, buf.subarray(bodyLen)))
    throw new SyncDecodeError('hmac', "bad HMAC: not signed with this director's sync key");
  const count = buf.readUInt16BE(6);
  const entries: SyncEntry[] = [];
  let at = HEADER_SIZE;
  for (let i = 0; i < count; i++) {
    if (at + 12 > bodyLen) throw new SyncDecodeError('length', `entry ${i} of ${count} runs past the message`);
    const kind = KIND_NAME.get(buf.readUInt8(at));
    const family = buf.readUInt8(at + 1);
    const protoNum = buf.readUInt8(at + 2);
    const forwarding = FWD_NAME.get(buf.readUInt8(at + 3));
    if (!kind || (family !== 4 && family !== 6) || (protoNum !== 6 && protoNum !== 17) || !forwarding) {
      throw new SyncDecodeError('entry', `entry ${i}: bad kind, family, protocol or forwarding`);
    }
    const alen = family === 4 ? 4 : 16;
    if (at + entrySize(family) > bodyLen)
      throw new SyncDecodeError('length', `entry ${i} of ${count} runs past the message`);
    let p = at + 12;
    const client = buf.subarray(p, p + alen);
    p += alen;
    const vip = buf.subarray(p, p + alen);
    p += alen;
    const backend = buf.subarray(p, p + alen);
    p += alen;
    entries.push({
      kind,
      family,
      proto: protoNum === 6 ? 'tcp' : 'udp',
      forwarding,
      clientPort: buf.readUInt16BE(at + 4),
      vipPort: buf.readUInt16BE(at + 6),
      ageMs: buf.readUInt32BE(at + 8),
      client,
      vip,
      backend,
      backendPort: buf.readUInt16BE(p),
    });
    at = p + 2;
  }
  if (at !== bodyLen) throw new SyncDecodeError('length', `${bodyLen - at} bytes after the last of ${count} entries`);
  return {
    sender: buf.readUInt32BE(8),
    seq: buf.readBigUInt64BE(12),
    sentAtMs: Number(buf.readBigUInt64BE(20)),
    entries,
  };
}

/**
 * Anti-replay per sender (RFC 4303's sliding window): a sequence number is accepted once, and
 * only if it is newer than the highest seen minus WINDOW (datagrams may arrive out of order).
 * Senders start their sequence at their start time in microseconds, so a restarted sender
 * continues above its old numbers.
 */
export class ReplayWindow {
  static readonly WINDOW = 64n;
  private top = -1n;
  private bits = 0n; // bit i: top - i seen

  /** True (and remembered) if seq is new; false for a replay or one older than the window. */
  accept(seq: bigint): boolean {
    if (seq > this.top) {
      const shift = this.top < 0n ? ReplayWindow.WINDOW : seq - this.top;
      this.bits = shift >= ReplayWindow.WINDOW ? 1n : ((this.bits << shift) | 1n) & ((1n << ReplayWindow.WINDOW) - 1n);
      this.top = seq;
      return true;
    }
    const back = this.top - seq;
    if (back >= ReplayWindow.WINDOW) return false;
    if (this.bits & (1n << back)) return false;
    this.bits |= 1n << back;
    return true;
  }
}

/** A sequence source starting at the current time in microseconds (see ReplayWindow). */
export function sequenceFrom(nowMs: number): () => bigint {
  let seq = BigInt(Math.floor(nowMs)) * 1000n;
  return () => ++seq;
}
