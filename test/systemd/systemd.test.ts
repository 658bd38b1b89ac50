// systemd: the shipped unit passes `systemd-analyze verify`; the daemon, run with only the
// unit's capabilities and a NOTIFY_SOCKET this test listens on, sends READY=1 once it serves,
// WATCHDOG=1 at half WATCHDOG_USEC, RELOADING=1/READY=1 on SIGHUP and STOPPING=1 on SIGTERM;
// logs carry level names and the hostname, with a syslog priority prefix for the journal.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { journalLine, prettyLine } from '../../src/log';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin/xdirector.js');
const UNIT = path.join(ROOT, 'systemd/xdirector.service');
const P = `xtsd${process.pid % 100000}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${P}-`));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sh = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });

/** The unit with the binary path pointing at this checkout (verify checks that ExecStart exists). */
function unitCopy(edit: (s: string) => string = (s) => s): string {
  const dir = fs.mkdtempSync(path.join(tmp, 'unit-'));
  const f = path.join(dir, 'xdirector.service');
  fs.writeFileSync(f, edit(fs.readFileSync(UNIT, 'utf8').replaceAll('/usr/local/bin/xdirector', BIN)));
  return f;
}

/** The value of the unit's `n`th (0-based) line setting `key`. */
function unitValue(key: string, n = 0): string {
  const all = [...fs.readFileSync(UNIT, 'utf8').matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))];
  assert.ok(all[n], `the unit has no ${n + 1}. ${key}=`);
  return all[n][1]!.trim();
}

/** The unit's capability set, as setpriv wants it: "+net_admin,+net_raw,...". */
function unitCaps(): string {
  return unitValue('CapabilityBoundingSet')
    .split(/\s+/)
    .map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)
    .join(',');
}

/** setpriv's arguments that give a command exactly the capability set `caps` (bounding, inheritable, ambient), as systemd does. */
const withCaps = (caps: string) => [
  'setpriv',
  '--bounding-set',
  `-all,${caps}`,
  '--inh-caps',
  `-all,${caps}`,
  '--ambient-caps',
  `-all,${caps}`,
];

describe('the systemd unit', () => {
  it('passes systemd-analyze verify', () => {
    const r = sh('systemd-analyze', ['verify', unitCopy()]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '');
  });

  it('is Type=notify with an answered reload, restart on failure, runtime and state directories and limited capabilities', () => {
    const u = fs.readFileSync(UNIT, 'utf8');
    for (const re of [
      /^Type=notify$/m,
      /^ExecReload=\/usr\/local\/bin\/xdirector reload -c \/etc\/xdirector\/xdirector\.yaml$/m,
      /^Restart=on-failure$/m,
      /^RuntimeDirectory=xdirector$/m,
      /^StateDirectory=xdirector$/m,
      /^WatchdogSec=/m,
      /^CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF CAP_PERFMON CAP_NET_BIND_SERVICE$/m,
    ])
      assert.match(u, re);
    assert.equal(
      unitValue('AmbientCapabilities'),
      unitValue('CapabilityBoundingSet'),
      'the ambient set is the bounding set',
    );
    assert.doesNotMatch(u.replace(/^#.*$/gm, ''), /CAP_SYS_ADMIN|kill -HUP/);
  });

  it('mounts bpffs with mode=0700 and removes the VRRP VIPs after every stop (ExecStopPost)', () => {
    assert.match(unitValue('ExecStartPre', 1), /mount -t bpf -o mode=0700 bpf \/sys\/fs\/bpf'$/);
    assert.equal(unitValue('ExecStopPost'), '/usr/local/bin/xdirector resign -c /etc/xdirector/xdirector.yaml');
  });

  it('is sandboxed: systemd-analyze security --offline rates its exposure at most 3.0 (6.8 with no sandbox)', () => {
    for (const [k, v] of Object.entries({
      ProtectSystem: 'strict',
      ReadWritePaths: '/sys/fs/bpf',
      UMask: '0077',
      ProtectKernelModules: 'yes',
      RestrictNamespaces: 'yes',
      RestrictAddressFamilies: 'AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET',
      SystemCallFilter: '@system-service @pkey bpf',
      SystemCallArchitectures: 'native',
    })) {
      assert.equal(unitValue(k), v, k);
    }
    const r = sh('systemd-analyze', ['security', '--offline=yes', unitCopy()]);
    const m = /Overall exposure level for \S+: (\d+\.\d)/.exec(r.stdout);
    assert.ok(m, `no exposure level in: ${r.stdout.slice(-300)} ${r.stderr}`);
    assert.ok(
      Number(m[1]) <= 3.0,
      `exposure ${m[1]}:\n${r.stdout
        .split('\n')
        .filter((l) => l.includes('✗'))
        .join('\n')}`,
    );
  });

  it('a broken unit fails verify (the check can fail)', () => {
    const r = sh('systemd-analyze', ['verify', unitCopy((s) => s.replace(BIN, '/nonexistent/xdirector'))]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /nonexistent/);
  });
});

describe("daemon notifications over NOTIFY_SOCKET (namespace, the unit's capabilities only)", () => {
  const ns = `${P}n`;
  const sock = path.join(tmp, 'notify.sock');
  const msgs: { t: number; m: string }[] = [];
  let listener: ChildProcess;
  let daemon: ChildProcess;
  let exited: Promise<number | null>;
  const daemonLog: string[] = [];
  const cfg = path.join(tmp, 'c.yaml');

  async function waitMsg(re: RegExp, from: number, timeoutMs: number): Promise<{ t: number; m: string }> {
    const t0 = Date.now();
    for (;;) {
      const m = msgs.slice(from).find((x) => re.test(x.m));
      if (m) return m;
      if (Date.now() - t0 > timeoutMs)
        throw new Error(
          `no ${re} within ${timeoutMs} ms; got ${JSON.stringify(msgs.map((x) => x.m))}\n${daemonLog.slice(-10).join('\n')}`,
        );
      await sleep(20);
    }
  }

  before(async () => {
    for (const a of [
      ['netns', 'add', ns],
      ['netns', 'add', `${ns}p`],
      ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', `${ns}p`],
      ['-n', ns, 'link', 'set', 'lo', 'up'],
      ['-n', ns, 'addr', 'add', '10.66.0.1/24', 'dev', 'eth0'],
      ['-n', ns, 'link', 'set', 'eth0', 'up'],
      ['-n', `${ns}p`, 'link', 'set', 'eth0', 'up'],
    ]) {
      const r = sh('ip', a);
      assert.equal(r.status, 0, `ip ${a.join(' ')}: ${r.stderr}`);
    }
    fs.writeFileSync(
      cfg,
      [
        `instance: ${P}`,
        'interface: eth0',
        'dataplane: xdp',
        `xdp: { mode: generic, pin_dir: /sys/fs/bpf/${P}, ring_size: 1021, flow_table_size: 4096, max_services: 4, max_backends: 16 }`,
        `admin: { socket: ${path.join(tmp, 'admin.sock')} }`,
        `state_dir: ${tmp}`,
        'services:',
        '  - { name: s, vip: 10.66.0.100, port: 3306, check: none, backends: [ { address: 10.66.0.11, mac: "02:00:00:00:00:11" } ] }',
        'vrrp:',
        '  - { name: V, vrid: 9, priority: 150, version: 3, advert_interval: 100ms, vips: [10.66.0.100/32] }',
        '',
      ].join('\n'),
    );
    // A unix datagram listener (Python: Node has none), one JSON line per datagram.
    listener = spawn(
      'python3',
      [
        '-u',
        '-c',
        'import socket,sys,time,json\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("{}",flush=True)\nwhile True:\n  d=s.recv(65536)\n  print(json.dumps({"t":time.monotonic()*1000,"m":d.decode()}),flush=True)',
        sock,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let buf = '';
    let bound!: () => void;
    const isBound = new Promise<void>((r) => (bound = r));
    listener.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        if (l === '{}') bound();
        else msgs.push(JSON.parse(l));
      }
    });
    await isBound;
    const caps = unitCaps();
    daemon = spawn('nsenter', [`--net=/run/netns/${ns}`, ...withCaps(caps), process.execPath, BIN, 'run', '-c', cfg], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NOTIFY_SOCKET: sock, WATCHDOG_USEC: '300000', XDIRECTOR_LOG_FORMAT: 'journal' },
    });
    exited = new Promise((r) => daemon.once('exit', (c) => r(c)));
    for (const s of [daemon.stdout!, daemon.stderr!])
      s.on('data', (d: Buffer) => daemonLog.push(...d.toString().split('\n').filter(Boolean)));
  });

  after(async () => {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      daemon.kill('SIGKILL');
      await exited;
    }
    listener?.kill('SIGTERM');
    spawnSync('nsenter', [`--net=/run/netns/${ns}`, process.execPath, BIN, 'stop', '--detach', '-c', cfg]);
    for (const n of [ns, `${ns}p`]) sh('ip', ['netns', 'del', n]);
    fs.rmSync(`/sys/fs/bpf/${P}`, { recursive: true, force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('sends READY=1 with its own pid once it serves', async () => {
    const ready = await waitMsg(/^READY=1$/m, 0, 40_000);
    assert.match(
      ready.m,
      new RegExp(`^MAINPID=${daemon.pid}$`, 'm'),
      'nsenter and setpriv exec: the daemon is the spawned pid',
    );
    assert.match(ready.m, /^STATUS=serving/m);
    const st = sh('nsenter', [
      `--net=/run/netns/${ns}`,
      process.execPath,
      BIN,
      'status',
      '--json',
      '--socket',
      path.join(tmp, 'admin.sock'),
    ]);
    assert.equal(st.status, 0, st.stderr);
    assert.equal(
      JSON.parse(st.stdout).dataplane.kind,
      'xdp',
      'XDP loaded and attached with CAP_BPF CAP_PERFMON CAP_NET_ADMIN only',
    );
  });

  it('sends WATCHDOG=1 at half WATCHDOG_USEC (300 ms → every 150 ms)', async () => {
    const from = msgs.length;
    await sleep(1200);
    const w = msgs.slice(from).filter((x) => x.m === 'WATCHDOG=1');
    assert.ok(w.length >= 5, `only ${w.length} WATCHDOG=1 in 1.2 s`);
    const gaps = w.slice(1).map((x, i) => x.t - w[i]!.t);
    assert.ok(
      Math.max(...gaps) < 300,
      `a watchdog gap reached the timeout: ${gaps.map((g) => g.toFixed(0)).join(', ')} ms`,
    );
  });

  it('sends RELOADING=1 then READY=1 around a SIGHUP reload', async () => {
    const from = msgs.length;
    daemon.kill('SIGHUP');
    const r = await waitMsg(/^RELOADING=1$/m, from, 10_000);
    assert.match(r.m, /^MONOTONIC_USEC=\d+$/m);
    const ready = await waitMsg(/^READY=1$/m, from, 20_000);
    assert.ok(ready.t >= r.t);
  });

  it("the unit's ExecReload exits 1 and says why when the daemon refuses the config, 0 once it is good", () => {
    const cmd = unitValue('ExecReload')
      .replace('/usr/local/bin/xdirector', BIN)
      .replace('/etc/xdirector/xdirector.yaml', cfg)
      .split(' ');
    const good = fs.readFileSync(cfg, 'utf8');
    const reload = () => sh('nsenter', [`--net=/run/netns/${ns}`, process.execPath, ...cmd]);
    try {
      fs.writeFileSync(cfg, good.replace('priority: 150', 'priority: 140'));
      const r = reload();
      assert.equal(r.status, 1, `${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /vrrp cannot change on reload; the running config stays/);
    } finally {
      fs.writeFileSync(cfg, good);
    }
    const ok = reload();
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^reloaded /);
  });

  it('logs level names and the hostname, each line prefixed with its syslog priority for journald', () => {
    const line = daemonLog.find((l) => l.startsWith('<6>'));
    assert.ok(line, daemonLog.slice(0, 3).join('\n'));
    const o = JSON.parse(line!.slice(3));
    assert.equal(o.level, 'info');
    assert.equal(o.hostname, os.hostname());
  });

  it('sends STOPPING=1 on SIGTERM and exits 0', async () => {
    const from = msgs.length;
    daemon.kill('SIGTERM');
    await waitMsg(/^STOPPING=1$/m, from, 10_000);
    assert.equal(await exited, 0);
  });
});

// ExecStopPost after a dead daemon: the daemon (the unit's capabilities) holds its VRRP VIP as the
// only director, is killed with SIGKILL (nothing of its own stop runs), then the unit's ExecStopPost
// command runs with the same capabilities: the VIP is gone, the program stays attached and pinned.
describe('ExecStopPost after the daemon died (namespace)', () => {
  const ns = `${P}r`;
  const pins = `/sys/fs/bpf/${P}r`;
  let dir = '';
  let cfg = '';
  let daemon: ChildProcess | undefined;
  const inNs = (args: string[]) => sh('nsenter', [`--net=/run/netns/${ns}`, ...args]);
  const vipThere = () => /inet 10\.66\.2\.100\/32/.test(inNs(['ip', 'addr', 'show', 'dev', 'eth0']).stdout);

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `${P}r-`));
    cfg = path.join(dir, 'c.yaml');
    for (const a of [
      ['netns', 'add', ns],
      ['netns', 'add', `${ns}p`],
      ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', `${ns}p`],
      ['-n', ns, 'link', 'set', 'lo', 'up'],
      ['-n', ns, 'addr', 'add', '10.66.2.1/24', 'dev', 'eth0'],
      ['-n', ns, 'link', 'set', 'eth0', 'up'],
      ['-n', `${ns}p`, 'link', 'set', 'eth0', 'up'],
    ]) {
      const r = sh('ip', a);
      assert.equal(r.status, 0, `ip ${a.join(' ')}: ${r.stderr}`);
    }
    fs.writeFileSync(
      cfg,
      [
        `instance: ${P}r`,
        'interface: eth0',
        'dataplane: xdp',
        `xdp: { mode: generic, pin_dir: ${pins}, ring_size: 1021, flow_table_size: 4096, max_services: 4, max_backends: 16 }`,
        `admin: { socket: ${path.join(dir, 'admin.sock')} }`,
        `state_dir: ${dir}`,
        'services:',
        '  - { name: s, vip: 10.66.2.100, port: 3306, check: none, backends: [ { address: 10.66.2.11, mac: "02:00:00:00:00:11" } ] }',
        'vrrp:',
        '  - { name: V, vrid: 10, priority: 150, version: 3, advert_interval: 100ms, vips: [10.66.2.100/32] }',
        '',
      ].join('\n'),
    );
  });

  after(() => {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
    inNs([process.execPath, BIN, 'stop', '--detach', '-c', cfg]);
    for (const n of [ns, `${ns}p`]) sh('ip', ['netns', 'del', n]);
    fs.rmSync(pins, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('removes the VRRP VIP the killed daemon left and keeps the attached program and its pins', async () => {
    const caps = unitCaps();
    const log: string[] = [];
    daemon = spawn('nsenter', [`--net=/run/netns/${ns}`, ...withCaps(caps), process.execPath, BIN, 'run', '-c', cfg], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const s of [daemon.stdout!, daemon.stderr!]) s.on('data', (d: Buffer) => log.push(d.toString()));
    const exited = new Promise((r) => daemon!.once('exit', r));
    const t0 = Date.now();
    while (!vipThere()) {
      assert.ok(
        Date.now() - t0 < 30_000 && daemon.exitCode === null,
        `the daemon never took the VIP:\n${log.join('').slice(-2000)}`,
      );
      await sleep(100);
    }
    daemon.kill('SIGKILL');
    await exited;
    assert.ok(vipThere(), 'SIGKILL left the VIP on the interface');
    const pinned = fs.readdirSync(path.join(pins, `${P}r`)).sort();
    assert.ok(pinned.length > 3, pinned.join(' '));
    const cmd = unitValue('ExecStopPost')
      .replace('/usr/local/bin/xdirector', BIN)
      .replace('/etc/xdirector/xdirector.yaml', cfg)
      .split(' ');
    const r = inNs([...withCaps(caps), process.execPath, ...cmd]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /V: removed 10\.66\.2\.100\/32 from eth0/);
    assert.ok(!vipThere(), 'the VIP is still on eth0');
    assert.deepEqual(fs.readdirSync(path.join(pins, `${P}r`)).sort(), pinned, 'the pins are kept');
    assert.match(inNs(['ip', 'link', 'show', 'dev', 'eth0']).stdout, /xdpgeneric/, 'the program stays attached');
    const again = inNs([process.execPath, ...cmd]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /V: 10\.66\.2\.100\/32 is not on eth0/);
  });
});

// BIRD is the daemon's child: it has the unit's capabilities and nothing else. Two namespaces joined
// by a veth; BIRD in the first runs under exactly the unit's set (the same setpriv the daemon test
// uses), BIRD in the second is its peer (unrestricted root). Both listen on port 179 and connect.
describe("BIRD under the unit's capabilities", () => {
  const ns = [`${P}b1`, `${P}b2`];
  const addr = ['10.66.1.1', '10.66.1.2'];
  const birds: ChildProcess[] = [];
  const birdLog: string[] = [];
  let dir = '';
  const ctl = (i: number, tag: string) => path.join(dir, `bird${i}${tag}.ctl`);

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `${P}b-`));
    for (const a of [
      ['netns', 'add', ns[0]!],
      ['netns', 'add', ns[1]!],
      ['-n', ns[0]!, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns[1]!],
    ]) {
      const r = sh('ip', a);
      assert.equal(r.status, 0, `ip ${a.join(' ')}: ${r.stderr}`);
    }
    for (const i of [0, 1]) {
      for (const a of [
        ['link', 'set', 'lo', 'up'],
        ['addr', 'add', `${addr[i]}/24`, 'dev', 'eth0'],
        ['link', 'set', 'eth0', 'up'],
      ])
        assert.equal(sh('ip', ['-n', ns[i]!, ...a]).status, 0);
    }
  });

  after(async () => {
    for (const b of birds)
      if (b.exitCode === null && b.signalCode === null) {
        b.kill('SIGTERM');
        await new Promise((r) => b.once('exit', r));
      }
    for (const n of ns) sh('ip', ['netns', 'del', n]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** BIRD number i (0 or 1) in its namespace, peering with the other; `prefix` runs before it (e.g. setpriv). */
  function bird(i: number, tag: string, prefix: string[]): void {
    const conf = path.join(dir, `bird${i}${tag}.conf`);
    fs.writeFileSync(
      conf,
      [
        `router id ${addr[i]};`,
        'protocol device {}',
        `protocol bgp peer { local ${addr[i]} as ${65001 + i}; neighbor ${addr[1 - i]} as ${65002 - i}; hold time 3; keepalive time 1; connect delay time 1; connect retry time 1; error wait time 1, 2; ipv4 { import none; export none; }; }`,
        '',
      ].join('\n'),
    );
    const b = spawn('nsenter', [`--net=/run/netns/${ns[i]}`, ...prefix, 'bird', '-f', '-c', conf, '-s', ctl(i, tag)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const s of [b.stdout!, b.stderr!])
      s.on('data', (d: Buffer) => birdLog.push(`bird${i}${tag}: ${d.toString().trim()}`));
    birds.push(b);
  }

  /** BIRD's `show protocols all peer` once `done` accepts it, or the last answer after `ms`. */
  async function peerState(i: number, tag: string, done: (s: string) => boolean, ms: number): Promise<string> {
    const t0 = Date.now();
    let out = '';
    while (Date.now() - t0 < ms) {
      const r = sh('birdc', ['-s', ctl(i, tag), 'show protocols all peer']);
      out = r.stdout + r.stderr;
      if (r.status === 0 && done(out)) return out;
      await sleep(200);
    }
    return out;
  }

  const stopAll = async () => {
    for (const b of birds.splice(0))
      if (b.exitCode === null && b.signalCode === null) {
        b.kill('SIGTERM');
        await new Promise((r) => b.once('exit', r));
      }
  };

  it('establishes its BGP session (CAP_NET_BIND_SERVICE lets it listen on port 179)', async () => {
    const caps = unitCaps();
    bird(0, 'u', withCaps(caps));
    bird(1, 'u', []);
    const st = await peerState(0, 'u', (s) => /BGP state:\s+Established/.test(s), 15_000);
    await stopAll();
    assert.match(st, /BGP state:\s+Established/, `with ${caps}:\n${st}\n${birdLog.join('\n')}`);
  });

  it('without CAP_NET_BIND_SERVICE it cannot listen and no session comes up (the check can fail)', async () => {
    const caps = unitCaps()
      .split(',')
      .filter((c) => c !== '+net_bind_service')
      .join(',');
    bird(0, 'n', withCaps(caps));
    bird(1, 'n', []);
    const st = await peerState(0, 'n', (s) => /No listening socket|Cannot open listening socket/i.test(s), 5_000);
    await stopAll();
    assert.match(st, /No listening socket/i, st);
    assert.doesNotMatch(st, /Established/);
  });
});

describe('log formats', () => {
  const line = JSON.stringify({
    level: 'warn',
    time: Date.UTC(2026, 0, 1, 12, 0, 1, 5),
    pid: 1,
    hostname: 'h',
    component: 'vrrp',
    instance: 'VI_1',
    msg: 'became MASTER',
  });

  it('journal lines carry the syslog priority of their level', () => {
    assert.equal(journalLine(line + '\n'), `<4>${line}\n`);
    assert.match(journalLine('{"level":"error","msg":"x"}'), /^<3>/);
  });

  it('pretty lines read as time, level, component, message and fields', () => {
    process.env.NO_COLOR = '1';
    assert.match(prettyLine(line), /^\d\d:\d\d:01\.005 WARN {2}\[vrrp\] became MASTER {2}instance=VI_1\n$/);
  });
});
