// With match_dst_mac set at load (what the XDP dataplane does), the program forwards only
// frames addressed to its interface: a unicast frame for another station (flooded by a switch,
// e.g. to a VRRP Backup) is passed untouched for the kernel to drop, so a real server never
// gets a flooded packet twice. Broadcast/multicast destinations are processed as before.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as pk from '../lib/packet';
import { loadSmallDirector } from '../lib/director';
import { BpfObject, testRun, sumPerCpu, getNative } from '../../src/bpf';
import { XdBackendFlags, XdFamily, XdReason, XdSched } from '../../src/bpf/layouts.generated';
import { xdMap } from '../../src/bpf/maps';
import { addressToBytes16 } from '../../src/net/inet';
import { markVipPort } from '../lib/vipports';

const SELF = '02:00:00:00:00:02';
const OTHER = '02:00:00:00:00:03';
const CLIENT = '02:00:00:00:00:10';
const BACKEND = '02:00:00:00:01:01';
const VIP = '10.200.0.100';
let obj: BpfObject;

const addr16 = addressToBytes16;

before(async () => {
  obj = await loadSmallDirector({
    services: 4,
    backends: 4,
    ringMax: 7,
    flows: 64,
    perCpuCaches: true,
    globals: { match_dst_mac: 1, self_mac: pk.macBytes(SELF) },
  });
  xdMap(obj, 'be').update(1, {
    mac: pk.macBytes(BACKEND),
    family: XdFamily.XD_FAMILY_V4,
    flags: XdBackendFlags.XD_BE_F_ACTIVE,
    generation: 1,
    ifindex: 0,
    service: 0,
    addr: addr16('10.200.0.11'),
  });
  const ring = xdMap(obj, 'ring');
  for (let i = 0; i < 7; i++) ring.update(i, 1);
  xdMap(obj, 'svc').update(
    { vip: addr16(VIP), port: 3306, proto: 6, family: XdFamily.XD_FAMILY_V4 },
    { id: 0, ring_size: 7, flags: 0, sched: XdSched.XD_SCHED_MAGLEV, active_gen: 0 },
  );
  markVipPort(obj, 3306, 6);
});

after(() => obj?.close());

function frame(dst: string, sport: number): Buffer {
  return pk.ether(
    { dst, src: CLIENT },
    pk.ipv4({ src: '10.200.0.10', dst: VIP }, pk.tcp({ sport, dport: 3306, flags: 'S', seq: 1 })),
  );
}

function otherHostCount(): number {
  const v = xdMap(obj, 'rsnst').lookupPerCpu(XdReason.XD_R_PASS_OTHER_HOST);
  return v ? Number(sumPerCpu(v).packets) : 0;
}

test('a frame addressed to the interface is forwarded to the backend', () => {
  const r = testRun(obj.program(), { data: frame(SELF, 40000), dataSizeOut: 256 });
  assert.equal(r.retval, getNative().constants.XDP_TX);
  assert.equal(r.dataOut.subarray(0, 6).toString('hex'), pk.macBytes(BACKEND).toString('hex'));
});

test('a unicast frame for another station is passed untouched and counted as pass_other_host', () => {
  const before = otherHostCount();
  const f = frame(OTHER, 40001);
  const r = testRun(obj.program(), { data: f, dataSizeOut: 256 });
  assert.equal(r.retval, getNative().constants.XDP_PASS);
  assert.deepEqual(r.dataOut, f);
  assert.equal(otherHostCount(), before + 1);
});

test('a broadcast-addressed frame to a VIP is still processed', () => {
  const r = testRun(obj.program(), { data: frame('ff:ff:ff:ff:ff:ff', 40002), dataSizeOut: 256 });
  assert.equal(r.retval, getNative().constants.XDP_TX);
});
