// The XDP dataplane's view of the generated layouts (src/bpf/layouts.generated.ts,
// generated from the compiled object's BTF): typed maps by role, address and
// MAC conversions, and zero values. No layout is restated here.
import * as G from '../../bpf';
import { xdMap, XdMap, openPinnedXdMap } from '../../bpf';
import type { BpfObject } from '../../bpf';
import type { Family, TunnelSpec } from '../../state/types';
import { addressFromBytes, addressToBytes16, formatMac, parseMac } from '../../net/inet';
import { sumPerCpu } from '../../bpf';

export const LAYOUT_VERSION = G.LAYOUT_VERSION;
export const LAYOUT_HASH = G.LAYOUT_HASH;
export const MAP = Object.fromEntries(Object.entries(G.MAPS).map(([role, m]) => [role, m.name])) as {
  [R in G.MapRole]: string;
};

export const SCHED = {
  MAGLEV: G.XdSched.XD_SCHED_MAGLEV,
  SH: G.XdSched.XD_SCHED_SH,
  SEQ: G.XdSched.XD_SCHED_SEQ,
  IPVS_MH: G.XdSched.XD_SCHED_IPVS_MH,
  IPVS_MH_NOPORT: G.XdSched.XD_SCHED_IPVS_MH_NOPORT,
} as const;
export const SVC_FLAG = { EMPTY_DROP: G.XdServiceFlags.XD_SVC_F_EMPTY_DROP } as const;
export const BE_FLAG = {
  ACTIVE: G.XdBackendFlags.XD_BE_F_ACTIVE,
  DRAINING: G.XdBackendFlags.XD_BE_F_DRAINING,
  DOWN: G.XdBackendFlags.XD_BE_F_DOWN,
  TUNNEL: G.XdBackendFlags.XD_BE_F_TUNNEL,
  NAT: G.XdBackendFlags.XD_BE_F_NAT,
} as const;
export const ENCAP = { ipip: G.XdEncap.XD_ENCAP_IPIP, gue: G.XdEncap.XD_ENCAP_GUE } as const;

/** Verdict reasons by readable name ("tx_new_flow" → 3), without the XD_R_MAX sentinel. */
export const REASON: Record<string, number> = Object.fromEntries(
  Object.entries(G.XdReason)
    .filter(([k]) => k !== 'XD_R_MAX')
    .map(([k, v]) => [k.replace(/^XD_R_/, '').toLowerCase(), v]),
);

export interface Maps {
  svc: XdMap<'svc'>;
  vport: XdMap<'vport'>;
  be: XdMap<'be'>;
  flow4: XdMap<'flow4'>;
  flow6: XdMap<'flow6'>;
  emb4: XdMap<'emb4'>;
  emb6: XdMap<'emb6'>;
  tko4: XdMap<'tko4'>;
  tko6: XdMap<'tko6'>;
  prb4: XdMap<'prb4'>;
  prb6: XdMap<'prb6'>;
  guard: XdMap<'guard'>;
  svcst: XdMap<'svcst'>;
  best: XdMap<'best'>;
  rsnst: XdMap<'rsnst'>;
  tun: XdMap<'tun'>;
  /** NAT (bpf/nat.h): reverse tables, source-port bits, Out counters, redirect devmap (a backend's own NAT fields are in its xd_be_v2 entry). */
  nrev4: XdMap<'nrev4'>;
  nrev6: XdMap<'nrev6'>;
  nport: XdMap<'nport'>;
  nbst: XdMap<'nbst'>;
  tx: XdMap<'tx'>;
  meta: XdMap<'meta'>;
  ring: XdMap<'ring'>;
  ringFd: number;
  close(): void;
}

export function openMaps(obj: BpfObject): Maps {
  const ring = xdMap(obj, 'ring');
  const m = {
    svc: xdMap(obj, 'svc'),
    vport: xdMap(obj, 'vport'),
    be: xdMap(obj, 'be'),
    svcst: xdMap(obj, 'svcst'),
    flow4: xdMap(obj, 'flow4'),
    flow6: xdMap(obj, 'flow6'),
    emb4: xdMap(obj, 'emb4'),
    emb6: xdMap(obj, 'emb6'),
    tko4: xdMap(obj, 'tko4'),
    tko6: xdMap(obj, 'tko6'),
    prb4: xdMap(obj, 'prb4'),
    prb6: xdMap(obj, 'prb6'),
    guard: xdMap(obj, 'guard'),
    best: xdMap(obj, 'best'),
    rsnst: xdMap(obj, 'rsnst'),
    tun: xdMap(obj, 'tun'),
    meta: xdMap(obj, 'meta'),
    ring,
    ringFd: ring.fd,
    nrev4: xdMap(obj, 'nrev4'),
    nrev6: xdMap(obj, 'nrev6'),
    nport: xdMap(obj, 'nport'),
    nbst: xdMap(obj, 'nbst'),
    tx: xdMap(obj, 'tx'),
    close: () => {
      /* maps borrow the object's fds */
    },
  };
  return m;
}

export function readPinnedMeta(dir: string): G.XdMeta | undefined {
  const m = openPinnedXdMap(dir, 'meta');
  try {
    return m.lookup(0);
  } finally {
    m.close();
  }
}

/** The xd_vport_v1 word and bit of a port and protocol (see XD_VPORT_WORDS in the header). */
export function vportBit(port: number, proto: 'tcp' | 'udp'): { word: number; bit: bigint } {
  return { word: (proto === 'udp' ? G.DEFINES.XD_VPORT_WORDS : 0) + (port >> 6), bit: 1n << BigInt(port & 63) };
}

/** The nonzero xd_vport_v1 words for a set of services' ports and protocols. */
export function vportWords(keys: Iterable<{ port: number; proto: 'tcp' | 'udp' }>): Map<number, bigint> {
  const words = new Map<number, bigint>();
  for (const k of keys) {
    const { word, bit } = vportBit(k.port, k.proto);
    words.set(word, (words.get(word) ?? 0n) | bit);
  }
  return words;
}

/** The nonzero xd_nport_v1 words for the NAT backends' ports (the source port of their replies), laid out as xd_vport_v1. */
export const nportWords = vportWords;

/** 16 bytes, network order; IPv4 in the first 4 (the layout's addr/vip fields). */
export const addr16 = addressToBytes16;
/** Text of a layout's addr/vip field. */
export const addrString = (b: Buffer, family: Family): string => addressFromBytes(b, family);
export const macBytes = parseMac;
export const macString = formatMac;

export function zeroServiceStats(): G.XdServiceStats {
  return { packets: 0n, bytes: 0n, new_flows: 0n, no_backend: 0n };
}
export function zeroNatStats(): G.XdNatStats {
  return { packets: 0n, bytes: 0n };
}
export function zeroBackendStats(): G.XdBackendStats {
  return { packets: 0n, bytes: 0n, new_flows: 0n, flow_hits: 0n, flow_hit_bytes: 0n };
}

/**
 * Every flow value of both flow tables (IPv4 and IPv6; their empty entries skipped), one entry at a time.
 * The program counts an established packet once, on its backend
 * (xd_backend_stats.flow_hits), not under its reason in xd_rsnst.
 */
export function* flowValues(maps: Pick<Maps, 'flow4' | 'flow6'>): Generator<G.XdFlow> {
  // A walk of every entry: no key is hashed, so the seed does not matter.
  for (const [, f] of G.FlowTable.v4(maps.flow4, 0).entries()) yield f;
  for (const [, f] of G.FlowTable.v6(maps.flow6, 0).entries()) yield f;
}

/** Packets per verdict reason: xd_rsnst plus the flow hits counted on the backends (`backendIndexes`: the live ones). */
export function readReasons(
  maps: Pick<Maps, 'rsnst' | 'best'>,
  backendIndexes: Iterable<number>,
): Record<string, number> {
  const reasons: Record<string, number> = {};
  for (const [name, value] of Object.entries(REASON)) {
    const r = maps.rsnst.lookupPerCpu(value);
    reasons[name] = r ? Number(sumPerCpu(r).packets) : 0;
  }
  for (const i of backendIndexes) {
    const b = maps.best.lookupPerCpu(i);
    if (b) reasons.tx_flow_hit = (reasons.tx_flow_hit ?? 0) + Number(sumPerCpu(b).flow_hits);
  }
  return reasons;
}

export interface GuardCounts {
  /** Entries created in the embryonic tables (opening packets). */
  embryonic: number;
  /** Entries created in the takeover tables by a non-opening packet of an unknown flow (takeover or spoofed). */
  takeovers: number;
  /** Flows moved from the embryonic to the probation tables (handshake completed, not yet proven). */
  handshakes: number;
  /** Proven flows kept in the probation tables: above new_flow_rate. */
  limited: number;
}

/** The flood guard's counters (struct xd_guard), all CPUs. */
export function readGuard(maps: Pick<Maps, 'guard'>): GuardCounts {
  const g = maps.guard.lookupPerCpu(0) ?? [];
  const sum = (k: 'embryonic' | 'takeovers' | 'handshakes' | 'limited'): number =>
    g.reduce((n, v) => n + Number(v[k]), 0);
  return {
    embryonic: sum('embryonic'),
    takeovers: sum('takeovers'),
    handshakes: sum('handshakes'),
    limited: sum('limited'),
  };
}

/**
 * The flood alert, from the guard counters' change over `seconds`: the takeover tables (what a
 * flood of bare ACKs churns) turning over within a minute, so a flow taken over mid-stream and
 * idle that long may lose its entry; the probation tables (what a flood of fake handshakes
 * churns) turning over within XD_PROVE_NS's ten times, so a real new flow may lose its entry
 * before it proves itself; or proven flows held back by new_flow_rate, so the flow tables take
 * new flows at the guard's limit and their least recently used flows go. Undefined when none.
 */
export function floodAlert(
  d: GuardCounts,
  seconds: number,
  takeoverTableSize: number,
  newFlowRate: number,
): string | undefined {
  if (seconds <= 0) return undefined;
  const perSec = (n: number): number => Math.round(n / seconds);
  const turnover = (rate: number): number => Math.max(1, Math.round(takeoverTableSize / Math.max(rate, 1)));
  const parts: string[] = [];
  const takeovers = perSec(d.takeovers);
  if (takeovers * 60 > takeoverTableSize) {
    parts.push(
      `${takeovers} new takeover-table entries/s (non-opening packets of unknown flows: bare ACKs) turn the ${takeoverTableSize}-entry takeover tables over in ${turnover(takeovers)} s: flows taken over mid-stream lose their backend after that long idle`,
    );
  }
  const handshakes = perSec(d.handshakes);
  if (handshakes * 10 > takeoverTableSize) {
    parts.push(
      `${handshakes} handshakes/s turn the ${takeoverTableSize}-entry probation tables over in ${turnover(handshakes)} s: new flows may lose their backend before they prove themselves`,
    );
  }
  if (d.limited > 0) {
    parts.push(
      `${perSec(d.limited)} flows/s held back by xdp.new_flow_rate (${newFlowRate}/s): the flow tables are taking new flows at the guard's limit and evicting their least recently used flows`,
    );
  }
  return parts.length ? `flood guard under pressure: ${parts.join('; ')}` : undefined;
}

/**
 * What a NAT backend's entry (its nat_ fields in xd_be_v2) is made of: its address and port, the service's VIP and port it
 * is reached by (for the checksum differences), the director's MAC on its egress interface, the
 * path MTU (0: no check).
 */
export interface NatSpec {
  address: string;
  port: number;
  vip: string;
  vport: number;
  smac: string;
  mtu: number;
  ifindex: number;
}

/** Folds a sum of 16-bit words to 16 bits, end-around carry (RFC 1071). */
function fold16(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** RFC 1624's ~m + m' of replacing `from` by `to` (same length, even), over big-endian words, folded. */
export function csumDifference(from: Buffer, to: Buffer): number {
  let sum = 0;
  for (let i = 0; i < from.length; i += 2) sum += (~from.readUInt16BE(i) & 0xffff) + to.readUInt16BE(i);
  return fold16(sum);
}

const port16 = (p: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(p);
  return b;
};

/**
 * The checksum differences of rewriting VIP:vport to address:port, which the fast path adds instead
 * of summing them per packet (bpf/nat.h nat_fast()): csum_l3 for the IPv4 header (the address),
 * csum_l4 for TCP/UDP (address, through the pseudo-header, and port). The same family on both sides.
 */
export function natCsums(n: Pick<NatSpec, 'address' | 'port' | 'vip' | 'vport'>): { csum_l3: number; csum_l4: number } {
  const v4 = !n.vip.includes(':');
  const from = addr16(n.vip).subarray(0, v4 ? 4 : 16);
  const to = addr16(n.address).subarray(0, v4 ? 4 : 16);
  const l3 = csumDifference(from, to);
  return { csum_l3: v4 ? l3 : 0, csum_l4: fold16(l3 + csumDifference(port16(n.vport), port16(n.port))) };
}

/** The NAT fields of a backend entry (xd_be_v2); none (encoded as zero) for a backend that is not NAT. */
export type NatFields = Pick<G.XdBackend, 'nat_smac' | 'nat_port' | 'nat_mtu' | 'nat_csum_l3' | 'nat_csum_l4'>;

export function natEntry(n: NatSpec | undefined): NatFields {
  if (!n) return {};
  const c = natCsums(n);
  return {
    nat_smac: macBytes(n.smac),
    nat_port: n.port,
    nat_mtu: Math.min(n.mtu, 65535),
    nat_csum_l3: c.csum_l3,
    nat_csum_l4: c.csum_l4,
  };
}

/** What natText() compares: an entry as written (a NatSpec) or as read back (the map, csums included). */
export type NatTextInput = Pick<NatSpec, 'port' | 'smac' | 'mtu' | 'ifindex'> &
  (Pick<NatSpec, 'address' | 'vip' | 'vport'> | { csum_l3: number; csum_l4: number });

/** One comparable string of a NAT entry and egress interface ('' = not NAT). */
export function natText(n: NatTextInput | undefined): string {
  if (!n) return '';
  const c = 'csum_l3' in n ? n : natCsums(n);
  return `${n.port}/${n.smac}/${n.mtu}/${n.ifindex}/${c.csum_l3}/${c.csum_l4}`;
}

/** The xd_tun_v1 entry of a tunnel backend: outer source/destination, encapsulation, path MTU. */
export function tunnelEntry(address: string, t: TunnelSpec): G.XdTunnel {
  const family = address.includes(':') ? 6 : 4;
  return {
    saddr: addr16(t.source),
    daddr: addr16(address),
    gue_port: t.encap === 'gue' ? t.guePort : 0,
    mtu: Math.min(t.mtu ?? 0, 65535),
    encap: ENCAP[t.encap],
    family,
  };
}
