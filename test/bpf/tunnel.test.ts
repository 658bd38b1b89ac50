// Tunnel forwarding fixtures: the compiled XDP program (dist/bpf/xdirector.bpf.o) run through
// BPF_PROG_TEST_RUN with tunnel backends (XD_BE_F_TUNNEL + an xd_tun_v1 entry). Every expected
// frame is built independently with test/lib/packet.ts and compared byte for byte; then all
// the program's outputs go through tshark, whose own decoder verifies every IPv4 header
// checksum and ICMP checksum (an oracle that shares no code with the program or the builder).
//
// One object for this file, small map sizes, nothing pinned; each test starts from empty maps.

import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as pk from '../lib/packet';
import { loadSmallDirector, TEST_FLOW_SEED } from '../lib/director';
import { jhash2words } from '../lib/jhash';
import { BpfObject, BpfMap, FlowTable, testRun, u32, sumPerCpu, getNative, xdMap } from '../../src/bpf';
import {
  MAPS,
  XdBackendFlags,
  XdEncap,
  XdFamily,
  XdReason,
  XdSched,
  xdBackendCodec,
  xdReasonStatsCodec,
  xdBackendStatsCodec,
  xdServiceCodec,
  xdServiceKeyCodec,
  xdTunnelCodec,
  xdRateCodec,
  XdRateIdx,
} from '../../src/bpf/layouts.generated';
import type {
  XdBackend,
  XdBackendStats,
  XdReasonStats,
  XdService,
  XdServiceKey,
  XdTunnel,
} from '../../src/bpf/layouts.generated';
import { pcap } from '../lib/pcap';
import { clearFlowCaches } from '../lib/flowcache';
import { clearVipPorts, markVipPort } from '../lib/vipports';

const RING_MAX = 7;
const MAX_SERVICES = 4;
const MAX_BACKENDS = 8;

const DIRECTOR_MAC = '02:00:00:00:00:02';
const CLIENT_MAC = '02:00:00:00:00:10';
const ROUTER_MAC = '02:00:00:00:00:fe'; // the next hop towards the real servers' subnets
const VIP4 = '10.200.0.100';
const VIP6 = '2001:db8::100';
const CLIENT4 = '10.200.0.10';
const CLIENT6 = '2001:db8::10';
const TUN_SRC4 = '10.200.0.2'; // the director's tunnel source addresses
const TUN_SRC6 = '2001:db8::2';
const RS4 = '10.210.1.11'; // real servers behind the router
const RS6 = '2001:db8:210:1::11';
const MYSQL = 3306;
const GUE_PORT = 6080;
const TCP = pk.IPPROTO_TCP;
const MTU = 1500;
/** The director's own too-big answers per second (a test sends at most 5 per test otherwise). */
const TOO_BIG_RATE = 8;

const XDP = (() => {
  const c = getNative().constants;
  return { ABORTED: c.XDP_ABORTED, DROP: c.XDP_DROP, PASS: c.XDP_PASS, TX: c.XDP_TX, REDIRECT: c.XDP_REDIRECT };
})();
type VerdictName = keyof typeof XDP;
type ReasonName = Exclude<keyof typeof XdReason, 'XD_R_MAX'>;

const v4 = (a: string): boolean => pk.ipBytes(a).length === 4;
const fam = (a: string): number => (v4(a) ? XdFamily.XD_FAMILY_V4 : XdFamily.XD_FAMILY_V6);
function addr16(a: string): Buffer {
  const b = pk.ipBytes(a);
  return b.length === 16 ? b : Buffer.concat([b, Buffer.alloc(12)]);
}

// ---------------------------------------------------------------- harness

let obj: BpfObject;
let prog: { fd: number };
let svc: BpfMap<XdServiceKey, XdService>;
let be: BpfMap<number, XdBackend>;
let tun: BpfMap<number, XdTunnel>;
let ring: BpfMap<number, number>;
let rsnst: BpfMap<number, XdReasonStats>;
let best: BpfMap<number, XdBackendStats>;
let dir: string;
const outputs: { description: string; frame: Buffer }[] = [];

before(async () => {
  obj = await loadSmallDirector({
    services: MAX_SERVICES,
    backends: MAX_BACKENDS,
    tunnels: true,
    ringMax: RING_MAX,
    flows: 1024,
    perCpuCaches: true,
    globals: { too_big_rate: TOO_BIG_RATE },
  });
  prog = obj.program('xdirector');
  svc = obj.map(MAPS.svc.name, xdServiceKeyCodec, xdServiceCodec);
  be = obj.map(MAPS.be.name, u32, xdBackendCodec);
  tun = obj.map(MAPS.tun.name, u32, xdTunnelCodec);
  ring = obj.map(MAPS.ring.name, u32, u32);
  rsnst = obj.map(MAPS.rsnst.name, u32, xdReasonStatsCodec);
  best = obj.map(MAPS.best.name, u32, xdBackendStatsCodec);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), `xdt-tunnel-${process.pid}-`));
});
after(() => {
  obj?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  svc.deleteBatch(svc.keys());
  clearVipPorts(obj);
  FlowTable.v4(xdMap(obj, 'flow4'), TEST_FLOW_SEED).clear();
  FlowTable.v6(xdMap(obj, 'flow6'), TEST_FLOW_SEED).clear();
  for (const m of [MAPS.emb4, MAPS.emb6]) {
    const flow = obj.map(
      m.name,
      { size: m.keySize, encode: (k: Buffer) => k, decode: (b: Buffer) => Buffer.from(b) },
      { size: m.valueSize, encode: (v: Buffer) => v, decode: (b: Buffer) => Buffer.from(b) },
    );
    flow.deleteBatch(flow.keys());
  }
  clearFlowCaches(obj);
  const empty: XdBackend = {
    mac: Buffer.alloc(6),
    family: 0,
    flags: 0,
    generation: 0,
    ifindex: 0,
    service: 0,
    addr: Buffer.alloc(16),
  };
  be.updateBatch(Array.from({ length: MAX_BACKENDS }, (_, i) => [i, empty] as const));
  tun.updateBatch(
    Array.from(
      { length: MAX_BACKENDS },
      (_, i) =>
        [i, { saddr: Buffer.alloc(16), daddr: Buffer.alloc(16), gue_port: 0, mtu: 0, encap: 0, family: 0 }] as const,
    ),
  );
  const zero: XdReasonStats = { packets: 0n, bytes: 0n };
  for (let i = 0; i < XdReason.XD_R_MAX; i++) rsnst.updatePerCpu(i, Array(rsnst.ncpus).fill(zero));
  const zeroBe: XdBackendStats = { packets: 0n, bytes: 0n, new_flows: 0n, flow_hits: 0n, flow_hit_bytes: 0n };
  for (let i = 0; i < MAX_BACKENDS; i++) best.updatePerCpu(i, Array(best.ncpus).fill(zeroBe));
  // A full too-big answer bucket for each test.
  obj.map(MAPS.rate.name, u32, xdRateCodec).update(XdRateIdx.XD_RATE_TOO_BIG, { tat_ns: 0n });
});

interface TunSpec {
  rs: string;
  encap: 'ipip' | 'gue';
  mtu?: number;
  noEntry?: boolean;
}

/** Service 0 = vip:3306/tcp, every ring slot -> backend 1, a tunnel backend. */
function tunnelService(vip: string, t: TunSpec): void {
  const src = v4(t.rs) ? TUN_SRC4 : TUN_SRC6;
  if (!t.noEntry) {
    tun.update(1, {
      saddr: addr16(src),
      daddr: addr16(t.rs),
      gue_port: t.encap === 'gue' ? GUE_PORT : 0,
      mtu: t.mtu ?? MTU,
      encap: t.encap === 'gue' ? XdEncap.XD_ENCAP_GUE : XdEncap.XD_ENCAP_IPIP,
      family: fam(t.rs),
    });
  }
  be.update(1, {
    mac: pk.macBytes(ROUTER_MAC),
    family: fam(t.rs),
    flags: XdBackendFlags.XD_BE_F_ACTIVE | XdBackendFlags.XD_BE_F_TUNNEL,
    generation: 1,
    ifindex: 0,
    service: 0,
    addr: addr16(t.rs),
  });
  ring.updateBatch(Array.from({ length: RING_MAX }, (_, i) => [i, 1] as const));
  svc.update(
    { vip: addr16(vip), port: MYSQL, proto: TCP, family: fam(vip) },
    { id: 0, ring_size: RING_MAX, flags: 0, sched: XdSched.XD_SCHED_MAGLEV, active_gen: 0 },
  );
  markVipPort(obj, MYSQL, TCP);
}

function run(description: string, frame: Buffer): { verdict: VerdictName; out: Buffer } {
  const r = testRun(prog, { data: frame });
  const verdict = (Object.keys(XDP) as VerdictName[]).find((k) => XDP[k] === r.retval);
  assert.ok(verdict, `unknown XDP verdict ${r.retval}`);
  if (verdict === 'TX') outputs.push({ description, frame: r.dataOut });
  return { verdict, out: r.dataOut };
}

function reasonCounts(): Partial<Record<ReasonName, number>> {
  const out: Partial<Record<ReasonName, number>> = {};
  for (const [name, v] of Object.entries(XdReason)) {
    if (name === 'XD_R_MAX') continue;
    const n = Number(sumPerCpu(rsnst.lookupPerCpu(v)!).packets);
    if (n) out[name as ReasonName] = n;
  }
  // Flow hits are counted on their backend only (one per-CPU counter per established packet).
  let hits = 0;
  for (let i = 0; i < MAX_BACKENDS; i++) hits += Number(sumPerCpu(best.lookupPerCpu(i)!).flow_hits);
  if (hits) out.XD_R_TX_FLOW_HIT = hits;
  return out;
}

// ---------------------------------------------------------------- packets

interface Conn {
  client: string;
  cport: number;
  vip: string;
}
const c4 = (cport: number): Conn => ({ client: CLIENT4, cport, vip: VIP4 });
const c6 = (cport: number): Conn => ({ client: CLIENT6, cport, vip: VIP6 });
const syn = (c: Conn): pk.L4 => pk.tcp({ sport: c.cport, dport: MYSQL, flags: 'S', seq: 1000 });
const data = (c: Conn, n: number): pk.L4 =>
  pk.tcp({ sport: c.cport, dport: MYSQL, flags: 'PA', seq: 1001, ack: 5001, payload: Buffer.alloc(n, 0x71) });

/** The client's IP packet (DF set on IPv4, as Linux TCP does), optionally with a traffic class. */
function inner(c: Conn, l4: pk.L4, o: { tos?: number; df?: boolean } = {}): Buffer {
  return v4(c.vip)
    ? pk.ipv4({ src: c.client, dst: c.vip, df: o.df ?? true, tos: o.tos ?? 0 }, l4)
    : pk.ipv6({ src: c.client, dst: c.vip, trafficClass: o.tos ?? 0 }, l4);
}
function clientFrame(ip: Buffer, vlan?: number): Buffer {
  return pk.ether({ src: CLIENT_MAC, dst: DIRECTOR_MAC, ...(vlan !== undefined ? { vlan: { id: vlan } } : {}) }, ip);
}

/** The program's flow hash for GUE ports and IPv6 flow labels (bpf/encap.h xd_tunnel_hash), computed here. */
function tunnelHash(c: Conn): number {
  const fold = (a: string): number => {
    const b = addr16(a);
    return (b.readUInt32BE(0) ^ b.readUInt32BE(4) ^ b.readUInt32BE(8) ^ b.readUInt32BE(12)) >>> 0;
  };
  return jhash2words((fold(c.client) ^ fold(c.vip)) >>> 0, ((c.cport << 16) | MYSQL) >>> 0, 0x74756e);
}

/** What the real server must receive: the untouched client packet inside the outer headers. */
function encapsulated(c: Conn, ip: Buffer, t: TunSpec, vlan?: number): Buffer {
  const h = tunnelHash(c);
  const tos = v4(c.vip) ? ip[1]! : (ip.readUInt16BE(0) >> 4) & 0xff;
  const innerProto = v4(c.vip) ? 4 : 41;
  let l4: pk.L4;
  if (t.encap === 'gue') {
    const udp = Buffer.alloc(12);
    udp.writeUInt16BE(49152 + (h & 0x3fff), 0);
    udp.writeUInt16BE(GUE_PORT, 2);
    udp.writeUInt16BE(8 + 4 + ip.length, 4);
    udp.writeUInt16BE(0, 6); // no UDP checksum (IPv4 underlay)
    udp[9] = innerProto; // GUE version 0, hlen 0, proto_ctype, flags 0
    l4 = pk.raw(pk.IPPROTO_UDP, Buffer.concat([udp, ip]));
  } else {
    l4 = pk.raw(innerProto, ip);
  }
  const outer = v4(t.rs)
    ? pk.ipv4({ src: TUN_SRC4, dst: t.rs, id: 0, df: true, ttl: 64, tos }, l4)
    : pk.ipv6({ src: TUN_SRC6, dst: t.rs, hopLimit: 64, trafficClass: tos, flowLabel: h & 0xfffff }, l4);
  return pk.ether({ src: DIRECTOR_MAC, dst: ROUTER_MAC, ...(vlan !== undefined ? { vlan: { id: vlan } } : {}) }, outer);
}

// ---------------------------------------------------------------- fixtures

interface Fixture {
  description: string;
  conn: Conn;
  tun: TunSpec;
  ip: Buffer;
  vlan?: number;
  pad?: number;
}

const fixtures: Fixture[] = [
  {
    description: 'IPv4 client to an IPv4 real server: IPIP (4in4, protocol 4)',
    conn: c4(40001),
    tun: { rs: RS4, encap: 'ipip' },
    ip: inner(c4(40001), syn(c4(40001))),
  },
  {
    description: 'IPv6 client to an IPv6 real server: IPv6-in-IPv6 (next header 41)',
    conn: c6(40002),
    tun: { rs: RS6, encap: 'ipip' },
    ip: inner(c6(40002), syn(c6(40002))),
  },
  {
    description: 'IPv4 VIP over an IPv6 underlay: 4in6 (next header 4)',
    conn: c4(40003),
    tun: { rs: RS6, encap: 'ipip' },
    ip: inner(c4(40003), syn(c4(40003))),
  },
  {
    description: 'IPv6 VIP over an IPv4 underlay: 6in4 (protocol 41)',
    conn: c6(40004),
    tun: { rs: RS4, encap: 'ipip' },
    ip: inner(c6(40004), syn(c6(40004))),
  },
  {
    description: 'IPv4 client over GUE: outer IPv4 + UDP to the GUE port + GUE header with proto 4',
    conn: c4(40005),
    tun: { rs: RS4, encap: 'gue' },
    ip: inner(c4(40005), syn(c4(40005))),
  },
  {
    description: 'IPv6 client over GUE: GUE header with proto 41',
    conn: c6(40006),
    tun: { rs: RS4, encap: 'gue' },
    ip: inner(c6(40006), syn(c6(40006))),
  },
  {
    description: 'the DSCP/ECN byte is copied to the outer header (IPv4 and IPv6 outer)',
    conn: c4(40007),
    tun: { rs: RS6, encap: 'ipip' },
    ip: inner(c4(40007), syn(c4(40007)), { tos: 0xb9 }),
  },
  {
    description: 'a VLAN tag is kept, its EtherType becomes the outer family',
    conn: c4(40008),
    tun: { rs: RS6, encap: 'ipip' },
    ip: inner(c4(40008), syn(c4(40008))),
    vlan: 42,
  },
  {
    description: 'Ethernet padding after a short packet is not counted in the outer lengths',
    conn: c4(40009),
    tun: { rs: RS4, encap: 'ipip' },
    ip: inner(c4(40009), syn(c4(40009))),
    pad: 6,
  },
  {
    description: 'a full-size packet that fits the path MTU with the outer header is encapsulated',
    conn: c4(40010),
    tun: { rs: RS4, encap: 'gue' },
    ip: inner(c4(40010), data(c4(40010), MTU - 20 - 12 - 40)),
  },
];

for (const f of fixtures) {
  test(`tunnel: ${f.description}`, () => {
    tunnelService(f.conn.vip, f.tun);
    const input = clientFrame(f.ip, f.vlan);
    const padded = f.pad ? Buffer.concat([input, Buffer.alloc(f.pad)]) : input;
    const r = run(f.description, padded);
    assert.equal(r.verdict, 'TX');
    const want = encapsulated(f.conn, f.ip, f.tun, f.vlan);
    assert.deepEqual(r.out, f.pad ? Buffer.concat([want, Buffer.alloc(f.pad)]) : want);
    assert.deepEqual(reasonCounts(), { XD_R_TX_NEW_FLOW: 1 });
  });
}

test('an established tunnel flow keeps its backend and its tunnel', () => {
  const c = c4(41000);
  tunnelService(c.vip, { rs: RS4, encap: 'ipip' });
  run('syn', clientFrame(inner(c, syn(c))));
  const ip = inner(c, data(c, 100));
  run('handshake ack', clientFrame(ip));
  const r = run('established', clientFrame(ip));
  assert.equal(r.verdict, 'TX');
  assert.deepEqual(r.out, encapsulated(c, ip, { rs: RS4, encap: 'ipip' }));
  assert.deepEqual(reasonCounts(), { XD_R_TX_NEW_FLOW: 1, XD_R_TX_PROMOTED: 1, XD_R_TX_FLOW_HIT: 1 });
});

test('a router\'s "fragmentation needed" about a tunnel flow reaches the flow\'s real server inside the tunnel', () => {
  const c = c4(41001);
  tunnelService(c.vip, { rs: RS4, encap: 'ipip' });
  run('syn', clientFrame(inner(c, syn(c))));
  const reply = pk.ipv4(
    { src: c.vip, dst: c.client, df: true },
    pk.tcp({ sport: MYSQL, dport: c.cport, flags: 'PA', seq: 5001, ack: 1001, payload: Buffer.alloc(1400) }),
  );
  const icmp = pk.ipv4(
    { src: '10.200.0.1', dst: c.vip },
    pk.icmp4({ type: 3, code: 4, mtu: 1400, quoted: reply.subarray(0, 28) }),
  );
  const r = run('frag needed', clientFrame(icmp));
  assert.equal(r.verdict, 'TX');
  assert.deepEqual(r.out, encapsulated(c, icmp, { rs: RS4, encap: 'ipip' }));
  assert.deepEqual(reasonCounts(), { XD_R_TX_NEW_FLOW: 1, XD_R_TX_ICMP: 1 });
});

test('an IPv4 packet (DF) too big once encapsulated gets ICMP fragmentation needed back, with the MTU inside the tunnel', () => {
  const c = c4(42000);
  for (const encap of ['ipip', 'gue'] as const) {
    tunnelService(c.vip, { rs: RS4, encap, mtu: MTU });
    const overhead = encap === 'gue' ? 32 : 20;
    const ip = inner(c, data(c, MTU - 40 - overhead + 1)); // one byte too many
    const r = run(`too big ${encap}`, clientFrame(ip));
    assert.equal(r.verdict, 'TX');
    const want = pk.ether(
      { src: DIRECTOR_MAC, dst: CLIENT_MAC },
      pk.ipv4(
        { src: c.vip, dst: c.client, id: 0, ttl: 64 },
        pk.icmp4({ type: 3, code: 4, mtu: MTU - overhead, quoted: ip.subarray(0, 64) }),
      ),
    );
    assert.deepEqual(r.out, want, encap);
  }
  assert.deepEqual(reasonCounts(), { XD_R_TX_TOO_BIG: 2 });
});

test('an IPv6 packet too big once encapsulated gets ICMPv6 packet too big back, with the MTU inside the tunnel', () => {
  const c = c6(42001);
  tunnelService(c.vip, { rs: RS6, encap: 'ipip', mtu: MTU });
  const ip = inner(c, data(c, MTU - 60 - 40 + 1));
  const r = run('too big v6', clientFrame(ip, 7));
  assert.equal(r.verdict, 'TX');
  const want = pk.ether(
    { src: DIRECTOR_MAC, dst: CLIENT_MAC, vlan: { id: 7 } },
    pk.ipv6(
      { src: c.vip, dst: c.client, hopLimit: 64 },
      pk.icmp6({ type: 2, code: 0, mtu: MTU - 40, quoted: ip.subarray(0, 128) }),
    ),
  );
  assert.deepEqual(r.out, want);
  assert.deepEqual(reasonCounts(), { XD_R_TX_TOO_BIG: 1 });
});

test('the director answers at most too_big_rate packets too big a second, all CPUs together; the rest are dropped and counted', async () => {
  // One GCRA word in a plain (not per-CPU) array: every CPU draws on the same budget.
  assert.equal(MAPS.rate.type, 'array');
  for (const [c, rs] of [
    [c4(42010), RS4],
    [c6(42011), RS6],
  ] as const) {
    tunnelService(c.vip, { rs, encap: 'ipip', mtu: MTU });
    obj.map(MAPS.rate.name, u32, xdRateCodec).update(XdRateIdx.XD_RATE_TOO_BIG, { tat_ns: 0n });
    const big = clientFrame(inner(c, data(c, MTU)));
    // A burst of 3x the rate: a second's worth is answered, the rest dropped unanswered.
    const verdicts = Array.from({ length: 3 * TOO_BIG_RATE }, () => run('too big burst', big).verdict);
    assert.deepEqual(verdicts, [...Array(TOO_BIG_RATE).fill('TX'), ...Array(2 * TOO_BIG_RATE).fill('DROP')], c.vip);
    // The bucket refills at the rate: 1/8 s per answer.
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(run('too big after a pause', big).verdict, 'TX', 'answered again after a pause');
  }
  assert.deepEqual(reasonCounts(), {
    XD_R_TX_TOO_BIG: 2 * (TOO_BIG_RATE + 1),
    XD_R_DROP_TOO_BIG_LIMITED: 2 * 2 * TOO_BIG_RATE,
  });
});

test('an IPv4 packet without DF too big once encapsulated is dropped and counted, never fragmented', () => {
  const c = c4(42002);
  tunnelService(c.vip, { rs: RS4, encap: 'ipip', mtu: MTU });
  const r = run('too big no DF', clientFrame(inner(c, data(c, MTU - 40 - 20 + 1), { df: false })));
  assert.equal(r.verdict, 'DROP');
  assert.deepEqual(reasonCounts(), { XD_R_DROP_TOO_BIG: 1 });
});

test('a path MTU of 0 means no check: the tunnel entry decides, not a guess', () => {
  const c = c4(42003);
  tunnelService(c.vip, { rs: RS4, encap: 'ipip', mtu: 0 });
  const ip = inner(c, data(c, MTU - 40));
  const r = run('mtu 0', clientFrame(ip));
  assert.equal(r.verdict, 'TX');
  assert.deepEqual(r.out, encapsulated(c, ip, { rs: RS4, encap: 'ipip' }));
});

test('a tunnel backend without a tunnel entry aborts and is counted, nothing is sent', () => {
  const c = c4(42004);
  tunnelService(c.vip, { rs: RS4, encap: 'ipip', noEntry: true });
  assert.equal(run('no entry', clientFrame(inner(c, syn(c)))).verdict, 'ABORTED');
  assert.deepEqual(reasonCounts(), { XD_R_ABORTED: 1 });
});

test('the GUE source port and the IPv6 flow label follow the inner flow: one flow one value, many flows spread', () => {
  const ports = new Set<number>();
  const labels = new Set<number>();
  for (let i = 0; i < 64; i++) {
    const c = c4(50000 + i);
    tunnelService(c.vip, { rs: RS4, encap: 'gue' });
    const a = run('gue a', clientFrame(inner(c, syn(c)))).out;
    const b = run('gue b', clientFrame(inner(c, data(c, 10)))).out;
    assert.equal(a.readUInt16BE(14 + 20), b.readUInt16BE(14 + 20), 'same flow, same source port');
    ports.add(a.readUInt16BE(14 + 20));
    tunnelService(c.vip, { rs: RS6, encap: 'ipip' });
    labels.add(run('label', clientFrame(inner(c, syn(c)))).out.readUInt32BE(14) & 0xfffff);
  }
  assert.ok(
    [...ports].every((p) => p >= 49152),
    'GUE source ports stay in the dynamic range',
  );
  assert.ok(ports.size >= 56, `64 flows spread over ${ports.size} source ports`);
  assert.ok(labels.size >= 60, `64 flows spread over ${labels.size} flow labels`);
});

// ---------------------------------------------------------------- independent decoder

test('tshark verifies every outer and inner IPv4 checksum and every ICMP checksum the program wrote', () => {
  // Its own frames: every fixture, plus the ICMP answers of both families.
  outputs.length = 0;
  for (const f of fixtures) {
    tunnelService(f.conn.vip, f.tun);
    run(f.description, clientFrame(f.ip, f.vlan));
  }
  for (const [c, rs, encap] of [
    [c4(43000), RS4, 'ipip'],
    [c4(43001), RS4, 'gue'],
    [c4(43002), RS6, 'ipip'],
    [c6(43003), RS6, 'ipip'],
    [c6(43004), RS4, 'gue'],
  ] as const) {
    tunnelService(c.vip, { rs, encap });
    run(`too big ${c.vip} over ${rs} ${encap}`, clientFrame(inner(c, data(c, MTU))));
    const reply = pk.ipv4(
      { src: VIP4, dst: CLIENT4, df: true },
      pk.tcp({ sport: MYSQL, dport: 43000, flags: 'A', seq: 1, ack: 1 }),
    );
    if (v4(c.vip))
      run(
        'frag needed to the real server',
        clientFrame(
          pk.ipv4(
            { src: '10.200.0.1', dst: VIP4 },
            pk.icmp4({ type: 3, code: 4, mtu: 1400, quoted: reply.subarray(0, 28) }),
          ),
        ),
      );
  }
  const frames = outputs.map((o) => o.frame);
  assert.ok(frames.length >= 15, `${frames.length} frames collected`);
  const file = path.join(dir, 'tunnel.pcap');
  fs.writeFileSync(file, pcap(frames));
  const out = execFileSync(
    'tshark',
    [
      '-r',
      file,
      '-o',
      'ip.check_checksum:TRUE',
      '-T',
      'fields',
      '-E',
      'separator=|',
      '-e',
      'frame.number',
      '-e',
      'ip.checksum.status',
      '-e',
      'icmp.checksum.status',
      '-e',
      'icmpv6.checksum.status',
      '-e',
      'ip.src',
      '-e',
      'ipv6.src',
      '-e',
      '_ws.expert.severity',
      '-e',
      '_ws.expert.message',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (process.env.XD_TEST_VERBOSE) console.log(out);
  const lines = out.trim().split('\n');
  assert.equal(lines.length, frames.length);
  let ip4Checked = 0;
  let icmpChecked = 0;
  for (const line of lines) {
    const [n, ipSt, icmpSt, icmp6St] = line.split('|');
    const what = outputs[Number(n) - 1]!.description;
    // Checksum status: 1 = good, 0 = bad, 2 = not verified.
    for (const s of (ipSt ?? '').split(',').filter(Boolean)) {
      assert.equal(s, '1', `frame ${n} (${what}): IPv4 header checksum status ${s}: ${line}`);
      ip4Checked++;
    }
    for (const s of [icmpSt, icmp6St].flatMap((x) => (x ?? '').split(',')).filter(Boolean)) {
      assert.notEqual(s, '0', `frame ${n} (${what}): ICMP checksum bad: ${line}`);
      if (s === '1') icmpChecked++;
    }
  }
  assert.ok(ip4Checked >= 15, `${ip4Checked} IPv4 header checksums verified`);
  assert.ok(icmpChecked >= 3, `${icmpChecked} ICMP checksums verified`);
});
