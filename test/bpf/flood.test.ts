// Flow-table flood protection (issue 10 item 1), through BPF_PROG_TEST_RUN with small tables.
//
// A spoofed SYN (or a single datagram) only enters the embryonic table; a flow enters the flow
// table when its client's next packet arrives (the handshake's ACK), at most new_flow_rate a
// second per CPU. So a flood of spoofed SYNs from distinct sources churns the embryonic table and
// never evicts an established flow, whose next packet would otherwise be re-hashed: onto another
// backend when its own is draining, or by round robin.
//
// Each spoofed SYN is sent twice (the original and one retransmission, as a SYN that gets no
// answer is). That matters for the kernel's LRU: an entry looked up again is "active" and is
// evicted only after the inactive ones, so a flood of one-packet entries leaves two idle
// established flows alone, while a flood whose entries are each hit once more pushes them out.
// Before the embryonic tables (main at d731732) this flood re-hashed both flows (0 of 2 kept).
//
// One object per behaviour (the rate guard is a load-time global); the maps are filled through
// the generated layouts.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as pk from '../lib/packet';
import { BpfObject, BpfMap, testRun, u32, sumPerCpu, getNative, cpuSizedMaxEntries } from '../../src/bpf';
import {
  MAPS,
  XdBackendFlags,
  XdFamily,
  XdReason,
  XdSched,
  xdBackendCodec,
  xdBackendStatsCodec,
  xdFlowCodec,
  xdFlow4KeyCodec,
  xdGuardCodec,
  xdReasonStatsCodec,
  xdServiceCodec,
  xdServiceKeyCodec,
} from '../../src/bpf/layouts.generated';
import type { XdBackend, XdBackendStats, XdFlow, XdFlow4Key, XdGuard, XdReasonStats, XdService, XdServiceKey } from '../../src/bpf/layouts.generated';
import { markVipPort } from '../lib/vipports';

const OBJ = path.resolve(__dirname, '../../bpf/xdirector.bpf.o');
const RING = 7;
const FLOW_TABLE = 64;
const EMBRYONIC_TABLE = 64;
const DIRECTOR_MAC = '02:00:00:00:00:02';
const CLIENT_MAC = '02:00:00:00:00:10';
const VIP = '10.200.0.100';
const CLIENT = '10.200.0.10';
const MAGLEV_PORT = 3306; // service 0: maglev over backends 1, 2
const RR_PORT = 3307; // service 1: round robin over backends 3, 4
const beMac = (i: number): string => `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`;
const TX = getNative().constants.XDP_TX;

const addr16 = (a: string): Buffer => Buffer.concat([pk.ipBytes(a), Buffer.alloc(12)]);

class Director {
  private constructor(
    readonly obj: BpfObject,
    readonly prog: { fd: number },
    readonly svc: BpfMap<XdServiceKey, XdService>,
    readonly be: BpfMap<number, XdBackend>,
    readonly ring: BpfMap<number, number>,
    readonly flow4: BpfMap<XdFlow4Key, XdFlow>,
    readonly emb4: BpfMap<XdFlow4Key, XdFlow>,
    readonly guard: BpfMap<number, XdGuard>,
    readonly rsnst: BpfMap<number, XdReasonStats>,
    readonly best: BpfMap<number, XdBackendStats>,
  ) {}

  static async load(newFlowRate: number): Promise<Director> {
    const obj = await BpfObject.load(OBJ, {
      maxEntries: {
      ...cpuSizedMaxEntries(),
        [MAPS.svc.name]: 4, [MAPS.svcst.name]: 4, [MAPS.rr.name]: 4, [MAPS.be.name]: 8, [MAPS.best.name]: 8, [MAPS.tun.name]: 8,
        [MAPS.ring.name]: 4 * 2 * RING,
        [MAPS.flow4.name]: FLOW_TABLE, [MAPS.flow6.name]: FLOW_TABLE,
        [MAPS.emb4.name]: EMBRYONIC_TABLE, [MAPS.emb6.name]: EMBRYONIC_TABLE,
      },
      globals: { ring_max: RING, new_flow_rate: newFlowRate },
    });
    const d = new Director(
      obj, obj.program('xdirector'),
      obj.map(MAPS.svc.name, xdServiceKeyCodec, xdServiceCodec),
      obj.map(MAPS.be.name, u32, xdBackendCodec),
      obj.map(MAPS.ring.name, u32, u32),
      obj.map(MAPS.flow4.name, xdFlow4KeyCodec, xdFlowCodec),
      obj.map(MAPS.emb4.name, xdFlow4KeyCodec, xdFlowCodec),
      obj.map(MAPS.guard.name, u32, xdGuardCodec),
      obj.map(MAPS.rsnst.name, u32, xdReasonStatsCodec),
      obj.map(MAPS.best.name, u32, xdBackendStatsCodec),
    );
    for (let i = 1; i <= 4; i++) d.setBackend(i, XdBackendFlags.XD_BE_F_ACTIVE);
    d.setRing(0, 0, [1, 2, 1, 2, 1, 2, 1]);
    d.svc.update({ vip: addr16(VIP), port: MAGLEV_PORT, proto: pk.IPPROTO_TCP, family: XdFamily.XD_FAMILY_V4 }, { id: 0, ring_size: RING, flags: 0, sched: XdSched.XD_SCHED_MAGLEV, active_gen: 0 });
    d.setRing(1, 0, [3, 4]);
    d.svc.update({ vip: addr16(VIP), port: RR_PORT, proto: pk.IPPROTO_TCP, family: XdFamily.XD_FAMILY_V4 }, { id: 1, ring_size: 2, flags: 0, sched: XdSched.XD_SCHED_SEQ, active_gen: 0 });
    d.svc.update({ vip: addr16(VIP), port: RR_PORT, proto: pk.IPPROTO_UDP, family: XdFamily.XD_FAMILY_V4 }, { id: 1, ring_size: 2, flags: 0, sched: XdSched.XD_SCHED_SEQ, active_gen: 0 });
    markVipPort(obj, MAGLEV_PORT, pk.IPPROTO_TCP);
    markVipPort(obj, RR_PORT, pk.IPPROTO_TCP);
    markVipPort(obj, RR_PORT, pk.IPPROTO_UDP);
    return d;
  }

  setBackend(i: number, flags: number): void {
    this.be.update(i, { mac: pk.macBytes(beMac(i)), family: XdFamily.XD_FAMILY_V4, flags, generation: 1, ifindex: 0, service: i <= 2 ? 0 : 1, addr: addr16(`10.200.1.${i}`) });
  }
  setRing(id: number, gen: number, slots: number[]): void {
    this.ring.updateBatch(slots.map((b, i) => [(id * 2 + gen) * RING + i, b] as const));
  }
  /** The live ring of service 0 without `drained`, that backend marked DRAINING (what apply() writes for a drain). */
  drain(drained: number): void {
    const other = drained === 1 ? 2 : 1;
    this.setBackend(drained, XdBackendFlags.XD_BE_F_ACTIVE | XdBackendFlags.XD_BE_F_DRAINING);
    this.setRing(0, 1, Array(RING).fill(other));
    const key = { vip: addr16(VIP), port: MAGLEV_PORT, proto: pk.IPPROTO_TCP, family: XdFamily.XD_FAMILY_V4 };
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
    if (name === 'XD_R_TX_FLOW_HIT') for (let i = 1; i <= 4; i++) n += Number(sumPerCpu(this.best.lookupPerCpu(i)!).flow_hits);
    return n;
  }
  guardStats(): { embryonic: number; limited: number } {
    const g = sumPerCpu(this.guard.lookupPerCpu(0)!);
    return { embryonic: Number(g.embryonic), limited: Number(g.limited) };
  }
}

function tcpFrame(src: string, sport: number, dport: number, flags: string): Buffer {
  return pk.ether({ src: CLIENT_MAC, dst: DIRECTOR_MAC }, pk.ipv4({ src, dst: VIP }, pk.tcp({ sport, dport, flags, seq: 1000, ack: flags === 'S' ? 0 : 5001 })));
}
function udpFrame(src: string, sport: number, dport: number): Buffer {
  return pk.ether({ src: CLIENT_MAC, dst: DIRECTOR_MAC }, pk.ipv4({ src, dst: VIP }, pk.udp({ sport, dport, payload: Buffer.from('q') })));
}
/** A spoofed source: 10.99.0.0/16, one address per SYN. */
const spoofed = (i: number): string => `10.99.${(i >> 8) & 0xff}.${i & 0xff}`;

const loaded: Director[] = [];
after(() => {
  for (const d of loaded) d.obj.close();
});

test('established flows keep their backends (a drained one, a round-robin one) through 10x the table size of spoofed SYNs', async () => {
  const d = await Director.load(0);
  loaded.push(d);
  // Flow a on the maglev service, whose backend is then drained; flow b on the round-robin service.
  const a = { src: CLIENT, sport: 40000, dport: MAGLEV_PORT };
  const b = { src: CLIENT, sport: 40001, dport: RR_PORT };
  const beA = d.send(tcpFrame(a.src, a.sport, a.dport, 'S'));
  assert.equal(d.send(tcpFrame(a.src, a.sport, a.dport, 'A')), beA);
  const beB = d.send(tcpFrame(b.src, b.sport, b.dport, 'S'));
  assert.equal(d.send(tcpFrame(b.src, b.sport, b.dport, 'A')), beB);
  d.drain(beA);

  const floodSize = 10 * Math.max(FLOW_TABLE, EMBRYONIC_TABLE);
  const promotedBefore = d.reason('XD_R_TX_PROMOTED');
  for (let i = 0; i < floodSize; i++) {
    const port = i % 2 === 0 ? MAGLEV_PORT : RR_PORT;
    for (let k = 0; k < 2; k++) assert.ok(d.send(tcpFrame(spoofed(i), 1024 + (i % 60000), port, 'S')) > 0, 'a SYN is forwarded');
  }
  const g = d.guardStats();
  const embLive = d.emb4.keys().length;
  // Entries created minus promoted minus still there: the rest were evicted.
  const evicted = g.embryonic - (d.reason('XD_R_TX_PROMOTED') - promotedBefore) - 2 - embLive;

  const afterA = d.send(tcpFrame(a.src, a.sport, a.dport, 'PA'));
  const afterB = d.send(tcpFrame(b.src, b.sport, b.dport, 'PA'));
  const kept = Number(afterA === beA) + Number(afterB === beB);
  console.log(`flood: ${floodSize} spoofed SYNs (each sent twice), flow table ${FLOW_TABLE}, embryonic table ${EMBRYONIC_TABLE}: embryonic entries created ${g.embryonic}, evicted ${evicted}, live ${embLive}; flow-table entries ${d.flow4.keys().length}; flows kept ${kept}/2 (a: backend ${beA} (drained) -> ${afterA}, b: backend ${beB} (rr) -> ${afterB})`);
  assert.equal(afterA, beA, 'the drained backend keeps its flow');
  assert.equal(afterB, beB, 'the round-robin flow keeps its backend');
  assert.equal(d.flow4.keys().length, 2, 'spoofed SYNs never entered the flow table');
  assert.ok(evicted >= floodSize - EMBRYONIC_TABLE, `the embryonic table churned (${evicted} evicted)`);
});

test('a flow taken over mid-stream and a UDP flow still work after the flood', async () => {
  const d = await Director.load(0);
  loaded.push(d);
  for (let i = 0; i < 10 * EMBRYONIC_TABLE; i++) for (let k = 0; k < 2; k++) d.send(tcpFrame(spoofed(i), 2000 + i, MAGLEV_PORT, 'S'));
  // A mid-stream segment of a flow this director never saw (VRRP/ECMP takeover): hashed and remembered.
  const m = { src: '10.200.0.20', sport: 41000 };
  const first = d.send(tcpFrame(m.src, m.sport, MAGLEV_PORT, 'PA'));
  assert.ok(first > 0);
  assert.equal(d.flow4.keys().length, 1, 'taken over into the flow table at once');
  d.drain(first);
  assert.equal(d.send(tcpFrame(m.src, m.sport, MAGLEV_PORT, 'PA')), first, 'and kept there, drained or not');
  // UDP: the first datagram is embryonic, the second promotes it, the third is a flow hit.
  const u = { src: '10.200.0.21', sport: 41001 };
  const ub = d.send(udpFrame(u.src, u.sport, RR_PORT));
  assert.equal(d.send(udpFrame(u.src, u.sport, RR_PORT)), ub);
  const hits = d.reason('XD_R_TX_FLOW_HIT');
  assert.equal(d.send(udpFrame(u.src, u.sport, RR_PORT)), ub);
  assert.equal(d.reason('XD_R_TX_FLOW_HIT') - hits, 1);
  assert.equal(d.flow4.keys().length, 2);
});

test('above new_flow_rate a flow is forwarded untracked and counted; it is tracked once the guard admits it', async () => {
  const rate = 4;
  const d = await Director.load(rate);
  loaded.push(d);
  // Bare ACKs from 10 sources (a flood that skips the handshake): all forwarded, `rate` remembered.
  const sent = Array.from({ length: 10 }, (_, i) => d.send(tcpFrame(spoofed(i), 3000 + i, MAGLEV_PORT, 'A')));
  assert.ok(sent.every((x) => x > 0), 'every packet is still forwarded');
  assert.equal(d.flow4.keys().length, rate);
  assert.equal(d.reason('XD_R_TX_NEW_FLOW'), rate);
  assert.equal(d.reason('XD_R_TX_NO_TRACK'), 10 - rate);
  assert.equal(d.guardStats().limited, 10 - rate);
  // A real handshake in the same second: its SYN is embryonic, its ACK is over the rate: forwarded by its embryonic entry.
  const h = { src: '10.200.0.30', sport: 42000 };
  const be = d.send(tcpFrame(h.src, h.sport, RR_PORT, 'S'));
  assert.equal(d.send(tcpFrame(h.src, h.sport, RR_PORT, 'A')), be, 'the handshake ACK follows its SYN, untracked');
  assert.equal(d.emb4.keys().length, 1, 'still embryonic');
  // A new window: the next packet promotes it.
  d.guard.updatePerCpu(0, Array(d.guard.ncpus).fill({ window_ns: 0n, window_flows: 0, embryonic: 0n, limited: 0n }));
  assert.equal(d.send(tcpFrame(h.src, h.sport, RR_PORT, 'PA')), be);
  assert.equal(d.emb4.keys().length, 0);
  assert.equal(d.reason('XD_R_TX_PROMOTED'), 1);
});
