// End to end, tunnel forwarding: a real server on another subnet, behind a router.
//
//   client ─┐                 ┌─ router ── real server (10.92.1.11 / fd92:1::11, MariaDB,
//   director┤ segment A (br)  │            VIPs on lo, tunnel end: xdp_decap on its eth)
//   router ─┘ 10.91.0.0/24    └─ 10.92.1.0/24, fd92:1::/64
//
// `xdirector run` in the director namespace (XDP generic on its one interface) with a
// forwarding: tunnel service per family: it resolves the real server's next hop (the router)
// from the routing + neighbour tables, encapsulates (4in4 / 6in6) and sends back out of the
// same interface; the real server answers the client directly. This kernel has no ipip /
// ip6_tunnel drivers, so the real server decapsulates with bpf/tools/xdp_decap (what the
// kernel's tunnel devices do on a production server: src/realserver/tunnel.ts).
// Checked: MySQL through the VIP (IPv4 and IPv6), a large result set, a large query from the
// client (too big once encapsulated: the director's ICMP frag-needed / PTB lowers the client's
// path MTU and the query goes through), the health check over the routed path, and status
// showing the forwarding method, a hot restart that keeps a tunnelled session, a drained
// backend whose session finishes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync, ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { MariaDB } from '../../scripts/lab/mariadb';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin', 'xdirector.js');
const DECAP = path.join(ROOT, 'dist/bpf/tools/xdp_decap.bpf.o');
const P = `xttu${process.pid % 100000}`;
const NS = { sw: `${P}s`, c: `${P}c`, d: `${P}d`, r: `${P}r`, b: `${P}b` };
const VIP4 = '10.91.0.100';
const VIP6 = 'fd91::100';
let tmp: string;
let db: MariaDB | undefined;
let daemon: ChildProcess | undefined;
const daemonLog: string[] = [];

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
const ipn = (ns: string, ...args: string[]): string => sh('ip', ['-n', ns, ...args]);
const inNs = (ns: string, cmd: string, ...args: string[]): string => sh('ip', ['netns', 'exec', ns, cmd, ...args]);

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
  for (const [ns, port] of [[NS.c, 'sc'], [NS.d, 'sd'], [NS.r, 'sr']] as const) {
    link(ns, 'eth0', NS.sw, port);
    ipn(NS.sw, 'link', 'set', port, 'master', 'sw0');
  }
  link(NS.r, 'eth1', NS.b, 'eth0');
  for (const ns of Object.values(NS)) ipn(ns, 'link', 'set', 'lo', 'up');
  const addr = (ns: string, dev: string, a4: string, a6: string) => {
    ipn(ns, 'addr', 'add', a4, 'dev', dev);
    ipn(ns, '-6', 'addr', 'add', a6, 'dev', dev, 'nodad');
  };
  addr(NS.c, 'eth0', '10.91.0.10/24', 'fd91::10/64');
  addr(NS.d, 'eth0', '10.91.0.2/24', 'fd91::2/64');
  addr(NS.r, 'eth0', '10.91.0.1/24', 'fd91::1/64');
  addr(NS.r, 'eth1', '10.92.1.1/24', 'fd92:1::1/64');
  addr(NS.b, 'eth0', '10.92.1.11/24', 'fd92:1::11/64');
  inNs(NS.r, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1');
  // The client reaches the VIPs through the director (as a router or VRRP would send them there).
  ipn(NS.c, 'route', 'add', `${VIP4}/32`, 'via', '10.91.0.2');
  ipn(NS.c, '-6', 'route', 'add', `${VIP6}/128`, 'via', 'fd91::2');
  // The director reaches the real servers' subnets through the router.
  ipn(NS.d, 'route', 'add', '10.92.0.0/16', 'via', '10.91.0.1');
  ipn(NS.d, '-6', 'route', 'add', 'fd92::/16', 'via', 'fd91::1');
  ipn(NS.b, 'route', 'add', 'default', 'via', '10.92.1.1');
  ipn(NS.b, '-6', 'route', 'add', 'default', 'via', 'fd92:1::1');
  // Real server: VIPs on lo, never answered for on eth0 (as for DR), tunnel end on eth0.
  inNs(NS.b, 'sysctl', '-qw', 'net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.all.arp_announce=2');
  ipn(NS.b, 'addr', 'add', `${VIP4}/32`, 'dev', 'lo');
  ipn(NS.b, '-6', 'addr', 'add', `${VIP6}/128`, 'dev', 'lo', 'nodad', 'preferred_lft', '0');
  ipn(NS.b, 'link', 'set', 'dev', 'eth0', 'xdpgeneric', 'obj', DECAP, 'sec', 'xdp');
  // A real NIC delivers complete checksums; veth from a local stack leaves them partial.
  inNs(NS.c, 'ethtool', '-K', 'eth0', 'tx', 'off');
}

function config(): string {
  const svc = (name: string, vip: string, rs: string) => `  - name: ${name}
    vip: ${vip}
    port: 3306
    forwarding: tunnel
    encap: ipip
    backends:
      - address: ${rs}
`;
  return `instance: ${P}
interface: eth0
dataplane: xdp
xdp:
  mode: generic
  pin_dir: /sys/fs/bpf/${P}
  ring_size: 251
  max_services: 4
  max_backends: 16
  flow_table_size: 4096
admin:
  socket: ${tmp}/d.sock
monitor:
  user: monitor
  password_env: XD_MON_PW
tunnel:
  source_v4: 10.91.0.2
  source_v6: fd91::2
services:
${svc('mysql4', VIP4, '10.92.1.11')}${svc('mysql6', VIP6, 'fd92:1::11')}`;
}

async function status(): Promise<any> {
  const r = spawnSync('nsenter', [`--net=/run/netns/${NS.d}`, process.execPath, BIN, 'status', '--json', '--socket', `${tmp}/d.sock`], { encoding: 'utf8', timeout: 20000 });
  if (r.status !== 0) throw new Error(`status: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Runs `sql` (read from stdin: a large query does not fit an argument) as the client, through the VIP. */
function mysql(vip: string, sql: string): string {
  return execFileSync('ip', ['netns', 'exec', NS.c, 'mariadb', '--connect-timeout=5', '-h', vip, '-u', 'app', '-papp', '-N', '-B'],
    { input: sql, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 << 20 }).trim();
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${P}-`));
  topology();
  db = new MariaDB({ prefix: P, name: 'b1', serverId: 41, netns: NS.b, baseDir: tmp });
  await db.start();
  fs.writeFileSync(`${tmp}/d.yaml`, config());
  await startDaemon();
});

async function startDaemon(): Promise<void> {
  daemon = spawn('nsenter', [`--net=/run/netns/${NS.d}`, process.execPath, BIN, 'run', '-c', `${tmp}/d.yaml`], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XD_MON_PW: 'monitor' } });
  daemon.stdout!.on('data', (d) => daemonLog.push(String(d)));
  daemon.stderr!.on('data', (d) => daemonLog.push(String(d)));
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      const st = await status();
      const bes = st.dataplane.services.flatMap((s: any) => s.backends);
      if (bes.length === 2 && bes.every((b: any) => b.mac && b.state === 'active')) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`daemon not ready in 30 s:\n${daemonLog.join('')}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A session that runs `select sleep(s), @@server_id` through the VIP; resolves with its output. */
function heldSession(vip: string, seconds: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', NS.c, 'mariadb', '--connect-timeout=5', '-h', vip, '-u', 'app', '-papp', '-N', '-B', '-e', `select sleep(${seconds}), @@server_id`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`session through ${vip} failed (${code}): ${err}`))));
  });
}

after(async () => {
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon!.once('exit', r));
  }
  spawnSync('nsenter', [`--net=/run/netns/${NS.d}`, process.execPath, BIN, 'stop', '--detach', '-c', `${tmp}/d.yaml`], { timeout: 20000 });
  await db?.stop().catch(() => undefined);
  for (const ns of Object.values(NS)) spawnSync('ip', ['netns', 'del', ns]);
  spawnSync('rm', ['-rf', `/sys/fs/bpf/${P}`]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('the tunnel backends resolve to the router\'s MAC and status shows tunnel forwarding', async () => {
  const st = await status();
  const routerMac = JSON.parse(ipn(NS.r, '-j', 'link', 'show', 'eth0'))[0].address;
  for (const s of st.dataplane.services) {
    assert.equal(s.forwarding, 'tunnel/ipip', s.name);
    assert.equal(s.backends[0].mac, routerMac, `${s.name}: next hop is the router`);
    assert.equal(s.backends[0].forwarding, 'tunnel/ipip');
  }
});

test('MySQL through the IPv4 VIP reaches the MariaDB behind the router (4in4)', () => {
  assert.equal(mysql(VIP4, 'select @@server_id'), '41');
});

test('MySQL through the IPv6 VIP reaches the same MariaDB (6in6)', () => {
  assert.equal(mysql(VIP6, 'select @@server_id'), '41');
});

test('a 2 MB result set comes back whole over the IPv4 VIP (replies go straight to the client)', () => {
  const out = mysql(VIP4, "select repeat('x', 2000000)");
  assert.equal(out.length, 2000000);
  assert.equal(createHash('md5').update(out).digest('hex'), createHash('md5').update('x'.repeat(2000000)).digest('hex'));
});

test('a large query from the client goes through: the director\'s frag-needed / PTB lowers the client\'s path MTU', () => {
  for (const vip of [VIP4, VIP6]) {
    assert.equal(mysql(vip, `select length('${'y'.repeat(200000)}')`), '200000', vip);
  }
  const st = JSON.parse(sh('nsenter', [`--net=/run/netns/${NS.d}`, process.execPath, BIN, 'status', '--json', '--socket', `${tmp}/d.sock`]));
  assert.ok((st.dataplane.reasons.tx_too_big ?? 0) >= 2, `ICMP too-big answers sent: ${JSON.stringify(st.dataplane.reasons)}`);
});

test('hot restart: a session through the tunnel outlives a control-plane restart, and new ones follow', async () => {
  const held = heldSession(VIP4, 4);
  await sleep(1000);
  daemon!.kill('SIGTERM');
  await new Promise((r) => daemon!.once('exit', r));
  await startDaemon();
  assert.equal(await held, '0\t41');
  assert.equal(mysql(VIP4, 'select @@server_id'), '41');
});

test('a drained tunnel backend finishes its session and takes no new one', async () => {
  const held = heldSession(VIP6, 3);
  await sleep(800);
  const r = spawnSync('nsenter', [`--net=/run/netns/${NS.d}`, process.execPath, BIN, 'drain', '[fd92:1::11]:3306', '--socket', `${tmp}/d.sock`], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(await held, '0\t41');
  const fresh = spawnSync('ip', ['netns', 'exec', NS.c, 'mariadb', '--connect-timeout=2', '-h', VIP6, '-u', 'app', '-papp', '-N', '-B', '-e', 'select 1'], { encoding: 'utf8', timeout: 20000 });
  assert.notEqual(fresh.status, 0, 'a new connection to the drained service must not be served');
  const st = await status();
  assert.equal(st.dataplane.services.find((s: any) => s.name === 'mysql6').backends[0].state, 'draining');
});
