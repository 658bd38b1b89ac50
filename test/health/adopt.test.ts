// Hot restart: health starts from the states the adopted dataplane was pinned
// with, and the first results count towards rise/fall instead of deciding alone
// (one slow first login must not mark a healthy writer down and re-hash its flows).
//
// Resources: TCP listeners on 127.0.0.1 port 0 (closed in after()); for the last
// test a namespace xad<pid> with the veth peer xad<pid>b, the veth xad<pid>a here
// (program attached in generic mode) and pins under /sys/fs/bpf/xad<pid>, removed
// in after().
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import pino from 'pino';
import { HealthMonitor } from '../../src/health/monitor';
import { initialFromPinned } from '../../src/health/adopt';
import { desiredState } from '../../src/desired';
import type { ServiceConfig } from '../../src/config';
import { healthInputs, testConfig } from '../lib/config';
import type { HealthSnapshot } from '../../src/health/types';
import { XdpDataplane } from '../../src/dataplane/xdp/dataplane';
import { IpvsApi, IpvsDataplane } from '../../src/dataplane/ipvs/dataplane';
import type {
  IpvsDest,
  IpvsDestEntry,
  IpvsService,
  IpvsServiceEntry,
  IpvsServiceKey,
} from '../../src/dataplane/ipvs/codec';
import { destKeyString, serviceKeyString } from '../../src/dataplane/ipvs/plan';
import type { Dataplane, DesiredBackend, DesiredState } from '../../src/state/types';
import { captureLog } from './cluster';

const PREFIX = `xad${process.pid}`;
const servers: net.Server[] = [];
let cleanupKernel = false;
after(async () => {
  for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
  if (cleanupKernel) {
    try {
      XdpDataplane.detachInstance(`/sys/fs/bpf/${PREFIX}`, 'i1', `${PREFIX}a`, pino({ level: 'silent' }));
    } catch {
      /* gone */
    }
    try {
      execFileSync('ip', ['link', 'del', `${PREFIX}a`], { stdio: 'ignore' });
    } catch {
      /* gone */
    }
    try {
      execFileSync('ip', ['netns', 'del', PREFIX], { stdio: 'ignore' });
    } catch {
      /* gone */
    }
    fs.rmSync(`/sys/fs/bpf/${PREFIX}`, { recursive: true, force: true });
  }
});

/** A port where nothing listens (a listener opened and closed). */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Runs `rounds` check rounds and returns the snapshot after each. */
async function rounds(hm: HealthMonitor, n: number): Promise<HealthSnapshot[]> {
  const out: HealthSnapshot[] = [];
  hm.start();
  try {
    for (let i = 0; i < n; i++) {
      await hm.nextRound();
      out.push(hm.snapshot());
    }
  } finally {
    await hm.stop();
  }
  return out;
}

const [RW, RO] = testConfig({
  monitor: { user: 'monitor', password_env: 'XD_ADOPT_TEST_PW' },
  services: [
    {
      name: 'rw',
      port: 3306,
      check: 'mysql',
      pool: 'writer',
      backends: [
        { address: '10.203.0.11', port: 3306, name: 'db1' },
        { address: '10.203.0.12', port: 3306, name: 'db2' },
      ],
    },
    {
      name: 'ro',
      port: 3306,
      check: 'mysql',
      pool: 'readers',
      backends: [
        { address: '10.203.0.11', port: 3306, name: 'db1' },
        { address: '10.203.0.12', port: 3306, name: 'db2' },
        { address: '10.203.0.13', port: 3306, name: 'db3' },
      ],
    },
  ],
}).services as [ServiceConfig, ServiceConfig];
/** The state desired from a snapshot for the one backend of `svc`. */
const stateOf = (svc: ServiceConfig, s: HealthSnapshot): string =>
  desiredState({ services: [svc], health: s, drained: new Set(), macs: new Map() }).state.services[0]!.backends[0]!
    .state;

test('pinned states become initial health: the active writer-pool backend is the writer, active readers are eligible replicas, down everywhere is down', () => {
  const init = initialFromPinned(
    [RW, RO],
    [
      { vip: RW.vip, port: 3306, proto: 'tcp', address: '10.203.0.11', state: 'active' },
      { vip: RW.vip, port: 3306, proto: 'tcp', address: '10.203.0.12', state: 'down' },
      { vip: RO.vip, port: 3306, proto: 'tcp', address: '10.203.0.11', state: 'down' },
      { vip: RO.vip, port: 3306, proto: 'tcp', address: '10.203.0.12', state: 'active' },
      { vip: RO.vip, port: 3306, proto: 'tcp', address: '10.203.0.13', state: 'down' },
    ],
  );
  assert.deepEqual(Object.fromEntries(init.backends), {
    '10.203.0.11:3306': { up: true, role: 'primary' },
    '10.203.0.12:3306': { up: true, role: 'replica', readerEligible: true },
    '10.203.0.13:3306': { up: false },
  });
  assert.deepEqual(init.writers, { rw: '10.203.0.11:3306' });
});

test('a backend the pinned maps do not hold gets no initial state (its first result decides, as for a new backend)', () => {
  const init = initialFromPinned(
    [RW],
    [{ vip: '10.203.0.200', port: 3306, proto: 'tcp', address: '10.203.0.11', state: 'active' }],
  );
  assert.equal(init.backends.size, 0);
});

test('a backend that starts up from the pinned state needs fall failures to go down', async () => {
  const port = await deadPort();
  const inputs = healthInputs({
    services: [{ name: 'web', check: 'tcp', backends: [{ address: '127.0.0.1', port, name: 'w1' }] }],
    health: { interval: 50, timeout: 40, fall: 3, rise: 2 },
  });
  const svc = inputs.services[0]!;
  const hm = new HealthMonitor({
    ...inputs,
    log: captureLog().log,
    initial: { backends: new Map([[`127.0.0.1:${port}`, { up: true }]]) },
  });
  const snaps = await rounds(hm, 3);
  assert.deepEqual(
    snaps.map((s) => s.backends[0]!.up),
    [true, true, false],
  );
  assert.deepEqual(
    snaps.map((s) => stateOf(svc, s)),
    ['active', 'active', 'down'],
  );
});

test('the pinned writer stays the writer through a failed first login, until fall failures', async () => {
  const port = await deadPort();
  process.env.XD_ADOPT_TEST_PW = 'x';
  const inputs = healthInputs({
    services: [{ name: 'rw', check: 'mysql', pool: 'writer', backends: [{ address: '127.0.0.1', port, name: 'db1' }] }],
    monitor: { user: 'monitor', password_env: 'XD_ADOPT_TEST_PW', connect_timeout: 40 },
    health: { interval: 60, timeout: 40, fall: 2, rise: 2 },
  });
  const svc = inputs.services[0]!;
  const key = `127.0.0.1:${port}`;
  const hm = new HealthMonitor({
    ...inputs,
    log: captureLog().log,
    initial: { backends: new Map([[key, { up: true, role: 'primary' as const }]]), writers: { rw: key } },
  });
  const snaps = await rounds(hm, 2);
  assert.equal(snaps[0]!.backends[0]!.consecutiveFail, 1, 'the first login failed');
  assert.equal(snaps[0]!.writers.rw, key);
  assert.equal(stateOf(svc, snaps[0]!), 'active');
  assert.equal(snaps[1]!.backends[0]!.up, false, 'down after fall (2) failures');
  assert.equal(snaps[1]!.writers.rw, null);
});

test('a backend pinned down needs rise successes to come up', async () => {
  const s = net.createServer((c) => c.destroy());
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  const port = (s.address() as net.AddressInfo).port;
  const hm = new HealthMonitor({
    ...healthInputs({
      services: [{ name: 'web', check: 'tcp', backends: [{ address: '127.0.0.1', port, name: 'w1' }] }],
      health: { interval: 50, timeout: 40, fall: 3, rise: 2 },
    }),
    log: captureLog().log,
    initial: { backends: new Map([[`127.0.0.1:${port}`, { up: false }]]) },
  });
  const snaps = await rounds(hm, 2);
  assert.deepEqual(
    snaps.map((x) => x.backends[0]!.up),
    [false, true],
  );
});

test('a re-opened XDP dataplane reports each backend in the state it was pinned in', async () => {
  cleanupKernel = true;
  const sh = (args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (!fs.existsSync('/sys/fs/bpf')) execFileSync('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
  sh(['netns', 'add', PREFIX]);
  sh(['link', 'add', `${PREFIX}a`, 'type', 'veth', 'peer', 'name', `${PREFIX}b`, 'netns', PREFIX]);
  sh(['link', 'set', `${PREFIX}a`, 'up']);
  fs.mkdirSync(`/sys/fs/bpf/${PREFIX}`);
  const log = pino({ level: 'silent' });
  const opts = {
    instance: 'i1',
    ifname: `${PREFIX}a`,
    mode: 'generic' as const,
    pinDir: `/sys/fs/bpf/${PREFIX}`,
    ringMax: 251,
    maxServices: 4,
    maxBackends: 16,
    flowTableSize: 1024,
    objectPath: path.resolve(__dirname, '../../bpf/xdirector.bpf.o'),
    log,
  };
  const be = (n: number, state: DesiredBackend['state']): DesiredBackend => ({
    key: `10.203.0.1${n}:3306`,
    name: `db${n}`,
    address: `10.203.0.1${n}`,
    port: 3306,
    family: 4,
    weight: state === 'active' ? 1 : 0,
    state,
    mac: `02:00:00:00:03:1${n}`,
  });
  const state: DesiredState = {
    services: [
      {
        name: 'rw',
        vip: RW.vip,
        port: 3306,
        proto: 'tcp',
        family: 4,
        scheduler: 'maglev',
        ring: { kind: 'maglev', size: 251 },
        onEmpty: 'pass',
        backends: [be(1, 'active'), be(2, 'down')],
      },
      {
        name: 'ro',
        vip: RO.vip,
        port: 3306,
        proto: 'tcp',
        family: 4,
        scheduler: 'maglev',
        ring: { kind: 'maglev', size: 251 },
        onEmpty: 'pass',
        backends: [be(1, 'down'), be(2, 'active'), be(3, 'draining')],
      },
    ],
  };
  const first = await XdpDataplane.open(opts);
  try {
    await first.apply(state);
    assert.deepEqual(first.pinnedBackends(), [], 'a fresh load adopted nothing');
  } finally {
    await first.close({ keepState: true });
  }
  const second = await XdpDataplane.open(opts);
  try {
    assert.equal(second.adopted, true);
    const pinned = second
      .pinnedBackends()
      .map((p) => `${p.vip} ${p.address} ${p.state}`)
      .sort();
    assert.deepEqual(
      pinned,
      [
        `${RW.vip} 10.203.0.11 active`,
        `${RW.vip} 10.203.0.12 down`,
        `${RO.vip} 10.203.0.11 down`,
        `${RO.vip} 10.203.0.12 active`,
        `${RO.vip} 10.203.0.13 draining`,
      ].sort(),
    );
    const init = initialFromPinned([RW, RO], second.pinnedBackends());
    assert.deepEqual(init.writers, { rw: '10.203.0.11:3306' });
    assert.deepEqual([...init.backends.entries()].map(([k, v]) => `${k} ${v.up ? 'up' : 'down'}`).sort(), [
      '10.203.0.11:3306 up',
      '10.203.0.12:3306 up',
      '10.203.0.13:3306 up',
    ]);
  } finally {
    await second.close({ keepState: false });
  }
});

/** The kernel's IPVS table, kept across two dataplanes as the kernel keeps it across a restart (this kernel has no IPVS; test/vm runs the real one). */
class KernelIpvs implements IpvsApi {
  readonly familyId = 0x20;
  readonly services = new Map<string, { svc: IpvsServiceEntry; dests: IpvsDestEntry[] }>();
  private svc(k: IpvsServiceKey) {
    const e = this.services.get(serviceKeyString(k));
    if (!e) throw new Error(`no service ${serviceKeyString(k)}`);
    return e;
  }
  async info() {
    return { version: 0x010201, connTabSize: 4096 };
  }
  async listServices() {
    return [...this.services.values()].map((e) => ({ ...e.svc }));
  }
  async listDests(k: IpvsServiceKey) {
    return this.svc(k).dests.map((d) => ({ ...d }));
  }
  async addService(s: IpvsService) {
    this.services.set(serviceKeyString(s), { svc: { ...s }, dests: [] });
  }
  async editService(s: IpvsService) {
    this.svc(s).svc = { ...s };
  }
  async deleteService(s: IpvsServiceKey) {
    this.services.delete(serviceKeyString(s));
  }
  async addDest(k: IpvsServiceKey, d: IpvsDest) {
    this.svc(k).dests.push({ ...d, activeConns: 0, inactConns: 0, persistConns: 0 });
  }
  async editDest(k: IpvsServiceKey, d: IpvsDest) {
    const e = this.svc(k);
    e.dests = e.dests.map((x) => (destKeyString(x) === destKeyString(d) ? { ...x, ...d } : x));
  }
  async deleteDest(k: IpvsServiceKey, d: Pick<IpvsDest, 'addr' | 'port'>) {
    const e = this.svc(k);
    e.dests = e.dests.filter((x) => destKeyString(x) !== destKeyString(d));
  }
  close() {
    /* the kernel's table outlives the process */
  }
}

test("after a restart on IPVS, adopted backends start from the kernel's dests and need fall failures to go down, as on XDP", async () => {
  const port = await deadPort();
  const inputs = healthInputs({
    services: [
      {
        name: 'web',
        check: 'tcp',
        backends: [
          { address: '127.0.0.1', port, name: 'w1' },
          { address: '127.0.0.2', port, name: 'w2' },
        ],
      },
    ],
    health: { interval: 50, timeout: 40, fall: 3, rise: 2 },
  });
  const svc = inputs.services[0]!;
  const be = (n: number, state: DesiredBackend['state']): DesiredBackend => ({
    key: `127.0.0.${n}:${port}`,
    name: `w${n}`,
    address: `127.0.0.${n}`,
    port,
    family: 4,
    weight: state === 'active' ? 1 : 0,
    configWeight: 1,
    state,
  });
  const kernel = new KernelIpvs();
  const log = pino({ level: 'silent' });
  // The run before the restart: w1 active, w2 draining.
  const before: Dataplane = await IpvsDataplane.open({ client: kernel, sysctls: false, log });
  assert.deepEqual(before.pinnedBackends?.() ?? [], [], 'an empty kernel adopts nothing');
  await before.apply({
    services: [
      {
        name: 'web',
        vip: svc.vip,
        port,
        proto: 'tcp',
        family: 4,
        scheduler: 'wrr',
        ring: { kind: 'maglev', size: 251 },
        onEmpty: 'pass',
        backends: [be(1, 'active'), be(2, 'draining')],
      },
    ],
  });
  await before.close({ keepState: true });
  // The restart: what the daemon does (src/daemon/run.ts adoptedHealth), for whichever dataplane it opened.
  const dp: Dataplane = await IpvsDataplane.open({ client: kernel, sysctls: false, log });
  const pinned = dp.pinnedBackends?.() ?? [];
  assert.deepEqual(
    pinned.map((p) => `${p.vip}:${p.port}/${p.proto} ${p.address} ${p.state}`),
    [`${svc.vip}:${port}/tcp 127.0.0.1 active`, `${svc.vip}:${port}/tcp 127.0.0.2 draining`],
  );
  const hm = new HealthMonitor({ ...inputs, log: captureLog().log, initial: initialFromPinned([svc], pinned) });
  const snaps = await rounds(hm, 3);
  assert.deepEqual(
    snaps.map((x) => x.backends.map((b) => b.up)),
    [
      [true, true],
      [true, true],
      [false, false],
    ],
    'up through two failed checks, down at fall (3)',
  );
  assert.equal(stateOf(svc, snaps[0]!), 'active', 'the first failed result does not take w1 out of IPVS');
});

test('after a restart on IPVS, a backend that was down (no dest in the kernel) needs rise successes to come back, as on XDP', async () => {
  // A live port: w3 answers from its first check, so only the adopted state keeps it out.
  const srv = net.createServer((c) => c.destroy());
  await new Promise<void>((r) => srv.listen(0, '0.0.0.0', r));
  servers.push(srv);
  const port = (srv.address() as net.AddressInfo).port;
  const inputs = healthInputs({
    services: [
      {
        name: 'web',
        check: 'tcp',
        backends: [
          { address: '127.0.0.1', port, name: 'w1' },
          { address: '127.0.0.3', port, name: 'w3' },
        ],
      },
    ],
    health: { interval: 50, timeout: 40, fall: 3, rise: 2 },
  });
  const svc = inputs.services[0]!;
  const be = (n: number, state: DesiredBackend['state']): DesiredBackend => ({
    key: `127.0.0.${n}:${port}`,
    name: `w${n}`,
    address: `127.0.0.${n}`,
    port,
    family: 4,
    weight: state === 'active' ? 1 : 0,
    configWeight: 1,
    state,
  });
  const kernel = new KernelIpvs();
  const log = pino({ level: 'silent' });
  // The run before the restart: w1 active, w3 down (IPVS holds no dest for it).
  const before: Dataplane = await IpvsDataplane.open({ client: kernel, sysctls: false, log });
  await before.apply({
    services: [
      {
        name: 'web',
        vip: svc.vip,
        port,
        proto: 'tcp',
        family: 4,
        scheduler: 'wrr',
        ring: { kind: 'maglev', size: 251 },
        onEmpty: 'pass',
        backends: [be(1, 'active'), be(3, 'down')],
      },
    ],
  });
  await before.close({ keepState: true });
  const dp: Dataplane = await IpvsDataplane.open({ client: kernel, sysctls: false, log });
  const pinned = dp.pinnedBackends?.() ?? [];
  assert.deepEqual(
    pinned.map((p) => p.address),
    ['127.0.0.1'],
    'the kernel holds w1 only',
  );
  const init = initialFromPinned([svc], pinned, { absentIsDown: dp.omitsDownBackends === true });
  assert.deepEqual(
    [...init.backends.entries()].map(([k, v]) => `${k} ${v.up ? 'up' : 'down'}`),
    [`127.0.0.1:${port} up`, `127.0.0.3:${port} down`],
  );
  const hm = new HealthMonitor({ ...inputs, log: captureLog().log, initial: init });
  const snaps = await rounds(hm, 2);
  assert.deepEqual(
    snaps.map((x) => x.backends.map((b) => b.up)),
    [
      [true, false],
      [true, true],
    ],
    'w3 comes back at rise (2), not on its first good check',
  );
  // XDP keeps down backends in its maps (flag DOWN), so there a missing backend is a new one.
  assert.equal(initialFromPinned([svc], pinned).backends.has(`127.0.0.3:${port}`), false);
});
