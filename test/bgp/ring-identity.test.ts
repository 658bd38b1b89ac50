// Ring identity across directors, the contract ECMP relies on: two dataplanes built from the
// same config hold byte-identical rings, and a mid-stream packet (non-SYN, no flow entry) that
// ECMP moves to the second director goes to the backend the first director chose.
//
// Resources (prefix xri<pid>): two veths xri<pid>a1/a2 in this namespace (one XdpDataplane each,
// native XDP), their peers in namespace xri<pid> with xdp_pass, pins under /sys/fs/bpf/xri<pid>.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import * as pk from '../lib/packet';
import { openPinnedProgram, openPinnedXdMap, testRun, getNative } from '../../src/bpf';
import { XdpDataplane, instancePinDir, type XdpOptions } from '../../src/dataplane/xdp/dataplane';
import { macString } from '../../src/dataplane/xdp/layout';
import { parseConfig } from '../../src/config';
import { desiredState } from '../../src/desired';
import type { DesiredState } from '../../src/state/types';

const PREFIX = `xri${process.pid}`;
const NS = PREFIX;
const PIN_ROOT = `/sys/fs/bpf/${PREFIX}`;
const OBJ = path.resolve(__dirname, '../../bpf/xdirector.bpf.o');
const PASS_OBJ = path.resolve(__dirname, '../../bpf/tools/xdp_pass.bpf.o');
const XDP_TX = getNative().constants.XDP_TX;
const RING = 65537;
const log = pino({ level: 'silent' });

// One config, as every director of the fabric would have it.
const CONFIG = parseConfig(
  `instance: ring
interface: eth0
dataplane: xdp
xdp: { ring_size: ${RING}, max_services: 2, max_backends: 16 }
services:
  - name: mysql
    vip: 10.77.0.100
    port: 3306
    check: none
    backends:
      - { address: 10.77.0.11, name: r1, mac: "02:77:00:00:00:11" }
      - { address: 10.77.0.12, name: r2, mac: "02:77:00:00:00:12" }
      - { address: 10.77.0.13, name: r3, mac: "02:77:00:00:00:13", weight: 2 }
      - { address: 10.77.0.14, name: r4, mac: "02:77:00:00:00:14" }
`,
  'fabric.yaml',
);
const STATE: DesiredState = desiredState({
  services: CONFIG.services,
  health: null,
  drained: new Set(),
  macs: new Map(),
}).state;

const directors = [1, 2].map((n) => ({
  n,
  ifname: `${PREFIX}a${n}`,
  peer: `${PREFIX}b${n}`,
  mac: `02:77:00:00:00:0${n + 1}`,
  instance: `d${n}`,
  dp: undefined as XdpDataplane | undefined,
}));

function sh(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function opts(d: (typeof directors)[number]): XdpOptions {
  return {
    instance: d.instance,
    ifname: d.ifname,
    mode: 'native',
    pinDir: PIN_ROOT,
    ringMax: RING,
    maxServices: 2,
    maxBackends: 16,
    flowTableSize: 4096,
    objectPath: OBJ,
    log,
  };
}

/** The live ring of the only service, as bytes. */
function ringBytes(d: (typeof directors)[number]): Buffer {
  const dir = instancePinDir(PIN_ROOT, d.instance);
  const svc = openPinnedXdMap(dir, 'svc');
  const ring = openPinnedXdMap(dir, 'ring');
  try {
    const entries = svc.entries();
    assert.equal(entries.length, 1);
    const v = entries[0]![1];
    const base = (v.id * 2 + (v.active_gen & 1)) * RING;
    const out = Buffer.alloc(RING * 4);
    for (let slot = 0; slot < RING; slot++) out.writeUInt32LE(Number(ring.lookup(base + slot)), slot * 4);
    return out;
  } finally {
    svc.close();
    ring.close();
  }
}

/** A client packet to the VIP through director d's pinned program: verdict and the backend MAC it was sent to. */
function send(d: (typeof directors)[number], sport: number, flags: string): { verdict: number; mac: string } {
  const frame = pk.ether(
    { src: '02:78:00:00:00:01', dst: d.mac },
    pk.ipv4({ src: '10.78.0.10', dst: '10.77.0.100' }, pk.tcp({ sport, dport: 3306, flags })),
  );
  const prog = openPinnedProgram(path.join(instancePinDir(PIN_ROOT, d.instance), 'prog'));
  try {
    const r = testRun(prog, { data: frame });
    return { verdict: r.retval, mac: macString(r.dataOut.subarray(0, 6)) };
  } finally {
    prog.close();
  }
}

before(async () => {
  if (!fs.existsSync('/sys/fs/bpf')) sh('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
  sh('ip', ['netns', 'add', NS]);
  fs.mkdirSync(PIN_ROOT);
  for (const d of directors) {
    sh('ip', ['link', 'add', d.ifname, 'address', d.mac, 'type', 'veth', 'peer', 'name', d.peer, 'netns', NS]);
    sh('ip', ['link', 'set', d.ifname, 'up']);
    sh('ip', ['-n', NS, 'link', 'set', d.peer, 'up']);
    sh('ip', ['-n', NS, 'link', 'set', 'dev', d.peer, 'xdpdrv', 'obj', PASS_OBJ, 'sec', 'xdp']);
  }
});

after(async () => {
  for (const d of directors) {
    try {
      await d.dp?.close({ keepState: false });
    } catch {
      /* reported by the failing test */
    }
    try {
      XdpDataplane.detachInstance(PIN_ROOT, d.instance, d.ifname, log);
    } catch {
      /* gone */
    }
    try {
      sh('ip', ['link', 'del', d.ifname]);
    } catch {
      /* gone */
    }
  }
  try {
    sh('ip', ['netns', 'del', NS]);
  } catch {
    /* gone */
  }
  fs.rmSync(PIN_ROOT, { recursive: true, force: true });
});

test('two dataplanes built from the same config hold byte-identical rings', async () => {
  for (const d of directors) {
    d.dp = await XdpDataplane.open(opts(d));
    await d.dp.apply(STATE);
  }
  const [a, b] = directors.map(ringBytes);
  assert.equal(a!.length, RING * 4);
  assert.ok(a!.equals(b!), 'the two rings differ');
  // Every backend has slots (the ring is really filled), r3 about twice the others.
  const counts = new Map<number, number>();
  for (let i = 0; i < RING; i++) counts.set(a!.readUInt32LE(i * 4), (counts.get(a!.readUInt32LE(i * 4)) ?? 0) + 1);
  assert.equal(counts.size, 4);
  assert.ok(!counts.has(0), 'a slot points at no backend');
});

test('a mid-stream packet with no flow entry at the second director goes to the backend the first chose at SYN', () => {
  const [d1, d2] = directors;
  let moved = 0;
  for (let sport = 20000; sport < 20400; sport++) {
    const syn = send(d1!, sport, 'S');
    assert.equal(syn.verdict, XDP_TX);
    const ack = send(d2!, sport, 'A');
    assert.equal(ack.verdict, XDP_TX, `port ${sport}: the second director did not forward the mid-stream packet`);
    assert.equal(ack.mac, syn.mac, `port ${sport}: SYN at d1 went to ${syn.mac}, mid-stream at d2 to ${ack.mac}`);
    moved++;
  }
  assert.equal(moved, 400);
});

test('the backends share the flows by weight at the first director (the ring is not degenerate)', () => {
  const seen = new Map<string, number>();
  for (let sport = 30000; sport < 32000; sport++) {
    const r = send(directors[0]!, sport, 'S');
    seen.set(r.mac, (seen.get(r.mac) ?? 0) + 1);
  }
  assert.equal(seen.size, 4);
  const r3 = seen.get('02:77:00:00:00:13')! / 2000;
  assert.ok(r3 > 0.32 && r3 < 0.48, `r3 (weight 2 of 5) got ${(r3 * 100).toFixed(1)}%`);
});
