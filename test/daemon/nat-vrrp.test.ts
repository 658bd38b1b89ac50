// NAT failover end to end, on XDP with real MariaDB: the NAT lab of test/lib/nat-lab.ts with two
// directors (client network and a private server network on different subnets), three MariaDB
// whose only route out is the inner gateway 10.94.0.1, set by `xdirector realserver setup --nat
// --gateway 10.94.0.1` as an operator would. Both directors run `xdirector run` with the XDP NAT
// dataplane (native on both arms), VIP:3307 -> backends:3306, connection sync on, and VRRP as the
// README recommends: one instance holding the VIP on eth0 and the gateway as "10.94.0.1/24 dev
// eth1", so both move together.
//
// 30 mysql2 sessions (test/bgp/sessions.ts) insert every 100 ms through the VIP. The Master's
// daemon is SIGKILLed by its pid and its host's links go down (a dead host: a killed daemon on a
// live host would leave its addresses in place). Then every session has kept its backend and
// is still writing through the new Master, whose XDP out stage translates the replies with the
// reverse entries sync installed (counted in its pinned reverse table before the kill; its out
// counters show the translation after); every acknowledged insert is in its backend's table
// (0 lost), and the longest gap between acknowledged writes is printed.
//
// First, why a NAT VIP is held by VRRP and never announced over BGP (check-config refuses it): a
// connection sent to the director that does not hold the gateway, as ECMP would, is forwarded
// there, but its SYN-ACK reaches the gateway's holder before sync could tell it of the flow
// (sync reports a flow when its handshake completes): untranslated, it never connects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import YAML from 'yaml';
import { MariaDB } from '../../scripts/lab/mariadb';
import { NatLab, NAT_ADDR as A, xdpPassObject } from '../lib/nat-lab';
import { BIN, LabDaemon, ROOT, waitUntil } from '../lib/daemon';
import { Sessions, type SessionRow } from '../bgp/fabric';
import { openPinnedXdMap } from '../../src/bpf/maps';

const SESSIONS = 30;
const P = `xtnv${process.pid % 100000}`;
const VIP = '10.93.0.100';
const VPORT = 3307;
const GW = A.dirInner.v4;
const lab = new NatLab({
  prefix: P,
  xdpPass: xdpPassObject(ROOT),
  vips: { v4: [], v6: [] },
  directors: 2,
  gatewayRoute: false,
});
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${P}-`));
const dbs: MariaDB[] = [];
const ds: LabDaemon[] = [];
const drivers: Sessions[] = [];

function config(i: number, priority: number): Record<string, unknown> {
  return {
    instance: `${P}d${i + 1}`,
    interface: 'eth0',
    dataplane: 'xdp',
    nat: { interface: 'eth1' },
    xdp: {
      mode: 'native',
      pin_dir: `/sys/fs/bpf/${P}`,
      ring_size: 251,
      max_services: 4,
      max_backends: 16,
      flow_table_size: 4096,
    },
    admin: { socket: path.join(tmp, `d${i + 1}.sock`) },
    state_dir: path.join(tmp, `d${i + 1}`),
    services: [
      {
        name: 'mysql',
        vip: VIP,
        port: VPORT,
        forwarding: 'nat',
        // rr: without sync the new Master's own counter sends a session's next packet to another
        // backend, so only synced flows keep the sessions (XD_TEST_SYNC_OFF=1 breaks them).
        scheduler: 'rr',
        check: 'none',
        backends: A.backends.map((b) => ({ address: b.v4, port: 3306, name: b.name })),
      },
    ],
    vrrp: [
      {
        name: 'VI_1',
        vrid: 54,
        priority,
        version: 3,
        advert_interval: '100ms',
        vips: [`${VIP}/32`, `${GW}/24 dev eth1`],
        garp: { repeat: 3, interval: '50ms', refresh: '10s' },
      },
    ],
    // XD_TEST_SYNC_OFF=1: the control run without sync (the Backup has no reverse entries).
    ...(process.env.XD_TEST_SYNC_OFF
      ? {}
      : { sync: { source: A.pair.outer[i], peers: [A.pair.outer[1 - i]], key_file: path.join(tmp, 'sync.key') } }),
  };
}

function has(ns: string, dev: string, addr: string): boolean {
  return lab.ip(ns, '-4', 'addr', 'show', 'dev', dev).includes(`${addr}/`);
}
const holdsBoth = (i: number) => has(lab.ns.ds[i]!, 'eth0', VIP) && has(lab.ns.ds[i]!, 'eth1', GW);

before(async () => {
  lab.create();
  A.backends.forEach((b, i) =>
    dbs.push(
      new MariaDB({ prefix: P, name: b.name, serverId: i + 1, netns: lab.ns.b[i]!, advertiseHost: b.v4, baseDir: tmp }),
    ),
  );
  await Promise.all(dbs.map((db) => db.start()));
  // The real servers' only route out: the gateway, set as an operator would.
  A.backends.forEach((_, i) => {
    const r = spawnSync(
      'ip',
      [
        'netns',
        'exec',
        lab.ns.b[i]!,
        process.execPath,
        BIN,
        'realserver',
        'setup',
        '--nat',
        '--gateway',
        GW,
        '--nat-state',
        path.join(tmp, `rs${i}.json`),
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, `realserver setup --nat on ${lab.ns.b[i]}: ${r.stderr}`);
    assert.match(
      lab.ip(lab.ns.b[i]!, 'route', 'show', 'default'),
      new RegExp(`^default via ${GW.replace(/\./g, '\\.')} `),
    );
  });
  await Promise.all(
    dbs.map((db) =>
      db.query(
        'CREATE TABLE lab.acks (sess INT NOT NULL, seq INT NOT NULL, server_id INT NOT NULL, PRIMARY KEY (sess, seq))',
      ),
    ),
  );
  fs.writeFileSync(path.join(tmp, 'sync.key'), 'k'.repeat(48), { mode: 0o600 });
  [150, 100].forEach((prio, i) => {
    fs.mkdirSync(path.join(tmp, `d${i + 1}`));
    const file = path.join(tmp, `d${i + 1}.yaml`);
    fs.writeFileSync(file, YAML.stringify(config(i, prio)));
    const d = new LabDaemon(lab.ns.ds[i]!, file, path.join(tmp, `d${i + 1}.sock`));
    ds.push(d);
    d.start();
  });
  const [d1, d2] = ds as [LabDaemon, LabDaemon];
  await waitUntil(
    'd1 to hold the VIP and the gateway',
    () => holdsBoth(0),
    30_000,
    () => d1.tail(),
  );
  for (const d of ds)
    await waitUntil(
      `${d.ns}: every backend resolved on eth1`,
      () => d.status().dataplane.services.every((s: any) => s.backends.every((b: any) => b.mac)),
      15_000,
      () => d.tail(),
    );
  await waitUntil(
    'd2 (Backup) to hold neither',
    () => !has(lab.ns.ds[1]!, 'eth0', VIP) && !has(lab.ns.ds[1]!, 'eth1', GW),
    5_000,
  );
  assert.equal(d2.status().vrrp[0].state, 'BACKUP');
});

after(async () => {
  for (const s of drivers) s.kill();
  for (const d of ds) await d.destroy();
  await Promise.all(dbs.map((db) => db.destroy().catch(() => undefined)));
  lab.destroy();
  fs.rmSync(`/sys/fs/bpf/${P}`, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Entries in director i's IPv4 NAT reverse table (read from its pins). */
function reverseEntries(i: number): number {
  const m = openPinnedXdMap(path.join('/sys/fs/bpf', P, `${P}d${i + 1}`), 'nrev4');
  try {
    return m.entries().length;
  } finally {
    m.close();
  }
}

/** Rows per `${server_id}/${sess}` on the backends. */
async function rowsOnServers(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const [i, db] of dbs.entries())
    for (const r of await db.query<{ sess: number; n: number }[]>(
      'SELECT sess, COUNT(*) AS n FROM lab.acks GROUP BY sess',
    ))
      out.set(`${i + 1}/${r.sess}`, Number(r.n));
  return out;
}

test("why a NAT VIP is not announced over BGP: a connection that reaches the director not holding the gateway (as ECMP would send it) is not established, its SYN-ACK meeting the gateway's holder before any sync", async () => {
  // The client sends to d2 (the Backup, whose program forwards the VIP's packets all the same),
  // the real server replies through the gateway, held by d1.
  lab.ip(lab.ns.c, 'route', 'add', `${VIP}/32`, 'via', A.pair.outer[1]);
  try {
    const code = `const s=require('net').connect(${VPORT},'${VIP}');s.on('connect',()=>{console.log('connected');process.exit(0)});s.on('error',(e)=>{console.log(e.code);process.exit(0)});setTimeout(()=>{console.log('timeout');process.exit(0)},3000);`;
    const reasons = () => ds.map((d) => d.status().dataplane.reasons as Record<string, number>);
    const [a0, b0] = reasons();
    const r = spawnSync('ip', ['netns', 'exec', lab.ns.c, process.execPath, '-e', code], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    const [a1, b1] = reasons();
    const forwarded = b1!.tx_new_flow! + b1!.tx_embryonic! - b0!.tx_new_flow! - b0!.tx_embryonic!;
    const translated = a1!.tx_nat_out! - a0!.tx_nat_out!;
    process.stdout.write(
      `# a NAT connection through the director not holding the gateway: ${r.stdout.trim()}; d2 forwarded ${forwarded} SYNs, d1 translated ${translated} replies\n`,
    );
    assert.equal(r.stdout.trim(), 'timeout', 'no connection');
    assert.ok(forwarded >= 1, 'd2 forwarded the SYN to a real server');
    assert.equal(translated, 0, 'd1 had no reverse entry for the SYN-ACKs: they left untranslated');
  } finally {
    lab.ip(lab.ns.c, 'route', 'del', `${VIP}/32`, 'via', A.pair.outer[1]);
  }
});

test(`NAT on XDP, VIP and gateway in one VRRP instance: ${SESSIONS} sessions writing every 100 ms through VIP:${VPORT} survive the Master's SIGKILL with 0 acknowledged writes lost`, async () => {
  const [d1, d2] = ds as [LabDaemon, LabDaemon];
  const spawnClient = (args: string[]) =>
    spawn('ip', ['netns', 'exec', lab.ns.c, process.execPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const { s, ready } = await Sessions.startWith(spawnClient, { host: VIP, port: VPORT, count: SESSIONS, parallel: 10 });
  drivers.push(s);
  const atStart = new Map<number, SessionRow>(ready.map((r) => [r.id, r]));
  assert.equal(atStart.size, SESSIONS);
  assert.ok(new Set(ready.map((r) => r.serverId)).size >= 2, 'the sessions spread over the backends');
  // The Backup has every session's flow, so its reverse entry, before the Master dies.
  if (!process.env.XD_TEST_SYNC_OFF)
    await waitUntil(
      'd2 installed every session',
      () => d2.status().sync.received.installed >= SESSIONS,
      10_000,
      () => d2.tail(),
    );
  // What makes the replies translatable on d2 after the takeover: a NAT reverse entry per session.
  const rev = reverseEntries(1);
  if (!process.env.XD_TEST_SYNC_OFF) assert.ok(rev >= SESSIONS, `d2's NAT reverse entries before the failover: ${rev}`);
  const d2Out0 = d2.status().dataplane.services[0].outPackets as number;
  const ackedBefore = new Map((await s.report()).map((r) => [r.id, r.acked]));
  const killed = d1.pid!;
  await d1.kill('SIGKILL');
  assert.equal(d1.child!.signalCode, 'SIGKILL', `daemon pid ${killed} ended by SIGKILL`);
  lab.ip(lab.ns.ds[0]!, 'link', 'set', 'eth0', 'down');
  lab.ip(lab.ns.ds[0]!, 'link', 'set', 'eth1', 'down');
  const takeoverMs = await waitUntil(
    'd2 to hold the VIP and the gateway',
    () => holdsBoth(1),
    5_000,
    () => d2.tail(),
  );
  const writingMs = await waitUntil(
    'every session writing 5 more times through d2 (or failing)',
    async () => (await s.report()).every((r) => r.error !== undefined || r.acked >= ackedBefore.get(r.id)! + 5),
    20_000,
  );
  const now = await s.stop();
  drivers.length = 0;
  const broken = now.filter((r) => r.error !== undefined || r.serverId !== atStart.get(r.id)!.serverId);
  const maxGap = Math.max(...now.map((r) => r.maxGapMs));
  const acked = now.reduce((n, r) => n + r.acked, 0);
  const st = d2.status();
  const d2Out = st.dataplane.services[0].outPackets - d2Out0;
  process.stdout.write(
    `# NAT + VRRP failover${process.env.XD_TEST_SYNC_OFF ? ' (control run without sync)' : ''} (XDP, ${SESSIONS} sessions through ${VIP}:${VPORT} -> :3306, writing every 100 ms): SIGKILL of pid ${killed} to VIP and gateway on d2 ${takeoverMs} ms, every session writing through d2 ${writingMs} ms later; ${SESSIONS - broken.length} of ${SESSIONS} sessions survived, ${acked} acknowledged writes, longest gap between acknowledged writes ${maxGap} ms; d2 held ${rev} NAT reverse entries before the kill and translated ${d2Out} reply packets after the takeover\n`,
  );
  assert.deepEqual(
    broken.map((r) => `${r.id}: ${r.error ?? `moved from server ${atStart.get(r.id)!.serverId} to ${r.serverId}`}`),
    [],
  );
  const rows = await rowsOnServers();
  const lost = now.filter((r) => (rows.get(`${r.serverId}/${r.id}`) ?? 0) < r.acked);
  assert.deepEqual(
    lost.map(
      (r) => `${r.id}: ${r.acked} acknowledged, ${rows.get(`${r.serverId}/${r.id}`) ?? 0} rows on server ${r.serverId}`,
    ),
    [],
  );
  // The replies after the takeover were translated by d2's XDP out stage (reverse entries from sync).
  assert.ok(d2Out >= SESSIONS * 5, `d2's NAT out packets after the takeover: ${d2Out}`);
  assert.equal(st.vrrp[0].state, 'MASTER');
});
