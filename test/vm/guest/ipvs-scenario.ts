// Guest side of test/vm/ipvs.test.ts, run in the director's namespace of the DR lab
// (dr-topology.sh) in a kernel with real IPVS. Drives IpvsDataplane through phases, checks
// every phase against `ipvsadm -Ln` and real TCP connections from the client namespace, and
// writes everything the host test asserts to $XD_VM_OUT/result.json. It asserts nothing itself.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readFileSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { DesiredBackend, DesiredService, DesiredState } from '../../../src/state/types';
import { IpvsDataplane } from '../../../src/dataplane/ipvs/dataplane';
import { AF_INET, IPPROTO_TCP, IpvsDestEntry } from '../../../src/dataplane/ipvs/codec';
import { buildIpvsMh, ipvsMhLookup, IpvsMhDest } from '../../../src/maglev/ipvs-mh';

const OUT = process.env.XD_VM_OUT ?? '/run/xd-out';
const VIP = '10.77.0.100';
const CLIENT = '10.77.0.10';
const KEY = { af: AF_INET, protocol: IPPROTO_TCP, addr: VIP, port: 3306 } as const;
const result: Record<string, unknown> = {};
const t0 = Date.now();
const timings: Record<string, number> = {};
const mark = (name: string, since: number): void => {
  timings[name] = Date.now() - since;
  process.stderr.write(`XD-VM: scenario step ${name}: ${timings[name]} ms (at ${Date.now() - t0} ms)\n`);
};

const logs: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk, _enc, cb) {
    for (const l of String(chunk).split('\n')) if (l) logs.push(JSON.parse(l));
    cb();
  },
});
const log = pino({ level: 'debug' }, sink);

function be(n: number, weight = 1, state: DesiredBackend['state'] = 'active'): DesiredBackend {
  const address = `10.77.0.1${n}`;
  return { key: `${address}:3306`, name: `rs${n}`, address, port: 3306, family: 4, weight, state };
}
function mysql(backends: DesiredBackend[]): DesiredService {
  return {
    name: 'mysql',
    vip: VIP,
    port: 3306,
    proto: 'tcp',
    family: 4,
    scheduler: 'maglev',
    ring: { kind: 'ipvs-mh', size: 4093 },
    onEmpty: 'pass',
    backends,
  };
}
const extras: DesiredService[] = [
  {
    name: 'mysql6',
    vip: 'fd00:77::100',
    port: 3306,
    proto: 'tcp',
    family: 6,
    scheduler: 'wrr',
    ring: { kind: 'maglev', size: 65537 },
    onEmpty: 'pass',
    backends: [
      {
        key: '[fd00:77::11]:3306',
        name: 'rs1v6',
        address: 'fd00:77::11',
        port: 3306,
        family: 6,
        weight: 3,
        state: 'active',
      },
      {
        key: '[fd00:77::12]:3306',
        name: 'rs2v6',
        address: 'fd00:77::12',
        port: 3306,
        family: 6,
        weight: 1,
        state: 'active',
      },
    ],
  },
  {
    name: 'dns',
    vip: VIP,
    port: 53,
    proto: 'udp',
    family: 4,
    scheduler: 'sh',
    ring: { kind: 'maglev', size: 65537 },
    onEmpty: 'pass',
    backends: [
      { key: '10.77.0.11:53', name: 'rs1dns', address: '10.77.0.11', port: 53, family: 4, weight: 1, state: 'active' },
    ],
  },
];
const state = (backends: DesiredBackend[]): DesiredState => ({ services: [mysql(backends), ...extras] });

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: status ${r.status}: ${r.stderr}`);
  return r.stdout;
}
const ipvsadm = (): string => sh('ipvsadm', ['-Ln']);
/** ipvsadm -Ln without the connection counters, which change as connections expire. */
const ipvsadmShape = (): string =>
  ipvsadm()
    .split('\n')
    .map((l) => l.replace(/^(\s+->\s+\S+\s+\S+\s+\S+).*$/, '$1'))
    .join('\n');
const changes = (): number => logs.filter((l) => l.msg === 'IPVS changed').length;

// -- the client, in the client namespace, started once
const client = spawn('nsenter', ['--net=/run/netns/xdg-client', process.execPath, `${__dirname}/tcp-client.js`], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
const clientLines = createInterface({ input: client.stdout! });
const waiting = new Map<number, (v: any) => void>();
let ready: () => void;
const clientReady = new Promise<void>((r) => (ready = r));
clientLines.on('line', (l) => {
  const m = JSON.parse(l);
  if (m.ready) ready();
  else waiting.get(m.seq)?.(m.results);
});
let seq = 0;
function connectFrom(ports: number[]): Promise<Array<{ srcPort: number; server?: string; error?: string }>> {
  const s = ++seq;
  return new Promise((resolve) => {
    waiting.set(s, resolve);
    client.stdin!.write(
      `${JSON.stringify({ seq: s, host: VIP, port: 3306, src: CLIENT, ports, concurrency: 24, timeoutMs: 20000 })}\n`,
    );
  });
}
const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

/** What the TS model of the kernel's mh table predicts for each source port, from the kernel's dest order. */
function predict(
  dests: IpvsDestEntry[],
  lastWeight: Record<string, number>,
  ports: number[],
): Record<number, string | null> {
  const md: IpvsMhDest[] = dests.map((d, i) => ({
    id: i + 1,
    address: d.addr,
    port: d.port,
    family: 4,
    weight: d.weight,
    lastWeight: lastWeight[d.addr] ?? d.weight,
  }));
  const table = buildIpvsMh(md);
  const out: Record<number, string | null> = {};
  for (const p of ports) {
    const d = ipvsMhLookup(table, md, { address: CLIENT, port: p, family: 4 }, { withPort: true, fallback: true });
    out[p] = d ? `rs${d.address.slice(-1)}` : null;
  }
  return out;
}

async function phase(
  name: string,
  ports: number[],
  lastWeight: Record<string, number>,
  dp: IpvsDataplane,
): Promise<void> {
  const t = Date.now();
  const dests = await dp.ipvs.listDests(KEY);
  const expected = predict(dests, lastWeight, ports);
  const got = await connectFrom(ports);
  const counts: Record<string, number> = {};
  const mismatches: unknown[] = [];
  const errors: unknown[] = [];
  for (const r of got) {
    if (r.error) {
      errors.push(r);
      continue;
    }
    counts[r.server!] = (counts[r.server!] ?? 0) + 1;
    if (expected[r.srcPort] !== r.server)
      mismatches.push({ srcPort: r.srcPort, ipvs: r.server, model: expected[r.srcPort] });
  }
  result[name] = {
    ipvsadm: ipvsadm(),
    destOrder: dests.map((d) => `${d.addr}:${d.port}`),
    weights: dests.map((d) => d.weight),
    total: got.length,
    counts,
    mismatches,
    errors,
  };
  mark(name, t);
}

async function expectError(name: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
    result[name] = { error: null };
  } catch (e: any) {
    result[name] = { code: e.code, message: e.message, errno: e.detail?.errno, errnoCode: e.detail?.code };
  }
}

async function main(): Promise<void> {
  let t = Date.now();
  const dp = await IpvsDataplane.open({ log });
  mark('open', t);
  result.sysctls = Object.fromEntries(
    ['sloppy_tcp', 'expire_nodest_conn'].map((k) => [k, readFileSync(`/proc/sys/net/ipv4/vs/${k}`, 'utf8').trim()]),
  );
  await clientReady;
  mark('clientReady', t0);

  // P1: three active backends, weights 1/1/2, plus an IPv6 wrr service and a UDP sh service
  t = Date.now();
  await dp.apply(state([be(1), be(2), be(3, 2)]));
  mark('applyP1', t);
  result.changesP1 = changes();
  t = Date.now();
  await dp.apply(state([be(1), be(2), be(3, 2)]));
  mark('applyAgain', t);
  result.changesRepeat = changes() - (result.changesP1 as number);
  result.ipvsadmP1 = ipvsadm();
  await phase('p1', range(20000, 90), { '10.77.0.11': 1, '10.77.0.12': 1, '10.77.0.13': 2 }, dp);

  // P2: rs2 drained (weight 0; the kernel keeps its last non-zero weight in the table)
  await dp.apply(state([be(1), be(2, 1, 'draining'), be(3, 2)]));
  await phase('p2', range(21000, 45), { '10.77.0.11': 1, '10.77.0.12': 1, '10.77.0.13': 2 }, dp);

  // P3: rs2 back, rs3 down (removed)
  await dp.apply(state([be(1), be(2), be(3, 2, 'down')]));
  await phase('p3', range(22000, 45), { '10.77.0.11': 1, '10.77.0.12': 1 }, dp);

  // Drift: changes behind xdirector's back, reconciled on the next apply
  sh('ipvsadm', ['-d', '-t', `${VIP}:3306`, '-r', '10.77.0.11:3306']);
  sh('ipvsadm', ['-e', '-t', `${VIP}:3306`, '-r', '10.77.0.12:3306', '-g', '-w', '9']);
  sh('ipvsadm', ['-a', '-t', `${VIP}:3306`, '-r', '10.77.0.13:3306', '-g', '-w', '1']);
  sh('ipvsadm', ['-E', '-t', `${VIP}:3306`, '-s', 'rr']);
  result.ipvsadmDrifted = ipvsadm();
  const before = logs.length;
  await dp.apply(state([be(1), be(2), be(3, 2, 'down')]));
  result.driftLogs = logs
    .slice(before)
    .filter((l) => l.level === 40)
    .map((l) => l.msg);
  result.driftChanges = logs
    .slice(before)
    .filter((l) => l.msg === 'IPVS changed')
    .map((l) => l.change);
  // rs1 was re-added, so it is now at the head of the kernel's list: the model must follow
  await phase('p4', range(23000, 45), { '10.77.0.11': 1, '10.77.0.12': 1 }, dp);

  // Errors with the kernel's errno and what was being done
  const d11 = { addr: '10.77.0.11', port: 3306, fwdMethod: 3, weight: 1, uThreshold: 0, lThreshold: 0 };
  await expectError('errExists', () => dp.ipvs.addDest(KEY, d11));
  await expectError('errRange', () => dp.ipvs.editDest(KEY, { ...d11, weight: -1 }));
  await expectError('errThresh', () => dp.ipvs.editDest(KEY, { ...d11, uThreshold: 5, lThreshold: 10 }));
  await expectError('errNoSched', () =>
    dp.ipvs.addService({ ...KEY, port: 3307, schedName: 'nosuch', flags: 0, timeout: 0, netmask: 0xffffffff }),
  );
  await expectError('errNoService', () => dp.ipvs.deleteService({ ...KEY, port: 3399 }));
  const beforeBad = ipvsadmShape();
  await expectError('errUnknownScheduler', () =>
    dp.apply({ services: [{ ...mysql([be(1)]), scheduler: 'wlc' as never }] }),
  );
  result.unchangedAfterBadInput = ipvsadmShape() === beforeBad;

  // A kernel failure part-way through an apply is rolled back: rs3 is added to mysql first,
  // then a new service with scheduler lc fails because its module is gone (no modprobe here).
  sh('busybox', ['rmmod', 'ip_vs_lc']);
  const beforeRollback = ipvsadmShape();
  const lcSvc: DesiredService = { ...mysql([be(1)]), name: 'lc', port: 3310, scheduler: 'lc' };
  await expectError('errMidApply', () => dp.apply({ services: [mysql([be(1), be(2), be(3, 2)]), ...extras, lcSvc] }));
  result.rolledBack = ipvsadmShape() === beforeRollback;
  result.ipvsadmAfterRollback = ipvsadm();
  result.rollbackLogs = logs
    .filter((l) => typeof l.msg === 'string' && (l.msg as string).includes('rolling back'))
    .map((l) => ({ msg: l.msg, failed: l.failed, done: l.done }));

  // IPVS's dumped counters are the estimator's copy of the per-CPU stats, refreshed every 2 s:
  // wait one refresh so the last phase's connections are counted.
  await new Promise((r) => setTimeout(r, 2500));
  result.status = await dp.status();

  // close keeps the kernel state by default; a new instance adopts it; keepState:false removes it
  await dp.close();
  result.ipvsadmAfterClose = ipvsadm();
  const dp2 = await IpvsDataplane.open({ log });
  const c0 = changes();
  await dp2.apply(state([be(1), be(2), be(3, 2, 'down')]));
  result.changesAfterAdopt = changes() - c0;
  await dp2.close({ keepState: false });
  result.ipvsadmAfterCleanup = ipvsadm();

  timings.total = Date.now() - t0;
  result.timings = timings;
  result.logs = logs.filter((l) => (l.level as number) >= 40).map((l) => ({ level: l.level, msg: l.msg }));
}

main().then(
  () => {
    writeFileSync(
      `${OUT}/result.json`,
      JSON.stringify(result, (_k, v) => (typeof v === 'bigint' ? Number(v) : v), 2),
    );
    client.kill();
    process.exit(0);
  },
  (err) => {
    console.error('scenario failed:', err);
    writeFileSync(`${OUT}/result.json`, JSON.stringify({ ...result, fatal: String(err?.stack ?? err) }, null, 2));
    client.kill();
    process.exit(1);
  },
);
