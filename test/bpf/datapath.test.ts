// Datapath fixtures: the compiled XDP program (dist/bpf/xdirector.bpf.o) run through
// BPF_PROG_TEST_RUN on packets built with test/lib/packet.ts, with exact expected output bytes
// (Katran lib/testing/fixtures style: {description, input, expectedVerdict, expectedOutput}),
// plus flow-table and counter assertions.
//
// One object is loaded for this file with small map sizes and nothing pinned; every test starts
// from empty services, backends, rings, flows and counters. Maps are filled through the typed
// wrapper and the generated layouts (src/bpf/layouts.generated.ts), never by hand-encoding.
//
// BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header (EINVAL), as real NICs never
// deliver them, so "truncated Ethernet" here means a frame whose EtherType promises a VLAN tag or
// an IP header that is not there.

import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import * as pk from '../lib/packet';
import { loadSmallDirector, TEST_FLOW_SEED } from '../lib/director';
import { jhash2words, jhash5words } from '../lib/jhash';
import { BpfObject, BpfMap, FlowTable, testRun, u32, sumPerCpu, getNative, xdMap } from '../../src/bpf';
import {
  MAPS,
  XdBackendFlags,
  XdFamily,
  XdReason,
  XdSched,
  XdServiceFlags,
  xdBackendCodec,
  xdBackendStatsCodec,
  xdFlowCodec,
  xdFlowKeyCodec,
  xdFlow4CacheCodec,
  xdFlow6CacheCodec,
  xdFlow4KeyCodec,
  xdGuardCodec,
  xdRateCodec,
  xdPflowCodec,
  XdFlowBits,
  XdRateIdx,
  xdReasonStatsCodec,
  xdServiceCodec,
  xdServiceKeyCodec,
  xdServiceStatsCodec,
  DEFINES,
} from '../../src/bpf/layouts.generated';
import type {
  XdBackend,
  XdBackendStats,
  XdFlow,
  XdFlowKey,
  XdFlow4Cache,
  XdFlow6Cache,
  XdFlow4Key,
  XdGuard,
  XdRate,
  XdPflow,
  XdService,
  XdServiceKey,
  XdServiceStats,
  XdReasonStats,
} from '../../src/bpf/layouts.generated';
import { buildIpvsMh, ipvsMhHash, ipvsMhLookup } from '../../src/maglev/ipvs-mh';
import type { IpvsMhDest } from '../../src/maglev/ipvs-mh';
import { addressToBytes16 } from '../../src/net/inet';
import { clearFlowCaches } from '../lib/flowcache';
import { clearVipPorts, markVipPort } from '../lib/vipports';

// Small instance: 8 services, 16 backend slots, rings of up to 4093 slots (the IPVS mh default
// table size, so the kernel's own slot numbers can be checked), 4096 flows.
const RING_MAX = 4093;
const MAX_SERVICES = 8;
const MAX_BACKENDS = 16;
const MAX_FLOWS = 4096;
const MAX_EMBRYONIC = 256;

// ---------------------------------------------------------------- topology

const DIRECTOR_MAC = '02:00:00:00:00:02';
const CLIENT_MAC = '02:00:00:00:00:10';
const beMac = (i: number): string => `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`;
const VIP4 = '10.200.0.100';
const VIP6 = '2001:db8::100';
const CLIENT4 = '10.200.0.10';
const CLIENT6 = '2001:db8::10';
const DIRECTOR4 = '10.200.0.2';
const DIRECTOR6 = '2001:db8::2';
const ROUTER4 = '10.200.0.1';
const ROUTER6 = '2001:db8::1';
const MYSQL = 3306;
const TCP = pk.IPPROTO_TCP;
const UDP = pk.IPPROTO_UDP;

/** Kernel XDP verdicts (uapi enum xdp_action), from the addon. */
const XDP = (() => {
  const c = getNative().constants;
  return { ABORTED: c.XDP_ABORTED, DROP: c.XDP_DROP, PASS: c.XDP_PASS, TX: c.XDP_TX, REDIRECT: c.XDP_REDIRECT };
})();
type VerdictName = keyof typeof XDP;
type ReasonName = keyof typeof XdReason;
const REASON_NAMES = (Object.keys(XdReason) as ReasonName[]).filter((r) => r !== 'XD_R_MAX');

// ---------------------------------------------------------------- harness

const addr16 = addressToBytes16;
const family = (a: string): number => (pk.ipBytes(a).length === 4 ? XdFamily.XD_FAMILY_V4 : XdFamily.XD_FAMILY_V6);

function flowKey(client: string, cport: number, vip: string, vport: number, proto: number): XdFlowKey {
  return { saddr: addr16(client), daddr: addr16(vip), sport: cport, dport: vport, proto, family: family(vip) };
}

const zeroSvcStats: XdServiceStats = { packets: 0n, bytes: 0n, new_flows: 0n, no_backend: 0n };
const zeroBeStats: XdBackendStats = { packets: 0n, bytes: 0n, new_flows: 0n, flow_hits: 0n, flow_hit_bytes: 0n };

/** A table split by family (flows or embryonic flows), looked at through the IPv6-shaped key. */
/** What FamilyTables needs of a table: the kernel LRUs (BpfMap) and the flow tables (FlowTable) both have it. */
interface Table<K, V> {
  lookup(k: K): V | undefined;
  update(k: K, v: V): void;
  count(): number;
  clear(): void;
}
/** A BpfMap as a Table. */
function lruTable<K, V>(m: BpfMap<K, V>): Table<K, V> {
  return {
    lookup: (k) => m.lookup(k),
    update: (k, v) => m.update(k, v),
    count: () => m.keys().length,
    clear: () => void m.deleteBatch(m.keys()),
  };
}

class FamilyTables<V = XdFlow> {
  constructor(
    readonly v4: Table<XdFlow4Key, V>,
    readonly v6: Table<XdFlowKey, V>,
  ) {}
  private static k4(k: XdFlowKey): XdFlow4Key {
    return {
      saddr: k.saddr.readUInt32BE(0),
      daddr: k.daddr.readUInt32BE(0),
      sport: k.sport,
      dport: k.dport,
      proto: k.proto,
    };
  }
  lookup(k: XdFlowKey): V | undefined {
    return k.family === XdFamily.XD_FAMILY_V4 ? this.v4.lookup(FamilyTables.k4(k)) : this.v6.lookup(k);
  }
  update(k: XdFlowKey, v: V): void {
    if (k.family === XdFamily.XD_FAMILY_V4) this.v4.update(FamilyTables.k4(k), v);
    else this.v6.update(k, v);
  }
  /** Entries of both families. */
  count(): number {
    return this.v4.count() + this.v6.count();
  }
  clear(): void {
    this.v4.clear();
    this.v6.clear();
  }
}
const zeroReason: XdReasonStats = { packets: 0n, bytes: 0n };

class Datapath {
  private constructor(
    readonly obj: BpfObject,
    readonly prog: { fd: number },
    readonly svc: BpfMap<XdServiceKey, XdService>,
    readonly be: BpfMap<number, XdBackend>,
    readonly ring: BpfMap<number, number>,
    readonly flow: FamilyTables,
    readonly emb: FamilyTables,
    readonly tko: FamilyTables,
    readonly prb: FamilyTables<XdPflow>,
    readonly guard: BpfMap<number, XdGuard>,
    readonly svcst: BpfMap<number, XdServiceStats>,
    readonly best: BpfMap<number, XdBackendStats>,
    readonly rsnst: BpfMap<number, XdReasonStats>,
    readonly rr: BpfMap<number, number>,
    readonly rate: BpfMap<number, XdRate>,
  ) {}

  /** Ring slots written since the last reset (so reset clears only those). */
  private dirtyRing: [number, number][] = [];

  static async load(): Promise<Datapath> {
    const obj = await loadSmallDirector({
      services: MAX_SERVICES,
      backends: MAX_BACKENDS,
      ringMax: RING_MAX,
      flows: MAX_FLOWS,
      embryonic: MAX_EMBRYONIC,
      takeover: MAX_EMBRYONIC,
      perCpuCaches: true,
    });
    return new Datapath(
      obj,
      obj.program('xdirector'),
      obj.map(MAPS.svc.name, xdServiceKeyCodec, xdServiceCodec),
      obj.map(MAPS.be.name, u32, xdBackendCodec),
      obj.map(MAPS.ring.name, u32, u32),
      new FamilyTables(
        FlowTable.v4(xdMap(obj, 'flow4'), TEST_FLOW_SEED),
        FlowTable.v6(xdMap(obj, 'flow6'), TEST_FLOW_SEED),
      ),
      new FamilyTables(
        lruTable(obj.map(MAPS.emb4.name, xdFlow4KeyCodec, xdFlowCodec)),
        lruTable(obj.map(MAPS.emb6.name, xdFlowKeyCodec, xdFlowCodec)),
      ),
      new FamilyTables(
        lruTable(obj.map(MAPS.tko4.name, xdFlow4KeyCodec, xdFlowCodec)),
        lruTable(obj.map(MAPS.tko6.name, xdFlowKeyCodec, xdFlowCodec)),
      ),
      new FamilyTables(
        lruTable(obj.map(MAPS.prb4.name, xdFlow4KeyCodec, xdPflowCodec)),
        lruTable(obj.map(MAPS.prb6.name, xdFlowKeyCodec, xdPflowCodec)),
      ),
      obj.map(MAPS.guard.name, u32, xdGuardCodec),
      obj.map(MAPS.svcst.name, u32, xdServiceStatsCodec),
      obj.map(MAPS.best.name, u32, xdBackendStatsCodec),
      obj.map(MAPS.rsnst.name, u32, xdReasonStatsCodec),
      obj.map(MAPS.rr.name, u32, u32),
      obj.map(MAPS.rate.name, u32, xdRateCodec),
    );
  }

  /** Empty services, backends, rings and flows; zero counters. */
  reset(): void {
    this.svc.deleteBatch(this.svc.keys());
    clearVipPorts(this.obj);
    this.flow.clear();
    this.emb.clear();
    this.tko.clear();
    this.prb.clear();
    clearFlowCaches(this.obj);
    const emptyBe: XdBackend = {
      mac: Buffer.alloc(6),
      family: 0,
      flags: 0,
      generation: 0,
      ifindex: 0,
      service: 0,
      addr: Buffer.alloc(16),
    };
    this.be.updateBatch(Array.from({ length: MAX_BACKENDS }, (_, i) => [i, emptyBe] as const));
    for (const [base, len] of this.dirtyRing)
      this.ring.updateBatch(Array.from({ length: len }, (_, i) => [base + i, 0] as const));
    this.dirtyRing = [];
    const n = this.svcst.ncpus;
    for (let i = 0; i < MAX_SERVICES; i++) {
      this.svcst.updatePerCpu(i, Array(n).fill(zeroSvcStats));
      this.rr.updatePerCpu(i, Array(n).fill(0));
    }
    for (let i = 0; i < MAX_BACKENDS; i++) this.best.updatePerCpu(i, Array(n).fill(zeroBeStats));
    for (let i = 0; i < XdReason.XD_R_MAX; i++) this.rsnst.updatePerCpu(i, Array(n).fill(zeroReason));
    this.guard.updatePerCpu(0, Array(n).fill({ embryonic: 0n, takeovers: 0n, handshakes: 0n, limited: 0n }));
    this.rate.updateBatch(Array.from({ length: XdRateIdx.XD_RATE_MAX }, (_, i) => [i, { tat_ns: 0n }] as const));
  }

  addService(o: {
    vip: string;
    port: number;
    proto: number;
    id: number;
    ringSize: number;
    sched?: number;
    flags?: number;
    activeGen?: number;
  }): void {
    markVipPort(this.obj, o.port, o.proto);
    this.svc.update(
      { vip: addr16(o.vip), port: o.port, proto: o.proto, family: family(o.vip) },
      {
        id: o.id,
        ring_size: o.ringSize,
        flags: o.flags ?? 0,
        sched: o.sched ?? XdSched.XD_SCHED_MAGLEV,
        active_gen: o.activeGen ?? 0,
      },
    );
  }

  setActiveGen(vip: string, port: number, proto: number, gen: number): void {
    const key = { vip: addr16(vip), port, proto, family: family(vip) };
    const cur = this.svc.lookup(key);
    assert.ok(cur, `service ${vip}:${port}/${proto} exists`);
    this.svc.update(key, { ...cur, active_gen: gen });
  }

  setBackend(
    idx: number,
    o: { flags?: number; generation?: number; ifindex?: number; address?: string; mac?: string; service?: number } = {},
  ): void {
    const address = o.address ?? `10.200.0.${10 + idx}`;
    this.be.update(idx, {
      mac: pk.macBytes(o.mac ?? beMac(idx)),
      family: family(address),
      flags: o.flags ?? XdBackendFlags.XD_BE_F_ACTIVE,
      generation: o.generation ?? 1,
      ifindex: o.ifindex ?? 0,
      service: o.service ?? 0,
      addr: addr16(address),
    });
  }

  /** Writes one generation of a service's ring: slot i holds slots[i]. */
  setRing(id: number, gen: number, slots: readonly number[]): void {
    const base = (id * 2 + gen) * RING_MAX;
    this.dirtyRing.push([base, slots.length]);
    this.ring.updateBatch(slots.map((b, i) => [base + i, b] as const));
  }

  run(frame: Buffer): { verdict: VerdictName; out: Buffer } {
    const r = testRun(this.prog, { data: frame });
    const verdict = (Object.keys(XDP) as VerdictName[]).find((k) => XDP[k] === r.retval);
    assert.ok(verdict, `unknown XDP verdict ${r.retval}`);
    return { verdict, out: r.dataOut };
  }

  /**
   * Packets (and bytes) per reason, as the control plane reads them: a flow hit is counted only on its
   * backend (xd_backend_stats.flow_hits, flow_hit_bytes), so XD_R_TX_FLOW_HIT is the sum over backends.
   */
  reasons(): Record<ReasonName, XdReasonStats> {
    const out = {} as Record<ReasonName, XdReasonStats>;
    for (const r of REASON_NAMES) out[r] = sumPerCpu(this.rsnst.lookupPerCpu(XdReason[r])!);
    for (let i = 0; i < MAX_BACKENDS; i++) {
      const b = sumPerCpu(this.best.lookupPerCpu(i)!);
      out.XD_R_TX_FLOW_HIT.packets += b.flow_hits;
      out.XD_R_TX_FLOW_HIT.bytes += b.flow_hit_bytes;
    }
    return out;
  }
  /** A service's totals as the control plane reads them: its own counters plus those of its backend entries. */
  serviceStats(id: number): XdServiceStats {
    const s = sumPerCpu(this.svcst.lookupPerCpu(id)!);
    for (const [i, b] of this.be.entries()) {
      if (!(b.flags & XdBackendFlags.XD_BE_F_ACTIVE) || b.service !== id) continue;
      const bs = sumPerCpu(this.best.lookupPerCpu(i)!);
      s.packets += bs.packets;
      s.bytes += bs.bytes;
      s.new_flows += bs.new_flows;
    }
    return s;
  }
  backendStats(idx: number): Pick<XdBackendStats, 'packets' | 'bytes' | 'new_flows'> {
    const s = sumPerCpu(this.best.lookupPerCpu(idx)!);
    return { packets: s.packets, bytes: s.bytes, new_flows: s.new_flows };
  }
  /** The flow table's entry for a 5-tuple. */
  flowOf(key: XdFlowKey): XdFlow | undefined {
    return this.flow.lookup(key);
  }
  /** The IPv4 flow cache (xd_fc4_v2, CPU-major). */
  fc4(): BpfMap<number, XdFlow4Cache> {
    return this.obj.map(MAPS.fc4.name, u32, xdFlow4CacheCodec);
  }
  /** The IPv6 flow cache (xd_fc6_v2, CPU-major). */
  fc6(): BpfMap<number, XdFlow6Cache> {
    return this.obj.map(MAPS.fc6.name, u32, xdFlow6CacheCodec);
  }
  /** The embryonic table's entry for a 5-tuple. */
  embryonicOf(key: XdFlowKey): XdFlow | undefined {
    return this.emb.lookup(key);
  }
  guardStats(): { embryonic: bigint; takeovers: bigint; handshakes: bigint; limited: bigint } {
    return sumPerCpu(this.guard.lookupPerCpu(0)!);
  }
  /** The takeover table's entry for a 5-tuple. */
  takeoverOf(key: XdFlowKey): XdFlow | undefined {
    return this.tko.lookup(key);
  }
  /** The probation table's entry for a 5-tuple. */
  probationOf(key: XdFlowKey): XdPflow | undefined {
    return this.prb.lookup(key);
  }
  /** Makes a probation-table flow's handshake `ms` older, caches emptied unless told (as if that long had passed). */
  ageHandshake(key: XdFlowKey, ms: number, clearCaches = true): void {
    const t = this.prb.lookup(key)!;
    this.prb.update(key, { ...t, handshake_ns: t.handshake_ns - BigInt(ms) * 1_000_000n });
    if (clearCaches) clearFlowCaches(this.obj);
  }
}

let dp: Datapath;

before(async () => {
  dp = await Datapath.load();
  // A fresh array map is all zeroes; check once that the ring starts empty.
  assert.ok(
    dp.ring.entries().every(([, v]) => v === 0),
    'a new ring map holds only holes',
  );
});
after(() => {
  dp?.obj.close();
});
beforeEach(() => {
  dp.reset();
});

// ---------------------------------------------------------------- packets

interface Conn {
  client: string;
  cport: number;
  vip: string;
  vport: number;
}
const c4 = (cport: number, vport = MYSQL): Conn => ({ client: CLIENT4, cport, vip: VIP4, vport });
const c6 = (cport: number, vport = MYSQL): Conn => ({ client: CLIENT6, cport, vip: VIP6, vport });

function ip(c: { src: string; dst: string }, l4: pk.L4, extra: Partial<pk.Ipv4Spec> = {}): Buffer {
  return pk.ipBytes(c.src).length === 4 ? pk.ipv4({ ...c, ...extra }, l4) : pk.ipv6(c, l4);
}

/** A client frame as it reaches the director. */
function clientFrame(c: Conn, l4: pk.L4, opts: { vlan?: number; ipExtra?: Partial<pk.Ipv4Spec> } = {}): Buffer {
  return pk.ether(
    { src: CLIENT_MAC, dst: DIRECTOR_MAC, vlan: opts.vlan === undefined ? undefined : { id: opts.vlan } },
    ip({ src: c.client, dst: c.vip }, l4, opts.ipExtra),
  );
}
/** The same frame after a DR forward to backend `be`: only the two MACs differ. */
function forwardedFrame(
  c: Conn,
  l4: pk.L4,
  be: number,
  opts: { vlan?: number; ipExtra?: Partial<pk.Ipv4Spec> } = {},
): Buffer {
  return pk.ether(
    { src: DIRECTOR_MAC, dst: beMac(be), vlan: opts.vlan === undefined ? undefined : { id: opts.vlan } },
    ip({ src: c.client, dst: c.vip }, l4, opts.ipExtra),
  );
}
const syn = (c: Conn): pk.L4 => pk.tcp({ sport: c.cport, dport: c.vport, flags: 'S', seq: 1000 });
const ack = (c: Conn, payload = 'select 1'): pk.L4 =>
  pk.tcp({ sport: c.cport, dport: c.vport, flags: 'PA', seq: 1001, ack: 5001, payload: Buffer.from(payload) });
const rst = (c: Conn): pk.L4 => pk.tcp({ sport: c.cport, dport: c.vport, flags: 'R', seq: 1001 });
const fin = (c: Conn): pk.L4 => pk.tcp({ sport: c.cport, dport: c.vport, flags: 'FA', seq: 1009, ack: 5001 });
const dgram = (c: Conn): pk.L4 => pk.udp({ sport: c.cport, dport: c.vport, payload: Buffer.from('query') });

/** What a router sends to the VIP when the real server's reply to `c` does not fit the next hop. */
function fragNeeded(c: Conn, proto: number, mtu: number, opts: { quoteBytes?: number } = {}): Buffer {
  const reply =
    proto === TCP
      ? pk.tcp({ sport: c.vport, dport: c.cport, flags: 'PA', seq: 5001, ack: 1009, payload: Buffer.alloc(1400, 0x61) })
      : pk.udp({ sport: c.vport, dport: c.cport, payload: Buffer.alloc(1400, 0x61) });
  const v4 = pk.ipBytes(c.vip).length === 4;
  const inner = v4
    ? pk.ipv4({ src: c.vip, dst: c.client, df: true }, reply)
    : pk.ipv6({ src: c.vip, dst: c.client }, reply);
  // RFC 792: the IP header + first 8 bytes; RFC 4443: as much as fits in the minimum MTU.
  const quoted = inner.subarray(0, opts.quoteBytes ?? (v4 ? 28 : Math.min(inner.length, 1280 - 48)));
  const l4 = v4 ? pk.icmp4({ type: 3, code: 4, mtu, quoted }) : pk.icmp6({ type: 2, code: 0, mtu, quoted });
  return v4 ? pk.ipv4({ src: ROUTER4, dst: c.vip }, l4) : pk.ipv6({ src: ROUTER6, dst: c.vip }, l4);
}

// ---------------------------------------------------------------- standard services

/** svc 0: VIP4:3306/tcp -> backend 1; svc 1: VIP4:3306/udp -> 2; svc 2: VIP6:3306/tcp -> 3; svc 3: VIP6:3306/udp -> 4. */
function standardServices(): void {
  const services = [
    { vip: VIP4, proto: TCP, be: 1 },
    { vip: VIP4, proto: UDP, be: 2 },
    { vip: VIP6, proto: TCP, be: 3 },
    { vip: VIP6, proto: UDP, be: 4 },
  ];
  services.forEach((s, id) => {
    dp.setBackend(s.be, {
      address: pk.ipBytes(s.vip).length === 4 ? `10.200.0.${10 + s.be}` : `2001:db8::${10 + s.be}`,
      service: id,
    });
    dp.setRing(id, 0, Array(7).fill(s.be));
    dp.addService({ vip: s.vip, port: MYSQL, proto: s.proto, id, ringSize: 7 });
  });
}

// ---------------------------------------------------------------- the fixture table

interface Fixture {
  description: string;
  input: Buffer;
  expectedVerdict: VerdictName;
  /** Exact output bytes (the input itself for anything that is not forwarded). */
  expectedOutput: Buffer;
  /** The one reason counter this packet must land in. */
  expectedReason: ReasonName;
  /** For forwarded packets: the service and backend whose counters must count it. */
  forwardedTo?: { service: number; backend: number; newFlow: boolean };
}

function passFixture(description: string, input: Buffer, expectedReason: ReasonName): Fixture {
  return { description, input, expectedVerdict: 'PASS', expectedOutput: input, expectedReason };
}

/** A client IPv6 frame with extension headers `ext` between the fixed header and `l4`. */
function ext6Frame(
  c: Conn,
  l4: pk.L4,
  ext: pk.Ipv6Ext[],
  macs: { src: string; dst: string } = { src: CLIENT_MAC, dst: DIRECTOR_MAC },
): Buffer {
  return pk.ether(macs, pk.ipv6({ src: c.client, dst: c.vip, ext }, l4));
}
/** An IPv6 frame with extension headers that must be forwarded to backend `be` (service 2 for TCP, 3 for UDP) as a new flow. */
function ext6Fixture(description: string, c: Conn, l4: pk.L4, ext: pk.Ipv6Ext[], be: 3 | 4): Fixture {
  return {
    description,
    input: ext6Frame(c, l4, ext),
    expectedVerdict: 'TX',
    expectedOutput: ext6Frame(c, l4, ext, { src: DIRECTOR_MAC, dst: beMac(be) }),
    expectedReason: 'XD_R_TX_NEW_FLOW',
    forwardedTo: { service: be === 3 ? 2 : 3, backend: be, newFlow: true },
  };
}

const RA_OPTION = Buffer.from([0x94, 0x04, 0x00, 0x00]); // Router Alert (RFC 2113)
const TS_OPTION = Buffer.concat([Buffer.from([0x44, 12, 5, 0x00]), Buffer.alloc(8)]); // Timestamp, room for 2

const fixtures: Fixture[] = [
  // forwarded: only the two MACs change
  {
    description: 'IPv4 TCP SYN to a VIP goes to its backend with only the two MACs changed',
    input: clientFrame(c4(40001), syn(c4(40001))),
    expectedVerdict: 'TX',
    expectedOutput: forwardedFrame(c4(40001), syn(c4(40001)), 1),
    expectedReason: 'XD_R_TX_NEW_FLOW',
    forwardedTo: { service: 0, backend: 1, newFlow: true },
  },
  {
    description: 'IPv4 UDP datagram to a VIP goes to its backend with only the two MACs changed',
    input: clientFrame(c4(40002), dgram(c4(40002))),
    expectedVerdict: 'TX',
    expectedOutput: forwardedFrame(c4(40002), dgram(c4(40002)), 2),
    expectedReason: 'XD_R_TX_NEW_FLOW',
    forwardedTo: { service: 1, backend: 2, newFlow: true },
  },
  {
    description: 'IPv6 TCP SYN to a VIP goes to its backend with only the two MACs changed',
    input: clientFrame(c6(40003), syn(c6(40003))),
    expectedVerdict: 'TX',
    expectedOutput: forwardedFrame(c6(40003), syn(c6(40003)), 3),
    expectedReason: 'XD_R_TX_NEW_FLOW',
    forwardedTo: { service: 2, backend: 3, newFlow: true },
  },
  {
    description: 'IPv6 UDP datagram to a VIP goes to its backend with only the two MACs changed',
    input: clientFrame(c6(40004), dgram(c6(40004))),
    expectedVerdict: 'TX',
    expectedOutput: forwardedFrame(c6(40004), dgram(c6(40004)), 4),
    expectedReason: 'XD_R_TX_NEW_FLOW',
    forwardedTo: { service: 3, backend: 4, newFlow: true },
  },
  {
    description: 'a VLAN-tagged IPv4 SYN is forwarded with its 802.1Q tag kept',
    input: clientFrame(c4(40005), syn(c4(40005)), { vlan: 100 }),
    expectedVerdict: 'TX',
    expectedOutput: forwardedFrame(c4(40005), syn(c4(40005)), 1, { vlan: 100 }),
    expectedReason: 'XD_R_TX_NEW_FLOW',
    forwardedTo: { service: 0, backend: 1, newFlow: true },
  },
  {
    description: 'a VLAN-tagged IPv6 UDP datagram is forwarded with its 802.1Q tag kept',
    input: clientFrame(c6(40006), dgram(c6(40006)), { vlan: 4094 }),
    expectedVerdict: 'TX',
    expectedOutput: forwardedFrame(c6(40006), dgram(c6(40006)), 4, { vlan: 4094 }),
    expectedReason: 'XD_R_TX_NEW_FLOW',
    forwardedTo: { service: 3, backend: 4, newFlow: true },
  },
  {
    description: 'an IPv4 SYN with a Router Alert option is parsed past its options and forwarded unchanged',
    input: clientFrame(c4(40007), syn(c4(40007)), { ipExtra: { options: RA_OPTION } }),
    expectedVerdict: 'TX',
    expectedOutput: forwardedFrame(c4(40007), syn(c4(40007)), 1, { ipExtra: { options: RA_OPTION } }),
    expectedReason: 'XD_R_TX_NEW_FLOW',
    forwardedTo: { service: 0, backend: 1, newFlow: true },
  },
  {
    description: 'an IPv4 UDP datagram with 12 bytes of timestamp option is forwarded unchanged',
    input: clientFrame(c4(40008), dgram(c4(40008)), { ipExtra: { options: TS_OPTION } }),
    expectedVerdict: 'TX',
    expectedOutput: forwardedFrame(c4(40008), dgram(c4(40008)), 2, { ipExtra: { options: TS_OPTION } }),
    expectedReason: 'XD_R_TX_NEW_FLOW',
    forwardedTo: { service: 1, backend: 2, newFlow: true },
  },
  {
    description: 'an IPv4 packet with DF set is not a fragment and is forwarded',
    input: clientFrame(c4(40009), syn(c4(40009)), { ipExtra: { df: true } }),
    expectedVerdict: 'TX',
    expectedOutput: forwardedFrame(c4(40009), syn(c4(40009)), 1, { ipExtra: { df: true } }),
    expectedReason: 'XD_R_TX_NEW_FLOW',
    forwardedTo: { service: 0, backend: 1, newFlow: true },
  },
  {
    description: 'a mid-stream TCP segment of an unknown flow is forwarded and remembered (VIP takeover)',
    input: clientFrame(c4(40010), ack(c4(40010))),
    expectedVerdict: 'TX',
    expectedOutput: forwardedFrame(c4(40010), ack(c4(40010)), 1),
    expectedReason: 'XD_R_TX_NEW_FLOW',
    forwardedTo: { service: 0, backend: 1, newFlow: true },
  },
  {
    description: 'a RST of an unknown flow is forwarded without creating state',
    input: clientFrame(c4(40011), rst(c4(40011))),
    expectedVerdict: 'TX',
    expectedOutput: forwardedFrame(c4(40011), rst(c4(40011)), 1),
    expectedReason: 'XD_R_TX_NO_TRACK',
    forwardedTo: { service: 0, backend: 1, newFlow: false },
  },

  // passed untouched: not ours
  passFixture(
    'IPv4 to the director itself (SSH) is passed unchanged',
    pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv4({ src: CLIENT4, dst: DIRECTOR4 }, pk.tcp({ sport: 50000, dport: 22, flags: 'S' })),
    ),
    'XD_R_PASS_NON_VIP',
  ),
  passFixture(
    'IPv6 to the director itself is passed unchanged',
    pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv6({ src: CLIENT6, dst: DIRECTOR6 }, pk.tcp({ sport: 50000, dport: 22, flags: 'S' })),
    ),
    'XD_R_PASS_NON_VIP',
  ),
  passFixture(
    'TCP to the VIP on a port without a service is passed unchanged',
    clientFrame(c4(40012, 3307), syn(c4(40012, 3307))),
    'XD_R_PASS_NON_VIP',
  ),
  passFixture(
    'IPv6 TCP to the VIP on a port without a service is passed unchanged',
    clientFrame(c6(40013, 22), syn(c6(40013, 22))),
    'XD_R_PASS_NON_VIP',
  ),
  passFixture(
    'UDP to a TCP-only VIP port is passed unchanged',
    pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv4({ src: CLIENT4, dst: VIP4 }, pk.udp({ sport: 40014, dport: 3307 })),
    ),
    'XD_R_PASS_NON_VIP',
  ),
  passFixture(
    'VRRP (IP protocol 112) is passed unchanged',
    pk.ether(
      { src: CLIENT_MAC, dst: '01:00:5e:00:00:12' },
      pk.ipv4(
        { src: DIRECTOR4, dst: '224.0.0.18', ttl: 255 },
        pk.raw(112, Buffer.from('2101640101000a0a0ac80064', 'hex')),
      ),
    ),
    'XD_R_PASS_NON_VIP',
  ),
  passFixture(
    'ICMP echo to a VIP is passed to the kernel',
    pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv4({ src: CLIENT4, dst: VIP4 }, pk.raw(pk.IPPROTO_ICMP, Buffer.from('0800f7ff00000000', 'hex'))),
    ),
    'XD_R_PASS_NON_VIP',
  ),
  passFixture(
    'ICMP port unreachable (3/3) to a VIP is passed to the kernel',
    pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv4(
        { src: ROUTER4, dst: VIP4 },
        pk.icmp4({
          type: 3,
          code: 3,
          quoted: pk.ipv4({ src: VIP4, dst: CLIENT4 }, pk.udp({ sport: MYSQL, dport: 40015 })).subarray(0, 28),
        }),
      ),
    ),
    'XD_R_PASS_NON_VIP',
  ),
  passFixture(
    'ICMP fragmentation needed about a flow the director does not know is passed',
    pk.ether({ src: CLIENT_MAC, dst: DIRECTOR_MAC }, fragNeeded(c4(40016), TCP, 1400)),
    'XD_R_PASS_ICMP',
  ),
  passFixture(
    'ICMPv6 packet too big about a flow the director does not know is passed',
    pk.ether({ src: CLIENT_MAC, dst: DIRECTOR_MAC }, fragNeeded(c6(40017), TCP, 1280)),
    'XD_R_PASS_ICMP',
  ),
  passFixture(
    'ICMP fragmentation needed about a port without a service is passed as non-VIP',
    pk.ether({ src: CLIENT_MAC, dst: DIRECTOR_MAC }, fragNeeded(c4(40018, 3307), TCP, 1400)),
    'XD_R_PASS_NON_VIP',
  ),
  passFixture(
    'ARP is passed unchanged',
    pk.ether(
      { src: CLIENT_MAC, dst: 'ff:ff:ff:ff:ff:ff', type: pk.ETH_P_ARP },
      pk.arpRequest(CLIENT_MAC, CLIENT4, VIP4),
    ),
    'XD_R_PASS_NON_IP',
  ),
  passFixture(
    'a double-tagged (QinQ) frame is passed as non-IP',
    pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC, type: pk.ETH_P_8021Q, vlan: { id: 10 } },
      Buffer.concat([Buffer.from([0x00, 0x14, 0x08, 0x00]), pk.ipv4({ src: CLIENT4, dst: VIP4 }, syn(c4(40019)))]),
    ),
    'XD_R_PASS_NON_IP',
  ),

  // malformed: passed untouched, never forwarded
  passFixture(
    'an Ethernet header whose VLAN tag is cut off is passed as malformed',
    Buffer.concat([clientFrame(c4(40020), syn(c4(40020))).subarray(0, 12), Buffer.from([0x81, 0x00, 0x00, 0x64])]),
    'XD_R_PASS_MALFORMED',
  ),
  passFixture(
    'an IPv4 EtherType with no IP header is passed as malformed',
    clientFrame(c4(40021), syn(c4(40021))).subarray(0, 14),
    'XD_R_PASS_MALFORMED',
  ),
  passFixture(
    'a truncated IPv4 header (19 bytes) is passed as malformed',
    clientFrame(c4(40022), syn(c4(40022))).subarray(0, 14 + 19),
    'XD_R_PASS_MALFORMED',
  ),
  passFixture(
    'IPv4 options running past the end of the packet are passed as malformed',
    clientFrame(c4(40023), syn(c4(40023)), { ipExtra: { options: TS_OPTION } }).subarray(0, 14 + 28),
    'XD_R_PASS_MALFORMED',
  ),
  passFixture(
    'an IPv4 header with IHL 4 is passed as malformed',
    withByte(clientFrame(c4(40024), syn(c4(40024))), 14, 0x44),
    'XD_R_PASS_MALFORMED',
  ),
  passFixture(
    'a UDP datagram with IHL 4 is passed as malformed',
    withByte(clientFrame(c4(40037), dgram(c4(40037))), 14, 0x44),
    'XD_R_PASS_MALFORMED',
  ),
  passFixture(
    'an IPv6 EtherType carrying an IPv4 header is passed as malformed',
    pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC, type: pk.ETH_P_IPV6 },
      pk.ipv4({ src: CLIENT4, dst: VIP4 }, ack(c4(40038))),
    ),
    'XD_R_PASS_MALFORMED',
  ),
  passFixture(
    'an IPv4 EtherType carrying an IPv6 header is passed as malformed',
    pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC, type: pk.ETH_P_IP },
      pk.ipv6({ src: CLIENT6, dst: VIP6 }, syn(c6(40025))),
    ),
    'XD_R_PASS_MALFORMED',
  ),
  passFixture(
    'a truncated TCP header (19 bytes) to a VIP is passed as malformed',
    clientFrame(c4(40026), syn(c4(40026))).subarray(0, 14 + 20 + 19),
    'XD_R_PASS_MALFORMED',
  ),
  passFixture(
    'a TCP header with data offset 4 is passed as malformed',
    withByte(clientFrame(c4(40027), syn(c4(40027))), 14 + 20 + 12, 0x40),
    'XD_R_PASS_MALFORMED',
  ),
  passFixture(
    'a truncated UDP header (7 bytes) to a VIP is passed as malformed',
    clientFrame(c4(40028), dgram(c4(40028))).subarray(0, 14 + 20 + 7),
    'XD_R_PASS_MALFORMED',
  ),
  passFixture(
    'a truncated IPv6 header (39 bytes) is passed as malformed',
    clientFrame(c6(40029), syn(c6(40029))).subarray(0, 14 + 39),
    'XD_R_PASS_MALFORMED',
  ),
  passFixture(
    'a truncated IPv6 TCP header is passed as malformed',
    clientFrame(c6(40030), syn(c6(40030))).subarray(0, 14 + 40 + 12),
    'XD_R_PASS_MALFORMED',
  ),
  passFixture(
    'a truncated IPv6 fragment header is passed as malformed',
    pk
      .ether(
        { src: CLIENT_MAC, dst: DIRECTOR_MAC },
        pk.ipv6({ src: CLIENT6, dst: VIP6, fragment: { offset: 0, more: true, id: 7 } }, dgram(c6(40031))),
      )
      .subarray(0, 14 + 40 + 6),
    'XD_R_PASS_MALFORMED',
  ),
  passFixture(
    'an ICMP error quoting less than the ports is passed as malformed',
    pk.ether({ src: CLIENT_MAC, dst: DIRECTOR_MAC }, fragNeeded(c4(40032), TCP, 1400, { quoteBytes: 22 })),
    'XD_R_PASS_MALFORMED',
  ),

  // fragments: defined behaviour
  {
    description: 'the first IPv4 fragment of a TCP segment to a VIP is dropped',
    input: pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv4(
        { src: CLIENT4, dst: VIP4, mf: true },
        pk.raw(TCP, tcpBytes(CLIENT4, VIP4, ack(c4(40033), 'x'.repeat(64))).subarray(0, 48)),
      ),
    ),
    expectedVerdict: 'DROP',
    expectedOutput: pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv4(
        { src: CLIENT4, dst: VIP4, mf: true },
        pk.raw(TCP, tcpBytes(CLIENT4, VIP4, ack(c4(40033), 'x'.repeat(64))).subarray(0, 48)),
      ),
    ),
    expectedReason: 'XD_R_DROP_FRAGMENT',
  },
  {
    description: 'the first IPv4 fragment of a UDP datagram to a VIP is dropped',
    input: pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv4(
        { src: CLIENT4, dst: VIP4, mf: true, id: 99 },
        pk.raw(UDP, udpBytes(CLIENT4, VIP4, c4(40034), 3000).subarray(0, 1480)),
      ),
    ),
    expectedVerdict: 'DROP',
    expectedOutput: pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv4(
        { src: CLIENT4, dst: VIP4, mf: true, id: 99 },
        pk.raw(UDP, udpBytes(CLIENT4, VIP4, c4(40034), 3000).subarray(0, 1480)),
      ),
    ),
    expectedReason: 'XD_R_DROP_FRAGMENT',
  },
  passFixture(
    'a later IPv4 fragment (no ports) is passed for the kernel to discard',
    pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv4(
        { src: CLIENT4, dst: VIP4, fragOffset: 185, id: 99 },
        pk.raw(UDP, udpBytes(CLIENT4, VIP4, c4(40034), 3000).subarray(1480)),
      ),
    ),
    'XD_R_PASS_NON_VIP',
  ),
  passFixture(
    'the first IPv4 fragment to a non-VIP address is passed',
    pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv4(
        { src: CLIENT4, dst: DIRECTOR4, mf: true },
        pk.raw(UDP, udpBytes(CLIENT4, DIRECTOR4, c4(40035), 3000).subarray(0, 1480)),
      ),
    ),
    'XD_R_PASS_NON_VIP',
  ),
  {
    description: 'the first IPv6 fragment of a UDP datagram to a VIP is dropped',
    input: pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv6(
        { src: CLIENT6, dst: VIP6, fragment: { offset: 0, more: true, id: 7 } },
        pk.raw(UDP, udpBytes(CLIENT6, VIP6, c6(40036), 3000).subarray(0, 1448)),
      ),
    ),
    expectedVerdict: 'DROP',
    expectedOutput: pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv6(
        { src: CLIENT6, dst: VIP6, fragment: { offset: 0, more: true, id: 7 } },
        pk.raw(UDP, udpBytes(CLIENT6, VIP6, c6(40036), 3000).subarray(0, 1448)),
      ),
    ),
    expectedReason: 'XD_R_DROP_FRAGMENT',
  },
  passFixture(
    'a later IPv6 fragment is passed for the kernel to discard',
    pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv6(
        { src: CLIENT6, dst: VIP6, fragment: { offset: 181, more: false, id: 7 } },
        pk.raw(UDP, udpBytes(CLIENT6, VIP6, c6(40036), 3000).subarray(1448)),
      ),
    ),
    'XD_R_PASS_NON_VIP',
  ),

  // IPv6 extension headers: walked like the kernel's ipv6_skip_exthdr(), up to 8 of them
  ext6Fixture(
    'an IPv6 TCP SYN after a Hop-by-Hop Options header is forwarded unchanged',
    c6(40100),
    syn(c6(40100)),
    [pk.hopByHop()],
    3,
  ),
  ext6Fixture(
    'an IPv6 UDP datagram after a 16-byte Destination Options header is forwarded unchanged',
    c6(40101),
    dgram(c6(40101)),
    [pk.destOpts(16)],
    4,
  ),
  ext6Fixture(
    'an IPv6 TCP SYN after a Routing header with no segments left is forwarded unchanged',
    c6(40102),
    syn(c6(40102)),
    [pk.routingExt()],
    3,
  ),
  ext6Fixture(
    'an IPv6 TCP SYN after Hop-by-Hop, Destination Options, Routing and Destination Options is forwarded unchanged',
    c6(40103),
    syn(c6(40103)),
    [pk.hopByHop(), pk.destOpts(), pk.routingExt({ addresses: ['2001:db8::fe', '2001:db8::fd'] }), pk.destOpts(24)],
    3,
  ),
  ext6Fixture(
    'an IPv6 TCP SYN after an Authentication Header is forwarded unchanged',
    c6(40104),
    syn(c6(40104)),
    [pk.ahExt()],
    3,
  ),
  ext6Fixture(
    'an IPv6 atomic fragment (offset 0, M=0) is not a fragment: its SYN is forwarded',
    c6(40105),
    syn(c6(40105)),
    [pk.fragmentExt(0, false)],
    3,
  ),
  ext6Fixture(
    'an IPv6 atomic fragment after a Hop-by-Hop header carrying UDP is forwarded',
    c6(40106),
    dgram(c6(40106)),
    [pk.hopByHop(), pk.fragmentExt(0, false), pk.destOpts()],
    4,
  ),
  {
    description: 'the first IPv6 fragment after a Hop-by-Hop header to a VIP is dropped like any first fragment',
    input: pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv6(
        { src: CLIENT6, dst: VIP6, ext: [pk.hopByHop(), pk.fragmentExt(0, true)] },
        pk.raw(UDP, udpBytes(CLIENT6, VIP6, c6(40107), 3000).subarray(0, 1440)),
      ),
    ),
    expectedVerdict: 'DROP',
    expectedOutput: pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv6(
        { src: CLIENT6, dst: VIP6, ext: [pk.hopByHop(), pk.fragmentExt(0, true)] },
        pk.raw(UDP, udpBytes(CLIENT6, VIP6, c6(40107), 3000).subarray(0, 1440)),
      ),
    ),
    expectedReason: 'XD_R_DROP_FRAGMENT',
  },
  passFixture(
    'a later IPv6 fragment after Destination Options is passed for the kernel to discard',
    pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv6(
        { src: CLIENT6, dst: VIP6, ext: [pk.destOpts(), pk.fragmentExt(180, false)] },
        pk.raw(UDP, udpBytes(CLIENT6, VIP6, c6(40107), 3000).subarray(1440)),
      ),
    ),
    'XD_R_PASS_NON_VIP',
  ),
  passFixture(
    'an IPv6 chain of nine extension headers (more than the eight walked) is passed as malformed',
    ext6Frame(
      c6(40108),
      syn(c6(40108)),
      Array.from({ length: 9 }, () => pk.destOpts()),
    ),
    'XD_R_PASS_MALFORMED',
  ),
  passFixture(
    'an IPv6 Hop-by-Hop header whose length runs past the packet is passed as malformed',
    withByte(ext6Frame(c6(40109), syn(c6(40109)), [pk.hopByHop()]), 14 + 40 + 1, 200),
    'XD_R_PASS_MALFORMED',
  ),
  passFixture(
    'an IPv6 extension header cut after one byte is passed as malformed',
    ext6Frame(c6(40110), syn(c6(40110)), [pk.hopByHop()]).subarray(0, 14 + 40 + 1),
    'XD_R_PASS_MALFORMED',
  ),
  passFixture(
    'an IPv6 Destination Options header followed by No Next Header is passed as non-VIP',
    pk.ether(
      { src: CLIENT_MAC, dst: DIRECTOR_MAC },
      pk.ipv6({ src: CLIENT6, dst: VIP6, ext: [pk.destOpts()] }, pk.raw(pk.IPPROTO_NONE, Buffer.alloc(0))),
    ),
    'XD_R_PASS_NON_VIP',
  ),
  passFixture(
    'an IPv6 TCP SYN after extension headers to a port without a service is passed as non-VIP',
    ext6Frame(c6(40111, 22), syn(c6(40111, 22)), [pk.hopByHop(), pk.routingExt()]),
    'XD_R_PASS_NON_VIP',
  ),
];

function withByte(b: Buffer, offset: number, value: number): Buffer {
  const c = Buffer.from(b);
  c[offset] = value;
  return c;
}
function tcpBytes(src: string, dst: string, l4: pk.L4): Buffer {
  return l4.bytes(pk.ipBytes(src), pk.ipBytes(dst));
}
function udpBytes(src: string, dst: string, c: Conn, size: number): Buffer {
  return pk
    .udp({ sport: c.cport, dport: c.vport, payload: Buffer.alloc(size, 0x62) })
    .bytes(pk.ipBytes(src), pk.ipBytes(dst));
}

function assertOnlyReason(
  before: Record<ReasonName, XdReasonStats>,
  after: Record<ReasonName, XdReasonStats>,
  reason: ReasonName,
  packets: number,
  bytes: number,
): void {
  for (const r of REASON_NAMES) {
    const dp = after[r].packets - before[r].packets;
    const db = after[r].bytes - before[r].bytes;
    if (r === reason) {
      assert.equal(dp, BigInt(packets), `${r}: packets`);
      assert.equal(db, BigInt(bytes), `${r}: bytes`);
    } else {
      assert.equal(dp, 0n, `${r} must not count this packet (expected ${reason})`);
    }
  }
}

for (const f of fixtures) {
  test(f.description, () => {
    standardServices();
    const before = dp.reasons();
    const { verdict, out } = dp.run(f.input);
    assert.equal(verdict, f.expectedVerdict, 'verdict');
    assert.equal(out.toString('hex'), f.expectedOutput.toString('hex'), 'output bytes');
    assertOnlyReason(before, dp.reasons(), f.expectedReason, 1, f.input.length);
    if (f.forwardedTo) {
      const { service, backend, newFlow } = f.forwardedTo;
      assert.deepEqual(dp.serviceStats(service), {
        packets: 1n,
        bytes: BigInt(f.input.length),
        new_flows: newFlow ? 1n : 0n,
        no_backend: 0n,
      });
      assert.deepEqual(dp.backendStats(backend), {
        packets: 1n,
        bytes: BigInt(f.input.length),
        new_flows: newFlow ? 1n : 0n,
      });
    } else {
      for (let s = 0; s < 4; s++) assert.deepEqual(dp.serviceStats(s), zeroSvcStats, `service ${s} counted nothing`);
    }
    // Only new flows leave an entry: an opening packet (SYN, first datagram) in the embryonic
    // table, a flow taken over mid-stream in the takeover table; none in the flow table.
    assert.equal(dp.flow.count() + dp.prb.count(), 0, 'no flow-table or probation entry from one packet');
    assert.equal(dp.emb.count() + dp.tko.count(), f.forwardedTo?.newFlow ? 1 : 0, 'embryonic and takeover entries');
  });
}

test('a service whose port bit is clear in the VIP ports map is not served: the bit is checked first', () => {
  standardServices();
  clearVipPorts(dp.obj);
  const c = c4(41060);
  const before = dp.reasons();
  assert.equal(sendTo(clientFrame(c, syn(c))).verdict, 'PASS');
  assertOnlyReason(before, dp.reasons(), 'XD_R_PASS_NON_VIP', 1, clientFrame(c, syn(c)).length);
  markVipPort(dp.obj, c.vport, TCP);
  assert.equal(sendTo(clientFrame(c, syn(c))).verdict, 'TX');
});

// ---------------------------------------------------------------- flows

/** Runs one client packet and returns the backend index it was forwarded to (0 = not forwarded). */
function sendTo(frame: Buffer): { verdict: VerdictName; backend: number; out: Buffer } {
  const { verdict, out } = dp.run(frame);
  if (verdict !== 'TX' && verdict !== 'REDIRECT') return { verdict, backend: 0, out };
  const mac = out.subarray(0, 6).toString('hex');
  for (let i = 1; i < MAX_BACKENDS; i++)
    if (pk.macBytes(beMac(i)).toString('hex') === mac) return { verdict, backend: i, out };
  assert.fail(`forwarded to unknown MAC ${mac}`);
}

/**
 * Opens a TCP connection as a client does (SYN, then the handshake's ACK, which moves the flow from
 * the embryonic table to the probation table) and uses it a second later (which proves it: into
 * the flow table); returns the backend all three went to.
 */
function establish(c: Conn, frame: (c: Conn, l4: pk.L4) => Buffer = clientFrame, clearCaches = true): number {
  const key = flowKey(c.client, c.cport, c.vip, c.vport, TCP);
  const first = sendTo(frame(c, syn(c))).backend;
  const second = sendTo(frame(c, pk.tcp({ sport: c.cport, dport: c.vport, flags: 'A', seq: 1001, ack: 5001 }))).backend;
  assert.equal(second, first, 'the handshake ACK goes where the SYN went');
  assert.ok(dp.probationOf(key)?.handshake_ns, 'the ACK completed the handshake: in the probation table');
  dp.ageHandshake(key, 1500, clearCaches);
  assert.equal(
    sendTo(frame(c, pk.tcp({ sport: c.cport, dport: c.vport, flags: 'PA', seq: 1001, ack: 5001 }))).backend,
    first,
    'proven',
  );
  assert.ok(dp.flowOf(key), 'a packet a second later put the flow in the flow table');
  // That packet filled this CPU's cache slot; emptied, as its slot would be XD_FLOW_CACHE_JIFFIES
  // later, so the flow is where every test of an established flow starts: in the flow table only.
  if (clearCaches) clearFlowCaches(dp.obj);
  return first;
}

/**
 * A flow taken over mid-stream (a bare ACK of an unknown flow: the takeover table), the kind of
 * flow the per-CPU cache holds (a flow-table flow the fast path reads from the table itself).
 * Its caches are emptied unless `clearCaches` is false.
 */
function takeOver(c: Conn, clearCaches = true): number {
  const key = flowKey(c.client, c.cport, c.vip, c.vport, TCP);
  const b = sendTo(clientFrame(c, ack(c))).backend;
  assert.ok(dp.tko.lookup(key), 'a bare ACK of an unknown flow: in the takeover table');
  if (clearCaches) clearFlowCaches(dp.obj);
  return b;
}

test('an established flow stays on its backend after the ring switches to another generation', () => {
  dp.setBackend(1);
  dp.setBackend(2);
  dp.setRing(0, 0, Array(7).fill(1));
  dp.setRing(0, 1, Array(7).fill(2));
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 7, activeGen: 0 });
  const c = c4(41000);
  assert.equal(establish(c), 1);
  dp.setActiveGen(VIP4, MYSQL, TCP, 1);
  const before = dp.reasons();
  const r = sendTo(clientFrame(c, ack(c)));
  assert.equal(r.backend, 1, 'the established flow keeps backend 1');
  assert.equal(r.out.toString('hex'), forwardedFrame(c, ack(c), 1).toString('hex'));
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_FLOW_HIT', 1, clientFrame(c, ack(c)).length);
  assert.equal(sendTo(clientFrame(c4(41001), syn(c4(41001)))).backend, 2, 'a new connection follows the live ring');
});

test('an established UDP flow stays on its backend after the ring changes', () => {
  dp.setBackend(1);
  dp.setBackend(2);
  dp.setRing(1, 0, Array(7).fill(1));
  dp.setRing(1, 1, Array(7).fill(2));
  dp.addService({ vip: VIP6, port: MYSQL, proto: UDP, id: 1, ringSize: 7 });
  const c = c6(41010);
  assert.equal(sendTo(clientFrame(c, dgram(c))).backend, 1);
  dp.setActiveGen(VIP6, MYSQL, UDP, 1);
  assert.equal(sendTo(clientFrame(c, dgram(c))).backend, 1);
  assert.equal(sendTo(clientFrame(c6(41011), dgram(c6(41011)))).backend, 2);
});

/** Makes a flow entry look idle: its last packet `ms` ago (the per-CPU caches emptied, as if expired). */
function ageFlow(key: XdFlowKey, ms: number): void {
  const f = dp.flowOf(key)!;
  dp.flow.update(key, { ...f, last_seen_ns: process.hrtime.bigint() - BigInt(ms) * 1_000_000n });
  clearFlowCaches(dp.obj);
}

test('a SYN re-hashes a known 5-tuple idle for longer than syn_reuse_idle onto the live ring and overwrites its entry', () => {
  dp.setBackend(1);
  dp.setBackend(2);
  dp.setRing(0, 0, Array(7).fill(1));
  dp.setRing(0, 1, Array(7).fill(2));
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 7 });
  const c = c4(41020);
  assert.equal(establish(c), 1);
  dp.setActiveGen(VIP4, MYSQL, TCP, 1);
  ageFlow(flowKey(c.client, c.cport, c.vip, c.vport, TCP), 2500); // default syn_reuse_idle: 2 s
  const before = dp.reasons();
  assert.equal(sendTo(clientFrame(c, syn(c))).backend, 2);
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_NEW_FLOW', 1, clientFrame(c, syn(c)).length);
  assert.equal(dp.flowOf(flowKey(c.client, c.cport, c.vip, c.vport, TCP))?.backend, 2);
  assert.equal(sendTo(clientFrame(c, ack(c))).backend, 2, 'the rest of the new connection follows');
});

for (const fam of ['IPv4', 'IPv6'] as const) {
  test(`an ${fam} SYN reusing the 5-tuple of a flow with recent traffic keeps it on its draining backend (IPVS conn_reuse_mode)`, () => {
    dp.setBackend(1);
    dp.setBackend(2);
    const v4 = fam === 'IPv4';
    dp.setRing(v4 ? 0 : 1, 0, Array(7).fill(1));
    dp.addService({ vip: v4 ? VIP4 : VIP6, port: MYSQL, proto: TCP, id: v4 ? 0 : 1, ringSize: 7 });
    const c = v4 ? c4(41025) : c6(41025);
    const key = flowKey(c.client, c.cport, c.vip, c.vport, TCP);
    assert.equal(establish(c), 1);
    // Backend 1 drains: the live ring names only backend 2.
    dp.setBackend(1, { flags: XdBackendFlags.XD_BE_F_ACTIVE | XdBackendFlags.XD_BE_F_DRAINING });
    dp.setRing(v4 ? 0 : 1, 1, Array(7).fill(2));
    dp.setActiveGen(v4 ? VIP4 : VIP6, MYSQL, TCP, 1);
    // Its last packet 1.5 s ago (within the default 2 s): a spoofed SYN on its 5-tuple moves nothing.
    ageFlow(key, 1500);
    const entry = dp.flowOf(key)!;
    const before = dp.reasons();
    const s = sendTo(clientFrame(c, syn(c)));
    assert.equal(s.backend, 1, "the SYN goes to the flow's backend");
    assertOnlyReason(before, dp.reasons(), 'XD_R_TX_SYN_KEPT', 1, clientFrame(c, syn(c)).length);
    assert.deepEqual(dp.flowOf(key), entry, 'the entry is untouched');
    assert.equal(dp.embryonicOf(key), undefined, 'and no embryonic entry shadows it');
    assert.equal(sendTo(clientFrame(c, ack(c))).backend, 1, 'the connection stays on its draining backend');
    // Idle for 2.5 s: the SYN opens a new connection on the live ring.
    ageFlow(key, 2500);
    assert.equal(sendTo(clientFrame(c, syn(c))).backend, 2);
    assert.equal(dp.flowOf(key)?.backend, 2);
  });
}

test("a removed backend's flow is re-hashed when its index gets a new generation", () => {
  dp.setBackend(1, { generation: 7 });
  dp.setBackend(2);
  dp.setRing(0, 0, Array(7).fill(1));
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 7 });
  const c = c4(41030);
  assert.equal(establish(c), 1);
  assert.deepEqual(
    { ...dp.flowOf(flowKey(c.client, c.cport, c.vip, c.vport, TCP))!, last_seen_ns: 0n },
    { backend: 1, generation: 7, last_seen_ns: 0n },
  );
  // The control plane removes backend 1 (new ring without it) and gives index 1 to another server.
  dp.setRing(0, 1, Array(7).fill(2));
  dp.setActiveGen(VIP4, MYSQL, TCP, 1);
  dp.setBackend(1, { generation: 8, address: '10.200.0.99', mac: '02:00:00:00:01:63' });
  const before = dp.reasons();
  const r = sendTo(clientFrame(c, ack(c)));
  assert.equal(r.backend, 2, "the flow moved to the ring's backend, not to the new owner of index 1");
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_REHASH', 1, clientFrame(c, ack(c)).length);
  const f = dp.flowOf(flowKey(c.client, c.cport, c.vip, c.vport, TCP))!;
  assert.equal(f.backend, 2);
  assert.equal(f.generation, 1);
  assert.equal(dp.serviceStats(0).new_flows, 2n, 'the re-hash counts as a new flow');
  assert.equal(sendTo(clientFrame(c, ack(c))).backend, 2);
});

test("a removed backend's flow is re-hashed when its slot is no longer active", () => {
  dp.setBackend(1);
  dp.setBackend(2);
  dp.setRing(0, 0, Array(7).fill(1));
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 7 });
  const c = c4(41035);
  assert.equal(establish(c), 1);
  dp.setRing(0, 1, Array(7).fill(2));
  dp.setActiveGen(VIP4, MYSQL, TCP, 1);
  dp.setBackend(1, { flags: 0 });
  const before = dp.reasons();
  assert.equal(sendTo(clientFrame(c, ack(c))).backend, 2);
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_REHASH', 1, clientFrame(c, ack(c)).length);
});

test("a DOWN backend's established flows are re-hashed onto the ring", () => {
  dp.setBackend(1);
  dp.setBackend(2);
  dp.setRing(0, 0, Array(7).fill(1));
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 7 });
  const c = c4(41040);
  assert.equal(establish(c), 1);
  dp.setBackend(1, { flags: XdBackendFlags.XD_BE_F_ACTIVE | XdBackendFlags.XD_BE_F_DOWN });
  dp.setRing(0, 1, Array(7).fill(2));
  dp.setActiveGen(VIP4, MYSQL, TCP, 1);
  const before = dp.reasons();
  assert.equal(sendTo(clientFrame(c, ack(c))).backend, 2);
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_REHASH', 1, clientFrame(c, ack(c)).length);
  assert.equal(dp.flowOf(flowKey(c.client, c.cport, c.vip, c.vport, TCP))?.backend, 2);
});

// ---------------------------------------------------------------- per-CPU flow cache

/** A 5-tuple as its cache slot's key words: the xd_flow4_key (IPv4) or xd_flow_key (IPv6) bytes as host-order u64s. */
function cacheKey(c: Conn): bigint[] {
  const b =
    family(c.vip) === XdFamily.XD_FAMILY_V4
      ? xdFlow4KeyCodec.encode({
          saddr: addressToBytes16(c.client).readUInt32BE(0),
          daddr: addressToBytes16(c.vip).readUInt32BE(0),
          sport: c.cport,
          dport: c.vport,
          proto: TCP,
        })
      : xdFlowKeyCodec.encode(flowKey(c.client, c.cport, c.vip, c.vport, TCP));
  return Array.from({ length: b.length / 8 }, (_, i) => b.readBigUInt64LE(i * 8));
}

/** The flow's cache (xd_fc4_v2 or xd_fc6_v2: CPU-major, `per` slots a CPU) as slots of key, backend, generation, expires. */
function cacheOf(c: Conn): { per: number; map: BpfMap<number, XdFlow4Cache> } {
  return family(c.vip) === XdFamily.XD_FAMILY_V4
    ? { per: DEFINES.XD_FLOW_CACHE4, map: dp.fc4() }
    : { per: DEFINES.XD_FLOW_CACHE6, map: dp.fc6() as unknown as BpfMap<number, XdFlow4Cache> };
}

/** The slot (within a CPU's part of the flow's cache) holding this flow on some CPU, with every CPU's value of it. */
function cachedSlot(c: Conn): { slot: number; cpus: XdFlow4Cache[] } | undefined {
  const want = cacheKey(c).join(',');
  const { per, map: m } = cacheOf(c);
  for (const [i, v] of m.entries()) {
    if (v.backend === 0 || v.key.join(',') !== want) continue;
    const slot = i % per;
    return { slot, cpus: Array.from({ length: m.maxEntries / per }, (_, cpu) => m.lookup(cpu * per + slot)!) };
  }
  return undefined;
}

/** Writes the flow's slot on every CPU (so the result does not depend on which CPU runs the packet). */
function setCachedSlot(slot: number, v: Omit<XdFlow4Cache, 'key'>, c: Conn): void {
  const { per, map: m } = cacheOf(c);
  for (let cpu = 0; cpu < m.maxEntries / per; cpu++) m.update(cpu * per + slot, { key: cacheKey(c), ...v });
}

/** The first slot of the flow's 2-way set, as fc4_set() / fc6_set() in the program compute it (without the CPU part). */
function cacheSet(c: Conn): number {
  const k = cacheKey(c);
  const x = k.length === 2 ? k[0]! ^ k[1]! : k[0]! ^ k[1]! ^ k[3]! ^ k[4]!;
  const folded = Number((x & 0xffffffffn) ^ (x >> 32n));
  const sets = cacheOf(c).per / DEFINES.XD_FLOW_CACHE_WAYS;
  return ((Math.imul(folded, 0x9e3779b1) >>> 0) >>> (32 - Math.log2(sets))) << 1;
}

test('a flow-table hit and a takeover-table hit fill a slot of the per-CPU flow cache with the key, backend and generation', () => {
  dp.setBackend(1, { generation: 5 });
  dp.setRing(0, 0, Array(7).fill(1));
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 7 });
  const t = c4(41041);
  assert.equal(establish(t), 1);
  assert.equal(cachedSlot(t), undefined, 'nothing cached (establish() empties the caches)');
  const c = c4(41042);
  assert.equal(takeOver(c), 1);
  assert.equal(cachedSlot(c), undefined, 'nothing cached (takeOver() empties the caches)');
  for (const [f, what] of [
    [t, 'the flow table'],
    [c, 'the takeover table'],
  ] as const) {
    assert.equal(sendTo(clientFrame(f, ack(f))).backend, 1);
    const found = cachedSlot(f);
    assert.ok(found, `one CPU cached the flow of ${what}`);
    const v = found.cpus.find((x) => x.backend !== 0)!;
    assert.deepEqual([v.backend, v.generation], [1, 5]);
    assert.ok(v.expires > 0n);
  }
});

test('a cached flow is forwarded from its slot until the slot expires, then from its table', () => {
  dp.setBackend(1);
  dp.setBackend(2);
  dp.setRing(0, 0, Array(7).fill(1));
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 7 });
  const c = c4(41043);
  assert.equal(takeOver(c), 1);
  assert.equal(sendTo(clientFrame(c, ack(c))).backend, 1);
  const { slot } = cachedSlot(c)!;
  // The takeover table now says backend 2 (written behind the program's back); every CPU's slot says 1.
  dp.tko.update(flowKey(c.client, c.cport, c.vip, c.vport, TCP), { backend: 2, generation: 1, last_seen_ns: 0n });
  setCachedSlot(slot, { backend: 1, generation: 1, expires: 2n ** 62n }, c);
  const before = dp.reasons();
  assert.equal(sendTo(clientFrame(c, ack(c))).backend, 1, 'served from the slot');
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_FLOW_HIT', 1, clientFrame(c, ack(c)).length);
  setCachedSlot(slot, { backend: 1, generation: 1, expires: 0n }, c);
  assert.equal(sendTo(clientFrame(c, ack(c))).backend, 2, 'an expired slot is not trusted: the takeover table decides');
  assert.ok(
    cachedSlot(c)!.cpus.some((v) => v.backend === 2),
    'and the slot is refilled from it',
  );
});

/** The CPUs whose part of the flow's cache holds it. */
function cpusCaching(c: Conn): number[] {
  const want = cacheKey(c).join(',');
  const { per, map } = cacheOf(c);
  return map
    .entries()
    .filter(([, v]) => v.backend !== 0 && v.key.join(',') === want)
    .map(([i]) => Math.floor(i / per));
}

for (const [fam, vip, conn] of [
  ['IPv4', VIP4, c4],
  ['IPv6', VIP6, c6],
] as const) {
  test(`the ${fam} cache is 2-way: two flows of one set are both served from it; a third takes the way refilled longer ago`, () => {
    dp.setBackend(1);
    dp.setBackend(2);
    dp.setRing(0, 0, Array(7).fill(1));
    dp.addService({ vip, port: MYSQL, proto: TCP, id: 0, ringSize: 7 });
    // Three client ports whose flows hash to one set.
    const first = conn(42000);
    const same: Conn[] = [first];
    for (let p = 42001; same.length < 3; p++) if (cacheSet(conn(p)) === cacheSet(first)) same.push(conn(p));
    const [a, b, third] = same as [Conn, Conn, Conn];
    for (const c of [a, b]) assert.equal(takeOver(c), 1);
    for (const c of [a, b]) assert.equal(sendTo(clientFrame(c, ack(c))).backend, 1);
    const set = cacheSet(a);
    const slots = [cachedSlot(a)!.slot, cachedSlot(b)!.slot].sort((x, y) => x - y);
    assert.deepEqual(slots, [set, set + 1], 'each flow holds one way of the set');
    // Every CPU's set gets both (the test may run on any CPU), fresh for good; then the takeover
    // table says backend 2 for both (behind the program's back): both are still served from their ways.
    for (const c of [a, b]) setCachedSlot(cachedSlot(c)!.slot, { backend: 1, generation: 1, expires: 2n ** 62n }, c);
    for (const c of [a, b])
      dp.tko.update(flowKey(c.client, c.cport, c.vip, c.vport, TCP), { backend: 2, generation: 1, last_seen_ns: 0n });
    for (const c of [a, b])
      assert.equal(sendTo(clientFrame(c, ack(c))).backend, 1, `flow ${c.cport} served from the cache`);
    // A third flow of the set replaces one of them on the CPU that runs it; the other stays.
    for (const c of [a, b])
      dp.tko.update(flowKey(c.client, c.cport, c.vip, c.vport, TCP), { backend: 1, generation: 1, last_seen_ns: 0n });
    assert.equal(takeOver(third, false), 1);
    assert.equal(sendTo(clientFrame(third, ack(third))).backend, 1);
    const cpus = cpusCaching(third);
    assert.equal(cpus.length, 1, 'the third flow is cached on the CPU that forwarded it');
    const kept = [a, b].filter((c) => cpusCaching(c).includes(cpus[0]!));
    assert.equal(kept.length, 1, 'on that CPU one of the first two keeps its way');
  });
}

test('a cached flow whose backend goes DOWN is re-hashed at once, not served from its slot', () => {
  dp.setBackend(1);
  dp.setBackend(2);
  dp.setRing(0, 0, Array(7).fill(1));
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 7 });
  const c = c4(41044);
  assert.equal(takeOver(c), 1);
  assert.equal(sendTo(clientFrame(c, ack(c))).backend, 1);
  setCachedSlot(cachedSlot(c)!.slot, { backend: 1, generation: 1, expires: 2n ** 62n }, c);
  dp.setBackend(1, { flags: XdBackendFlags.XD_BE_F_ACTIVE | XdBackendFlags.XD_BE_F_DOWN });
  dp.setRing(0, 1, Array(7).fill(2));
  dp.setActiveGen(VIP4, MYSQL, TCP, 1);
  const before = dp.reasons();
  assert.equal(sendTo(clientFrame(c, ack(c))).backend, 2);
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_REHASH', 1, clientFrame(c, ack(c)).length);
  assert.equal(dp.tko.lookup(flowKey(c.client, c.cport, c.vip, c.vport, TCP))?.backend, 2);
});

test('a DOWN backend still named by the ring is not picked: the packet finds no backend', () => {
  dp.setBackend(1, { flags: XdBackendFlags.XD_BE_F_ACTIVE | XdBackendFlags.XD_BE_F_DOWN });
  dp.setRing(0, 0, Array(7).fill(1));
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 7 });
  const c = c4(41045);
  const frame = clientFrame(c, syn(c));
  const before = dp.reasons();
  const r = dp.run(frame);
  assert.equal(r.verdict, 'PASS');
  assert.equal(r.out.toString('hex'), frame.toString('hex'));
  assertOnlyReason(before, dp.reasons(), 'XD_R_NO_BACKEND_PASS', 1, frame.length);
  assert.equal(dp.flow.count(), 0);
});

test('a DRAINING backend keeps its established flows but a new SYN never picks it', () => {
  dp.setBackend(1);
  dp.setRing(0, 0, Array(7).fill(1));
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 7 });
  const c = c4(41050);
  assert.equal(establish(c), 1);
  dp.setBackend(1, { flags: XdBackendFlags.XD_BE_F_ACTIVE | XdBackendFlags.XD_BE_F_DRAINING });
  const before = dp.reasons();
  assert.equal(sendTo(clientFrame(c, ack(c))).backend, 1, 'established flow stays');
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_FLOW_HIT', 1, clientFrame(c, ack(c)).length);
  // A stale ring still naming the draining backend: a new connection finds no backend.
  const n = c4(41051);
  assert.equal(dp.run(clientFrame(n, syn(n))).verdict, 'PASS');
  assert.equal(dp.flowOf(flowKey(n.client, n.cport, n.vip, n.vport, TCP)), undefined);
  // With the ring the control plane writes for a drain (backend 1 left out), new flows go elsewhere.
  dp.setBackend(2);
  dp.setRing(0, 1, Array(7).fill(2));
  dp.setActiveGen(VIP4, MYSQL, TCP, 1);
  assert.equal(sendTo(clientFrame(n, syn(n))).backend, 2);
  assert.equal(sendTo(clientFrame(c, ack(c))).backend, 1, 'and the drained flow still stays');
});

test('a RST never creates a flow entry', () => {
  standardServices();
  const c = c4(41060);
  const r = sendTo(clientFrame(c, rst(c)));
  assert.equal(r.backend, 1);
  assert.equal(dp.flowOf(flowKey(c.client, c.cport, c.vip, c.vport, TCP)), undefined);
  assert.equal(dp.flow.count(), 0);
});

test("a RST of a known flow goes to the flow's backend, keeps the entry and marks it closed", () => {
  dp.setBackend(1);
  dp.setBackend(2);
  dp.setRing(0, 0, Array(7).fill(1));
  dp.setRing(0, 1, Array(7).fill(2));
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 7 });
  const c = c4(41065);
  assert.equal(establish(c), 1);
  dp.setActiveGen(VIP4, MYSQL, TCP, 1);
  const before = dp.reasons();
  assert.equal(sendTo(clientFrame(c, rst(c))).backend, 1);
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_FLOW_HIT', 1, clientFrame(c, rst(c)).length);
  const f = dp.flowOf(flowKey(c.client, c.cport, c.vip, c.vport, TCP));
  assert.equal(f?.backend, 1);
  assert.equal(
    f!.last_seen_ns >> BigInt(XdFlowBits.XD_FLOW_BIT_CLOSED),
    1n,
    'the entry is marked closed (IPVS InActConn)',
  );
});

const CLOSED = 1n << BigInt(XdFlowBits.XD_FLOW_BIT_CLOSED);
for (const [fam, conn, be] of [
  ['IPv4', c4, 1],
  ['IPv6', c6, 3],
] as const) {
  test(`an ${fam} client's FIN marks its flow closed though the fast path serves the flow from the flow table, and later packets keep the mark`, () => {
    standardServices();
    const c = conn(41080);
    assert.equal(establish(c), be);
    const key = flowKey(c.client, c.cport, c.vip, c.vport, TCP);
    assert.equal(sendTo(clientFrame(c, ack(c))).backend, be);
    const open = dp.flowOf(key)!.last_seen_ns;
    assert.equal(open & CLOSED, 0n, 'an established flow is not marked');
    const before = dp.reasons();
    assert.equal(sendTo(clientFrame(c, fin(c))).backend, be);
    assertOnlyReason(before, dp.reasons(), 'XD_R_TX_FLOW_HIT', 1, clientFrame(c, fin(c)).length);
    const closed = dp.flowOf(key)!.last_seen_ns;
    assert.equal(closed & CLOSED, CLOSED, 'the FIN set the closed mark');
    assert.ok((closed & ~CLOSED) >= open, 'with the time of the FIN');
    // The client's last ACK, and a refresh two seconds on, keep the mark; the backend stays.
    dp.flow.update(key, { ...dp.flowOf(key)!, last_seen_ns: ((closed & ~CLOSED) - 2_000_000_000n) | CLOSED });
    clearFlowCaches(dp.obj);
    assert.equal(sendTo(clientFrame(c, ack(c))).backend, be);
    const later = dp.flowOf(key)!.last_seen_ns;
    assert.equal(later & CLOSED, CLOSED, 'the refresh kept the mark');
    assert.ok((later & ~CLOSED) >= (closed & ~CLOSED), 'and refreshed the time');
  });
}

test('a SYN reusing the 5-tuple of a closed flow with recent traffic keeps its backend: the mark is not trusted for rescheduling', () => {
  standardServices();
  const c = c4(41085);
  assert.equal(establish(c), 1);
  const key = flowKey(c.client, c.cport, c.vip, c.vport, TCP);
  assert.equal(sendTo(clientFrame(c, rst(c))).backend, 1);
  dp.flow.update(key, { ...dp.flowOf(key)!, backend: 2 });
  clearFlowCaches(dp.obj);
  const before = dp.reasons();
  assert.equal(sendTo(clientFrame(c, syn(c))).backend, 2);
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_SYN_KEPT', 1, clientFrame(c, syn(c)).length);
});

/** The flow tables as src/bpf/flowtable.ts reads them (the hash in TypeScript). */
function tables(): { v4: FlowTable<XdFlow4Key>; v6: FlowTable<XdFlowKey> } {
  return {
    v4: FlowTable.v4(xdMap(dp.obj, 'flow4'), TEST_FLOW_SEED),
    v6: FlowTable.v6(xdMap(dp.obj, 'flow6'), TEST_FLOW_SEED),
  };
}
const key4 = (c: Conn): XdFlow4Key => ({
  saddr: addr16(c.client).readUInt32BE(0),
  daddr: addr16(c.vip).readUInt32BE(0),
  sport: c.cport,
  dport: c.vport,
  proto: TCP,
});

test('the program puts a flow in the bucket src/bpf/flowtable.ts hashes it to, and finds a flow user space put there', () => {
  standardServices();
  const t = tables();
  const e4 = xdMap(dp.obj, 'flow4');
  const e6 = xdMap(dp.obj, 'flow6');
  for (let p = 43000; p < 43024; p++) {
    const c = p < 43016 ? c4(p) : c6(p);
    establish(c);
    const k = flowKey(c.client, c.cport, c.vip, c.vport, TCP);
    const inBucket =
      k.family === XdFamily.XD_FAMILY_V4
        ? t.v4.bucketOf(key4(c)).some((i) => {
            const e = e4.lookup(i)!;
            return e.backend !== 0 && e.saddr === key4(c).saddr && e.sport === c.cport && e.dport === c.vport;
          })
        : t.v6.bucketOf(k).some((i) => {
            const e = e6.lookup(i)!;
            return e.backend !== 0 && e.saddr.equals(k.saddr) && e.sport === c.cport && e.dport === c.vport;
          });
    assert.ok(inBucket, `flow ${c.vip} ${c.cport}: in the bucket TypeScript hashes it to`);
  }
  // The other way: a flow the program never saw, written by user space into its bucket, is
  // forwarded from it (on backend 2, where the ring would send it to 1 or 3).
  for (const c of [c4(43100), c6(43100)]) {
    const k = flowKey(c.client, c.cport, c.vip, c.vport, TCP);
    dp.setBackend(2);
    const flow = { backend: 2, generation: 1, last_seen_ns: process.hrtime.bigint() };
    if (k.family === XdFamily.XD_FAMILY_V4) t.v4.update(key4(c), flow);
    else t.v6.update(k, flow);
    const before = dp.reasons();
    assert.equal(sendTo(clientFrame(c, ack(c))).backend, 2, `${c.vip}: found where TypeScript put it`);
    assertOnlyReason(before, dp.reasons(), 'XD_R_TX_FLOW_HIT', 1, clientFrame(c, ack(c)).length);
  }
});

test('a new flow whose bucket is full takes the entry seen least recently: the flow seen more recently stays', () => {
  standardServices();
  const t = tables();
  const bucket = (c: Conn): number => t.v4.bucketOf(key4(c))[0]!;
  const same: Conn[] = [c4(44000)];
  for (let p = 44001; same.length < 3; p++) if (bucket(c4(p)) === bucket(same[0]!)) same.push(c4(p));
  const [old, recent, late] = same as [Conn, Conn, Conn];
  for (const c of [old, recent]) establish(c);
  const now = process.hrtime.bigint();
  // Both in the bucket; `old` seen 5 s ago, `recent` 2 s ago (before the new flow is proven).
  t.v4.update(key4(old), { ...t.v4.lookup(key4(old))!, last_seen_ns: now - 5_000_000_000n });
  t.v4.update(key4(recent), { ...t.v4.lookup(key4(recent))!, last_seen_ns: now - 2_000_000_000n });
  establish(late);
  assert.ok(t.v4.lookup(key4(late)), 'the new flow is in the table');
  assert.ok(t.v4.lookup(key4(recent)), 'the flow seen more recently stays');
  assert.equal(t.v4.lookup(key4(old)), undefined, 'the one seen least recently made room');
  // It is not lost: its next packet is taken over on the backend the ring gives it.
  assert.equal(sendTo(clientFrame(old, ack(old))).backend, 1);
  assert.ok(dp.tko.lookup(flowKey(old.client, old.cport, old.vip, old.vport, TCP)));
});

test('a flow entry records backend, generation and a CLOCK_MONOTONIC last_seen', () => {
  standardServices();
  const c = c4(41070);
  const t0 = process.hrtime.bigint();
  establish(c);
  const f = dp.flowOf(flowKey(c.client, c.cport, c.vip, c.vport, TCP))!;
  assert.equal(f.backend, 1);
  assert.equal(f.generation, 1);
  // bpf_ktime_get_coarse_ns: jiffy-grained CLOCK_MONOTONIC (hrtime.bigint() is CLOCK_MONOTONIC).
  assert.ok(
    f.last_seen_ns > t0 - 100_000_000n && f.last_seen_ns <= process.hrtime.bigint(),
    `last_seen ${f.last_seen_ns} near ${t0}`,
  );
});

test('last_seen is refreshed by a packet once it is more than a second old, and not before', () => {
  standardServices();
  const c = c4(41075);
  establish(c);
  const key = flowKey(c.client, c.cport, c.vip, c.vport, TCP);
  const created = dp.flowOf(key)!;
  // Seen half a second ago: a packet leaves the entry alone (no write per packet).
  const recent = created.last_seen_ns - 500_000_000n;
  // (Each rewrite also empties the per-CPU flow caches, as if their slots had expired: a cached
  // flow reaches the flow table again within XD_FLOW_CACHE_JIFFIES.)
  dp.flow.update(key, { ...created, last_seen_ns: recent });
  clearFlowCaches(dp.obj);
  assert.equal(sendTo(clientFrame(c, ack(c))).backend, 1);
  assert.equal(dp.flowOf(key)!.last_seen_ns, recent);
  // Seen two seconds ago: the next packet refreshes it.
  dp.flow.update(key, { ...created, last_seen_ns: created.last_seen_ns - 2_000_000_000n });
  clearFlowCaches(dp.obj);
  assert.equal(sendTo(clientFrame(c, ack(c))).backend, 1);
  const now = dp.flowOf(key)!.last_seen_ns;
  assert.ok(now >= created.last_seen_ns, `refreshed: ${now} >= ${created.last_seen_ns}`);
});

// ---------------------------------------------------------------- embryonic flows

test('a SYN enters the embryonic table only, the handshake ACK moves it to the probation table, a packet a second later to the flow table', () => {
  standardServices();
  const c = c4(41300);
  const key = flowKey(c.client, c.cport, c.vip, c.vport, TCP);
  assert.equal(sendTo(clientFrame(c, syn(c))).backend, 1);
  assert.equal(dp.flowOf(key), undefined, 'no flow-table entry for a bare SYN');
  assert.equal(dp.embryonicOf(key)?.backend, 1);
  assert.deepEqual(dp.guardStats(), { embryonic: 1n, takeovers: 0n, handshakes: 0n, limited: 0n });
  const a = clientFrame(c, ack(c));
  let before = dp.reasons();
  assert.equal(sendTo(a).backend, 1);
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_PROMOTED', 1, a.length);
  assert.equal(dp.flowOf(key), undefined, 'not in the flow table yet: a spoofer can send this ACK too');
  assert.equal(dp.probationOf(key)?.backend, 1);
  assert.equal(dp.takeoverOf(key), undefined, 'not a takeover');
  assert.equal(dp.embryonicOf(key), undefined, 'promoted, so gone from the embryonic table');
  assert.deepEqual(dp.guardStats(), { embryonic: 1n, takeovers: 0n, handshakes: 1n, limited: 0n });
  // Within the second: a flow hit from the probation table.
  before = dp.reasons();
  assert.equal(sendTo(a).backend, 1);
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_FLOW_HIT', 1, a.length);
  assert.equal(dp.flowOf(key), undefined);
  // A second later: proven.
  dp.ageHandshake(key, 1000);
  before = dp.reasons();
  assert.equal(sendTo(a).backend, 1);
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_PROVEN', 1, a.length);
  assert.equal(dp.flowOf(key)?.backend, 1);
  assert.equal(dp.probationOf(key), undefined, 'moved, so gone from the probation table');
  assert.equal(dp.backendStats(1).new_flows, 1n, 'the promotions are not new flows');
});

test('a retransmitted SYN goes to the backend of the first one, whatever the ring says now', () => {
  dp.setBackend(1);
  dp.setBackend(2);
  dp.setRing(0, 0, [1, 2]);
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 2, sched: XdSched.XD_SCHED_SEQ });
  const c = c4(41310);
  const first = sendTo(clientFrame(c, syn(c))).backend;
  const s = clientFrame(c, syn(c));
  const before = dp.reasons();
  assert.equal(sendTo(s).backend, first, 'round robin would have picked the other one');
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_EMBRYONIC', 1, s.length);
  assert.equal(sendTo(clientFrame(c, ack(c))).backend, first);
});

test("a UDP flow's second datagram moves it to the probation table and later ones are flow hits", () => {
  standardServices();
  const c = c6(41320);
  const key = flowKey(c.client, c.cport, c.vip, c.vport, UDP);
  assert.equal(sendTo(clientFrame(c, dgram(c))).backend, 4);
  assert.equal(dp.embryonicOf(key)?.backend, 4);
  assert.equal(sendTo(clientFrame(c, dgram(c))).backend, 4);
  assert.equal(dp.probationOf(key)?.backend, 4);
  const before = dp.reasons();
  assert.equal(sendTo(clientFrame(c, dgram(c))).backend, 4);
  assert.equal(dp.reasons().XD_R_TX_FLOW_HIT.packets - before.XD_R_TX_FLOW_HIT.packets, 1n);
});

test('the handshake ACK of a flow whose backend was removed meanwhile is re-hashed into the probation table', () => {
  dp.setBackend(1);
  dp.setBackend(2);
  dp.setRing(0, 0, Array(7).fill(1));
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 7 });
  const c = c4(41330);
  assert.equal(sendTo(clientFrame(c, syn(c))).backend, 1);
  dp.setRing(0, 1, Array(7).fill(2));
  dp.setActiveGen(VIP4, MYSQL, TCP, 1);
  dp.setBackend(1, { generation: 2 });
  const a = clientFrame(c, ack(c));
  const before = dp.reasons();
  assert.equal(sendTo(a).backend, 2);
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_REHASH', 1, a.length);
  assert.equal(
    dp.probationOf(flowKey(c.client, c.cport, c.vip, c.vport, TCP))?.backend,
    2,
    'its handshake completed here: on probation',
  );
  assert.equal(dp.embryonicOf(flowKey(c.client, c.cport, c.vip, c.vport, TCP)), undefined);
});

// ---------------------------------------------------------------- ICMP

test("ICMP fragmentation needed about a flow goes to the flow's backend, not the ring's", () => {
  dp.setBackend(1);
  dp.setBackend(2);
  dp.setRing(0, 0, Array(7).fill(1));
  dp.setRing(0, 1, Array(7).fill(2));
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 7 });
  const c = c4(41100);
  assert.equal(establish(c), 1);
  dp.setActiveGen(VIP4, MYSQL, TCP, 1);
  const icmp = fragNeeded(c, TCP, 1400);
  const input = pk.ether({ src: '02:00:00:00:00:01', dst: DIRECTOR_MAC }, icmp);
  const before = dp.reasons();
  const r = dp.run(input);
  assert.equal(r.verdict, 'TX');
  assert.equal(r.out.toString('hex'), pk.ether({ src: DIRECTOR_MAC, dst: beMac(1) }, icmp).toString('hex'));
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_ICMP', 1, input.length);
  assert.equal(dp.backendStats(1).packets, 4n, 'SYN, ACK, the packet that proved the flow and the ICMP error');
});

test("ICMPv6 packet too big about a flow goes to the flow's backend", () => {
  dp.setBackend(3, { address: '2001:db8::13' });
  dp.setBackend(4, { address: '2001:db8::14' });
  dp.setRing(2, 0, Array(7).fill(3));
  dp.setRing(2, 1, Array(7).fill(4));
  dp.addService({ vip: VIP6, port: MYSQL, proto: TCP, id: 2, ringSize: 7 });
  const c = c6(41110);
  assert.equal(establish(c), 3);
  dp.setActiveGen(VIP6, MYSQL, TCP, 1);
  const icmp = fragNeeded(c, TCP, 1280);
  const input = pk.ether({ src: '02:00:00:00:00:01', dst: DIRECTOR_MAC, vlan: { id: 7 } }, icmp);
  const before = dp.reasons();
  const r = dp.run(input);
  assert.equal(r.verdict, 'TX');
  assert.equal(
    r.out.toString('hex'),
    pk.ether({ src: DIRECTOR_MAC, dst: beMac(3), vlan: { id: 7 } }, icmp).toString('hex'),
  );
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_ICMP', 1, input.length);
});

test("ICMPv6 packet too big quoting a reply with extension headers goes to the flow's backend", () => {
  dp.setBackend(3, { address: '2001:db8::13' });
  dp.setBackend(4, { address: '2001:db8::14' });
  dp.setRing(2, 0, Array(7).fill(3));
  dp.setRing(2, 1, Array(7).fill(4));
  dp.addService({ vip: VIP6, port: MYSQL, proto: TCP, id: 2, ringSize: 7 });
  const c = c6(41111);
  assert.equal(
    establish(c, (x, l4) => ext6Frame(x, l4, [pk.hopByHop()])),
    3,
  );
  dp.setActiveGen(VIP6, MYSQL, TCP, 1);
  const reply = pk.ipv6(
    { src: c.vip, dst: c.client, ext: [pk.destOpts(16), pk.fragmentExt(0, false)] },
    pk.tcp({ sport: c.vport, dport: c.cport, flags: 'PA', seq: 5001, ack: 1009, payload: Buffer.alloc(1400, 0x61) }),
  );
  const icmp = pk.ipv6(
    { src: ROUTER6, dst: c.vip },
    pk.icmp6({ type: 2, code: 0, mtu: 1280, quoted: reply.subarray(0, 1280 - 48) }),
  );
  const input = pk.ether({ src: '02:00:00:00:00:01', dst: DIRECTOR_MAC }, icmp);
  const before = dp.reasons();
  const r = dp.run(input);
  assert.equal(r.verdict, 'TX');
  assert.equal(r.out.toString('hex'), pk.ether({ src: DIRECTOR_MAC, dst: beMac(3) }, icmp).toString('hex'));
  assertOnlyReason(before, dp.reasons(), 'XD_R_TX_ICMP', 1, input.length);
});

test("ICMP about a UDP flow goes to the flow's backend", () => {
  standardServices();
  const c = c4(41115);
  assert.equal(sendTo(clientFrame(c, dgram(c))).backend, 2);
  const icmp = fragNeeded(c, UDP, 1400);
  const r = sendTo(pk.ether({ src: '02:00:00:00:00:01', dst: DIRECTOR_MAC }, icmp));
  assert.equal(r.backend, 2);
});

test('ICMP about a flow whose backend is DOWN is passed to the kernel', () => {
  standardServices();
  const c = c4(41120);
  assert.equal(sendTo(clientFrame(c, syn(c))).backend, 1);
  dp.setBackend(1, { flags: XdBackendFlags.XD_BE_F_ACTIVE | XdBackendFlags.XD_BE_F_DOWN });
  const input = pk.ether({ src: '02:00:00:00:00:01', dst: DIRECTOR_MAC }, fragNeeded(c, TCP, 1400));
  const before = dp.reasons();
  const r = dp.run(input);
  assert.equal(r.verdict, 'PASS');
  assert.equal(r.out.toString('hex'), input.toString('hex'));
  assertOnlyReason(before, dp.reasons(), 'XD_R_PASS_ICMP', 1, input.length);
});

test('ICMP quoting a VIP flow but addressed elsewhere is not forwarded', () => {
  standardServices();
  const c = c4(41125);
  sendTo(clientFrame(c, syn(c)));
  const inner = fragNeeded(c, TCP, 1400).subarray(20 + 8); // the quoted bytes
  const input = pk.ether(
    { src: '02:00:00:00:00:01', dst: DIRECTOR_MAC },
    pk.ipv4({ src: ROUTER4, dst: DIRECTOR4 }, pk.icmp4({ type: 3, code: 4, mtu: 1400, quoted: inner })),
  );
  const before = dp.reasons();
  assert.equal(dp.run(input).verdict, 'PASS');
  assertOnlyReason(before, dp.reasons(), 'XD_R_PASS_NON_VIP', 1, input.length);
});

// ---------------------------------------------------------------- no backend

test('a service with an empty ring passes its packets to the kernel and counts them', () => {
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 0 });
  const c = c4(41200);
  const frame = clientFrame(c, syn(c));
  const before = dp.reasons();
  const r = dp.run(frame);
  assert.equal(r.verdict, 'PASS');
  assert.equal(r.out.toString('hex'), frame.toString('hex'));
  assertOnlyReason(before, dp.reasons(), 'XD_R_NO_BACKEND_PASS', 1, frame.length);
  assert.deepEqual(dp.serviceStats(0), { ...zeroSvcStats, no_backend: 1n });
  assert.equal(dp.flow.count(), 0);
});

test('a service with EMPTY_DROP drops its packets when it has no backend', () => {
  dp.addService({ vip: VIP6, port: MYSQL, proto: UDP, id: 3, ringSize: 0, flags: XdServiceFlags.XD_SVC_F_EMPTY_DROP });
  const c = c6(41210);
  const frame = clientFrame(c, dgram(c));
  const before = dp.reasons();
  assert.equal(dp.run(frame).verdict, 'DROP');
  assertOnlyReason(before, dp.reasons(), 'XD_R_NO_BACKEND_DROP', 1, frame.length);
  assert.deepEqual(dp.serviceStats(3), { ...zeroSvcStats, no_backend: 1n });
});

test('a ring slot holding index 0 (a hole) means no backend', () => {
  dp.setBackend(1);
  dp.setRing(0, 0, [0, 0, 0, 0, 0, 0, 0]);
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 7, flags: XdServiceFlags.XD_SVC_F_EMPTY_DROP });
  const before = dp.reasons();
  const frame = clientFrame(c4(41220), syn(c4(41220)));
  assert.equal(dp.run(frame).verdict, 'DROP');
  assertOnlyReason(before, dp.reasons(), 'XD_R_NO_BACKEND_DROP', 1, frame.length);
});

test('a ring slot naming an unused backend index means no backend', () => {
  dp.setRing(0, 0, Array(7).fill(5)); // index 5 never set: flags 0
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 7 });
  const before = dp.reasons();
  const frame = clientFrame(c4(41225), syn(c4(41225)));
  assert.equal(dp.run(frame).verdict, 'PASS');
  assertOnlyReason(before, dp.reasons(), 'XD_R_NO_BACKEND_PASS', 1, frame.length);
});

test('a ring size above ring_max or a service id beyond the maps aborts instead of reading a wrong slot', () => {
  dp.setBackend(1);
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: RING_MAX + 1 });
  const before = dp.reasons();
  const frame = clientFrame(c4(41230), syn(c4(41230)));
  assert.equal(dp.run(frame).verdict, 'ABORTED');
  assertOnlyReason(before, dp.reasons(), 'XD_R_ABORTED', 1, frame.length);
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: MAX_SERVICES, ringSize: 7 });
  assert.equal(dp.run(frame).verdict, 'ABORTED');
});

// ---------------------------------------------------------------- schedulers

/** A ring whose slots name backends 1..n in turn. */
function cyclingRing(size: number, n: number): number[] {
  return Array.from({ length: size }, (_, i) => 1 + (i % n));
}

test('SEQ walks the ring one slot per new flow (counter % ring_size)', () => {
  for (let b = 1; b <= 3; b++) dp.setBackend(b);
  // Weighted ring 1:1:2 as the control plane writes it for wrr.
  const ring = [1, 3, 2, 3];
  dp.setRing(0, 0, ring);
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: ring.length, sched: XdSched.XD_SCHED_SEQ });
  const n = dp.rr.ncpus;
  const got: number[] = [];
  for (let i = 0; i < 10; i++) {
    // Per-CPU counters: start every CPU at i so the result does not depend on where the run lands.
    dp.rr.updatePerCpu(0, Array(n).fill(i));
    const c = c4(41300 + i);
    got.push(sendTo(clientFrame(c, syn(c))).backend);
    const after = dp.rr.lookupPerCpu(0)!;
    assert.equal(after.filter((v) => v === i + 1).length, 1, 'exactly one CPU counted the new flow');
  }
  assert.deepEqual(got, [1, 3, 2, 3, 1, 3, 2, 3, 1, 3]);
});

test('SEQ keeps counting from where it is: consecutive SYNs on one CPU take consecutive slots', () => {
  for (let b = 1; b <= 3; b++) dp.setBackend(b);
  dp.setRing(0, 0, [1, 2, 3]);
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 3, sched: XdSched.XD_SCHED_SEQ });
  for (let i = 0; i < 6; i++) {
    const before = dp.rr.lookupPerCpu(0)!;
    const c = c4(41320 + i);
    const be = sendTo(clientFrame(c, syn(c))).backend;
    const after = dp.rr.lookupPerCpu(0)!;
    const cpu = after.findIndex((v, k) => v !== before[k]);
    assert.ok(cpu >= 0);
    assert.equal(be, 1 + (before[cpu]! % 3), `CPU ${cpu} counter ${before[cpu]}`);
  }
});

// The program's Maglev/SH slot: the kernel's jhash (test/lib/jhash.ts) of the client address
// and port, seeded like bpf/hash.h.
const FLOW_SEED = 0x6d7973;
function maglevHash(client: string, port: number): number {
  const b = pk.ipBytes(client);
  if (b.length === 4) return jhash2words(b.readUInt32BE(0), port, FLOW_SEED);
  return jhash5words([b.readUInt32BE(0), b.readUInt32BE(4), b.readUInt32BE(8), b.readUInt32BE(12), port], FLOW_SEED);
}

/** A ring of `size` holes except `slot`, which names backend 1: only the right slot forwards. */
function oneSlotRing(size: number, slot: number): number[] {
  const r = Array(size).fill(0);
  r[slot] = 1;
  return r;
}

test('MAGLEV picks slot jhash(client address, client port) % ring_size, for IPv4 and IPv6', () => {
  dp.setBackend(1);
  const size = 4093;
  const cases: Conn[] = [
    c4(40000),
    c4(40001),
    { ...c4(52011), client: '192.0.2.77' },
    c6(40000),
    { ...c6(33333), client: 'fe80::1234:5678:9abc:def0' },
  ];
  for (const c of cases) {
    dp.reset();
    dp.setBackend(1);
    const slot = maglevHash(c.client, c.cport) % size;
    const v4 = pk.ipBytes(c.vip).length === 4;
    dp.setRing(0, 0, oneSlotRing(size, slot));
    dp.addService({ vip: c.vip, port: MYSQL, proto: TCP, id: 0, ringSize: size, sched: XdSched.XD_SCHED_MAGLEV });
    assert.equal(sendTo(clientFrame(c, syn(c))).backend, 1, `${c.client}:${c.cport} -> slot ${slot} (v${v4 ? 4 : 6})`);
    // Negative control: the neighbouring port lands elsewhere (a hole) unless it hashes to the same slot.
    const other = { ...c, cport: c.cport + 1 };
    const otherSlot = maglevHash(other.client, other.cport) % size;
    assert.equal(sendTo(clientFrame(other, syn(other))).backend, otherSlot === slot ? 1 : 0);
  }
});

test('SH picks slot jhash(client address, 0) % ring_size: every port of a client lands on one slot', () => {
  const size = 4093;
  for (const client of [CLIENT4, CLIENT6]) {
    dp.reset();
    dp.setBackend(1);
    const vip = pk.ipBytes(client).length === 4 ? VIP4 : VIP6;
    const slot = maglevHash(client, 0) % size;
    dp.setRing(0, 0, oneSlotRing(size, slot));
    dp.addService({ vip, port: MYSQL, proto: TCP, id: 0, ringSize: size, sched: XdSched.XD_SCHED_SH });
    for (const cport of [1024, 40000, 65535]) {
      const c: Conn = { client, cport, vip, vport: MYSQL };
      assert.equal(sendTo(clientFrame(c, syn(c))).backend, 1, `${client}:${cport}`);
    }
  }
});

test('Maglev spreads new flows over every backend of a cycling ring', () => {
  for (let b = 1; b <= 3; b++) dp.setBackend(b);
  dp.setRing(0, 0, cyclingRing(4093, 3));
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 4093 });
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 300; i++) {
    const c = c4(20000 + i);
    counts[sendTo(clientFrame(c, syn(c))).backend]!++;
  }
  for (let b = 1; b <= 3; b++) assert.ok(counts[b]! > 60, `backend ${b} got ${counts[b]} of 300`);
});

// The kernel's ip_vs_mh lookup: hsiphash_1u32(ntohs(port) + ntohl(addr_fold)) with hash1 key,
// % table size. The reference is src/maglev/ipvs-mh.ts; the first three cases are the vectors in
// bpf/hash.h (slots 10, 2456, 2547 of 4093).
const IPVS_CASES: { client: string; cport: number; withPort: boolean; slot?: number }[] = [
  { client: '10.200.0.10', cport: 40000, withPort: true, slot: 10 },
  { client: '192.168.1.1', cport: 40000, withPort: false, slot: 2456 },
  { client: '2001:db8::1', cport: 3306, withPort: true, slot: 2547 },
  { client: '2001:db8::1', cport: 3306, withPort: false },
  { client: '172.16.254.3', cport: 61000, withPort: true },
];

for (const k of IPVS_CASES) {
  test(`IPVS_MH${k.withPort ? '' : '_NOPORT'} sends ${k.client} port ${k.cport} to the slot the kernel's mh scheduler would pick`, () => {
    const size = 4093; // CONFIG_IP_VS_MH_TAB_INDEX=12 (Debian)
    const fam = pk.ipBytes(k.client).length === 4 ? 4 : 6;
    const slot = ipvsMhHash(k.client, k.cport, fam, k.withPort) % size;
    if (k.slot !== undefined) assert.equal(slot, k.slot, 'reference hash matches the vector in bpf/hash.h');
    dp.setBackend(1);
    dp.setRing(0, 0, oneSlotRing(size, slot));
    const vip = fam === 4 ? VIP4 : VIP6;
    dp.addService({
      vip,
      port: MYSQL,
      proto: TCP,
      id: 0,
      ringSize: size,
      sched: k.withPort ? XdSched.XD_SCHED_IPVS_MH : XdSched.XD_SCHED_IPVS_MH_NOPORT,
    });
    const c: Conn = { client: k.client, cport: k.cport, vip, vport: MYSQL };
    assert.equal(sendTo(clientFrame(c, syn(c))).backend, 1, `slot ${slot}`);
    const other: Conn = { ...c, cport: k.cport + 1 };
    const otherSlot = ipvsMhHash(k.client, other.cport, fam, k.withPort) % size;
    if (!k.withPort) assert.equal(otherSlot, slot, 'without mh-port the port does not matter');
    assert.equal(sendTo(clientFrame(other, syn(other))).backend, otherSlot === slot ? 1 : 0);
  });
}

// mh-fallback: the ipvs-mh ring keeps drained destinations in their slots (the kernel builds its
// table from last_weight); a new flow hashed onto one walks on as ip_vs_mh_get_fallback does.
// The reference is ipvsMhLookup(..., { fallback: true }) of src/maglev/ipvs-mh.ts.

/** Four backends 1..4 (config order 1..4, so the kernel list is 4..1) and their mh table of 4093. */
function ipvsMhSetup(v6: boolean): { dests: IpvsMhDest[]; table: Uint32Array } {
  const addrOf = (i: number) => (v6 ? `2001:db8::${10 + i}` : `10.200.0.${10 + i}`);
  const dests: IpvsMhDest[] = [4, 3, 2, 1].map((i) => ({
    id: i,
    address: addrOf(i),
    port: MYSQL,
    family: v6 ? 6 : 4,
    weight: i === 3 ? 2 : 1,
  }));
  const table = buildIpvsMh(dests, 4093);
  for (const d of dests) dp.setBackend(d.id, { address: d.address });
  dp.setRing(0, 0, Array.from(table));
  return { dests, table };
}

/** Marks backends drained in the maps and in the reference (weight 0, last_weight kept). */
function drainIpvs(dests: IpvsMhDest[], ids: number[], flag: number = XdBackendFlags.XD_BE_F_DRAINING): IpvsMhDest[] {
  return dests.map((d) => {
    if (!ids.includes(d.id)) return d;
    dp.setBackend(d.id, { address: d.address, flags: XdBackendFlags.XD_BE_F_ACTIVE | flag });
    return { ...d, weight: 0, lastWeight: d.weight };
  });
}

/** Sends a SYN per client port and checks each lands where the kernel's mh-fallback would; returns how many walked on. */
function checkFallback(
  table: Uint32Array,
  dests: IpvsMhDest[],
  drained: number[],
  conns: Conn[],
  withPort: boolean,
): number {
  let walked = 0;
  for (const c of conns) {
    const fam = pk.ipBytes(c.client).length === 4 ? 4 : 6;
    const want =
      ipvsMhLookup(table, dests, { address: c.client, port: c.cport, family: fam }, { withPort, fallback: true })?.id ??
      0;
    const first = table[ipvsMhHash(c.client, c.cport, fam, withPort) % table.length]!;
    if (drained.includes(first)) walked++;
    assert.ok(!drained.includes(want), 'the reference never picks a drained destination');
    assert.equal(
      sendTo(clientFrame(c, syn(c))).backend,
      want,
      `${c.client} port ${c.cport}: first slot names ${first}`,
    );
  }
  return walked;
}

for (const drained of [[3], [3, 1]]) {
  for (const v6 of [false, true]) {
    test(`IPVS_MH with ${drained.length} drained backend${drained.length > 1 ? 's' : ''} sends every new ${v6 ? 'IPv6' : 'IPv4'} flow where the kernel's mh-fallback would`, () => {
      const { dests, table } = ipvsMhSetup(v6);
      const now = drainIpvs(dests, drained);
      dp.addService({
        vip: v6 ? VIP6 : VIP4,
        port: MYSQL,
        proto: TCP,
        id: 0,
        ringSize: 4093,
        sched: XdSched.XD_SCHED_IPVS_MH,
      });
      const conns = Array.from({ length: 400 }, (_, i) => (v6 ? c6(30000 + i * 7) : c4(30000 + i * 7)));
      const walked = checkFallback(table, now, drained, conns, true);
      // Drained backends own about 3/5 (weights 2+1 of 5) or 2/5 of the slots: many ports walk on.
      assert.ok(walked > 100, `only ${walked} of 400 ports hashed onto a drained backend`);
      assert.equal(dp.serviceStats(0).no_backend, 0n, 'drain refuses nothing');
    });
  }
}

test('IPVS_MH_NOPORT walks on from a drained backend by client address only, as the kernel does', () => {
  const { dests, table } = ipvsMhSetup(false);
  const now = drainIpvs(dests, [2, 4]);
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 4093, sched: XdSched.XD_SCHED_IPVS_MH_NOPORT });
  const conns = Array.from({ length: 200 }, (_, i): Conn => ({
    client: `192.0.2.${1 + i}`,
    cport: 40000 + i,
    vip: VIP4,
    vport: MYSQL,
  }));
  assert.ok(checkFallback(table, now, [2, 4], conns, false) > 40);
});

test('IPVS_MH walks past a DOWN backend that a stale ring still names, as past a drained one', () => {
  const { dests, table } = ipvsMhSetup(false);
  const now = drainIpvs(dests, [3], XdBackendFlags.XD_BE_F_DOWN);
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 4093, sched: XdSched.XD_SCHED_IPVS_MH });
  assert.ok(
    checkFallback(
      table,
      now,
      [3],
      Array.from({ length: 150 }, (_, i) => c4(20000 + i)),
      true,
    ) > 30,
  );
});

test('IPVS_MH with every backend drained walks the whole table and finds no backend, like the kernel', () => {
  const { dests, table } = ipvsMhSetup(false);
  const now = drainIpvs(dests, [1, 2, 3, 4]);
  dp.addService({
    vip: VIP4,
    port: MYSQL,
    proto: TCP,
    id: 0,
    ringSize: 4093,
    sched: XdSched.XD_SCHED_IPVS_MH,
    flags: XdServiceFlags.XD_SVC_F_EMPTY_DROP,
  });
  const c = c4(45000);
  assert.equal(
    ipvsMhLookup(table, now, { address: c.client, port: c.cport, family: 4 }, { withPort: true, fallback: true }),
    undefined,
  );
  assert.equal(sendTo(clientFrame(c, syn(c))).verdict, 'DROP');
  assert.equal(dp.serviceStats(0).no_backend, 1n);
});

test('IPVS_MH fallback stops at a hole, as the kernel stops at an empty slot', () => {
  // Only the client's first slot names (drained) backend 1; everything else is a hole.
  const c = c4(40000);
  const slot = ipvsMhHash(c.client, c.cport, 4, true) % 4093;
  dp.setBackend(1, { flags: XdBackendFlags.XD_BE_F_ACTIVE | XdBackendFlags.XD_BE_F_DRAINING });
  dp.setRing(0, 0, oneSlotRing(4093, slot));
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 4093, sched: XdSched.XD_SCHED_IPVS_MH });
  assert.equal(sendTo(clientFrame(c, syn(c))).backend, 0);
  assert.equal(dp.serviceStats(0).no_backend, 1n);
});

test("IPVS_MH keeps a drained backend's established flow on it while new flows on its slots walk on", () => {
  const { dests, table } = ipvsMhSetup(false);
  // A client port whose slot names backend 3, opened while 3 is active.
  let port = 40000;
  while (table[ipvsMhHash(CLIENT4, port, 4, true) % 4093] !== 3) port++;
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 4093, sched: XdSched.XD_SCHED_IPVS_MH });
  const c = c4(port);
  assert.equal(establish(c), 3);
  const now = drainIpvs(dests, [3]);
  for (let i = 0; i < 3; i++) assert.equal(sendTo(clientFrame(c, ack(c))).backend, 3, 'the established flow sticks');
  assert.equal(dp.reasons().XD_R_TX_FLOW_HIT.packets, 3n);
  // A new connection from the same port (SYN), once the old one is idle (syn_reuse_idle), follows
  // the ring: it walks on, as in IPVS.
  ageFlow(flowKey(c.client, c.cport, c.vip, c.vport, TCP), 2500);
  const want = ipvsMhLookup(table, now, { address: CLIENT4, port, family: 4 }, { withPort: true, fallback: true })!.id;
  assert.notEqual(want, 3);
  assert.equal(sendTo(clientFrame(c, syn(c))).backend, want);
});

test('MAGLEV does not walk on from a drained backend that a stale ring names: no backend, as before', () => {
  dp.setBackend(1, { flags: XdBackendFlags.XD_BE_F_ACTIVE | XdBackendFlags.XD_BE_F_DRAINING });
  dp.setBackend(2);
  dp.setRing(0, 0, Array(7).fill(1)); // a ring written before backend 1 was drained
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 7, sched: XdSched.XD_SCHED_MAGLEV });
  const c = c4(40000);
  assert.equal(sendTo(clientFrame(c, syn(c))).backend, 0);
});

// ---------------------------------------------------------------- counters and egress

test('per-service and per-backend counters count packets, bytes and new flows', () => {
  for (let b = 1; b <= 2; b++) dp.setBackend(b);
  dp.setRing(0, 0, [1]);
  dp.setRing(0, 1, [2]);
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 1 });
  const a = c4(41400);
  const b = c4(41401);
  const frames = [clientFrame(a, syn(a)), clientFrame(a, ack(a)), clientFrame(a, ack(a, 'select @@server_id'))];
  for (const f of frames) sendTo(f);
  dp.setActiveGen(VIP4, MYSQL, TCP, 1);
  const fb = clientFrame(b, syn(b));
  sendTo(fb);
  const bytesA = frames.reduce((s, f) => s + f.length, 0);
  assert.deepEqual(dp.serviceStats(0), {
    packets: 4n,
    bytes: BigInt(bytesA + fb.length),
    new_flows: 2n,
    no_backend: 0n,
  });
  assert.deepEqual(dp.backendStats(1), { packets: 3n, bytes: BigInt(bytesA), new_flows: 1n });
  assert.deepEqual(dp.backendStats(2), { packets: 1n, bytes: BigInt(fb.length), new_flows: 1n });
  const r = dp.reasons();
  assert.equal(r.XD_R_TX_NEW_FLOW.packets, 2n);
  assert.equal(r.XD_R_TX_PROMOTED.packets, 1n, 'the first ACK completes the handshake');
  assert.equal(r.XD_R_TX_FLOW_HIT.packets, 1n);
});

test('every packet is counted under exactly one reason', () => {
  standardServices();
  let bytes = 0;
  for (const f of fixtures) {
    dp.run(f.input);
    bytes += f.input.length;
  }
  const r = dp.reasons();
  const total = REASON_NAMES.reduce((s, k) => s + r[k].packets, 0n);
  const totalBytes = REASON_NAMES.reduce((s, k) => s + r[k].bytes, 0n);
  assert.equal(total, BigInt(fixtures.length));
  assert.equal(totalBytes, BigInt(bytes));
  for (const name of REASON_NAMES) {
    const expected = fixtures.filter((f) => f.expectedReason === name).length;
    assert.equal(r[name].packets, BigInt(expected), name);
  }
});

test('a backend behind another interface is reached with bpf_redirect, one on the receiving interface with XDP_TX', () => {
  // BPF_PROG_TEST_RUN delivers the frame as received on the loopback device (ifindex 1).
  dp.setBackend(1, { ifindex: 7 });
  dp.setBackend(2, { ifindex: 1 });
  dp.setRing(0, 0, [1]);
  dp.setRing(1, 0, [2]);
  dp.addService({ vip: VIP4, port: MYSQL, proto: TCP, id: 0, ringSize: 1 });
  dp.addService({ vip: VIP4, port: MYSQL, proto: UDP, id: 1, ringSize: 1 });
  const c = c4(41500);
  const r1 = dp.run(clientFrame(c, syn(c)));
  assert.equal(r1.verdict, 'REDIRECT');
  assert.equal(r1.out.toString('hex'), forwardedFrame(c, syn(c), 1).toString('hex'));
  const r2 = dp.run(clientFrame(c, dgram(c)));
  assert.equal(r2.verdict, 'TX');
  assert.equal(r2.out.toString('hex'), forwardedFrame(c, dgram(c), 2).toString('hex'));
});

test('services are told apart by protocol and family: TCP and UDP on one VIP port use their own rings', () => {
  standardServices();
  const c = c4(41600);
  assert.equal(sendTo(clientFrame(c, syn(c))).backend, 1);
  assert.equal(sendTo(clientFrame(c, dgram(c))).backend, 2);
  const d = c6(41600);
  assert.equal(sendTo(clientFrame(d, syn(d))).backend, 3);
  assert.equal(sendTo(clientFrame(d, dgram(d))).backend, 4);
  assert.equal(dp.emb.count(), 4, 'one embryonic flow per 5-tuple');
});
