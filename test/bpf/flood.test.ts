// Flow-table flood protection (issue 10 item 1, issue 20 item 1), through BPF_PROG_TEST_RUN with
// small tables.
//
// Three tables, each its own LRU, stand between a packet of an unknown flow and the flow table. An
// opening packet (SYN, first datagram) enters the embryonic table; the client's next packet
// completes the handshake and moves the flow to the probation table; a packet of an unknown flow
// that is not an opening one (a takeover after a failover, or a spoofed bare ACK) enters the
// takeover table and stays there. A handshake-completed flow enters the flow table only when it
// comes back a second later (XD_PROVE_NS), at most new_flow_rate a second over all CPUs. The director sees
// one direction only (DR), so it cannot tell a real handshake ACK from a spoofed one: a SYN + ACK
// pair per spoofed source is as cheap as a SYN, and without the proving step it would promote
// at wire rate.
//
// So a flood of spoofed SYNs, bare ACKs, SYN + ACK pairs, RSTs or datagrams from distinct
// sources churns the embryonic, probation and takeover tables and never evicts an established flow, whose
// next packet would otherwise be re-hashed: onto another backend when its own is draining, or by
// round robin. Each flood is 10x the table size, with the product's default new_flow_rate. On
// main (cdd279d, where a non-SYN miss and a handshake ACK went straight into the flow table,
// limited only by 200 000/s per CPU) the bare-ACK and SYN + ACK floods moved both flows.
//
// Each spoofed SYN is sent twice (the original and one retransmission, as a SYN that gets no
// answer is). That matters for the kernel's LRU: an entry looked up again is "active" and is
// evicted only after the inactive ones, so a flood of one-packet entries leaves two idle
// established flows alone, while a flood whose entries are each hit once more pushes them out.
//
// One object per test (the rate guard is a load-time global); the maps are filled through the
// generated layouts.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as pk from '../lib/packet';
import { loadSmallDirector, TEST_FLOW_SEED } from '../lib/director';
import { BpfObject, BpfMap, FlowTable, testRun, u32, sumPerCpu, getNative, xdMap } from '../../src/bpf';
import {
  MAPS,
  XdBackendFlags,
  XdFamily,
  XdRateIdx,
  XdReason,
  XdSched,
  xdBackendCodec,
  xdBackendStatsCodec,
  xdFlowCodec,
  xdFlowKeyCodec,
  xdFlow4KeyCodec,
  xdGuardCodec,
  xdRateCodec,
  xdReasonStatsCodec,
  xdServiceCodec,
  xdServiceKeyCodec,
  xdPflowCodec,
} from '../../src/bpf/layouts.generated';
import type {
  XdBackend,
  XdBackendStats,
  XdFlow,
  XdFlowKey,
  XdFlow4Key,
  XdGuard,
  XdRate,
  XdReasonStats,
  XdService,
  XdServiceKey,
  XdPflow,
} from '../../src/bpf/layouts.generated';
import { DEFAULT_NEW_FLOW_RATE } from '../../src/defaults';
import { markVipPort } from '../lib/vipports';
import { clearFlowCaches } from '../lib/flowcache';

const RING = 7;
const FLOW_TABLE = 64;
const EMBRYONIC_TABLE = 64;
const TAKEOVER_TABLE = 64;
const DIRECTOR_MAC = '02:00:00:00:00:02';
const CLIENT_MAC = '02:00:00:00:00:10';
const VIP = { 4: '10.200.0.100', 6: 'fd00:200::100' } as const;
const CLIENT = { 4: '10.200.0.10', 6: 'fd00:200::10' } as const;
const MAGLEV_PORT = 3306; // services 0 (IPv4) and 2 (IPv6): maglev over backends 1, 2
const RR_PORT = 3307; // services 1 (IPv4) and 3 (IPv6): round robin over backends 3, 4 (TCP and UDP)
type Fam = 4 | 6;
const beMac = (i: number): string => `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`;
const TX = getNative().constants.XDP_TX;

const addr16 = (a: string): Buffer => {
  const b = pk.ipBytes(a);
  return b.length === 16 ? b : Buffer.concat([b, Buffer.alloc(12)]);
};
const xdFam = (f: Fam): number => (f === 4 ? XdFamily.XD_FAMILY_V4 : XdFamily.XD_FAMILY_V6);

class Director {
  private constructor(
    readonly obj: BpfObject,
    readonly prog: { fd: number },
    readonly svc: BpfMap<XdServiceKey, XdService>,
    readonly be: BpfMap<number, XdBackend>,
    readonly ring: BpfMap<number, number>,
    readonly flow4: FlowTable<XdFlow4Key>,
    readonly flow6: FlowTable<XdFlowKey>,
    readonly emb4: BpfMap<XdFlow4Key, XdFlow>,
    readonly tko4: BpfMap<XdFlow4Key, XdFlow>,
    readonly tko6: BpfMap<XdFlowKey, XdFlow>,
    readonly prb4: BpfMap<XdFlow4Key, XdPflow>,
    readonly prb6: BpfMap<XdFlowKey, XdPflow>,
    readonly guard: BpfMap<number, XdGuard>,
    readonly rate: BpfMap<number, XdRate>,
    readonly rsnst: BpfMap<number, XdReasonStats>,
    readonly best: BpfMap<number, XdBackendStats>,
  ) {}

  static async load(newFlowRate: number): Promise<Director> {
    const obj = await loadSmallDirector({
      services: 8,
      backends: 8,
      tunnels: true,
      ringMax: RING,
      flows: FLOW_TABLE,
      embryonic: EMBRYONIC_TABLE,
      takeover: TAKEOVER_TABLE,
      perCpuCaches: true,
      globals: { new_flow_rate: newFlowRate },
    });
    const d = new Director(
      obj,
      obj.program('xdirector'),
      obj.map(MAPS.svc.name, xdServiceKeyCodec, xdServiceCodec),
      obj.map(MAPS.be.name, u32, xdBackendCodec),
      obj.map(MAPS.ring.name, u32, u32),
      FlowTable.v4(xdMap(obj, 'flow4'), TEST_FLOW_SEED),
      FlowTable.v6(xdMap(obj, 'flow6'), TEST_FLOW_SEED),
      obj.map(MAPS.emb4.name, xdFlow4KeyCodec, xdFlowCodec),
      obj.map(MAPS.tko4.name, xdFlow4KeyCodec, xdFlowCodec),
      obj.map(MAPS.tko6.name, xdFlowKeyCodec, xdFlowCodec),
      obj.map(MAPS.prb4.name, xdFlow4KeyCodec, xdPflowCodec),
      obj.map(MAPS.prb6.name, xdFlowKeyCodec, xdPflowCodec),
      obj.map(MAPS.guard.name, u32, xdGuardCodec),
      obj.map(MAPS.rate.name, u32, xdRateCodec),
      obj.map(MAPS.rsnst.name, u32, xdReasonStatsCodec),
      obj.map(MAPS.best.name, u32, xdBackendStatsCodec),
    );
    for (let i = 1; i <= 4; i++) d.setBackend(i, XdBackendFlags.XD_BE_F_ACTIVE);
    for (const f of [4, 6] as const) {
      const base = f === 4 ? 0 : 2;
      d.setRing(base, 0, [1, 2, 1, 2, 1, 2, 1]);
      d.svc.update(d.key(f, MAGLEV_PORT, pk.IPPROTO_TCP), {
        id: base,
        ring_size: RING,
        flags: 0,
        sched: XdSched.XD_SCHED_MAGLEV,
        active_gen: 0,
      });
      d.setRing(base + 1, 0, [3, 4]);
      for (const proto of [pk.IPPROTO_TCP, pk.IPPROTO_UDP]) {
        d.svc.update(d.key(f, RR_PORT, proto), {
          id: base + 1,
          ring_size: 2,
          flags: 0,
          sched: XdSched.XD_SCHED_SEQ,
          active_gen: 0,
        });
      }
    }
    markVipPort(obj, MAGLEV_PORT, pk.IPPROTO_TCP);
    markVipPort(obj, RR_PORT, pk.IPPROTO_TCP);
    markVipPort(obj, RR_PORT, pk.IPPROTO_UDP);
    return d;
  }

  key(f: Fam, port: number, proto: number): XdServiceKey {
    return { vip: addr16(VIP[f]), port, proto, family: xdFam(f) };
  }
  setBackend(i: number, flags: number): void {
    this.be.update(i, {
      mac: pk.macBytes(beMac(i)),
      family: XdFamily.XD_FAMILY_V4,
      flags,
      generation: 1,
      ifindex: 0,
      service: i <= 2 ? 0 : 1,
      addr: addr16(`10.200.1.${i}`),
    });
  }
  setRing(id: number, gen: number, slots: number[]): void {
    this.ring.updateBatch(slots.map((b, i) => [(id * 2 + gen) * RING + i, b] as const));
  }
  /** The live maglev ring of family `f` without `drained`, that backend marked DRAINING (what apply() writes for a drain). */
  drain(f: Fam, drained: number): void {
    const other = drained === 1 ? 2 : 1;
    const id = f === 4 ? 0 : 2;
    this.setBackend(drained, XdBackendFlags.XD_BE_F_ACTIVE | XdBackendFlags.XD_BE_F_DRAINING);
    this.setRing(id, 1, Array(RING).fill(other));
    const key = this.key(f, MAGLEV_PORT, pk.IPPROTO_TCP);
    this.svc.update(key, { ...this.svc.lookup(key)!, active_gen: 1 });
  }

  /** Runs a frame; returns the backend it was sent to (0: not forwarded). */
  send(frame: Buffer): number {
    const r = testRun(this.prog, { data: frame });
    if (r.retval !== TX) return 0;
    const mac = r.dataOut.subarray(0, 6).toString('hex');
    for (let i = 1; i <= 4; i++) if (pk.macBytes(beMac(i)).toString('hex') === mac) return i;
    assert.fail(`forwarded to unknown MAC ${mac}`);
  }

  reason(name: keyof typeof XdReason): number {
    let n = Number(sumPerCpu(this.rsnst.lookupPerCpu(XdReason[name])!).packets);
    if (name === 'XD_R_TX_FLOW_HIT')
      for (let i = 1; i <= 4; i++) n += Number(sumPerCpu(this.best.lookupPerCpu(i)!).flow_hits);
    return n;
  }
  guardStats(): { embryonic: number; takeovers: number; handshakes: number; limited: number } {
    const g = sumPerCpu(this.guard.lookupPerCpu(0)!);
    return {
      embryonic: Number(g.embryonic),
      takeovers: Number(g.takeovers),
      handshakes: Number(g.handshakes),
      limited: Number(g.limited),
    };
  }
  flows(f: Fam): number {
    return f === 4 ? this.flow4.count() : this.flow6.count();
  }
  takeovers(f: Fam): number {
    return f === 4 ? this.tko4.keys().length : this.tko6.keys().length;
  }
  probation(f: Fam): number {
    return f === 4 ? this.prb4.keys().length : this.prb6.keys().length;
  }
  /** Makes every probation-table entry's handshake `ms` older (as if that long had passed), caches emptied. */
  ageHandshakes(ms: number): void {
    for (const [k, v] of this.prb4.entries())
      this.prb4.update(k, { ...v, handshake_ns: v.handshake_ns - BigInt(ms) * 1_000_000n });
    for (const [k, v] of this.prb6.entries())
      this.prb6.update(k, { ...v, handshake_ns: v.handshake_ns - BigInt(ms) * 1_000_000n });
    clearFlowCaches(this.obj);
  }
}

function tcpFrame(f: Fam, src: string, sport: number, dport: number, flags: string): Buffer {
  const l4 = pk.tcp({ sport, dport, flags, seq: 1000, ack: flags === 'S' ? 0 : 5001 });
  return pk.ether(
    { src: CLIENT_MAC, dst: DIRECTOR_MAC },
    f === 4 ? pk.ipv4({ src, dst: VIP[4] }, l4) : pk.ipv6({ src, dst: VIP[6] }, l4),
  );
}
function udpFrame(f: Fam, src: string, sport: number, dport: number): Buffer {
  const l4 = pk.udp({ sport, dport, payload: Buffer.from('q') });
  return pk.ether(
    { src: CLIENT_MAC, dst: DIRECTOR_MAC },
    f === 4 ? pk.ipv4({ src, dst: VIP[4] }, l4) : pk.ipv6({ src, dst: VIP[6] }, l4),
  );
}
/** A spoofed source, one address per flood packet: 10.99.0.0/16 or fd00:99::/96. */
const spoofed = (f: Fam, i: number): string =>
  f === 4 ? `10.99.${(i >> 8) & 0xff}.${i & 0xff}` : `fd00:99::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}`;

/** A client's connection: SYN, then the handshake's ACK; returns its backend. */
function establish(d: Director, f: Fam, sport: number, dport: number): number {
  const be = d.send(tcpFrame(f, CLIENT[f], sport, dport, 'S'));
  assert.ok(be > 0);
  assert.equal(d.send(tcpFrame(f, CLIENT[f], sport, dport, 'A')), be, 'the handshake ACK follows its SYN');
  return be;
}

const loaded: Director[] = [];
after(() => {
  for (const d of loaded) d.obj.close();
});

type Flood = 'SYN' | 'bare ACK' | 'SYN+ACK pair' | 'RST' | 'UDP';
/** The packets one spoofed source sends (alternating between the two services' ports). */
function floodPackets(f: Fam, kind: Flood, i: number): Buffer[] {
  const src = spoofed(f, i);
  const sport = 1024 + (i % 60000);
  const port = i % 2 === 0 ? MAGLEV_PORT : RR_PORT;
  switch (kind) {
    case 'SYN': {
      const s = tcpFrame(f, src, sport, port, 'S');
      return [s, s];
    }
    case 'bare ACK':
      return [tcpFrame(f, src, sport, port, 'A')];
    case 'SYN+ACK pair':
      return [tcpFrame(f, src, sport, port, 'S'), tcpFrame(f, src, sport, port, 'A')];
    case 'RST':
      return [tcpFrame(f, src, sport, port, 'R')];
    case 'UDP':
      return [udpFrame(f, src, sport, RR_PORT), udpFrame(f, src, sport, RR_PORT)];
  }
}

for (const f of [4, 6] as const) {
  for (const kind of ['SYN', 'bare ACK', 'SYN+ACK pair', 'RST', 'UDP'] as const) {
    test(`IPv${f}: established flows keep their backends (a drained one, a round-robin one) through 10x the table size of spoofed ${kind}s from distinct sources`, async () => {
      const d = await Director.load(DEFAULT_NEW_FLOW_RATE);
      loaded.push(d);
      // Flow a on the maglev service, whose backend is then drained; flow b on the round-robin
      // service. Both proved themselves (a packet a second after the handshake): in the flow table.
      const beA = establish(d, f, 40000, MAGLEV_PORT);
      const beB = establish(d, f, 40001, RR_PORT);
      d.ageHandshakes(1500);
      assert.equal(d.send(tcpFrame(f, CLIENT[f], 40000, MAGLEV_PORT, 'PA')), beA);
      assert.equal(d.send(tcpFrame(f, CLIENT[f], 40001, RR_PORT, 'PA')), beB);
      assert.equal(d.reason('XD_R_TX_PROVEN'), 2, 'both moved to the flow table');
      assert.equal(d.flows(f), 2);
      d.drain(f, beA);

      const floodSize = 10 * Math.max(FLOW_TABLE, EMBRYONIC_TABLE, TAKEOVER_TABLE);
      for (let i = 0; i < floodSize; i++)
        for (const p of floodPackets(f, kind, i)) assert.ok(d.send(p) > 0, 'a flood packet is still forwarded');
      const g = d.guardStats();

      const afterA = d.send(tcpFrame(f, CLIENT[f], 40000, MAGLEV_PORT, 'PA'));
      const afterB = d.send(tcpFrame(f, CLIENT[f], 40001, RR_PORT, 'PA'));
      const kept = Number(afterA === beA) + Number(afterB === beB);
      console.log(
        `IPv${f} ${kind} flood: ${floodSize} sources, tables ${FLOW_TABLE}/${EMBRYONIC_TABLE}/${TAKEOVER_TABLE}: embryonic created ${g.embryonic}, takeovers ${g.takeovers}, handshakes ${g.handshakes}; flow-table entries ${d.flows(f)}, probation ${d.probation(f)}, takeover ${d.takeovers(f)}; flows kept ${kept}/2 (a: backend ${beA} (drained) -> ${afterA}, b: backend ${beB} (rr) -> ${afterB})`,
      );
      assert.equal(afterA, beA, 'the drained backend keeps its flow');
      assert.equal(afterB, beB, 'the round-robin flow keeps its backend');
      assert.equal(d.flows(f), 2, 'no flood packet entered the flow table');
      if (kind === 'bare ACK') assert.equal(g.takeovers, floodSize, 'each bare ACK made a takeover-table entry');
      if (kind === 'SYN+ACK pair')
        assert.equal(
          g.handshakes,
          floodSize + 2,
          'each pair (and the two real flows) completed a handshake into the probation table',
        );
    });
  }
}

test('a flow taken over mid-stream stays in the takeover table, drained or not; a bare-ACK flood leaves a flow on probation alone', async () => {
  const d = await Director.load(DEFAULT_NEW_FLOW_RATE);
  loaded.push(d);
  // A connection that just completed its handshake (on probation), on a backend that then drains.
  const young = establish(d, 4, 40500, MAGLEV_PORT);
  d.drain(4, young);
  for (let i = 0; i < 10 * TAKEOVER_TABLE; i++) d.send(tcpFrame(4, spoofed(4, i), 2000 + i, MAGLEV_PORT, 'A'));
  assert.equal(
    d.send(tcpFrame(4, CLIENT[4], 40500, MAGLEV_PORT, 'PA')),
    young,
    'the bare ACKs churned only the takeover table',
  );
  assert.equal(d.probation(4), 1);
  d.setBackend(young, XdBackendFlags.XD_BE_F_ACTIVE);
  // A mid-stream segment of a flow this director never saw (VRRP/ECMP takeover): hashed and remembered.
  const m = { src: '10.200.0.20', sport: 41000 };
  const first = d.send(tcpFrame(4, m.src, m.sport, MAGLEV_PORT, 'PA'));
  assert.ok(first > 0);
  const tk = d.tko4.lookup({
    saddr: pk.ipBytes(m.src).readUInt32BE(0),
    daddr: pk.ipBytes(VIP[4]).readUInt32BE(0),
    sport: m.sport,
    dport: MAGLEV_PORT,
    proto: pk.IPPROTO_TCP,
  });
  assert.equal(tk?.backend, first, 'taken over into the takeover table at once');
  d.drain(4, first);
  d.tko4.update(
    {
      saddr: pk.ipBytes(m.src).readUInt32BE(0),
      daddr: pk.ipBytes(VIP[4]).readUInt32BE(0),
      sport: m.sport,
      dport: MAGLEV_PORT,
      proto: pk.IPPROTO_TCP,
    },
    { ...tk!, last_seen_ns: tk!.last_seen_ns - 5_000_000_000n },
  );
  clearFlowCaches(d.obj);
  assert.equal(d.send(tcpFrame(4, m.src, m.sport, MAGLEV_PORT, 'PA')), first, 'and kept there, drained or not');
  assert.equal(d.flows(4), 0, 'a takeover never enters the flow table');
  // UDP: the first datagram is embryonic, the second moves it to the probation table, the third is a flow hit.
  const u = { src: '10.200.0.21', sport: 41001 };
  const ub = d.send(udpFrame(4, u.src, u.sport, RR_PORT));
  assert.equal(d.send(udpFrame(4, u.src, u.sport, RR_PORT)), ub);
  const hits = d.reason('XD_R_TX_FLOW_HIT');
  assert.equal(d.send(udpFrame(4, u.src, u.sport, RR_PORT)), ub);
  assert.equal(d.reason('XD_R_TX_FLOW_HIT') - hits, 1);
  // A second later it has proved itself.
  d.ageHandshakes(1500);
  assert.equal(d.send(udpFrame(4, u.src, u.sport, RR_PORT)), ub);
  assert.equal(d.flows(4), 1);
});

test('a handshake-completed flow moves to the flow table only on a packet a second later, at most new_flow_rate a second over all CPUs', async () => {
  const rate = 2;
  const d = await Director.load(rate);
  loaded.push(d);
  // The guard is one GCRA word in a plain array: all CPUs share the budget.
  assert.equal(MAPS.rate.type, 'array');
  const bes = Array.from({ length: 5 }, (_, i) => establish(d, 4, 42000 + i, RR_PORT));
  assert.equal(d.probation(4), 5);
  assert.equal(d.guardStats().handshakes, 5);
  // Within the second: flow hits from the probation table, nothing moves.
  for (let i = 0; i < 5; i++) assert.equal(d.send(tcpFrame(4, CLIENT[4], 42000 + i, RR_PORT, 'PA')), bes[i]);
  assert.equal(d.flows(4), 0, 'not proven yet');
  // A second later: `rate` of them move (the bucket holds one second's worth), the rest stay, served.
  d.ageHandshakes(1500);
  for (let i = 0; i < 5; i++)
    assert.equal(
      d.send(tcpFrame(4, CLIENT[4], 42000 + i, RR_PORT, 'PA')),
      bes[i],
      'every packet still goes to its backend',
    );
  assert.equal(d.flows(4), rate);
  assert.equal(d.probation(4), 5 - rate);
  assert.equal(d.reason('XD_R_TX_PROVEN'), rate);
  assert.equal(d.guardStats().limited, 5 - rate);
  // A full bucket again (as after a quiet second): the others move on their next packet.
  d.rate.update(XdRateIdx.XD_RATE_NEW_FLOW, { tat_ns: 0n });
  clearFlowCaches(d.obj);
  for (let i = 0; i < 5; i++) assert.equal(d.send(tcpFrame(4, CLIENT[4], 42000 + i, RR_PORT, 'PA')), bes[i]);
  assert.equal(d.flows(4), 4, 'two more moved, within the rate');
  assert.equal(d.probation(4), 1);
});
