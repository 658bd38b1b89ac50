// End to end, NAT forwarding in XDP: the lab of test/lib/nat-lab.ts (client network, private
// server network, two-armed director; three MariaDB whose only route out is the director's
// inner address; a fourth behind a router with a 1400-byte link).
//
// `xdirector run` in the director namespace, native XDP on both interfaces, services with
// forwarding: nat: VIP:3307 -> backends:3306 by weight 1:2:3 (IPv4 and IPv6), VIP:3307 -> the
// far server (path MTU), and UDP VIP:5300 -> backends:5353. Checked: 300 connections spread
// by weight and every session's replies coming from VIP:3307 (the client's socket accepts
// nothing else), a 2 MB result set, a 300 KB query that meets the narrower link behind the
// router (its frag needed goes to the client and reaches it translated, so the client's path
// MTU drops and the query completes), UDP through port translation, IPv6, the Out counters,
// and the alert for a NAT backend whose replies bypass the director.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync, ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { MariaDB } from '../../scripts/lab/mariadb';
import { clientScript, ConnectionsReport } from '../../scripts/lab/client';
import { NatLab, NAT_ADDR as A, xdpPassObject } from '../lib/nat-lab';
import { LabDaemon, ROOT, waitUntil } from '../lib/daemon';

const P = `xtna${process.pid % 100000}`;
const VIP4 = '10.93.0.100';
const VIP6 = 'fd93::100';
const VIP_FAR = '10.93.0.101';
const VPORT = 3307;
const UDP_VPORT = 5300;
const UDP_PORT = 5353;
const WEIGHTS = [1, 2, 3];
const lab = new NatLab({ prefix: P, xdpPass: xdpPassObject(ROOT), vips: { v4: [VIP4, VIP_FAR], v6: [VIP6] } });
let tmp: string;
const dbs: MariaDB[] = [];
const udpServers: ChildProcess[] = [];
let daemon: LabDaemon;

function config(): string {
  const be = (v6: boolean) =>
    A.backends
      .map(
        (b, i) =>
          `      - { address: "${v6 ? b.v6 : b.v4}", port: 3306, name: ${b.name}${v6 ? '-6' : ''}, weight: ${WEIGHTS[i]} }\n`,
      )
      .join('');
  return `instance: ${P}
interface: eth0
dataplane: xdp
nat:
  interface: eth1
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
  connect_timeout: 500ms
health:
  interval: 500ms
  timeout: 400ms
  rise: 1
  fall: 3
services:
  - name: mysql
    vip: ${VIP4}
    port: ${VPORT}
    forwarding: nat
    backends:
${be(false)}  - name: mysql6
    vip: "${VIP6}"
    port: ${VPORT}
    forwarding: nat
    backends:
${be(true)}  - name: far
    vip: ${VIP_FAR}
    port: ${VPORT}
    forwarding: nat
    backends:
      - { address: ${A.far.v4}, port: 3306, name: b4 }
  - name: udp
    vip: ${VIP4}
    port: ${UDP_VPORT}
    protocol: udp
    forwarding: nat
    check: none
    backends:
${A.backends.map((b) => `      - { address: ${b.v4}, port: ${UDP_PORT}, name: ${b.name}-udp }\n`).join('')}`;
}

const status = async (): Promise<any> => daemon.status();
const waitFor = (what: string, cond: () => Promise<boolean>, timeoutMs: number) =>
  waitUntil(what, cond, timeoutMs, () => daemon.tail());

/** `sql` (from stdin: a large query does not fit an argument) as the client, through VIP:port. */
function mysql(vip: string, sql: string): string {
  return execFileSync(
    'ip',
    [
      'netns',
      'exec',
      lab.ns.c,
      'mariadb',
      '--connect-timeout=5',
      '-h',
      vip,
      '-P',
      String(VPORT),
      '-u',
      'app',
      '-papp',
      '-N',
      '-B',
      '--max-allowed-packet=64M',
    ],
    { input: sql, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 << 20, timeout: 60000 },
  ).trim();
}

function connections(vip: string, n: number): Record<string, number> {
  const r = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      lab.ns.c,
      process.execPath,
      clientScript(),
      '--host',
      vip,
      '--port',
      String(VPORT),
      '--connections',
      String(n),
      '--concurrency',
      '4',
      '--json',
    ],
    { encoding: 'utf8', timeout: 120000 },
  );
  const rep = JSON.parse(r.stdout.trim().split('\n').pop() || '{}') as ConnectionsReport;
  assert.equal(rep.failed, 0, `connections to ${vip}: ${JSON.stringify(rep.failures ?? r.stderr)}`);
  return rep.byServerId;
}

/** A UDP server in each real server's namespace answering "<name>:<datagram>" on UDP_PORT. */
function startUdpServers(): void {
  A.backends.forEach((b, i) => {
    const code = `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(Buffer.from('${b.name}:'+m),r.port,r.address));s.bind(${UDP_PORT},'${b.v4}',()=>console.log('ready'));`;
    const child = spawn('ip', ['netns', 'exec', lab.ns.b[i]!, process.execPath, '-e', code], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    udpServers.push(child);
  });
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${P}-`));
  lab.create();
  A.backends.forEach((b, i) =>
    dbs.push(
      new MariaDB({ prefix: P, name: b.name, serverId: i + 1, netns: lab.ns.b[i]!, advertiseHost: b.v4, baseDir: tmp }),
    ),
  );
  dbs.push(
    new MariaDB({ prefix: P, name: 'b4', serverId: 4, netns: lab.ns.far, advertiseHost: A.far.v4, baseDir: tmp }),
  );
  await Promise.all(dbs.map((db) => db.start()));
  startUdpServers();
  fs.writeFileSync(`${tmp}/d.yaml`, config());
  daemon = new LabDaemon(lab.ns.d, `${tmp}/d.yaml`, `${tmp}/d.sock`, { XD_MON_PW: 'monitor' });
  daemon.start();
  await waitFor(
    'every NAT backend resolved and up',
    async () => {
      const st = await status();
      return st.dataplane.services.every((s: any) => s.backends.every((b: any) => b.mac && b.state === 'active'));
    },
    40000,
  );
});

after(async () => {
  await daemon?.destroy();
  for (const c of udpServers) c.kill('SIGTERM');
  await Promise.all(dbs.map((db) => db.stop().catch(() => undefined)));
  lab.destroy();
  spawnSync('rm', ['-rf', `/sys/fs/bpf/${P}`]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('native XDP on both arms; status shows forwarding nat per service and backend, each with its own port', async () => {
  const st = await status();
  assert.equal(st.dataplane.detail.mode, 'native');
  assert.deepEqual(st.dataplane.detail.natInterface, { name: 'eth1', mode: 'native' });
  for (const s of st.dataplane.services) {
    assert.equal(s.forwarding, 'nat', s.name);
    for (const b of s.backends) assert.equal(b.forwarding, 'nat', `${s.name}/${b.name}`);
  }
  const m = st.dataplane.services.find((s: any) => s.name === 'mysql');
  assert.equal(m.port, VPORT);
  assert.deepEqual(
    m.backends.map((b: any) => b.port),
    [3306, 3306, 3306],
  );
  // The backends are on the inner subnet: their own MACs, resolved on eth1.
  const macOf = (ns: string) => JSON.parse(lab.ip(ns, '-j', 'link', 'show', 'eth0'))[0].address;
  assert.deepEqual(
    m.backends.map((b: any) => b.mac),
    lab.ns.b.map(macOf),
  );
});

test('300 connections through VIP:3307 reach the three MariaDB on 3306 in proportion to weights 1:2:3', () => {
  const r = connections(VIP4, 300);
  const c = [1, 2, 3].map((id) => r[String(id)] ?? 0);
  assert.equal(c[0]! + c[1]! + c[2]!, 300, JSON.stringify(r));
  // Expected 50 / 100 / 150; the Maglev ring splits the client ports' hash space by weight.
  assert.ok(c[0]! >= 25 && c[0]! <= 80, `weight 1: ${c[0]} of 300`);
  assert.ok(c[1]! >= 65 && c[1]! <= 135, `weight 2: ${c[1]} of 300`);
  assert.ok(c[2]! >= 110 && c[2]! <= 190, `weight 3: ${c[2]} of 300`);
  assert.ok(c[0]! < c[2]!, `weight 1 (${c[0]}) below weight 3 (${c[2]})`);
});

test('a 2 MB result set comes back whole through NAT (every reply rewritten to VIP:3307)', () => {
  const out = mysql(VIP4, "select repeat('x', 2000000)");
  assert.equal(out.length, 2000000);
  assert.equal(
    createHash('md5').update(out).digest('hex'),
    createHash('md5').update('x'.repeat(2000000)).digest('hex'),
  );
});

test("a 300 KB query crosses the 1400-byte link behind the router: its frag needed reaches the client translated and the client's path MTU drops", () => {
  const before = execFileSync('ip', ['netns', 'exec', lab.ns.c, 'ip', 'route', 'get', VIP_FAR], { encoding: 'utf8' });
  assert.doesNotMatch(before, /mtu 1400/, 'no learned path MTU before the query');
  const payload = 'y'.repeat(300 * 1024);
  assert.equal(mysql(VIP_FAR, `select length('${payload}'), @@server_id`), `${payload.length}\t4`);
  const after = execFileSync('ip', ['netns', 'exec', lab.ns.c, 'ip', 'route', 'get', VIP_FAR], { encoding: 'utf8' });
  assert.match(after, /mtu 1400/, `the client learned the far link's MTU for the VIP: ${after}`);
});

test('IPv6: MySQL through [VIP6]:3307 reaches the backends on [addr]:3306', () => {
  const ids = new Set<string>();
  for (let i = 0; i < 12; i++) ids.add(mysql(VIP6, 'select @@server_id'));
  assert.ok(ids.size >= 2, `IPv6 sessions spread over the backends: ${[...ids].join(',')}`);
  const out = mysql(VIP6, "select repeat('z', 500000)");
  assert.equal(out.length, 500000);
});

test('UDP: datagrams to VIP:5300 reach a backend on 5353 and its answers come back from VIP:5300', () => {
  const code = `const s=require('dgram').createSocket('udp4');const got=[];s.on('message',(m,r)=>{got.push(m.toString()+'@'+r.address+':'+r.port);if(got.length===20){console.log(JSON.stringify(got));process.exit(0)}});s.bind(()=>{for(let i=0;i<20;i++){const c=require('dgram').createSocket('udp4');c.connect(${UDP_VPORT},'${VIP4}',()=>{c.send('q'+i);c.on('message',(m,r)=>{got.push(m.toString()+'@'+r.address+':'+r.port);c.close();if(got.length===20){console.log(JSON.stringify(got));process.exit(0)}})})}});setTimeout(()=>{console.log(JSON.stringify(got));process.exit(1)},5000);`;
  const out = execFileSync('ip', ['netns', 'exec', lab.ns.c, process.execPath, '-e', code], {
    encoding: 'utf8',
    timeout: 10000,
  }).trim();
  const got = JSON.parse(out) as string[];
  assert.equal(got.length, 20, out);
  for (const g of got) assert.match(g, new RegExp(`^b[123]:q\\d+@${VIP4.replace(/\./g, '\\.')}:${UDP_VPORT}$`), g);
  assert.ok(new Set(got.map((g) => g.split(':')[0])).size >= 2, `20 sockets spread over the backends: ${out}`);
});

test('status counts In and Out packets and bytes per NAT backend, as ipvsadm --stats does', async () => {
  const st = await status();
  const m = st.dataplane.services.find((s: any) => s.name === 'mysql');
  for (const b of m.backends)
    assert.ok(b.packets > 0 && b.outPackets > 0, `${b.name}: in ${b.packets} out ${b.outPackets}`);
  assert.equal(
    m.outPackets,
    m.backends.reduce((n: number, b: any) => n + b.outPackets, 0),
  );
  assert.equal(
    m.outBytes,
    m.backends.reduce((n: number, b: any) => n + b.outBytes, 0),
  );
  // The 2 MB result set went out through the director: replies outweigh requests.
  assert.ok(m.outBytes > m.bytes + 2_000_000, `in ${m.bytes} B, out ${m.outBytes} B`);
  assert.ok(st.dataplane.reasons.tx_nat_out > 0);
  assert.equal(st.dataplane.detail.natAlert, undefined);
});

test('a NAT backend whose replies bypass the director raises an alert naming it and the fix; replies coming back clear it', async () => {
  // b3 keeps its subnet (the director's health checks still pass) but loses its route out.
  const ns = lab.ns.b[2]!;
  lab.ip(ns, 'route', 'replace', 'default', 'via', '10.94.0.99');
  try {
    const code = `let n=0;for(let i=0;i<40;i++){const s=require('net').connect(${VPORT},'${VIP4}');s.on('error',()=>{});setTimeout(()=>{s.destroy();if(++n===40)process.exit(0)},700)}`;
    execFileSync('ip', ['netns', 'exec', lab.ns.c, process.execPath, '-e', code], { timeout: 10000 });
    await waitFor(
      'the NAT alert for b3',
      async () =>
        /NAT backend b3 \(10\.94\.0\.13:3306\) of service mysql: \d+ new connections .*not one reply came back.*realserver setup --nat/.test(
          (await status()).dataplane.detail.natAlert ?? '',
        ),
      20000,
    );
    const st = await status();
    assert.doesNotMatch(
      st.dataplane.detail.natAlert,
      /backend b1|backend b2/,
      'only the backend whose replies go elsewhere',
    );
  } finally {
    lab.ip(ns, 'route', 'replace', 'default', 'via', A.dirInner.v4);
  }
  // Its replies come back: the alert clears on the next sample with traffic.
  await waitFor(
    'the NAT alert to clear',
    async () => {
      connections(VIP4, 12);
      return (await status()).dataplane.detail.natAlert === undefined;
    },
    20000,
  );
});
