// IpvsDataplane's apply logic against a model of the kernel's IPVS table with the kernel's
// error semantics (NEW on existing: EEXIST; service missing: ESRCH; dest missing: ENOENT; new
// dests inserted at the head of the list). The real kernel is exercised in test/vm/ipvs.test.ts;
// this covers the races and failures that are hard to provoke there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { XdError } from '../../../src/errors';
import type { DesiredBackend, DesiredState } from '../../../src/state/types';
import { IpvsApi, IpvsDataplane } from '../../../src/dataplane/ipvs/dataplane';
import {
  AF_INET,
  IPPROTO_TCP,
  IpvsDest,
  IpvsDestEntry,
  IpvsService,
  IpvsServiceEntry,
  IpvsServiceKey,
  serviceLabel,
} from '../../../src/dataplane/ipvs/codec';
import { describeErrno } from '../../../src/dataplane/ipvs/client';
import { destKeyString, serviceKeyString } from '../../../src/dataplane/ipvs/plan';

function kerr(errno: number, what: string): XdError {
  return new XdError('XD_ERR_IPVS', `${what}: ${describeErrno(errno).text}`, {
    detail: { errno, code: describeErrno(errno).code },
  });
}

/** The kernel's IPVS table, as far as the dataplane can observe it. */
class ModelIpvs implements IpvsApi {
  readonly familyId = 0x20;
  services = new Map<string, { svc: IpvsServiceEntry; dests: IpvsDestEntry[] }>();
  calls: string[] = [];
  /** Runs before the named call executes: lets a test change the table "meanwhile". */
  before: Record<string, () => void> = {};
  /** Makes the next named call fail with this errno (once). */
  failOn: Record<string, number> = {};

  private hook(name: string, what: string): void {
    this.calls.push(name);
    const h = this.before[name];
    if (h) {
      delete this.before[name];
      h();
    }
    const errno = this.failOn[name];
    if (errno) {
      delete this.failOn[name];
      throw kerr(errno, what);
    }
  }
  async info() {
    return { version: 0x010201, connTabSize: 4096 };
  }
  async listServices() {
    return [...this.services.values()].map((s) => ({ ...s.svc }));
  }
  async listDests(k: IpvsServiceKey) {
    const s = this.services.get(serviceKeyString(k));
    if (!s) throw kerr(3, `list dests of ${serviceLabel(k)}`);
    return s.dests.map((d) => ({ ...d }));
  }
  async addService(s: IpvsService) {
    this.hook('addService', `add ${serviceLabel(s)}`);
    const k = serviceKeyString(s);
    if (this.services.has(k)) throw kerr(17, `add ${serviceLabel(s)}`);
    this.services.set(k, { svc: { ...s, flags: s.flags | 2 }, dests: [] });
  }
  async editService(s: IpvsService) {
    this.hook('editService', `update ${serviceLabel(s)}`);
    const e = this.services.get(serviceKeyString(s));
    if (!e) throw kerr(3, `update ${serviceLabel(s)}`);
    e.svc = { ...s, flags: s.flags | 2 };
  }
  async deleteService(s: IpvsServiceKey) {
    this.hook('deleteService', `delete ${serviceLabel(s)}`);
    if (!this.services.delete(serviceKeyString(s))) throw kerr(3, `delete ${serviceLabel(s)}`);
  }
  async addDest(k: IpvsServiceKey, d: IpvsDest) {
    this.hook('addDest', `add dest ${d.addr}`);
    const e = this.services.get(serviceKeyString(k));
    if (!e) throw kerr(3, `add dest ${d.addr}`);
    if (e.dests.some((x) => destKeyString(x) === destKeyString(d))) throw kerr(17, `add dest ${d.addr}`);
    if (d.weight < 0) throw kerr(34, `add dest ${d.addr}`);
    e.dests.unshift({ ...d, activeConns: 0, inactConns: 0, persistConns: 0 });
  }
  async editDest(k: IpvsServiceKey, d: IpvsDest) {
    this.hook('editDest', `update dest ${d.addr}`);
    const e = this.services.get(serviceKeyString(k));
    if (!e) throw kerr(3, `update dest ${d.addr}`);
    const i = e.dests.findIndex((x) => destKeyString(x) === destKeyString(d));
    if (i < 0) throw kerr(2, `update dest ${d.addr}`);
    e.dests[i] = { ...e.dests[i]!, ...d };
  }
  async deleteDest(k: IpvsServiceKey, d: Pick<IpvsDest, 'addr' | 'port'>) {
    this.hook('deleteDest', `delete dest ${d.addr}`);
    const e = this.services.get(serviceKeyString(k));
    if (!e) throw kerr(3, `delete dest ${d.addr}`);
    const i = e.dests.findIndex((x) => destKeyString(x) === destKeyString(d));
    if (i < 0) throw kerr(2, `delete dest ${d.addr}`);
    e.dests.splice(i, 1);
  }
  close() {}
  /** service label -> ["addr:port w"...] in list order */
  view(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const e of this.services.values())
      out[`${serviceLabel(e.svc)} ${e.svc.schedName}/0x${e.svc.flags.toString(16)}`] = e.dests.map(
        (d) => `${d.addr}:${d.port} ${d.weight}`,
      );
    return out;
  }
}

const be = (n: number, weight = 1, state: DesiredBackend['state'] = 'active'): DesiredBackend => ({
  key: `10.77.0.1${n}:3306`,
  name: `rs${n}`,
  address: `10.77.0.1${n}`,
  port: 3306,
  family: 4,
  weight,
  state,
});
const st = (backends: DesiredBackend[], vip = '10.77.0.100'): DesiredState => ({
  services: [
    {
      name: 'mysql',
      vip,
      port: 3306,
      proto: 'tcp',
      family: 4,
      scheduler: 'maglev',
      ring: { kind: 'ipvs-mh', size: 4093 },
      onEmpty: 'pass',
      backends,
    },
  ],
});
const MYSQL = 'TCP 10.77.0.100:3306 mh/0x1a';

async function open(model: ModelIpvs, extra: { exclusive?: boolean } = {}) {
  const logs: any[] = [];
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(c, _e, cb) {
        for (const l of String(c).split('\n')) if (l) logs.push(JSON.parse(l));
        cb();
      },
    }),
  );
  const dp = await IpvsDataplane.open({ client: model, log, sysctls: false, ...extra });
  return { dp, logs };
}

test('a fresh apply adds the service and its dests, in config order so the kernel lists them reversed', async () => {
  const m = new ModelIpvs();
  const { dp } = await open(m);
  await dp.apply(st([be(1), be(2), be(3, 2)]));
  assert.deepEqual(m.view(), { [MYSQL]: ['10.77.0.13:3306 2', '10.77.0.12:3306 1', '10.77.0.11:3306 1'] });
});

test('applying the same state again makes no kernel call that changes anything', async () => {
  const m = new ModelIpvs();
  const { dp } = await open(m);
  await dp.apply(st([be(1), be(2)]));
  m.calls = [];
  await dp.apply(st([be(1), be(2)]));
  assert.deepEqual(m.calls, []);
});

test('a service created by someone else between the read and the add is updated instead (EEXIST)', async () => {
  const m = new ModelIpvs();
  const { dp, logs } = await open(m);
  m.before.addService = () =>
    m.services.set(serviceKeyString({ af: AF_INET, protocol: IPPROTO_TCP, addr: '10.77.0.100', port: 3306 }), {
      svc: {
        af: AF_INET,
        protocol: IPPROTO_TCP,
        addr: '10.77.0.100',
        port: 3306,
        schedName: 'rr',
        flags: 2,
        timeout: 0,
        netmask: 0xffffffff,
      },
      dests: [],
    });
  await dp.apply(st([be(1)]));
  assert.deepEqual(m.view(), { [MYSQL]: ['10.77.0.11:3306 1'] });
  assert.ok(logs.some((l) => /appeared meanwhile \(EEXIST\)/.test(l.msg)));
});

test('a dest removed between the read and a weight update is added back (ENOENT on update)', async () => {
  const m = new ModelIpvs();
  const { dp } = await open(m);
  await dp.apply(st([be(1), be(2)]));
  m.before.editDest = () => {
    [...m.services.values()][0]!.dests = [...m.services.values()][0]!.dests.filter((d) => d.addr !== '10.77.0.12');
  };
  await dp.apply(st([be(1), be(2, 0, 'draining')]));
  assert.deepEqual(m.view(), { [MYSQL]: ['10.77.0.12:3306 0', '10.77.0.11:3306 1'] });
});

test('a dest already gone when it is deleted counts as deleted (ENOENT on delete)', async () => {
  const m = new ModelIpvs();
  const { dp } = await open(m);
  await dp.apply(st([be(1), be(2)]));
  m.before.deleteDest = () => {
    [...m.services.values()][0]!.dests.shift();
  };
  await dp.apply(st([be(1), be(2, 1, 'down')]));
  assert.deepEqual(m.view(), { [MYSQL]: ['10.77.0.11:3306 1'] });
});

test('a kernel error part-way through an apply rolls back what was done and rethrows with the errno', async () => {
  const m = new ModelIpvs();
  const { dp, logs } = await open(m);
  await dp.apply(st([be(1), be(2)]));
  const before = JSON.stringify(m.view());
  m.failOn.deleteDest = 16; // EBUSY on the third change
  await assert.rejects(dp.apply(st([be(1, 5), be(2, 1, 'down'), be(3)])), {
    code: 'XD_ERR_IPVS',
    message: 'delete dest 10.77.0.12: Device or resource busy',
  });
  assert.equal(JSON.stringify(m.view()), before);
  const err = logs.find((l) => l.level === 50);
  assert.equal(err.msg, 'IPVS apply failed after 2 of 3 changes; rolling back');
  assert.deepEqual(err.done, [
    'add dest 10.77.0.13:3306 weight 1 to TCP 10.77.0.100:3306',
    'update dest 10.77.0.11:3306 of TCP 10.77.0.100:3306: weight 1 -> 5',
  ]);
});

test('a service xdirector did not create is left alone unless exclusive is set', async () => {
  const m = new ModelIpvs();
  await (await open(m)).dp.apply(st([be(1)], '10.77.0.200'));
  const { dp } = await open(m);
  await dp.apply(st([be(1)]));
  assert.equal(Object.keys(m.view()).length, 2);
  const { dp: ex } = await open(m, { exclusive: true });
  await ex.apply(st([be(1)]));
  assert.deepEqual(Object.keys(m.view()), [MYSQL]);
});

test('a service removed from the desired state is deleted once this instance applied it', async () => {
  const m = new ModelIpvs();
  const { dp } = await open(m);
  await dp.apply(st([be(1)], '10.77.0.200'));
  await dp.apply(st([be(1)]));
  assert.deepEqual(Object.keys(m.view()), [MYSQL]);
});

test('close keeps the services by default and removes only its own with keepState false', async () => {
  const m = new ModelIpvs();
  await (await open(m)).dp.apply(st([be(1)], '10.77.0.200'));
  const a = await open(m);
  await a.dp.apply(st([be(1)]));
  await a.dp.close();
  assert.equal(Object.keys(m.view()).length, 2);
  const b = await open(m);
  await b.dp.apply(st([be(1)]));
  await b.dp.close({ keepState: false });
  assert.deepEqual(Object.keys(m.view()), ['TCP 10.77.0.200:3306 mh/0x1a']);
});

test('open sets sloppy_tcp and expire_nodest_conn and names the sysctl when it cannot', async () => {
  const dir = mkdtempSync(`/tmp/xdg-sysctl-${process.pid}-`);
  try {
    for (const f of ['sloppy_tcp', 'expire_nodest_conn']) writeFileSync(join(dir, f), '0\n');
    const dp = await IpvsDataplane.open({ client: new ModelIpvs(), sysctlDir: dir });
    assert.equal(readFileSync(join(dir, 'sloppy_tcp'), 'utf8'), '1\n');
    assert.equal(readFileSync(join(dir, 'expire_nodest_conn'), 'utf8'), '1\n');
    assert.deepEqual((await dp.status()).detail.sysctls, {
      'net.ipv4.vs.sloppy_tcp': '1',
      'net.ipv4.vs.expire_nodest_conn': '1',
    });
    await assert.rejects(IpvsDataplane.open({ client: new ModelIpvs(), sysctlDir: join(dir, 'missing') }), {
      code: 'XD_ERR_IPVS',
      message: new RegExp(`^IPVS: set net.ipv4.vs.sloppy_tcp=1 \\(${dir}/missing/sloppy_tcp\\): ENOENT`),
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a NAT service gets its forwarding sysctls before any dest, and a sysctl failure leaves IPVS untouched', async () => {
  const dir = mkdtempSync(`/tmp/xdg-natsys-${process.pid}-`);
  try {
    for (const f of ['sloppy_tcp', 'expire_nodest_conn']) writeFileSync(join(dir, f), '0\n');
    const nat = st([{ ...be(1), forwarding: 'nat' }]);
    const m = new ModelIpvs();
    // No /proc/sys tree yet: the apply is refused before the service is added.
    const dp = await IpvsDataplane.open({
      client: m,
      sysctlDir: dir,
      procSys: join(dir, 'proc'),
      nat: { outer: 'eth0', inner: 'eth1' },
    });
    await assert.rejects(dp.apply(nat), { code: 'XD_ERR_SYSCTL', message: /net\.ipv4\.ip_forward=1/ });
    assert.deepEqual(m.view(), {});
    mkdirSync(join(dir, 'proc/net/ipv4'), { recursive: true });
    writeFileSync(join(dir, 'proc/net/ipv4/ip_forward'), '0\n');
    await dp.apply(nat);
    assert.equal(readFileSync(join(dir, 'proc/net/ipv4/ip_forward'), 'utf8'), '1\n');
    assert.deepEqual(m.view(), { [MYSQL]: ['10.77.0.11:3306 1'] });
    assert.equal((await dp.status()).detail.sysctls['net.ipv4.ip_forward'], '1');
    assert.equal((await dp.status()).services[0]!.forwarding, 'nat');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
