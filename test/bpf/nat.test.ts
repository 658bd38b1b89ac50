// NAT forwarding fixtures: the compiled XDP program (dist/bpf/xdirector.bpf.o) run through
// BPF_PROG_TEST_RUN with a NAT backend (XD_BE_F_NAT + the nat_ fields of its backend entry). Every expected frame
// is built independently with test/lib/packet.ts, whose checksums are computed from scratch:
// byte equality proves the program's incremental checksum updates. The out direction needs a
// route (bpf_fib_lookup) that a test run here does not have: what is checked is that it leaves
// what it cannot route untouched; test/daemon/nat-xdp.test.ts routes replies for real.
//
// One object for this file, small map sizes, nothing pinned; each test starts from empty maps.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import * as pk from '../lib/packet';
import { BpfObject, BpfMap, FlowTable, testRun, u32, getNative, cpuSizedMaxEntries, xdMap } from '../../src/bpf';
import {
  MAPS,
  XdBackendFlags,
  XdFamily,
  XdSched,
  xdBackendCodec,
  xdNatRevCodec,
  xdNatOut4CacheCodec,
  xdFlow4KeyCodec,
  xdFlow4CacheCodec,
  xdServiceCodec,
  DEFINES,
  xdServiceKeyCodec,
} from '../../src/bpf/layouts.generated';
import type { XdBackend, XdNatRev, XdFlow4Key, XdService, XdServiceKey } from '../../src/bpf/layouts.generated';
import { clearFlowCaches } from '../lib/flowcache';
import { clearVipPorts, markVipPort } from '../lib/vipports';
import { natCsums, vportBit } from '../../src/dataplane/xdp/layout';
import * as path from 'node:path';

const OBJ = path.resolve(__dirname, '../../bpf/xdirector.bpf.o');
const RING_MAX = 7;
const DIRECTOR_MAC = '02:00:00:00:00:02';
const INNER_MAC = '02:00:00:00:00:03'; // the director's MAC on the server side
const CLIENT_MAC = '02:00:00:00:00:10';
const RS_MAC = '02:00:00:00:00:11';
const VIP4 = '10.93.0.100';
const VIP6 = 'fd93::100';
const CLIENT4 = '10.93.0.10';
const CLIENT6 = 'fd93::10';
const RS4 = '10.94.0.11';
const RS6 = 'fd94::11';
const VPORT = 3307;
const BPORT = 3306;
const TCP = pk.IPPROTO_TCP;
const UDP = pk.IPPROTO_UDP;

const XDP = (() => {
  const c = getNative().constants;
  return { ABORTED: c.XDP_ABORTED, DROP: c.XDP_DROP, PASS: c.XDP_PASS, TX: c.XDP_TX, REDIRECT: c.XDP_REDIRECT };
})();
const v4 = (a: string): boolean => pk.ipBytes(a).length === 4;
const addr16 = (a: string): Buffer => {
  const b = pk.ipBytes(a);
  return b.length === 16 ? b : Buffer.concat([b, Buffer.alloc(12)]);
};

let obj: BpfObject;
let prog: { fd: number };
let svc: BpfMap<XdServiceKey, XdService>;
let be: BpfMap<number, XdBackend>;
let ring: BpfMap<number, number>;
let nrev4: BpfMap<XdFlow4Key, XdNatRev>;

before(async () => {
  obj = await BpfObject.load(OBJ, {
    maxEntries: {
      ...cpuSizedMaxEntries(),
      [MAPS.svc.name]: 4,
      [MAPS.svcst.name]: 4,
      [MAPS.rr.name]: 4,
      [MAPS.be.name]: 8,
      [MAPS.best.name]: 8,
      [MAPS.tun.name]: 8,
      [MAPS.nbst.name]: 8,
      [MAPS.ring.name]: 4 * 2 * RING_MAX,
      [MAPS.flow4.name]: 1024,
      [MAPS.flow6.name]: 1024,
      [MAPS.emb4.name]: 1024,
      [MAPS.emb6.name]: 1024,
      [MAPS.nrev4.name]: 1024,
      [MAPS.nrev6.name]: 1024,
    },
    globals: { ring_max: RING_MAX },
  });
  prog = obj.program('xdirector');
  svc = obj.map(MAPS.svc.name, xdServiceKeyCodec, xdServiceCodec);
  be = obj.map(MAPS.be.name, u32, xdBackendCodec);
  ring = obj.map(MAPS.ring.name, u32, u32);
  nrev4 = obj.map(MAPS.nrev4.name, xdFlow4KeyCodec, xdNatRevCodec);
});
after(() => obj?.close());

beforeEach(() => {
  svc.deleteBatch(svc.keys());
  nrev4.deleteBatch(nrev4.keys());
  clearVipPorts(obj);
  clearFlowCaches(obj);
  FlowTable.v4(xdMap(obj, 'flow4'), 0).clear();
  FlowTable.v6(xdMap(obj, 'flow6'), 0).clear();
  for (const m of [MAPS.emb4, MAPS.emb6, MAPS.nrev6]) {
    const t = obj.map(
      m.name,
      { size: m.keySize, encode: (k: Buffer) => k, decode: (b: Buffer) => Buffer.from(b) },
      { size: m.valueSize, encode: (v: Buffer) => v, decode: (b: Buffer) => Buffer.from(b) },
    );
    t.deleteBatch(t.keys());
  }
});

/** Service 0 = vip:VPORT/proto, every ring slot -> backend 1, a NAT backend on BPORT (one-armed). */
function natService(vip: string, rs: string, proto: number, mtu = 1500): void {
  const family = v4(vip) ? XdFamily.XD_FAMILY_V4 : XdFamily.XD_FAMILY_V6;
  // The checksum differences the control plane computes (the fast path adds them); the frames below
  // are built independently, so a wrong difference shows as a checksum mismatch.
  const { csum_l3, csum_l4 } = natCsums({ vip, vport: VPORT, address: rs, port: BPORT });
  be.update(1, {
    mac: pk.macBytes(RS_MAC),
    family,
    flags: XdBackendFlags.XD_BE_F_ACTIVE | XdBackendFlags.XD_BE_F_NAT,
    generation: 1,
    ifindex: 0,
    service: 0,
    addr: addr16(rs),
    nat_smac: pk.macBytes(INNER_MAC),
    nat_port: BPORT,
    nat_mtu: mtu,
    nat_csum_l3: csum_l3,
    nat_csum_l4: csum_l4,
  });
  ring.updateBatch(Array.from({ length: RING_MAX }, (_, i) => [i, 1] as const));
  svc.update(
    { vip: addr16(vip), port: VPORT, proto, family },
    { id: 0, ring_size: RING_MAX, flags: 0, sched: XdSched.XD_SCHED_MAGLEV, active_gen: 0 },
  );
  markVipPort(obj, VPORT, proto);
  const nport = obj.map(MAPS.nport.name, u32, {
    size: 8,
    encode: (v: bigint) => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(v);
      return b;
    },
    decode: (b: Buffer) => b.readBigUInt64LE(0),
  });
  const { word, bit } = vportBit(BPORT, proto === UDP ? 'udp' : 'tcp');
  nport.update(word, bit);
}

function ip(src: string, dst: string, l4: pk.L4, o: { df?: boolean; ttl?: number } = {}): Buffer {
  return v4(src)
    ? pk.ipv4({ src, dst, df: o.df ?? true, ttl: o.ttl ?? 64 }, l4)
    : pk.ipv6({ src, dst, hopLimit: o.ttl ?? 64 }, l4);
}
const frame = (ipb: Buffer, src = CLIENT_MAC, dst = DIRECTOR_MAC): Buffer => pk.ether({ src, dst }, ipb);

function run(f: Buffer): { verdict: keyof typeof XDP; out: Buffer } {
  const r = testRun(prog, { data: f });
  const verdict = (Object.keys(XDP) as (keyof typeof XDP)[]).find((k) => XDP[k] === r.retval)!;
  return { verdict, out: r.dataOut };
}

const tcp = (sport: number, dport: number, flags: string, payload = 0): pk.L4 =>
  pk.tcp({ sport, dport, flags, seq: 1000, ack: flags.includes('A') ? 5000 : 0, payload: Buffer.alloc(payload, 0x61) });

test('in: a SYN to VIP:3307 leaves for backend:3306 with both checksums right, from the server side MAC, and installs the reverse entry', () => {
  natService(VIP4, RS4, TCP);
  const r = run(frame(ip(CLIENT4, VIP4, tcp(40001, VPORT, 'S'))));
  assert.equal(r.verdict, 'TX');
  assert.deepEqual(r.out, frame(ip(CLIENT4, RS4, tcp(40001, BPORT, 'S')), INNER_MAC, RS_MAC));
  const rev = nrev4.lookup({
    saddr: pk.ipBytes(RS4).readUInt32BE(0),
    daddr: pk.ipBytes(CLIENT4).readUInt32BE(0),
    sport: BPORT,
    dport: 40001,
    proto: TCP,
  });
  assert.ok(rev, "reverse entry keyed by the reply's 5-tuple");
  assert.deepEqual(
    [rev.vip.subarray(0, 4), rev.vport, rev.backend, rev.peer_mac, rev.self_mac],
    [pk.ipBytes(VIP4), VPORT, 1, pk.macBytes(CLIENT_MAC), pk.macBytes(DIRECTOR_MAC)],
  );
});

test("in: an established flow's data (fast path) and a RST (no state) are translated the same way", () => {
  natService(VIP4, RS4, TCP);
  run(frame(ip(CLIENT4, VIP4, tcp(40002, VPORT, 'S'))));
  for (let i = 0; i < 3; i++) {
    const r = run(frame(ip(CLIENT4, VIP4, tcp(40002, VPORT, 'PA', 100 + i))));
    assert.equal(r.verdict, 'TX');
    assert.deepEqual(
      r.out,
      frame(ip(CLIENT4, RS4, tcp(40002, BPORT, 'PA', 100 + i)), INNER_MAC, RS_MAC),
      `packet ${i}`,
    );
  }
  nrev4.deleteBatch(nrev4.keys());
  const rst = run(frame(ip(CLIENT4, VIP4, tcp(40099, VPORT, 'R'))));
  assert.equal(rst.verdict, 'TX');
  assert.deepEqual(rst.out, frame(ip(CLIENT4, RS4, tcp(40099, BPORT, 'R')), INNER_MAC, RS_MAC));
  assert.equal(nrev4.keys().length, 0, 'a RST leaves no reverse entry');
});

test('in: IPv6 TCP and IPv4 UDP (checksum 0 stays 0, RFC 768) are translated', () => {
  natService(VIP6, RS6, TCP);
  const r6 = run(frame(ip(CLIENT6, VIP6, tcp(40003, VPORT, 'S'))));
  assert.equal(r6.verdict, 'TX');
  assert.deepEqual(r6.out, frame(ip(CLIENT6, RS6, tcp(40003, BPORT, 'S')), INNER_MAC, RS_MAC));
  // The flow's next packets: the fast path's precomputed checksum differences (IPv6: L4 only).
  for (let i = 0; i < 3; i++) {
    const d = run(frame(ip(CLIENT6, VIP6, tcp(40003, VPORT, 'PA', 100 + i))));
    assert.equal(d.verdict, 'TX');
    assert.deepEqual(d.out, frame(ip(CLIENT6, RS6, tcp(40003, BPORT, 'PA', 100 + i)), INNER_MAC, RS_MAC), `v6 ${i}`);
  }
  natService(VIP4, RS4, UDP);
  for (let i = 0; i < 3; i++) {
    const payload = Buffer.from(`hello ${i}`);
    const u = run(frame(ip(CLIENT4, VIP4, pk.udp({ sport: 40004, dport: VPORT, payload }))));
    assert.equal(u.verdict, 'TX');
    assert.deepEqual(
      u.out,
      frame(ip(CLIENT4, RS4, pk.udp({ sport: 40004, dport: BPORT, payload })), INNER_MAC, RS_MAC),
      `udp ${i}`,
    );
  }
  for (let i = 0; i < 3; i++) {
    const zero = frame(ip(CLIENT4, VIP4, pk.udp({ sport: 40005, dport: VPORT, payload: Buffer.from('x') })));
    zero.writeUInt16BE(0, 14 + 20 + 6);
    const z = run(zero);
    assert.equal(z.out.readUInt16BE(14 + 20 + 6), 0, `udp checksum 0, datagram ${i}`);
    assert.equal(z.out.readUInt16BE(14 + 20 + 2), BPORT);
  }
});

test("in: a UDP datagram with checksum 0 on the fast path (the flow's cache slot, its service gone) stays 0 (RFC 768), byte for byte", () => {
  natService(VIP4, RS4, UDP);
  const payload = Buffer.from('zero');
  const zero = (dst: string, dport: number, src = CLIENT_MAC, dmac = DIRECTOR_MAC) => {
    const f = frame(ip(CLIENT4, dst, pk.udp({ sport: 40007, dport, payload })), src, dmac);
    f.writeUInt16BE(0, 14 + 20 + 6);
    return f;
  };
  const want = zero(RS4, BPORT, INNER_MAC, RS_MAC);
  // The first datagram opens the flow (embryonic table), the second proves it (flow table), the
  // third fills the cache slot of the CPU it ran on: the full path, each of them. Which CPU runs
  // the next test run is not ours to choose, so the slot is copied to every CPU (and kept fresh),
  // as the fast path would find it on the flow's own CPU.
  for (let i = 0; i < 3; i++) assert.deepEqual(run(zero(VIP4, VPORT)).out, want, `full path, datagram ${i}`);
  const fc4 = obj.map(MAPS.fc4.name, u32, xdFlow4CacheCodec);
  const per = DEFINES.XD_FLOW_CACHE4;
  const held = fc4.entries().filter(([, v]) => v.backend !== 0);
  assert.equal(held.length, 1, 'the third datagram filled one cache slot');
  const [idx, slot] = held[0]!;
  for (let cpu = 0; cpu < fc4.maxEntries / per; cpu++)
    fc4.update(cpu * per + (idx % per), { ...slot, expires: 1n << 62n });
  // Without the service the full path would pass the datagram untranslated: translated, it was
  // the fast path's (which reads only the slot, the backend and its NAT entry).
  svc.deleteBatch(svc.keys());
  clearVipPorts(obj);
  for (let i = 0; i < 3; i++) {
    const r = run(zero(VIP4, VPORT));
    assert.equal(r.verdict, 'TX', `fast path, datagram ${i}`);
    assert.deepEqual(r.out, want, `fast path, datagram ${i}`);
  }
});

test('in: frag needed to the VIP about a reply reaches the backend quoting backend:3306, checksums right', () => {
  natService(VIP4, RS4, TCP);
  run(frame(ip(CLIENT4, VIP4, tcp(40006, VPORT, 'S'))));
  // A router on the client side quotes the reply VIP:3307 -> client (IP header + 8 bytes, RFC 792).
  const quote = (src: string, sport: number) => ip(src, CLIENT4, tcp(sport, 40006, 'A', 1400)).subarray(0, 28);
  const icmp = (dst: string, src: string, sport: number) =>
    ip('10.93.0.254', dst, pk.icmp4({ type: 3, code: 4, mtu: 1400, quoted: quote(src, sport) }));
  const r = run(frame(icmp(VIP4, VIP4, VPORT), '02:00:00:00:00:fe'));
  assert.equal(r.verdict, 'TX');
  assert.deepEqual(r.out, frame(icmp(RS4, RS4, BPORT), INNER_MAC, RS_MAC));
});

test('in: a packet larger than the path MTU to the backend is answered with frag needed from the VIP, quoting what the client sent', () => {
  natService(VIP4, RS4, TCP, 1000);
  run(frame(ip(CLIENT4, VIP4, tcp(40007, VPORT, 'S'))));
  const big = frame(ip(CLIENT4, VIP4, tcp(40007, VPORT, 'PA', 1200)));
  const r = run(big);
  assert.equal(r.verdict, 'TX');
  const ipOut = r.out.subarray(14);
  assert.equal(ipOut[9], pk.IPPROTO_ICMP);
  assert.deepEqual([ipOut.subarray(12, 16), ipOut.subarray(16, 20)], [pk.ipBytes(VIP4), pk.ipBytes(CLIENT4)]);
  assert.deepEqual([ipOut[20], ipOut[21], ipOut.readUInt16BE(26)], [3, 4, 1000]);
  assert.deepEqual(ipOut.subarray(28, 48), big.subarray(14, 34), "the quote is the client's own header, to the VIP");
});

test('out: a reply with no reverse entry, or one this test run cannot route, is passed to the kernel untouched', () => {
  natService(VIP4, RS4, TCP);
  const reply = frame(ip(RS4, CLIENT4, tcp(BPORT, 40008, 'SA')), RS_MAC, INNER_MAC);
  const none = run(reply);
  assert.equal(none.verdict, 'PASS');
  assert.deepEqual(none.out, reply);
  run(frame(ip(CLIENT4, VIP4, tcp(40008, VPORT, 'S'))));
  const unrouted = run(reply);
  assert.equal(unrouted.verdict, 'PASS');
  assert.deepEqual(unrouted.out, reply, 'never rewritten by guess');
});

test('in: a mid-stream packet with no flow entry (takeover after a failover) installs the reverse entry too', () => {
  natService(VIP4, RS4, TCP);
  const r = run(frame(ip(CLIENT4, VIP4, tcp(40010, VPORT, 'PA', 10))));
  assert.equal(r.verdict, 'TX');
  assert.deepEqual(r.out, frame(ip(CLIENT4, RS4, tcp(40010, BPORT, 'PA', 10)), INNER_MAC, RS_MAC));
  const rev = nrev4.lookup({
    saddr: pk.ipBytes(RS4).readUInt32BE(0),
    daddr: pk.ipBytes(CLIENT4).readUInt32BE(0),
    sport: BPORT,
    dport: 40010,
    proto: TCP,
  });
  assert.ok(rev && rev.vport === VPORT, 'the replies of a taken-over flow find their VIP');
});

test("out: a reply is rewritten from its reverse entry, then from this CPU's reply cache byte for byte alike; a stale slot is not used, so with the entry gone the reply passes untouched", () => {
  natService(VIP4, RS4, TCP);
  run(frame(ip(CLIENT4, VIP4, tcp(40010, VPORT, 'S'))));
  const k: XdFlow4Key = {
    saddr: pk.ipBytes(RS4).readUInt32BE(0),
    daddr: pk.ipBytes(CLIENT4).readUInt32BE(0),
    sport: BPORT,
    dport: 40010,
    proto: TCP,
  };
  const rev = nrev4.lookup(k)!;
  // Routed as a reply is for a second after bpf_fib_lookup() (this test run has no route to the
  // client): out of the receiving interface (loopback, ifindex 1), to the client's MAC.
  // bpf_ktime_get_coarse_ns() lags CLOCK_MONOTONIC by up to a tick: 100 ms back is in its past.
  const now = process.hrtime.bigint() - 100_000_000n;
  nrev4.update(k, { ...rev, ifindex: 1, route_ns: now, last_seen_ns: now });
  const reply = frame(ip(RS4, CLIENT4, tcp(BPORT, 40010, 'PA', 50)), RS_MAC, INNER_MAC);
  const want = frame(ip(VIP4, CLIENT4, tcp(VPORT, 40010, 'PA', 50), { ttl: 63 }), DIRECTOR_MAC, CLIENT_MAC);
  const first = run(reply);
  assert.equal(first.verdict, 'TX');
  assert.deepEqual(first.out, want, 'from the reverse entry: source VIP:3307, TTL 63, checksums right');

  // The slot the first reply filled (on whichever CPU ran it), copied to every CPU's place for its
  // set, so the next replies find it wherever they run, and trusted a while longer than the
  // XD_NAT_OUT_CACHE_JIFFIES it was given (32 ms at HZ=1000: less than this test may take).
  const noc4 = obj.map(MAPS.noc4.name, u32, xdNatOut4CacheCodec);
  const key = xdFlow4KeyCodec.encode(k);
  const keyWords = [key.readBigUInt64LE(0), key.readBigUInt64LE(8)];
  const per = DEFINES.XD_NAT_OUT_CACHE4;
  const filled = noc4.entries().filter(([, v]) => v.key[0] === keyWords[0] && v.key[1] === keyWords[1]);
  assert.equal(filled.length, 1, "one slot holds the reply's rewrite");
  const [at, cached] = filled[0]!;
  assert.deepEqual(
    [cached.backend, cached.ifindex, cached.vip, cached.vport, cached.smac, cached.dmac],
    [1, 1, pk.ipBytes(VIP4).readUInt32BE(0), VPORT, pk.macBytes(DIRECTOR_MAC), pk.macBytes(CLIENT_MAC)],
  );
  const places = Array.from({ length: noc4.maxEntries / per }, (_, cpu) => cpu * per + (at % per));
  for (const p of places) noc4.update(p, { ...cached, expires: cached.expires + 100_000n });

  nrev4.deleteBatch(nrev4.keys());
  for (let i = 0; i < 3; i++) {
    const r = run(reply);
    assert.equal(r.verdict, 'TX', `reply ${i} from the cache`);
    assert.deepEqual(r.out, want, `reply ${i}: the cached rewrite is the reverse entry's, byte for byte`);
  }
  // Stale (its XD_NAT_OUT_CACHE_JIFFIES over): the reverse table decides, and it has no entry.
  for (const p of places) noc4.update(p, { ...cached, expires: 0n });
  const stale = run(reply);
  assert.equal(stale.verdict, 'PASS');
  assert.deepEqual(stale.out, reply, 'never rewritten from a stale slot');
});
