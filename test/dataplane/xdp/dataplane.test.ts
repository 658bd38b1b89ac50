// XdpDataplane against the real kernel: open/apply/close, hot restart over the pinned maps
// (adoption, atomic program swap, flows kept), layout checks, a foreign program, detach.
//
// Resources (prefix xdb<pid>): a network namespace xdb<pid> holding the veth peer xdb<pid>b
// (with xdp_pass attached in native mode), the veth end xdb<pid>a in this namespace (the program is attached to it in native mode), and
// pins under /sys/fs/bpf/xdb<pid>. All are removed in after(). Tests run in order and build on
// each other (open -> close keeping state -> reopen -> ...), each checking one behaviour.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import * as pk from '../../lib/packet';
import { BpfObject, FlowTable, getNative, openPinnedProgram, openPinnedXdMap, testRun, xdp } from '../../../src/bpf';
import { XdpDataplane, instancePinDir, type XdpOptions } from '../../../src/dataplane/xdp/dataplane';
import { buildRing, emptyModel, plan } from '../../../src/dataplane/xdp/plan';
import { LAYOUT_HASH, LAYOUT_VERSION, addr16, macString, vportWords } from '../../../src/dataplane/xdp/layout';
import type { DesiredBackend, DesiredService, DesiredState } from '../../../src/state/types';
import { XdError } from '../../../src/errors';
import { ipvsMhLookup, buildIpvsMh } from '../../../src/maglev/ipvs-mh';
import { measureApply } from '../../../scripts/bench/measure';

const PREFIX = `xdb${process.pid}`;
const NS = PREFIX;
const IF = `${PREFIX}a`;
const PEER = `${PREFIX}b`;
const PIN_ROOT = `/sys/fs/bpf/${PREFIX}`;
const INSTANCE = 'i1';
const DIR = instancePinDir(PIN_ROOT, INSTANCE);
const OBJ = path.resolve(__dirname, '../../../bpf/xdirector.bpf.o');
const PASS_OBJ = path.resolve(__dirname, '../../../bpf/tools/xdp_pass.bpf.o');

const LIMITS = { ringMax: 251, maxServices: 4, maxBackends: 16 };
const XDP_TX = getNative().constants.XDP_TX;

const logLines: string[] = [];
const log = pino({ level: 'debug' }, { write: (s: string) => void logLines.push(s) });

function opts(over: Partial<XdpOptions> = {}): XdpOptions {
  return {
    instance: INSTANCE,
    ifname: IF,
    mode: 'native',
    pinDir: PIN_ROOT,
    ...LIMITS,
    flowTableSize: 1024,
    objectPath: OBJ,
    log,
    ...over,
  };
}

function backend(n: number, over: Partial<DesiredBackend> = {}): DesiredBackend {
  const address = `10.201.0.${10 + n}`;
  return {
    key: `${address}:3306`,
    name: `rs${n}`,
    address,
    port: 3306,
    family: 4,
    weight: 1,
    state: 'active',
    mac: `02:00:00:00:01:${(0x10 + n).toString(16)}`,
    ...over,
  };
}
const RW: DesiredService = {
  name: 'rw',
  vip: '10.201.0.100',
  port: 3306,
  proto: 'tcp',
  family: 4,
  scheduler: 'maglev',
  ring: { kind: 'maglev', size: 251 },
  onEmpty: 'pass',
  backends: [backend(1), backend(2), backend(3, { weight: 2 })],
};
const V6: DesiredService = {
  name: 'v6',
  vip: 'fd00:201::100',
  port: 3307,
  proto: 'udp',
  family: 6,
  scheduler: 'sh',
  ring: { kind: 'maglev', size: 251 },
  onEmpty: 'drop',
  backends: [
    {
      key: '[fd00:201::11]:3307',
      name: 'a',
      address: 'fd00:201::11',
      port: 3307,
      family: 6,
      weight: 1,
      state: 'active',
      mac: '02:00:00:00:02:11',
    },
  ],
};
const S1: DesiredState = { services: [RW, V6] };

const CLIENT = '10.201.0.2';
const CLIENT_MAC = '02:00:00:00:00:02';
function packet(sport: number, flags: string): Buffer {
  return pk.ether(
    { src: CLIENT_MAC, dst: '02:00:00:00:00:01' },
    pk.ipv4({ src: CLIENT, dst: RW.vip }, pk.tcp({ sport, dport: RW.port, flags })),
  );
}
/** Runs a packet through the program pinned for the instance; returns the verdict and the destination MAC. */
function run(frame: Buffer): { verdict: number; dstMac: string } {
  const prog = openPinnedProgram(path.join(DIR, 'prog'));
  try {
    const r = testRun(prog, { data: frame });
    return { verdict: r.retval, dstMac: macString(r.dataOut.subarray(0, 6)) };
  } finally {
    prog.close();
  }
}

function sh(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
function attachedIds(): { native: number; generic: number } {
  const q = xdp.query(IF);
  return { native: q.programs.native, generic: q.programs.generic };
}
async function rejects(p: Promise<unknown>, code: string): Promise<XdError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof XdError, `expected an XdError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

/** The flow table seed kept in the instance's pinned meta map. */
function pinnedSeed(): number {
  const m = openPinnedXdMap(DIR, 'meta');
  try {
    return m.lookup(0)!.flow_seed;
  } finally {
    m.close();
  }
}

let dp: XdpDataplane | undefined;
let foreign: BpfObject | undefined;

before(() => {
  if (!fs.existsSync('/sys/fs/bpf')) sh('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
  sh('ip', ['netns', 'add', NS]);
  sh('ip', ['link', 'add', IF, 'address', '02:00:00:00:00:01', 'type', 'veth', 'peer', 'name', PEER, 'netns', NS]); // frames below are addressed to this MAC
  sh('ip', ['link', 'set', IF, 'up']);
  sh('ip', ['-n', NS, 'link', 'set', PEER, 'up']);
  // Native XDP_TX on veth is delivered only through a peer running a native XDP program (open() refuses otherwise).
  sh('ip', ['-n', NS, 'link', 'set', 'dev', PEER, 'xdpdrv', 'obj', PASS_OBJ, 'sec', 'xdp']);
  fs.mkdirSync(PIN_ROOT);
});

after(async () => {
  try {
    await dp?.close({ keepState: false });
  } catch {
    /* reported by the test that failed */
  }
  foreign?.close();
  try {
    XdpDataplane.detachInstance(PIN_ROOT, INSTANCE, IF, log);
  } catch {
    /* gone */
  }
  try {
    sh('ip', ['link', 'del', IF]);
  } catch {
    /* gone */
  }
  try {
    sh('ip', ['netns', 'del', NS]);
  } catch {
    /* gone */
  }
  fs.rmSync(PIN_ROOT, { recursive: true, force: true });
});

let firstProgId = 0;
let firstSeed = 0;
let flowPort = 0;
let flowMac = '';

test('open loads the program, pins it and its maps, and attaches it in native mode', async () => {
  dp = await XdpDataplane.open(opts());
  firstProgId = dp.programId;
  assert.equal(dp.adopted, false);
  assert.deepEqual(attachedIds(), { native: dp.programId, generic: 0 });
  assert.ok(fs.existsSync(path.join(DIR, 'prog')));
  const meta = openPinnedXdMap(DIR, 'meta');
  try {
    const m = meta.lookup(0)!;
    assert.deepEqual(
      [m.layout_version, m.layout_hash, m.ring_max, m.max_services, m.max_backends],
      [LAYOUT_VERSION, LAYOUT_HASH, 251, 4, 16],
    );
    firstSeed = m.flow_seed;
    assert.notEqual(firstSeed, 0, 'a random flow table seed');
  } finally {
    meta.close();
  }
});

test('apply writes exactly what the plan says into the pinned maps', async () => {
  await dp!.apply(S1);
  const p = plan(emptyModel(), S1, LIMITS);
  const svc = openPinnedXdMap(DIR, 'svc');
  const be = openPinnedXdMap(DIR, 'be');
  const ring = openPinnedXdMap(DIR, 'ring');
  try {
    assert.equal(svc.entries().length, 2);
    for (const w of p.serviceWrites) {
      const v = svc.lookup({
        vip: addr16(w.key.vip),
        port: w.key.port,
        proto: w.key.proto === 'udp' ? 17 : 6,
        family: w.key.family,
      })!;
      assert.deepEqual(
        { id: v.id, ring_size: v.ring_size, flags: v.flags, sched: v.sched, active_gen: v.active_gen },
        { id: w.id, ring_size: w.ringSize, flags: w.flags, sched: w.sched, active_gen: w.activeGen },
      );
    }
    assert.equal(p.backendWrites.length, 4);
    for (const w of p.backendWrites) {
      const v = be.lookup(w.index)!;
      assert.deepEqual(
        {
          mac: macString(v.mac),
          family: v.family,
          flags: v.flags,
          generation: v.generation,
          service: v.service,
          addr: v.addr,
        },
        {
          mac: w.mac,
          family: w.family,
          flags: w.flags,
          generation: w.generation,
          service: w.serviceId,
          addr: addr16(w.address),
        },
      );
      assert.equal(
        dp!.backendIndex(
          w.serviceId === p.serviceWrites[0]!.id ? 'rw' : 'v6',
          `${w.family === 6 ? `[${w.address}]` : w.address}:${w.family === 6 ? 3307 : 3306}`,
        ),
        w.index,
      );
    }
    for (const r of p.ringWrites) {
      const slots = ring
        .entries()
        .filter(([k]) => k >= (r.serviceId * 2 + r.gen) * 251 && k < (r.serviceId * 2 + r.gen + 1) * 251);
      assert.deepEqual(
        slots.map(([, v]) => v),
        [...r.ring],
      );
    }
  } finally {
    svc.close();
    be.close();
    ring.close();
  }
});

test("apply marks every service's port and protocol in the VIP ports map, and clears a port once no service has it", async () => {
  const vport = openPinnedXdMap(DIR, 'vport');
  const bits = (): [number, bigint][] => vport.entries().filter(([, v]) => v !== 0n);
  try {
    const both = vportWords(S1.services);
    // TCP 3306: word 3306 >> 6, bit 3306 & 63; UDP 3307: the same in the UDP half (1024 words on).
    assert.deepEqual(
      [...both],
      [
        [51, 1n << 42n],
        [1024 + 51, 1n << 43n],
      ],
    );
    assert.deepEqual(bits(), [...both]);
    await dp!.apply({ services: [RW] });
    assert.deepEqual(bits(), [...vportWords([RW])], "V6's port is off once its service is gone");
    await dp!.apply(S1);
    assert.deepEqual(bits(), [...both]);
  } finally {
    vport.close();
  }
});

test('a SYN to the VIP is sent to the backend its ring slot names, and its handshake ACK makes it a flow (in the probation table until proven)', () => {
  // Find a client port whose ring slot is backend 1 or 2 (so the drain below moves its new flows).
  for (let sport = 40000; sport < 40100; sport++) {
    const r = run(packet(sport, 'S'));
    assert.equal(r.verdict, XDP_TX);
    if (r.dstMac !== backend(3).mac) {
      flowPort = sport;
      flowMac = r.dstMac;
      break;
    }
  }
  assert.ok(flowPort > 0, 'some client port hashes to backend 1 or 2');
  const ack = run(packet(flowPort, 'A'));
  assert.equal(ack.dstMac, flowMac, 'the ACK follows the SYN');
  const flows = openPinnedXdMap(DIR, 'prb4');
  try {
    const f = flows.entries().find(([k]) => k.sport === flowPort)!;
    assert.ok(f, 'flow entry created');
    assert.equal(f[1].backend, dp!.backendIndex('rw', [backend(1), backend(2)].find((b) => b.mac === flowMac)!.key));
  } finally {
    flows.close();
  }
});

test('close with keepState leaves the program attached and the maps pinned', async () => {
  await dp!.close({ keepState: true });
  dp = undefined;
  assert.equal(attachedIds().native, firstProgId);
  const flows = openPinnedXdMap(DIR, 'prb4');
  try {
    assert.ok(flows.entries().some(([k]) => k.sport === flowPort));
  } finally {
    flows.close();
  }
});

test('a second open adopts the pinned state and swaps in a new program atomically', async () => {
  logLines.length = 0;
  dp = await XdpDataplane.open(opts());
  assert.equal(dp.adopted, true);
  assert.notEqual(dp.programId, firstProgId);
  assert.deepEqual(attachedIds(), { native: dp.programId, generic: 0 });
  assert.ok(!logLines.some((l) => JSON.parse(l).level >= 40), `no warning: ${logLines.join('')}`);
});

test('after adoption an unchanged desired state rewrites only the rings, once, keeping ids and indexes', async () => {
  const p = plan(emptyModel(), S1, LIMITS);
  await dp!.apply(S1);
  assert.deepEqual(dp!.lastApply, { backends: 0, rings: 2, slots: 2 * 251, services: 2, deleted: 0, cleared: 0 });
  for (const w of p.backendWrites) {
    const b = [...RW.backends, ...V6.backends].find((x) => x.address === w.address)!;
    assert.equal(dp!.backendIndex(w.serviceId === p.serviceWrites[0]!.id ? 'rw' : 'v6', b.key), w.index);
  }
  await dp!.apply(S1);
  assert.deepEqual(dp!.lastApply, { backends: 0, rings: 0, slots: 0, services: 0, deleted: 0, cleared: 0 });
});

test('the reloaded program hashes the pinned flow table with the seed the instance was created with', () => {
  // A flow user space puts where that seed hashes it, on a backend other than the one the ring
  // gave its SYN, is forwarded from it.
  assert.equal(pinnedSeed(), firstSeed, 'the seed is kept');
  const flow4 = openPinnedXdMap(DIR, 'flow4');
  const be = openPinnedXdMap(DIR, 'be');
  try {
    const t = FlowTable.v4(flow4, firstSeed);
    const ringMac = run(packet(41900, 'S')).dstMac;
    const other = [backend(1), backend(2), backend(3)].find((b) => b.mac !== ringMac)!;
    const index = dp!.backendIndex('rw', other.key)!;
    const key = {
      saddr: addr16(CLIENT).readUInt32BE(0),
      daddr: addr16(RW.vip).readUInt32BE(0),
      sport: 41900,
      dport: RW.port,
      proto: 6,
    };
    t.update(key, { backend: index, generation: be.lookup(index)!.generation, last_seen_ns: process.hrtime.bigint() });
    assert.equal(run(packet(41900, 'A')).dstMac, other.mac, 'found in the bucket the kept seed gives');
    assert.ok(t.delete(key));
  } finally {
    flow4.close();
    be.close();
  }
});

test('a flow created before the re-open keeps its backend after it, even once that backend takes no new flows', async () => {
  assert.equal(run(packet(flowPort, 'A')).dstMac, flowMac);
  const drained: DesiredState = {
    services: [
      { ...RW, backends: RW.backends.map((b) => (b.mac === flowMac ? { ...b, state: 'draining' as const } : b)) },
      V6,
    ],
  };
  await dp!.apply(drained);
  assert.equal(run(packet(flowPort, 'A')).dstMac, flowMac, 'the established flow stays');
  for (let sport = 41000; sport < 41040; sport++)
    assert.notEqual(run(packet(sport, 'S')).dstMac, flowMac, 'new flows avoid the draining backend');
});

test('a weight change writes only the slots that differ into the inactive generation, and the live ring is the whole new table', async () => {
  // The generation about to be written holds S1's ring (written by the first apply after adoption).
  const changed: DesiredState = {
    services: [{ ...RW, backends: [backend(1), backend(2, { weight: 3 }), backend(3, { weight: 2 })] }, V6],
  };
  await dp!.apply(changed);
  const want = buildRing(
    changed.services[0]!,
    new Map(RW.backends.map((b) => [b.key, dp!.backendIndex('rw', b.key)!])),
    LIMITS.ringMax,
  ).ring;
  const before = buildRing(
    RW,
    new Map(RW.backends.map((b) => [b.key, dp!.backendIndex('rw', b.key)!])),
    LIMITS.ringMax,
  ).ring;
  const differing = want.filter((v, i) => v !== before[i]).length;
  assert.ok(differing > 0 && differing < want.length);
  assert.deepEqual({ rings: dp!.lastApply.rings, slots: dp!.lastApply.slots }, { rings: 1, slots: differing });
  assert.deepEqual(
    Array.from({ length: want.length }, (_, i) => dp!.ringSlot('rw', i)),
    [...want],
  );
});

test('an ipvs-mh service keeps its table when a backend is drained, and new flows on its slots go where IPVS mh-fallback sends them', async () => {
  const mhBackends = [
    backend(4, { weight: 2, configWeight: 2 }),
    backend(5, { configWeight: 1 }),
    backend(6, { configWeight: 1 }),
  ];
  const MH: DesiredService = {
    ...RW,
    name: 'mh',
    port: 3308,
    ring: { kind: 'ipvs-mh', size: 251 },
    backends: mhBackends,
  };
  const base: DesiredState = { services: [RW, V6] };
  try {
    await dp!.apply({ services: [...base.services, MH] });
    const idOf = new Map(mhBackends.map((b) => [b.key, dp!.backendIndex('mh', b.key)!]));
    const dests = mhBackends
      .map((b) => ({ id: idOf.get(b.key)!, address: b.address, port: b.port, family: b.family, weight: b.weight }))
      .reverse();
    const table = buildIpvsMh(dests, 251);
    assert.deepEqual(
      Array.from({ length: 251 }, (_, i) => dp!.ringSlot('mh', i)),
      [...table],
      'the live ring is the kernel table',
    );
    const drainedB = mhBackends[0]!;
    await dp!.apply({
      services: [
        ...base.services,
        { ...MH, backends: [{ ...drainedB, weight: 0, state: 'draining' }, mhBackends[1]!, mhBackends[2]!] },
      ],
    });
    assert.equal(dp!.lastApply.rings, 0, 'a drain does not change the table (the kernel keeps last_weight)');
    const now = dests.map((d) => (d.id === idOf.get(drainedB.key) ? { ...d, weight: 0, lastWeight: d.weight } : d));
    const macOf = new Map(mhBackends.map((b) => [idOf.get(b.key)!, b.mac!]));
    let walked = 0;
    for (let sport = 42000; sport < 42100; sport++) {
      const want = ipvsMhLookup(
        table,
        now,
        { address: CLIENT, port: sport, family: 4 },
        { withPort: true, fallback: true },
      )!;
      if (ipvsMhLookup(table, now, { address: CLIENT, port: sport, family: 4 }, { withPort: true }) === undefined)
        walked++;
      const frame = pk.ether(
        { src: CLIENT_MAC, dst: '02:00:00:00:00:01' },
        pk.ipv4({ src: CLIENT, dst: MH.vip }, pk.tcp({ sport, dport: MH.port, flags: 'S' })),
      );
      const r = run(frame);
      assert.equal(r.verdict, XDP_TX, `port ${sport}`);
      assert.equal(r.dstMac, macOf.get(want.id), `port ${sport}`);
    }
    assert.ok(walked > 20, `only ${walked} of 100 ports hashed onto the drained backend`);
  } finally {
    await dp!.apply(base);
  }
});

test('changed ring_size or max_backends is refused with XD_ERR_LAYOUT_MISMATCH naming the limit and the fix', async () => {
  await dp!.close({ keepState: true });
  dp = undefined;
  const attached = attachedIds().native;
  const e1 = await rejects(XdpDataplane.open(opts({ ringMax: 509 })), 'XD_ERR_LAYOUT_MISMATCH');
  assert.match(e1.message, /ring size 251 \(config says 509\)/);
  assert.match(e1.message, /stop --detach/);
  const e2 = await rejects(XdpDataplane.open(opts({ maxBackends: 32 })), 'XD_ERR_LAYOUT_MISMATCH');
  assert.match(e2.message, /max_backends 16 \(config says 32\)/);
  assert.match(e2.message, /stop --detach/);
  assert.equal(attachedIds().native, attached, 'the running program is left alone');
  assert.ok(fs.existsSync(path.join(DIR, 'prog')));
});

test('a pinned meta with another layout hash is replaced cleanly with a warning', async () => {
  const meta = openPinnedXdMap(DIR, 'meta');
  try {
    const m = meta.lookup(0)!;
    meta.update(0, { ...m, layout_hash: m.layout_hash ^ 1n });
  } finally {
    meta.close();
  }
  logLines.length = 0;
  dp = await XdpDataplane.open(opts());
  assert.equal(dp.adopted, false);
  assert.deepEqual(attachedIds(), { native: dp.programId, generic: 0 });
  const warn = logLines.map((l) => JSON.parse(l)).find((l) => l.level === 40);
  assert.ok(warn && /another layout than this build: replacing it/.test(warn.msg), logLines.join(''));
  const flows = openPinnedXdMap(DIR, 'flow4');
  try {
    assert.equal(FlowTable.v4(flows, 0).count(), 0, 'fresh maps'); // a walk: no key hashed
  } finally {
    flows.close();
  }
  const seed = pinnedSeed();
  assert.ok(seed !== 0 && seed !== firstSeed, `a new instance draws a new seed (${seed} after ${firstSeed})`);
  const m = openPinnedXdMap(DIR, 'meta');
  try {
    assert.equal(m.lookup(0)!.layout_hash, LAYOUT_HASH);
  } finally {
    m.close();
  }
});

test('close without keepState detaches the program and removes the pins', async () => {
  await dp!.close({ keepState: false });
  dp = undefined;
  assert.deepEqual(attachedIds(), { native: 0, generic: 0 });
  assert.equal(fs.existsSync(DIR), false);
});

test('a foreign XDP program on the interface is refused with XD_ERR_XDP_ATTACH naming its id and the fix', async () => {
  foreign = await BpfObject.load(PASS_OBJ);
  const prog = foreign.program();
  xdp.attach(IF, prog, 'native');
  try {
    const e = await rejects(XdpDataplane.open(opts()), 'XD_ERR_XDP_ATTACH');
    assert.match(e.message, new RegExp(`id ${prog.id}\\b`));
    assert.match(e.message, new RegExp(`ip link set dev ${IF} xdp off`));
    assert.equal(attachedIds().native, prog.id, 'the foreign program stays');
    assert.equal(fs.existsSync(DIR), false, 'nothing is left pinned');
  } finally {
    xdp.detach(IF, 'native');
    foreign.close();
    foreign = undefined;
  }
});

test('detachInstance removes a kept instance without a running daemon', async () => {
  const d = await XdpDataplane.open(opts());
  await d.apply(S1);
  await d.close({ keepState: true });
  assert.equal(attachedIds().native, d.programId);
  const msg = XdpDataplane.detachInstance(PIN_ROOT, INSTANCE, IF, log);
  assert.match(msg, /detached/);
  assert.deepEqual(attachedIds(), { native: 0, generic: 0 });
  assert.equal(fs.existsSync(DIR), false);
});

test('measureApply times ring builds and one-weight-change applies on its own veth and removes it', async () => {
  const prefix = `xdbm${process.pid}`.slice(0, 12);
  const r = await measureApply({ ringSize: 251, backends: 10, samples: 2, prefix, objectPath: OBJ, pinDir: PIN_ROOT });
  assert.equal(r.ringBuildMs.length, 2);
  assert.equal(r.applyMs.length, 2);
  assert.ok(r.applyMs.every((x) => x > 0) && r.ringBuildMs.every((x) => x > 0));
  assert.ok(
    r.slotsWritten.every((n) => n > 0 && n < 251),
    `slots ${r.slotsWritten}`,
  );
  assert.throws(() => xdp.resolveInterface(`${prefix}a`), /does not exist|No such device/);
  assert.equal(fs.existsSync(path.join(PIN_ROOT, prefix)), false);
});
