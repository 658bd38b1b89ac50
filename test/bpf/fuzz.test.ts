// A seeded fuzzer for the XDP program: mutated and random frames through BPF_PROG_TEST_RUN.
//
// Frames: valid client frames of every shape the program knows (IPv4 with options and
// fragments, IPv6 with extension header chains and fragments, 802.1Q and QinQ tags, TCP with
// any flags, UDP, ICMP / ICMPv6 errors quoting crafted inner headers), then mutated (cut at a
// random offset, bits flipped, a header byte overwritten, garbage) or replaced by random bytes;
// plus every truncation of a set of templates. Each frame is also read by a small independent
// parser written here from the spec (Ethernet + at most one tag, IPv4 IHL and fragment bits,
// IPv6 extension chain of at most 8 headers, TCP doff, ICMP error inner headers), which says
// which configured service the frame is for, if any.
//
// Invariants, checked on every frame unless said otherwise:
//  - a frame is forwarded (XDP_TX) only if it is for a configured service VIP:port/proto (for an
//    ICMP error: it quotes a packet from that service and is addressed to its VIP);
//  - it goes only to a backend of that service (the rewritten destination MAC), and only the two
//    MACs change (source := the frame's destination);
//  - a frame for no service is passed untouched (XDP_PASS), never dropped or aborted; a whole
//    TCP/UDP packet for a service with backends is forwarded, a first fragment for it dropped;
//  - ICMP frames leave the flow table as it was (checked over each ICMP phase: same entries);
//  - every verdict is counted: the verdict-reason packet counters grow by exactly the number of
//    frames run, and their bytes by the bytes run.
//
// XD_FUZZ_FRAMES=<n> runs n random frames instead of the default (long-run mode);
// XD_FUZZ_SEED=<n> picks another seed. The frame count and the verdict histogram are printed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as pk from '../lib/packet';
import { loadSmallDirector, TEST_FLOW_SEED } from '../lib/director';
import { BpfObject, BpfMap, FlowTable, testRun, u32, sumPerCpu, getNative, xdMap } from '../../src/bpf';
import {
  MAPS,
  XdBackendFlags,
  XdFamily,
  XdReason,
  XdSched,
  XdServiceFlags,
  xdBackendCodec,
  xdFlowCodec,
  xdFlowKeyCodec,
  xdFlow4KeyCodec,
  xdBackendStatsCodec,
  xdReasonStatsCodec,
  xdServiceCodec,
  xdServiceKeyCodec,
} from '../../src/bpf/layouts.generated';
import type {
  XdBackend,
  XdBackendStats,
  XdFlow,
  XdFlowKey,
  XdFlow4Key,
  XdReasonStats,
  XdService,
  XdServiceKey,
} from '../../src/bpf/layouts.generated';
import { markVipPort } from '../lib/vipports';

const RANDOM_FRAMES = Number(process.env.XD_FUZZ_FRAMES ?? 95000);
const SEED = Number(process.env.XD_FUZZ_SEED ?? 20261204);
const RING_MAX = 13;
const MAX_SERVICES = 8;
const MAX_BACKENDS = 16;
const MAX_FLOWS = 2048;

const DIRECTOR_MAC = '02:00:00:00:00:02';
const beMac = (i: number): string => `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`;
const VIP4 = '10.200.0.100';
const VIP4B = '10.200.0.101';
const VIP6 = '2001:db8::100';
const OTHER4 = ['10.200.0.2', '10.200.0.102', '192.0.2.1'];
const OTHER6 = ['2001:db8::2', '2001:db8::101', 'fe80::1'];
const ROUTER4 = '10.200.0.1';
const ROUTER6 = '2001:db8::1';
const TCP = pk.IPPROTO_TCP;
const UDP = pk.IPPROTO_UDP;

interface Svc {
  id: number;
  vip: string;
  port: number;
  proto: number;
  backends: number[];
  sched?: number;
  flags?: number;
}
// Each service has its own backends, so a frame sent to a backend of another service is caught.
const SERVICES: Svc[] = [
  { id: 0, vip: VIP4, port: 3306, proto: TCP, backends: [1, 2, 3] },
  { id: 1, vip: VIP4, port: 3306, proto: UDP, backends: [4, 5] },
  { id: 2, vip: VIP6, port: 3306, proto: TCP, backends: [6, 7] },
  { id: 3, vip: VIP6, port: 53, proto: UDP, backends: [8] },
  { id: 4, vip: VIP4B, port: 3307, proto: TCP, backends: [9, 10], sched: XdSched.XD_SCHED_SEQ },
  { id: 5, vip: VIP6, port: 3307, proto: TCP, backends: [11, 12], sched: XdSched.XD_SCHED_SH },
  { id: 6, vip: VIP4, port: 3308, proto: TCP, backends: [], flags: XdServiceFlags.XD_SVC_F_EMPTY_DROP },
];
const PORTS = [3306, 3307, 3308, 53, 22, 0, 65535];

const XDP = (() => {
  const c = getNative().constants;
  return {
    ABORTED: c.XDP_ABORTED,
    DROP: c.XDP_DROP,
    PASS: c.XDP_PASS,
    TX: c.XDP_TX,
    REDIRECT: c.XDP_REDIRECT,
  } as Record<string, number>;
})();
const VERDICT_NAME = new Map(Object.entries(XDP).map(([k, v]) => [v, k]));
const REASONS = (Object.keys(XdReason) as (keyof typeof XdReason)[]).filter((r) => r !== 'XD_R_MAX');

// ---------------------------------------------------------------- seeded randomness

/** xorshift32: small, fast, reproducible from the seed. */
class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  u32(): number {
    let x = this.s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  int(n: number): number {
    return this.u32() % n;
  }
  chance(p: number): boolean {
    return this.u32() / 0x100000000 < p;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

// ---------------------------------------------------------------- the reference parser

const canon = (b: Buffer): string => b.toString('hex');
const SVC_BY_KEY = new Map(SERVICES.map((s) => [`${canon(pk.ipBytes(s.vip))}/${s.port}/${s.proto}`, s]));

/** What the spec says about a frame: the service it is for (if any), whether it is an ICMP error for it, a fragment, and its outer protocol. */
interface Class {
  svc?: Svc;
  icmp: boolean;
  frag: boolean;
  /** Outer IP protocol after the extension headers (-1: none reached). */
  l4: number;
}

/** IPv6 extension chain from `off` (nexthdr `nh`): {l4, off, fragOff} or undefined (truncated, too long). */
function walk6(f: Buffer, off: number, nh: number): { l4: number; off: number; fo: number } | undefined {
  let fo = 0;
  for (let i = 0; i < 8; i++) {
    if (nh === 0 || nh === 43 || nh === 60 || nh === 51) {
      if (off + 2 > f.length) return undefined;
      const next = f[off]!;
      off += nh === 51 ? (f[off + 1]! + 2) * 4 : (f[off + 1]! + 1) * 8;
      nh = next;
    } else if (nh === 44) {
      if (off + 8 > f.length) return undefined;
      const v = f.readUInt16BE(off + 2);
      nh = f[off]!;
      off += 8;
      if (v & 0xfff9) fo = v;
      if (v & 0xfff8) return { l4: nh, off, fo };
    } else {
      return { l4: nh, off, fo };
    }
  }
  return undefined;
}

function classify(f: Buffer, selfMac: Buffer): Class {
  const none: Class = { icmp: false, frag: false, l4: -1 };
  if (f.length < 14) return none;
  let type = f.readUInt16BE(12);
  let off = 14;
  if (type === 0x8100 || type === 0x88a8) {
    if (f.length < 18) return none;
    type = f.readUInt16BE(16);
    off = 18;
  }
  if (!(f[0]! & 1) && !f.subarray(0, 6).equals(selfMac)) return none;
  let src: Buffer,
    dst: Buffer,
    l4: number,
    frag = false;
  if (type === 0x0800) {
    if (off + 20 > f.length) return none;
    const ihl = f[off]! & 0xf;
    if (f[off]! >> 4 !== 4 || ihl < 5 || off + ihl * 4 > f.length) return none;
    const fo = f.readUInt16BE(off + 6);
    if (fo & 0x1fff) return { ...none, frag: true };
    frag = (fo & 0x2000) !== 0;
    l4 = f[off + 9]!;
    src = f.subarray(off + 12, off + 16);
    dst = f.subarray(off + 16, off + 20);
    off += ihl * 4;
  } else if (type === 0x86dd) {
    if (off + 40 > f.length || f[off]! >> 4 !== 6) return none;
    src = f.subarray(off + 8, off + 24);
    dst = f.subarray(off + 24, off + 40);
    const w = walk6(f, off + 40, f[off + 6]!);
    if (!w) return none;
    if (w.fo & 0xfff8) return { ...none, frag: true };
    frag = (w.fo & 1) !== 0;
    l4 = w.l4;
    off = w.off;
  } else {
    return none;
  }
  const v4 = type === 0x0800;
  if (l4 === (v4 ? 1 : 58) && !frag) {
    if (off + 8 > f.length) return { ...none, l4 };
    if (v4 ? f[off] !== 3 || f[off + 1] !== 4 : f[off] !== 2) return { ...none, l4 };
    off += 8;
    let isrc: Buffer, ip: number;
    if (v4) {
      if (off + 20 > f.length) return { ...none, l4 };
      const ihl = f[off]! & 0xf;
      if (f[off]! >> 4 !== 4 || ihl < 5 || off + ihl * 4 > f.length) return { ...none, l4 };
      ip = f[off + 9]!;
      isrc = f.subarray(off + 12, off + 16);
      off += ihl * 4;
    } else {
      if (off + 40 > f.length || f[off]! >> 4 !== 6) return { ...none, l4 };
      isrc = f.subarray(off + 8, off + 24);
      const w = walk6(f, off + 40, f[off + 6]!);
      if (!w || w.fo & 0xfff8) return { ...none, l4 };
      ip = w.l4;
      off = w.off;
    }
    if ((ip !== TCP && ip !== UDP) || off + 4 > f.length || !isrc.equals(dst)) return { ...none, l4 };
    const svc = SVC_BY_KEY.get(`${canon(isrc)}/${f.readUInt16BE(off)}/${ip}`);
    return { svc, icmp: true, frag: false, l4 };
  }
  if (l4 === TCP) {
    if (off + 20 > f.length || f[off + 12]! >> 4 < 5) return { ...none, l4 };
  } else if (l4 === UDP) {
    if (off + 8 > f.length) return { ...none, l4 };
  } else {
    return { ...none, l4 };
  }
  void src;
  return { svc: SVC_BY_KEY.get(`${canon(dst)}/${f.readUInt16BE(off + 2)}/${l4}`), icmp: false, frag, l4 };
}

// ---------------------------------------------------------------- frame generator

const CLIENTS4 = Array.from({ length: 32 }, (_, i) => `198.51.100.${i + 1}`);
const CLIENTS6 = Array.from({ length: 32 }, (_, i) => `2001:db8:c::${(i + 1).toString(16)}`);
const FLAGS = ['S', 'S', 'A', 'PA', 'R', 'RA', 'F', 'FA', 'SA', 'SR', ''];

function ext6(r: Rng): pk.Ipv6Ext[] {
  const n = r.int(r.chance(0.1) ? 11 : 4);
  return Array.from({ length: n }, () => {
    switch (r.int(6)) {
      case 0:
        return pk.hopByHop(8 * (1 + r.int(3)));
      case 1:
        return pk.destOpts(8 * (1 + r.int(3)));
      case 2:
        return pk.routingExt({ segmentsLeft: r.int(2) });
      case 3:
        return pk.ahExt(12 + 4 * r.int(4));
      case 4:
        return pk.fragmentExt(r.chance(0.5) ? 0 : r.int(200), r.chance(0.3), r.u32());
      default:
        return pk.fragmentExt(0, false, r.u32()); // atomic
    }
  });
}

function l4For(r: Rng, proto: number, sport: number, dport: number): pk.L4 {
  if (proto === TCP) {
    const flags = r.pick(FLAGS);
    return pk.tcp({
      sport,
      dport,
      flags: flags || 'A',
      seq: r.u32(),
      ack: r.u32(),
      options: r.chance(0.2) ? r.bytes(r.int(40)) : undefined,
      payload: r.chance(0.5) ? r.bytes(r.int(64)) : undefined,
    });
  }
  if (proto === UDP) return pk.udp({ sport, dport, payload: r.bytes(r.int(64)) });
  return pk.raw(proto, r.bytes(r.int(48)));
}

/** An ICMP error (v4 frag needed or another type; v6 packet too big or another) quoting a reply from `vip:vport` to a client. */
function icmpError(
  r: Rng,
  v4: boolean,
  vip: string,
  vport: number,
  proto: number,
  client: string,
  cport: number,
): Buffer {
  const reply =
    proto === TCP
      ? pk.tcp({ sport: vport, dport: cport, flags: 'PA', payload: Buffer.alloc(200, 0x61) })
      : proto === UDP
        ? pk.udp({ sport: vport, dport: cport, payload: Buffer.alloc(200) })
        : pk.raw(proto, Buffer.alloc(40));
  const inner = v4
    ? pk.ipv4(
        { src: vip, dst: client, df: true, options: r.chance(0.2) ? r.bytes(4 * (1 + r.int(10))) : undefined },
        reply,
      )
    : pk.ipv6({ src: vip, dst: client, ext: r.chance(0.3) ? ext6(r) : undefined }, reply);
  const quoted = inner.subarray(
    0,
    v4
      ? Math.min(inner.length, r.chance(0.7) ? 28 + (inner[0]! & 0xf) * 4 - 20 : r.int(inner.length + 1))
      : Math.min(inner.length, r.chance(0.7) ? 1232 : r.int(inner.length + 1)),
  );
  const typ = r.chance(0.8)
    ? v4
      ? { type: 3, code: 4 }
      : { type: 2, code: 0 }
    : { type: r.int(256), code: r.int(16) };
  const to = r.chance(0.85) ? vip : r.pick(v4 ? OTHER4 : OTHER6);
  return v4
    ? pk.ipv4({ src: ROUTER4, dst: to }, pk.icmp4({ ...typ, mtu: 1400, quoted }))
    : pk.ipv6({ src: ROUTER6, dst: to }, pk.icmp6({ ...typ, mtu: 1280, quoted }));
}

/** A frame from the space of plausible ones; `icmpOnly` restricts it to ICMP errors. */
function baseFrame(r: Rng, icmpOnly = false): Buffer {
  const svc = r.chance(0.75) ? r.pick(SERVICES) : undefined;
  const v4 = svc ? svc.vip.includes('.') : r.chance(0.6);
  const dst = svc && r.chance(0.95) ? svc.vip : r.pick(v4 ? [...OTHER4, VIP4, VIP4B] : [...OTHER6, VIP6]);
  const proto = icmpOnly
    ? -1
    : svc && r.chance(0.85)
      ? svc.proto
      : r.pick([TCP, UDP, TCP, UDP, pk.IPPROTO_ICMP, pk.IPPROTO_ICMPV6, 112, 50, r.int(256)]);
  const dport = svc && r.chance(0.9) ? svc.port : r.pick(PORTS);
  const client = r.pick(v4 ? CLIENTS4 : CLIENTS6);
  const cport = 40000 + r.int(64);
  let ip: Buffer;
  if (icmpOnly || (proto === (v4 ? pk.IPPROTO_ICMP : pk.IPPROTO_ICMPV6) && r.chance(0.8))) {
    const s = svc ?? r.pick(SERVICES.filter((x) => x.vip.includes('.') === v4));
    ip = icmpError(
      r,
      v4,
      r.chance(0.9) ? dst : s.vip,
      r.chance(0.9) ? dport : r.pick(PORTS),
      r.chance(0.9) ? (svc?.proto ?? TCP) : r.int(256),
      client,
      cport,
    );
  } else if (v4) {
    const fr = r.chance(0.1) ? (r.chance(0.5) ? { mf: true } : { fragOffset: 1 + r.int(100), mf: r.chance(0.5) }) : {};
    ip = pk.ipv4(
      {
        src: client,
        dst,
        ...fr,
        df: r.chance(0.5),
        options: r.chance(0.15) ? r.bytes(4 * (1 + r.int(10))) : undefined,
      },
      l4For(r, proto, cport, dport),
    );
  } else {
    ip = pk.ipv6({ src: client, dst, ext: r.chance(0.35) ? ext6(r) : undefined }, l4For(r, proto, cport, dport));
  }
  const macDst = r.chance(0.9) ? DIRECTOR_MAC : r.pick(['ff:ff:ff:ff:ff:ff', '33:33:00:00:00:01', '02:00:00:00:00:99']);
  const tag = r.int(20);
  const eth = pk.ether({ src: '02:00:00:00:00:10', dst: macDst, vlan: tag < 3 ? { id: r.int(4096) } : undefined }, ip);
  if (tag === 3) {
    // QinQ: an 802.1ad outer tag around an 802.1Q tag (the program reads one tag only: passed as non-IP).
    return Buffer.concat([
      eth.subarray(0, 12),
      Buffer.from([0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0a]),
      eth.subarray(12),
    ]);
  }
  return eth;
}

/**
 * Base frames are built once into pools (building one with checksums costs far more than running
 * it); every fuzz frame is a fresh mutation of one of them.
 */
const POOL = 3000;
const pools = new Map<boolean, Buffer[]>();
function pooled(r: Rng, icmpOnly: boolean): Buffer {
  let p = pools.get(icmpOnly);
  if (!p) {
    p = Array.from({ length: icmpOnly ? POOL / 2 : POOL }, () => baseFrame(r, icmpOnly));
    pools.set(icmpOnly, p);
  }
  return r.pick(p);
}

/** A base frame, mutated; or random bytes. Always 14..1514 bytes (BPF_PROG_TEST_RUN refuses shorter ones). */
function fuzzFrame(r: Rng, icmpOnly = false): Buffer {
  if (!icmpOnly && r.chance(0.04)) return r.bytes(14 + r.int(120));
  const f = Buffer.from(pooled(r, icmpOnly));
  switch (r.int(8)) {
    case 0:
    case 1: // cut anywhere
      return f.subarray(0, 14 + r.int(f.length - 13));
    case 2: // flip 1..4 bits in the headers
      for (let i = 1 + r.int(4); i > 0; i--) {
        const o = r.int(Math.min(f.length, 120));
        f[o] = f[o]! ^ (1 << r.int(8));
      }
      return f;
    case 3: // overwrite one header byte (IHL, doff, next header, an extension length, ...)
      f[14 + r.int(Math.min(f.length - 14, 100))] = r.int(256);
      return f;
    case 4: // garbage after the first headers
      r.bytes(Math.min(16, f.length)).copy(f, 14 + r.int(Math.max(1, f.length - 14)));
      return f.subarray(0, Math.min(f.length, 1514));
    default:
      return f.subarray(0, Math.min(f.length, 1514));
  }
}

// ---------------------------------------------------------------- harness

let obj: BpfObject;
let prog: { fd: number };
let flows: (FlowTable<XdFlowKey> | FlowTable<XdFlow4Key> | BpfMap<XdFlowKey, XdFlow> | BpfMap<XdFlow4Key, XdFlow>)[];
let best: BpfMap<number, XdBackendStats>;
let rsnst: BpfMap<number, XdReasonStats>;
const selfMac = pk.macBytes(DIRECTOR_MAC);
const verdicts: Record<string, number> = {};
let framesRun = 0;
let bytesRun = 0n;
const beOfService = new Map<number, Set<string>>();
const failures: string[] = [];

function addr16(a: string): Buffer {
  const b = pk.ipBytes(a);
  return b.length === 16 ? b : Buffer.concat([b, Buffer.alloc(12)]);
}

before(async () => {
  obj = await loadSmallDirector({
    services: MAX_SERVICES,
    backends: MAX_BACKENDS,
    ringMax: RING_MAX,
    flows: MAX_FLOWS,
    globals: { match_dst_mac: 1, self_mac: selfMac },
  });
  prog = obj.program('xdirector');
  const svc: BpfMap<XdServiceKey, XdService> = obj.map(MAPS.svc.name, xdServiceKeyCodec, xdServiceCodec);
  const be: BpfMap<number, XdBackend> = obj.map(MAPS.be.name, u32, xdBackendCodec);
  const ring: BpfMap<number, number> = obj.map(MAPS.ring.name, u32, u32);
  // Flow and embryonic tables, both families: ICMP must leave all four alone.
  flows = [
    FlowTable.v4(xdMap(obj, 'flow4'), TEST_FLOW_SEED),
    FlowTable.v6(xdMap(obj, 'flow6'), TEST_FLOW_SEED),
    obj.map(MAPS.emb4.name, xdFlow4KeyCodec, xdFlowCodec),
    obj.map(MAPS.emb6.name, xdFlowKeyCodec, xdFlowCodec),
  ];
  best = obj.map(MAPS.best.name, u32, xdBackendStatsCodec);
  rsnst = obj.map(MAPS.rsnst.name, u32, xdReasonStatsCodec);
  for (const s of SERVICES) {
    const v4 = s.vip.includes('.');
    for (const b of s.backends) {
      be.update(b, {
        mac: pk.macBytes(beMac(b)),
        family: v4 ? XdFamily.XD_FAMILY_V4 : XdFamily.XD_FAMILY_V6,
        flags: XdBackendFlags.XD_BE_F_ACTIVE,
        generation: 1,
        ifindex: 0,
        service: s.id,
        addr: addr16(v4 ? `10.200.1.${b}` : `2001:db8:1::${b}`),
      });
    }
    beOfService.set(s.id, new Set(s.backends.map((b) => beMac(b).replace(/:/g, ''))));
    const ringSize = s.backends.length ? RING_MAX : 0;
    if (ringSize)
      ring.updateBatch(
        Array.from(
          { length: ringSize },
          (_, i) => [s.id * 2 * RING_MAX + i, s.backends[i % s.backends.length]!] as const,
        ),
      );
    svc.update(
      { vip: addr16(s.vip), port: s.port, proto: s.proto, family: v4 ? XdFamily.XD_FAMILY_V4 : XdFamily.XD_FAMILY_V6 },
      { id: s.id, ring_size: ringSize, flags: s.flags ?? 0, sched: s.sched ?? XdSched.XD_SCHED_MAGLEV, active_gen: 0 },
    );
    markVipPort(obj, s.port, s.proto);
  }
});

after(() => {
  obj?.close();
});

function reasonTotals(): { packets: bigint; bytes: bigint; by: Record<string, bigint> } {
  let packets = 0n;
  let bytes = 0n;
  const by: Record<string, bigint> = {};
  for (const name of REASONS) {
    const s = sumPerCpu(rsnst.lookupPerCpu(XdReason[name])!);
    by[name.replace(/^XD_R_/, '').toLowerCase()] = s.packets;
    packets += s.packets;
    bytes += s.bytes;
  }
  // A flow hit is counted on its backend only (one per-CPU counter per established packet).
  for (let i = 0; i < MAX_BACKENDS; i++) {
    const b = sumPerCpu(best.lookupPerCpu(i)!);
    by.tx_flow_hit = (by.tx_flow_hit ?? 0n) + b.flow_hits;
    packets += b.flow_hits;
    bytes += b.flow_hit_bytes;
  }
  return { packets, bytes, by };
}

function flowSnapshot(): string {
  return flows
    .flatMap((m, i) =>
      (m as { entries(): [unknown, XdFlow][] })
        .entries()
        .map(
          ([k, v]) =>
            `${i}:${JSON.stringify(k, (_, x) => (Buffer.isBuffer(x) ? x.toString('hex') : typeof x === 'bigint' ? String(x) : x))}=${v.backend}/${v.generation}/${v.last_seen_ns}`,
        ),
    )
    .sort()
    .join('\n');
}

/** Runs one frame and checks the per-frame invariants; a failure is recorded with the frame, to be reported at the end of the phase. */
function runFrame(f: Buffer): void {
  const c = classify(f, selfMac);
  const r = testRun(prog, { data: f });
  const v = VERDICT_NAME.get(r.retval) ?? `verdict ${r.retval}`;
  verdicts[v] = (verdicts[v] ?? 0) + 1;
  framesRun++;
  bytesRun += BigInt(f.length);
  const fail = (why: string): void => {
    if (failures.length < 20) failures.push(`${why}: frame ${f.toString('hex')}`);
  };
  if (v === 'TX' || v === 'REDIRECT') {
    if (!c.svc) return fail(`forwarded (${v}) a frame that is for no configured service`);
    if (c.frag) return fail('forwarded a fragment');
    const mac = r.dataOut.subarray(0, 6).toString('hex');
    if (!beOfService.get(c.svc.id)!.has(mac)) return fail(`forwarded to ${mac}, not a backend of service ${c.svc.id}`);
    if (!r.dataOut.subarray(6, 12).equals(f.subarray(0, 6)))
      return fail("source MAC is not the frame's destination MAC");
    if (!r.dataOut.subarray(12).equals(f.subarray(12))) return fail('bytes after the MACs changed');
  } else if (!c.svc) {
    if (v !== 'PASS') return fail(`${v} for a frame that is for no service (must be passed)`);
    if (!r.dataOut.equals(f)) return fail('a passed frame was changed');
  } else if (v === 'ABORTED') {
    fail('ABORTED');
  } else if (!c.icmp) {
    // For a service, the other way round too: a whole TCP/UDP packet is forwarded when the
    // service has backends, a first fragment is dropped, an empty drop-service drops.
    const want = c.frag || c.svc.backends.length === 0 ? 'DROP' : 'TX';
    if (v !== want)
      fail(`${v} for a ${c.frag ? 'first fragment' : 'packet'} to service ${c.svc.id} (expected ${want})`);
  }
}

function runPhase(name: string, frames: Iterable<Buffer>, opts: { icmpOnly?: boolean } = {}): void {
  const before = reasonTotals();
  const flowsBefore = opts.icmpOnly ? flowSnapshot() : '';
  const n0 = framesRun;
  const b0 = bytesRun;
  failures.length = 0;
  for (const f of frames) {
    if (opts.icmpOnly) {
      const l4 = classify(f, selfMac).l4;
      if (l4 !== pk.IPPROTO_ICMP && l4 !== pk.IPPROTO_ICMPV6) continue; // a mutation that left ICMP
    }
    runFrame(f);
  }
  assert.deepEqual(failures, [], `${name}: invariant violations`);
  const after = reasonTotals();
  assert.equal(
    after.packets - before.packets,
    BigInt(framesRun - n0),
    `${name}: every frame counted under exactly one verdict reason`,
  );
  assert.equal(after.bytes - before.bytes, bytesRun - b0, `${name}: every byte counted`);
  if (opts.icmpOnly) assert.equal(flowSnapshot(), flowsBefore, `${name}: ICMP frames changed the flow table`);
}

// ---------------------------------------------------------------- the phases

/** Templates for the every-offset truncation phase: one of each shape. */
function templates(r: Rng): Buffer[] {
  const E = (ip: Buffer, vlan?: number) =>
    pk.ether({ src: '02:00:00:00:00:10', dst: DIRECTOR_MAC, vlan: vlan === undefined ? undefined : { id: vlan } }, ip);
  const syn4 = pk.tcp({ sport: 40001, dport: 3306, flags: 'S', options: Buffer.from('020405b4', 'hex') });
  const syn6 = pk.tcp({ sport: 40002, dport: 3306, flags: 'S' });
  return [
    E(pk.ipv4({ src: CLIENTS4[0]!, dst: VIP4 }, syn4)),
    E(pk.ipv4({ src: CLIENTS4[0]!, dst: VIP4, options: Buffer.from('94040000', 'hex') }, syn4), 100),
    E(pk.ipv4({ src: CLIENTS4[1]!, dst: VIP4 }, pk.udp({ sport: 40003, dport: 3306, payload: Buffer.from('q') }))),
    E(
      pk.ipv4(
        { src: CLIENTS4[2]!, dst: VIP4, mf: true },
        pk.udp({ sport: 40004, dport: 3306, payload: Buffer.alloc(64) }),
      ),
    ),
    E(pk.ipv6({ src: CLIENTS6[0]!, dst: VIP6 }, syn6)),
    E(
      pk.ipv6(
        {
          src: CLIENTS6[0]!,
          dst: VIP6,
          ext: [pk.hopByHop(), pk.destOpts(16), pk.routingExt(), pk.fragmentExt(0, false)],
        },
        syn6,
      ),
      7,
    ),
    E(
      pk.ipv6(
        { src: CLIENTS6[1]!, dst: VIP6, ext: [pk.ahExt(), pk.fragmentExt(0, true)] },
        pk.udp({ sport: 40005, dport: 53, payload: Buffer.alloc(32) }),
      ),
    ),
    Buffer.concat([
      Buffer.from(DIRECTOR_MAC.replace(/:/g, '') + '020000000010' + '88a80064', 'hex'),
      E(pk.ipv4({ src: CLIENTS4[3]!, dst: VIP4 }, syn4), 10).subarray(12),
    ]),
    E(icmpError(r, true, VIP4, 3306, TCP, CLIENTS4[4]!, 40006)),
    E(icmpError(r, false, VIP6, 3306, TCP, CLIENTS6[2]!, 40007).subarray(0, 400)),
  ];
}

function* truncations(ts: Buffer[]): Generator<Buffer> {
  for (const t of ts) for (let n = 14; n <= t.length; n++) yield t.subarray(0, n);
}

function* random(r: Rng, n: number, icmpOnly = false): Generator<Buffer> {
  for (let i = 0; i < n; i++) yield fuzzFrame(r, icmpOnly);
}

const rng = new Rng(SEED);

test('every truncation of each frame shape keeps the invariants', () => {
  runPhase('truncations', truncations(templates(rng)));
});

test(`${RANDOM_FRAMES} mutated and random frames (seed ${SEED}) keep the invariants`, () => {
  runPhase('random', random(rng, RANDOM_FRAMES));
});

test('ICMP errors quoting established flows and crafted headers leave the flow table unchanged', () => {
  // Establish flows from every client to every service first, so ICMP errors can find them.
  const syns: Buffer[] = [];
  for (const s of SERVICES) {
    const v4 = s.vip.includes('.');
    for (const client of (v4 ? CLIENTS4 : CLIENTS6).slice(0, 16)) {
      for (let cport = 40000; cport < 40008; cport++) {
        const l4 =
          s.proto === TCP
            ? pk.tcp({ sport: cport, dport: s.port, flags: 'S' })
            : pk.udp({ sport: cport, dport: s.port });
        syns.push(
          pk.ether(
            { src: '02:00:00:00:00:10', dst: DIRECTOR_MAC },
            v4 ? pk.ipv4({ src: client, dst: s.vip }, l4) : pk.ipv6({ src: client, dst: s.vip }, l4),
          ),
        );
      }
    }
  }
  runPhase('flows', syns);
  assert.ok(
    flows.some((m) => m.keys().length > 0),
    'flows established',
  );
  runPhase('icmp', random(rng, 8000, true), { icmpOnly: true });
  assert.ok((verdicts.TX ?? 0) > 0);
  const tx = reasonTotals().by.tx_icmp ?? 0n;
  assert.ok(tx > 0n, 'some ICMP errors found their flow and were forwarded');
});

test('the histogram: frames run and verdicts', () => {
  const r = reasonTotals();
  assert.equal(r.packets, BigInt(framesRun), 'sum of the verdict-reason counters equals the frames run');
  assert.ok(
    framesRun >= 100000 || process.env.XD_FUZZ_FRAMES !== undefined,
    `at least 100k frames in the suite (ran ${framesRun})`,
  );
  const reasons = Object.fromEntries(
    Object.entries(r.by)
      .filter(([, v]) => v > 0n)
      .map(([k, v]) => [k, Number(v)]),
  );
  console.log(
    `fuzz: seed ${SEED}, ${framesRun} frames, verdicts ${JSON.stringify(verdicts)}, reasons ${JSON.stringify(reasons)}`,
  );
  for (const k of [
    'tx_new_flow',
    'tx_flow_hit',
    'tx_icmp',
    'pass_non_vip',
    'pass_malformed',
    'pass_non_ip',
    'drop_fragment',
    'pass_other_host',
  ])
    assert.ok((reasons[k] ?? 0) > 0, `the fuzzer reaches ${k}`);
});
