// End to end, tunnel forwarding: real servers on other subnets, behind a router.
//
//   client ─┐                 ┌─ router ─┬─ r1 10.92.1.11 / fd92:1::11  MariaDB primary (41)
//   director┤ segment A (br)  │          ├─ r2 10.92.2.12                MariaDB replica (42)
//   router ─┘ 10.91.0.0/24    │          └─ r3 10.92.3.13                MariaDB replica (43)
//             fd91::/64       └ each real server on its own subnet (10.92.N.0/24), VIPs on lo,
//                               tunnel end: bpf/tools/xdp_decap on its eth0
//
// `xdirector run` in the director namespace, native XDP on its one interface (its bridge-side
// veth peer carries xdp_pass, without which native XDP_TX frames are never delivered on 6.18:
// bpf/README.md, kernel and lab facts), with forwarding: tunnel services: a writer and a readers pool (4in4)
// with health checks as in DR, 6in6 to the primary, and GUE (4in4 and 6in4, the GUE underlay is
// IPv4 only) to the primary. It resolves the real servers' next hop (the router) from the
// routing + neighbour tables, encapsulates and sends back out of the same interface; the real
// servers answer the client directly. This kernel has no ipip / ip6_tunnel / fou drivers, so the
// real servers decapsulate with bpf/tools/xdp_decap (IPIP and GUE on UDP 6080: what the kernel's
// tunnel devices do on a production server, src/realserver/tunnel.ts).
// Checked: MySQL through every VIP, large result sets, a large query from the client (too big
// once encapsulated: the director's ICMP frag-needed / PTB lowers the client's path MTU), the
// GUE source port as ECMP entropy (one per flow, different flows different ports), writes on the
// writer and reads spread over the replicas, a drained replica finishing its session while new
// ones go to the other, a killed replica leaving the readers pool, status showing the forwarding
// method, and a hot restart that keeps a tunnelled session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync, ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { MariaDB, setupReplication, syncReplicas } from '../../scripts/lab/mariadb';
import { clientScript, jsonLines, ConnectionsReport, HoldReport } from '../../scripts/lab/client';
import { waitUntil } from '../lib/daemon';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin', 'xdirector.js');
const DECAP = path.join(ROOT, 'dist/bpf/tools/xdp_decap.bpf.o');
const XDP_PASS = path.join(ROOT, 'dist/bpf/tools/xdp_pass.bpf.o');
const P = `xttu${process.pid % 100000}`;
const NS = { sw: `${P}s`, c: `${P}c`, d: `${P}d`, r: `${P}r`, b1: `${P}b1`, b2: `${P}b2`, b3: `${P}b3` };
const REAL = [
  {
    ns: NS.b1,
    name: 'r1',
    id: 41,
    v4: '10.92.1.11',
    v6: 'fd92:1::11',
    gw4: '10.92.1.1',
    gw6: 'fd92:1::1',
    dev: 'eth1',
  },
  {
    ns: NS.b2,
    name: 'r2',
    id: 42,
    v4: '10.92.2.12',
    v6: 'fd92:2::12',
    gw4: '10.92.2.1',
    gw6: 'fd92:2::1',
    dev: 'eth2',
  },
  {
    ns: NS.b3,
    name: 'r3',
    id: 43,
    v4: '10.92.3.13',
    v6: 'fd92:3::13',
    gw4: '10.92.3.1',
    gw6: 'fd92:3::1',
    dev: 'eth3',
  },
];
const VIP4 = '10.91.0.100'; // writer, ipip
const VIP_R = '10.91.0.101'; // readers, ipip
const VIP_G4 = '10.91.0.102'; // primary, GUE (4in4)
const VIP6 = 'fd91::100'; // primary, ipip (6in6)
const VIP_G6 = 'fd91::102'; // primary, GUE (6in4)
const GUE_PORT = 6080; // xdp_decap's built-in port
const INTERVAL = 400;
const FALL = 3;
let tmp: string;
const dbs: MariaDB[] = [];
let daemon: ChildProcess | undefined;
const daemonLog: string[] = [];

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
const ipn = (ns: string, ...args: string[]): string => sh('ip', ['-n', ns, ...args]);
const inNs = (ns: string, cmd: string, ...args: string[]): string => sh('ip', ['netns', 'exec', ns, cmd, ...args]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function topology(): void {
  for (const ns of Object.values(NS)) sh('ip', ['netns', 'add', ns]);
  ipn(NS.sw, 'link', 'add', 'name', 'sw0', 'type', 'bridge', 'mcast_snooping', '0');
  ipn(NS.sw, 'link', 'set', 'sw0', 'up');
  const link = (a: string, an: string, b: string, bn: string) => {
    sh('ip', ['link', 'add', `${P}x`, 'netns', a, 'type', 'veth', 'peer', 'name', `${P}y`, 'netns', b]);
    ipn(a, 'link', 'set', `${P}x`, 'name', an);
    ipn(b, 'link', 'set', `${P}y`, 'name', bn);
    ipn(a, 'link', 'set', an, 'up');
    ipn(b, 'link', 'set', bn, 'up');
  };
  for (const [ns, port] of [
    [NS.c, 'sc'],
    [NS.d, 'sd'],
    [NS.r, 'sr'],
  ] as const) {
    link(ns, 'eth0', NS.sw, port);
    ipn(NS.sw, 'link', 'set', port, 'master', 'sw0');
  }
  for (const b of REAL) link(NS.r, b.dev, b.ns, 'eth0');
  for (const ns of Object.values(NS)) ipn(ns, 'link', 'set', 'lo', 'up');
  const addr = (ns: string, dev: string, a4: string, a6: string) => {
    ipn(ns, 'addr', 'add', a4, 'dev', dev);
    ipn(ns, '-6', 'addr', 'add', a6, 'dev', dev, 'nodad');
  };
  addr(NS.c, 'eth0', '10.91.0.10/24', 'fd91::10/64');
  addr(NS.d, 'eth0', '10.91.0.2/24', 'fd91::2/64');
  addr(NS.r, 'eth0', '10.91.0.1/24', 'fd91::1/64');
  inNs(NS.r, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1');
  // The client reaches the VIPs through the director (as a router or VRRP would send them there).
  for (const v of [VIP4, VIP_R, VIP_G4]) ipn(NS.c, 'route', 'add', `${v}/32`, 'via', '10.91.0.2');
  for (const v of [VIP6, VIP_G6]) ipn(NS.c, '-6', 'route', 'add', `${v}/128`, 'via', 'fd91::2');
  // The director reaches the real servers' subnets through the router.
  ipn(NS.d, 'route', 'add', '10.92.0.0/16', 'via', '10.91.0.1');
  ipn(NS.d, '-6', 'route', 'add', 'fd92::/16', 'via', 'fd91::1');
  for (const b of REAL) {
    addr(NS.r, b.dev, `${b.gw4}/24`, `${b.gw6}/64`);
    addr(b.ns, 'eth0', `${b.v4}/24`, `${b.v6}/64`);
    ipn(b.ns, 'route', 'add', 'default', 'via', b.gw4);
    ipn(b.ns, '-6', 'route', 'add', 'default', 'via', b.gw6);
    // Real server: VIPs on lo, never answered for on eth0 (as for DR), tunnel end on eth0.
    inNs(b.ns, 'sysctl', '-qw', 'net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.all.arp_announce=2');
    for (const v of [VIP4, VIP_R, VIP_G4]) ipn(b.ns, 'addr', 'add', `${v}/32`, 'dev', 'lo');
    for (const v of [VIP6, VIP_G6])
      ipn(b.ns, '-6', 'addr', 'add', `${v}/128`, 'dev', 'lo', 'nodad', 'preferred_lft', '0');
    ipn(b.ns, 'link', 'set', 'dev', 'eth0', 'xdpgeneric', 'obj', DECAP, 'sec', 'xdp');
  }
  // Native XDP on the director: its XDP_TX frames reach the bridge only if the peer has a program.
  ipn(NS.sw, 'link', 'set', 'dev', 'sd', 'xdpdrv', 'obj', XDP_PASS, 'sec', 'xdp');
  // A real NIC delivers complete checksums; veth from a local stack leaves them partial, and a
  // native XDP_TX does not complete them.
  inNs(NS.c, 'ethtool', '-K', 'eth0', 'tx', 'off');
}

function config(): string {
  const be = (b: (typeof REAL)[number], v6 = false) =>
    `      - address: ${v6 ? b.v6 : b.v4}\n        name: ${b.name}${v6 ? 'v6' : ''}\n`;
  const svc = (name: string, vip: string, encap: string, extra: string, backends: string) => `  - name: ${name}
    vip: ${vip}
    port: 3306
    forwarding: tunnel
    encap: ${encap}
    check: mysql
${extra}    backends:
${backends}`;
  const all = REAL.map((b) => be(b)).join('');
  return `instance: ${P}
interface: eth0
dataplane: xdp
xdp:
  mode: native
  pin_dir: /sys/fs/bpf/${P}
  ring_size: 251
  max_services: 8
  max_backends: 32
  flow_table_size: 4096
admin:
  socket: ${tmp}/d.sock
state_dir: ${tmp}
monitor:
  user: monitor
  password_env: XD_MON_PW
  connect_timeout: 350ms
health:
  interval: ${INTERVAL}ms
  timeout: 350ms
  rise: 2
  fall: ${FALL}
  max_replication_lag: 5s
tunnel:
  source_v4: 10.91.0.2
  source_v6: fd91::2
services:
${svc('writer', VIP4, 'ipip', '    pool: writer\n', all)}${svc('readers', VIP_R, 'ipip', '    pool: readers\n', all)}${svc('mysql6', VIP6, 'ipip', '', be(REAL[0]!, true))}${svc('gue4', VIP_G4, 'gue', `    gue_port: ${GUE_PORT}\n`, be(REAL[0]!))}${svc('gue6', VIP_G6, 'gue', `    gue_port: ${GUE_PORT}\n`, be(REAL[0]!))}`;
}

async function status(): Promise<any> {
  const r = spawnSync(
    'nsenter',
    [`--net=/run/netns/${NS.d}`, process.execPath, BIN, 'status', '--json', '--socket', `${tmp}/d.sock`],
    { encoding: 'utf8', timeout: 20000 },
  );
  if (r.status !== 0) throw new Error(`status: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function cli(...args: string[]): string {
  const r = spawnSync(
    'nsenter',
    [`--net=/run/netns/${NS.d}`, process.execPath, BIN, ...args, '--socket', `${tmp}/d.sock`],
    { encoding: 'utf8', timeout: 20000 },
  );
  assert.equal(r.status, 0, `xdirector ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function statesOf(service: string): Promise<Record<string, string>> {
  const s = (await status()).dataplane.services.find((x: any) => x.name === service);
  return Object.fromEntries(s.backends.map((b: any) => [b.name, b.state]));
}

const waitFor = (what: string, cond: () => Promise<boolean>, timeoutMs: number) =>
  waitUntil(what, cond, timeoutMs, () => daemonLog.join('').slice(-3000));

/** Runs `sql` (read from stdin: a large query does not fit an argument) as the client, through the VIP. */
function mysql(vip: string, sql: string): string {
  return execFileSync(
    'ip',
    ['netns', 'exec', NS.c, 'mariadb', '--connect-timeout=5', '-h', vip, '-u', 'app', '-papp', '-N', '-B'],
    { input: sql, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 << 20 },
  ).trim();
}

/** `n` new connections through `vip` from the client namespace (the lab client), by server_id. */
function connections(vip: string, n: number): Record<string, number> {
  const r = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      NS.c,
      process.execPath,
      clientScript(),
      '--host',
      vip,
      '--connections',
      String(n),
      '--concurrency',
      '4',
      '--json',
    ],
    { encoding: 'utf8', timeout: 60000 },
  );
  const rep = JSON.parse(r.stdout.trim().split('\n').pop() || '{}') as ConnectionsReport;
  assert.equal(rep.failed, 0, `connections to ${vip}: ${JSON.stringify(rep.failures ?? r.stderr)}`);
  return rep.byServerId;
}

/** One session through `vip` querying every 100 ms: resolves once it answered, with its server_id and a stop(). */
async function hold(vip: string): Promise<{ serverId: number; stop: () => Promise<HoldReport> }> {
  const child = spawn(
    'ip',
    ['netns', 'exec', NS.c, process.execPath, clientScript(), '--hold', '--json', '--host', vip, '--interval', '100'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let summary: HoldReport | undefined;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const serverId = await new Promise<number>((resolve, reject) => {
    jsonLines(child, (o) => {
      if (o.event === 'ready') resolve(Number(o.serverId));
      if (o.event === 'summary') summary = o as unknown as HoldReport;
    });
    void exited.then(() => reject(new Error('hold client exited before its session was ready')));
  });
  return {
    serverId,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      assert.ok(summary, 'hold client printed its summary');
      return summary!;
    },
  };
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${P}-`));
  topology();
  for (const b of REAL)
    dbs.push(new MariaDB({ prefix: P, name: b.name, serverId: b.id, netns: b.ns, advertiseHost: b.v4, baseDir: tmp }));
  await Promise.all(dbs.map((db) => db.start()));
  await setupReplication(dbs[0]!, dbs.slice(1));
  fs.writeFileSync(`${tmp}/d.yaml`, config());
  await startDaemon();
});

/** Every backend resolved to a MAC, the primary in the writer pool, both replicas in the readers pool. */
async function ready(): Promise<boolean> {
  const st = await status();
  const svcs = st.dataplane.services;
  const state = (s: string, b: string) =>
    svcs.find((x: any) => x.name === s).backends.find((x: any) => x.name === b).state;
  return (
    svcs.every((s: any) => s.backends.every((b: any) => b.mac)) &&
    state('writer', 'r1') === 'active' &&
    state('readers', 'r2') === 'active' &&
    state('readers', 'r3') === 'active' &&
    ['mysql6', 'gue4', 'gue6'].every((s) => svcs.find((x: any) => x.name === s).backends[0].state === 'active')
  );
}

async function startDaemon(): Promise<void> {
  daemon = spawn('nsenter', [`--net=/run/netns/${NS.d}`, process.execPath, BIN, 'run', '-c', `${tmp}/d.yaml`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, XD_MON_PW: 'monitor' },
  });
  daemon.stdout!.on('data', (d) => daemonLog.push(String(d)));
  daemon.stderr!.on('data', (d) => daemonLog.push(String(d)));
  await waitFor('the daemon up with its pools', ready, 30000);
}

after(async () => {
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon!.once('exit', r));
  }
  spawnSync('nsenter', [`--net=/run/netns/${NS.d}`, process.execPath, BIN, 'stop', '--detach', '-c', `${tmp}/d.yaml`], {
    timeout: 20000,
  });
  await Promise.all(dbs.map((db) => db.stop().catch(() => undefined)));
  for (const ns of Object.values(NS)) spawnSync('ip', ['netns', 'del', ns]);
  spawnSync('rm', ['-rf', `/sys/fs/bpf/${P}`]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test("native XDP: the tunnel backends resolve to the router's MAC and status shows the forwarding per service", async () => {
  const st = await status();
  assert.equal(st.dataplane.detail.mode, 'native');
  const routerMac = JSON.parse(ipn(NS.r, '-j', 'link', 'show', 'eth0'))[0].address;
  const want: Record<string, string> = {
    writer: 'tunnel/ipip',
    readers: 'tunnel/ipip',
    mysql6: 'tunnel/ipip',
    gue4: `tunnel/gue:${GUE_PORT}`,
    gue6: `tunnel/gue:${GUE_PORT}`,
  };
  assert.deepEqual(Object.fromEntries(st.dataplane.services.map((s: any) => [s.name, s.forwarding])), want);
  for (const s of st.dataplane.services) {
    for (const b of s.backends) {
      assert.equal(b.mac, routerMac, `${s.name}/${b.name}: next hop is the router`);
      assert.equal(b.forwarding, want[s.name], `${s.name}/${b.name}`);
    }
  }
});

test('MySQL through the IPv4 writer VIP reaches the primary behind the router (4in4)', () => {
  assert.equal(mysql(VIP4, 'select @@server_id'), '41');
});

test('MySQL through the IPv6 VIP reaches the primary (6in6)', () => {
  assert.equal(mysql(VIP6, 'select @@server_id'), '41');
});

test('MySQL through the GUE VIPs reaches the primary (GUE 4in4 and 6in4)', () => {
  assert.equal(mysql(VIP_G4, 'select @@server_id'), '41');
  assert.equal(mysql(VIP_G6, 'select @@server_id'), '41');
});

test('a 2 MB result set comes back whole over IPIP and GUE (replies go straight to the client)', () => {
  const want = createHash('md5').update('x'.repeat(2000000)).digest('hex');
  for (const vip of [VIP4, VIP_G4, VIP_G6]) {
    const out = mysql(vip, "select repeat('x', 2000000)");
    assert.equal(out.length, 2000000, vip);
    assert.equal(createHash('md5').update(out).digest('hex'), want, vip);
  }
});

test("a large query from the client goes through IPIP and GUE: the director's frag-needed / PTB lowers the client's path MTU", async () => {
  const before = (await status()).dataplane.reasons.tx_too_big ?? 0;
  for (const vip of [VIP4, VIP6, VIP_G4, VIP_G6]) {
    assert.equal(mysql(vip, `select length('${'y'.repeat(200000)}')`), '200000', vip);
  }
  const st = await status();
  assert.ok(
    (st.dataplane.reasons.tx_too_big ?? 0) - before >= 4,
    `ICMP too-big answers sent: ${JSON.stringify(st.dataplane.reasons)}`,
  );
});

/** Reads a pcap (LINKTYPE_ETHERNET) of GUE-in-IPv4 frames: per inner TCP flow (client port), the outer UDP source ports. */
function gueFlows(file: string): Map<number, Set<number>> {
  const b = fs.readFileSync(file);
  assert.equal(b.readUInt32LE(0), 0xa1b2c3d4, 'a microsecond pcap in little endian');
  assert.equal(b.readUInt32LE(20), 1, 'Ethernet link type');
  const flows = new Map<number, Set<number>>();
  for (let off = 24; off + 16 <= b.length;) {
    const caplen = b.readUInt32LE(off + 8);
    const f = b.subarray(off + 16, off + 16 + caplen);
    off += 16 + caplen;
    if (f.readUInt16BE(12) !== 0x0800 || f[23] !== 17) continue; // outer IPv4, UDP
    const udp = 14 + (f[14]! & 0xf) * 4;
    if (f.readUInt16BE(udp + 2) !== GUE_PORT) continue;
    const gue = udp + 8;
    assert.equal(f[gue], 0, 'GUE version 0, no optional fields');
    assert.equal(f[gue + 1], 4, 'GUE proto_ctype: IPv4 inside');
    const inner = gue + 4;
    assert.equal(f[inner + 9], 6, 'TCP inside');
    const sport = f.readUInt16BE(inner + (f[inner]! & 0xf) * 4);
    const set = flows.get(sport) ?? new Set<number>();
    set.add(f.readUInt16BE(udp));
    flows.set(sport, set);
  }
  return flows;
}

test("GUE source ports carry the inner flow's hash: one port per client connection, different connections different ports (ECMP entropy)", async (t) => {
  const file = path.join(tmp, 'gue.pcap');
  // Captured on the router's side of the segment (tcpdump on the director's XDP interface sees
  // none of it). -Z root: write the file as root (tcpdump drops to its own user otherwise);
  // --immediate-mode: hand each packet over at once (else those still in the kernel's ring
  // buffer when SIGINT comes are lost).
  const dump = spawn(
    'ip',
    [
      'netns',
      'exec',
      NS.r,
      'tcpdump',
      '-Z',
      'root',
      '--immediate-mode',
      '-U',
      '-n',
      '-i',
      'eth0',
      '-w',
      file,
      `udp dst port ${GUE_PORT}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise<void>((r) => dump.once('exit', () => r()));
  let err = '';
  await new Promise<void>((resolve, reject) => {
    dump.stderr!.on('data', (d) => {
      err += d;
      if (err.includes('listening on')) resolve();
    });
    void exited.then(() => reject(new Error(`tcpdump exited: ${err}`)));
  });
  const N = 12;
  try {
    assert.deepEqual(connections(VIP_G4, N), { 41: N });
    await sleep(200);
  } finally {
    dump.kill('SIGINT');
    await exited;
  }
  const flows = gueFlows(file);
  assert.equal(flows.size, N, `inner flows seen: ${flows.size}`);
  const ports = new Set<number>();
  for (const [sport, outer] of flows) {
    assert.equal(outer.size, 1, `client port ${sport}: one GUE source port for the whole flow, got ${[...outer]}`);
    const p = [...outer][0]!;
    assert.ok(p >= 49152 && p <= 65535, `GUE source port ${p} in the dynamic range`);
    ports.add(p);
  }
  // 14 bits of hash: two of 12 flows share a port with probability ~0.4 %; allow one such pair.
  assert.ok(ports.size >= N - 1, `distinct GUE source ports: ${ports.size} of ${N} flows (${[...ports]})`);
  t.diagnostic(`${N} flows, ${ports.size} distinct GUE source ports: ${[...ports].sort((a, b) => a - b).join(' ')}`);
});

test('pools over the tunnel: a write through the writer VIP lands on the primary, reads spread over both replicas', async () => {
  assert.equal(
    mysql(
      VIP4,
      'CREATE DATABASE IF NOT EXISTS xdt; CREATE TABLE xdt.t (id INT); INSERT INTO xdt.t VALUES (7); SELECT @@server_id',
    ),
    '41',
  );
  await syncReplicas(dbs[0]!, dbs.slice(1));
  assert.deepEqual(connections(VIP4, 20), { 41: 20 });
  const r = connections(VIP_R, 40);
  assert.deepEqual(Object.keys(r).sort(), ['42', '43'], JSON.stringify(r));
  const read = mysql(VIP_R, 'SELECT id, @@server_id FROM xdt.t').split('\t');
  assert.equal(read[0], '7');
  assert.ok(['42', '43'].includes(read[1]!), `read from ${read[1]}`);
});

test('hot restart: a session through the tunnel outlives a control-plane restart, and new ones follow', async () => {
  const h = await hold(VIP4);
  assert.equal(h.serverId, 41);
  daemon!.kill('SIGTERM');
  await new Promise((r) => daemon!.once('exit', r));
  await startDaemon();
  await sleep(300);
  const rep = await h.stop();
  assert.equal(rep.failed, 0, JSON.stringify(rep.failures));
  assert.equal(rep.sessions, 1);
  assert.equal(mysql(VIP4, 'select @@server_id'), '41');
});

test('a drained replica finishes its session while new reader connections go to the other replica', async () => {
  const h = await hold(VIP_R);
  const drained = REAL.find((b) => b.id === h.serverId)!;
  const other = REAL.find((b) => b.id !== h.serverId && b.id !== 41)!;
  assert.match(cli('drain', drained.name), new RegExp(`drained ${drained.name}`));
  assert.deepEqual(connections(VIP_R, 20), { [other.id]: 20 });
  await sleep(300);
  const rep = await h.stop();
  assert.equal(rep.failed, 0, `the session on the drained ${drained.name}: ${JSON.stringify(rep.failures)}`);
  assert.equal(rep.sessions, 1);
  assert.deepEqual(rep.byServerId, { [drained.id]: rep.ok });
  cli('undrain', drained.name);
  await waitFor(
    `${drained.name} back in readers`,
    async () => (await statesOf('readers'))[drained.name] === 'active',
    5000,
  );
});

test('a killed replica leaves the readers pool and takes no new connection', async (t) => {
  await dbs[2]!.kill('SIGKILL');
  const ms = await waitFor('r3 down', async () => (await statesOf('readers')).r3 === 'down', 10000);
  assert.ok(ms <= INTERVAL * (FALL + 1) + 1500, `detected after ${ms} ms`);
  t.diagnostic(`killed replica out of the readers pool after ${ms} ms`);
  assert.deepEqual(connections(VIP_R, 20), { 42: 20 });
});
