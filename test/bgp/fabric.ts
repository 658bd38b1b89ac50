// A routed fabric in namespaces for the BGP/ECMP tests:
//
//   client ${p}cl 10.78.0.10 ── eth1 router ${p}rt (BIRD, ECMP, L4 hash) eth0 10.77.0.1 ──┐
//                                                                                        br0 in ${p}sw
//   directors ${p}d1..d4  eth0 10.77.0.2..5  (xdirector + its BIRD, native XDP) ─────────┤
//   real servers ${p}r1..r3 eth0 10.77.0.11..13 (MariaDB, VIP on lo, DR) ────────────────┘
//
// The router learns VIP/32 from every director over eBGP (directors AS 65001, router AS
// 65000) and installs one multipath route; the client reaches the VIP only through it.
// Real servers answer the client directly through the router (DR). Built from the lab's
// pieces (scripts/lab/exec for namespaces and processes, scripts/lab/mariadb for the servers, the
// xdp_pass program for the directors' bridge ports); every name carries the run's prefix and
// teardown removes exactly what was made.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChildProcess } from 'node:child_process';
import YAML from 'yaml';
import { run, runIn, spawnIn, waitChildExit, sleep } from '../../scripts/lab/exec';
import { MariaDB } from '../../scripts/lab/mariadb';
import { defaultXdpPassObject } from '../../scripts/lab/topology';

export const ROOT = path.resolve(__dirname, '../../..');
export const BIN = path.join(ROOT, 'bin', 'xdirector.js');
export const VIP = '10.77.0.100';
export const ROUTER = '10.77.0.1';
export const CLIENT = '10.78.0.10';
export const MONITOR_PASSWORD = 'monitor-pw';

export interface Host {
  name: string;
  ns: string;
  ip: string;
  mac: string;
}

export interface Director extends Host {
  n: number;
  bfd: boolean;
  configFile: string;
  socket: string;
  child: ChildProcess | null;
  log: string[];
}

export class Fabric {
  readonly prefix: string;
  readonly tmp: string;
  readonly pinDir: string;
  readonly sw: string;
  readonly rt: Host;
  readonly cl: Host;
  readonly reals: Host[];
  readonly directors: Director[] = [];
  dbs: MariaDB[] = [];
  private namespaces: string[] = [];
  private children = new Set<ChildProcess>();
  private routerBird = '';

  constructor(tag: string) {
    this.prefix = `xt${tag}${process.pid % 100000}`.slice(0, 12);
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${this.prefix}-`));
    this.pinDir = `/sys/fs/bpf/${this.prefix}`;
    this.sw = `${this.prefix}sw`;
    this.rt = { name: 'rt', ns: `${this.prefix}rt`, ip: ROUTER, mac: '02:77:00:00:00:01' };
    this.cl = { name: 'cl', ns: `${this.prefix}cl`, ip: CLIENT, mac: '02:78:00:00:00:10' };
    this.reals = [1, 2, 3].map((k) => ({
      name: `r${k}`,
      ns: `${this.prefix}r${k}`,
      ip: `10.77.0.${10 + k}`,
      mac: `02:77:00:00:00:1${k}`,
    }));
  }

  private async ns(name: string): Promise<void> {
    await run('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  }

  /** A host's eth0 on the bridge. */
  private async lanPort(h: Host): Promise<void> {
    await run('ip', [
      'link',
      'add',
      'name',
      'eth0',
      'netns',
      h.ns,
      'address',
      h.mac,
      'type',
      'veth',
      'peer',
      'name',
      `p-${h.name}`,
      'netns',
      this.sw,
    ]);
    await run('ip', ['-n', this.sw, 'link', 'set', `p-${h.name}`, 'master', 'br0', 'up']);
    await run('ip', ['-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
    await run('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
  }

  async setup(): Promise<void> {
    await this.ns(this.sw);
    await runIn(this.sw, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    await run('ip', ['-n', this.sw, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0']);
    await run('ip', ['-n', this.sw, 'link', 'set', 'br0', 'up']);
    await Promise.all([this.rt, this.cl, ...this.reals].map((h) => this.ns(h.ns)));
    // Router: LAN port on the bridge, client link on eth1; forwards with an L4 (5-tuple) multipath hash.
    await this.lanPort(this.rt);
    await run('ip', [
      'link',
      'add',
      'name',
      'eth1',
      'netns',
      this.rt.ns,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      this.cl.ns,
      'address',
      this.cl.mac,
    ]);
    await run('ip', ['-n', this.rt.ns, 'addr', 'add', '10.78.0.1/24', 'dev', 'eth1']);
    await run('ip', ['-n', this.rt.ns, 'link', 'set', 'eth1', 'up']);
    await runIn(this.rt.ns, 'sysctl', [
      '-qw',
      'net.ipv4.ip_forward=1',
      'net.ipv4.fib_multipath_hash_policy=1',
      'net.ipv4.conf.all.send_redirects=0',
      'net.ipv4.conf.eth0.send_redirects=0',
    ]);
    await run('ip', ['-n', this.cl.ns, 'addr', 'add', `${CLIENT}/24`, 'dev', 'eth0']);
    await run('ip', ['-n', this.cl.ns, 'link', 'set', 'eth0', 'up']);
    await run('ip', ['-n', this.cl.ns, 'route', 'add', 'default', 'via', '10.78.0.1']);
    // Native XDP_TX leaves TCP checksums of locally sent frames partial: the client sends complete ones, as a NIC would.
    await runIn(this.cl.ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
    await Promise.all(
      this.reals.map(async (r) => {
        await this.lanPort(r);
        await runIn(r.ns, 'sysctl', [
          '-qw',
          'net.ipv4.conf.all.arp_ignore=1',
          'net.ipv4.conf.all.arp_announce=2',
          'net.ipv4.conf.eth0.arp_ignore=1',
          'net.ipv4.conf.eth0.arp_announce=2',
        ]);
        await run('ip', ['-n', r.ns, 'addr', 'add', `${VIP}/32`, 'dev', 'lo']);
        await run('ip', ['-n', r.ns, 'route', 'add', 'default', 'via', ROUTER]);
        await runIn(r.ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
      }),
    );
    this.dbs = this.reals.map(
      (h, i) =>
        new MariaDB({
          prefix: this.prefix,
          name: h.name,
          serverId: i + 1,
          netns: h.ns,
          advertiseHost: h.ip,
          baseDir: this.tmp,
          monitorPassword: MONITOR_PASSWORD,
        }),
    );
    await Promise.all(
      this.dbs.map(async (d) => {
        await d.start();
        await d.query(
          'CREATE TABLE lab.acks (sess INT NOT NULL, seq INT NOT NULL, server_id INT NOT NULL, PRIMARY KEY (sess, seq))',
        );
      }),
    );
    fs.writeFileSync(path.join(this.tmp, 'monitor.pw'), `${MONITOR_PASSWORD}\n`, { mode: 0o600 });
  }

  /** Router BIRD: one eBGP session per director (BFD where the director runs it), ECMP into the kernel. */
  async startRouter(directors: { n: number; bfd: boolean }[]): Promise<void> {
    const conf = path.join(this.tmp, 'router.bird.conf');
    this.routerBird = path.join(this.tmp, 'router.bird.ctl');
    const lines = [
      `router id ${ROUTER};`,
      'log stderr { warning, error, fatal, bug };',
      'protocol device {}',
      'protocol bfd { interface "eth0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }',
      '# ECMP: every equal best path goes into one multipath kernel route.',
      'protocol kernel { ipv4 { import none; export all; }; merge paths on limit 16; }',
      'template bgp director { local as 65000; hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 5; ipv4 { import all; export none; }; }',
      ...directors.map(
        (d) => `protocol bgp d${d.n} from director { neighbor 10.77.0.${1 + d.n} as 65001;${d.bfd ? ' bfd on;' : ''} }`,
      ),
    ];
    fs.writeFileSync(conf, lines.join('\n') + '\n');
    const child = spawnIn(this.rt.ns, 'bird', ['-f', '-c', conf, '-s', this.routerBird], {
      mode: 'nsenter',
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.children.add(child);
    for (let i = 0; i < 50 && !fs.existsSync(this.routerBird); i++) await sleep(100);
  }

  /** Make director n (1..4): namespace, LAN port, XDP_PASS on its bridge port (native XDP_TX delivery). */
  async addDirector(n: number, bfd: boolean): Promise<Director> {
    const d: Director = {
      n,
      bfd,
      name: `d${n}`,
      ns: `${this.prefix}d${n}`,
      ip: `10.77.0.${1 + n}`,
      mac: `02:77:00:00:00:0${1 + n}`,
      configFile: path.join(this.tmp, `d${n}.yaml`),
      socket: path.join(this.tmp, `d${n}.sock`),
      child: null,
      log: [],
    };
    await this.ns(d.ns);
    await this.lanPort(d);
    await run('ip', [
      '-n',
      this.sw,
      'link',
      'set',
      'dev',
      `p-${d.name}`,
      'xdpdrv',
      'obj',
      defaultXdpPassObject(),
      'sec',
      'xdp',
    ]);
    this.directors.push(d);
    return d;
  }

  config(d: Director, weights: number[] = [1, 1, 2]): Record<string, unknown> {
    return {
      instance: `${this.prefix}${d.name}`,
      interface: 'eth0',
      dataplane: 'xdp',
      xdp: { mode: 'native', pin_dir: this.pinDir, flow_table_size: 65536, max_services: 8, max_backends: 256 },
      admin: { socket: d.socket },
      state_dir: this.tmp,
      log: { level: 'info' },
      monitor: { user: 'monitor', password_file: path.join(this.tmp, 'monitor.pw'), connect_timeout: '900ms' },
      health: { interval: '1s', timeout: '900ms', rise: 1, fall: 3 },
      services: [
        {
          name: 'mysql',
          vip: VIP,
          port: 3306,
          check: 'mysql',
          backends: this.reals.map((r, i) => ({ address: r.ip, name: r.name, weight: weights[i] ?? 1 })),
        },
      ],
      bgp: {
        local_as: 65001,
        router_id: d.ip,
        hold_time: '3s',
        neighbours: [{ address: ROUTER, as: 65000, bfd: d.bfd, name: 'rt' }],
      },
    };
  }

  async startDirector(d: Director, cfg = this.config(d)): Promise<void> {
    fs.writeFileSync(d.configFile, YAML.stringify(cfg));
    const child = spawnIn(d.ns, process.execPath, [BIN, 'run', '-c', d.configFile], {
      mode: 'nsenter',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.add(child);
    d.child = child;
    const onData = (b: Buffer) => {
      for (const l of b.toString('utf8').split('\n'))
        if (l) {
          d.log.push(l);
          if (d.log.length > 3000) d.log.shift();
        }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(
          `xdirector ${d.name} exited (${child.exitCode ?? child.signalCode}):\n${d.log.slice(-30).join('\n')}`,
        );
      const r = await this.cli(d, ['status', '--json'], true);
      if (r.code === 0) return;
      if (Date.now() > deadline)
        throw new Error(`xdirector ${d.name} did not answer within 30 s: ${r.stderr}\n${d.log.slice(-30).join('\n')}`);
      await sleep(200);
    }
  }

  async cli(d: Director, args: string[], allowFail = false): Promise<{ code: number; stdout: string; stderr: string }> {
    const r = await runIn(d.ns, process.execPath, [BIN, ...args, '--socket', d.socket], {
      mode: 'nsenter',
      allowFail: true,
      timeoutMs: 30_000,
    });
    const code = typeof r.code === 'number' ? r.code : 1;
    if (code !== 0 && !allowFail)
      throw new Error(`xdirector ${args.join(' ')} on ${d.name} exited ${code}: ${r.stderr}`);
    return { code, stdout: r.stdout, stderr: r.stderr };
  }

  async status(d: Director): Promise<any> {
    return JSON.parse((await this.cli(d, ['status', '--json'])).stdout);
  }

  /** The router's next hops for the VIP (director addresses), from its kernel table. */
  async nexthops(): Promise<string[]> {
    const r = await run('ip', ['-n', this.rt.ns, '-j', 'route', 'show', `${VIP}/32`], { allowFail: true });
    const routes = JSON.parse(r.stdout || '[]') as { gateway?: string; nexthops?: { gateway: string }[] }[];
    return routes.flatMap((x) => (x.nexthops ? x.nexthops.map((h) => h.gateway) : x.gateway ? [x.gateway] : [])).sort();
  }

  /** Poll the router until `pred(nexthops)` holds; returns the time it took (ms). */
  async waitNexthops(pred: (hops: string[]) => boolean, timeoutMs: number, what: string): Promise<number> {
    const t0 = performance.now();
    for (;;) {
      const hops = await this.nexthops();
      if (pred(hops)) return performance.now() - t0;
      if (performance.now() - t0 > timeoutMs)
        throw new Error(`router: ${what} not seen within ${timeoutMs} ms (next hops: ${hops.join(', ') || 'none'})`);
      await sleep(10);
    }
  }

  /** Machine death of a director: its link goes down, then xdirector (and with it BIRD) is SIGKILLed. */
  async killDirector(d: Director): Promise<void> {
    await run('ip', ['-n', d.ns, 'link', 'set', 'eth0', 'down']);
    const c = d.child;
    if (c && c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await waitChildExit(c, 10_000);
    }
    d.child = null;
  }

  /** Rows each session has on the server it was on: sess → count. */
  async ackedRows(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const [i, db] of this.dbs.entries()) {
      const rows = await db.query<{ sess: number; n: number }[]>(
        'SELECT sess, COUNT(*) AS n FROM lab.acks GROUP BY sess',
      );
      for (const r of rows) out.set(`${i + 1}/${r.sess}`, Number(r.n));
    }
    return out;
  }

  async teardown(): Promise<void> {
    for (const d of this.directors) {
      const c = d.child;
      if (c && c.exitCode === null && c.signalCode === null) {
        c.kill('SIGTERM');
        if (!(await waitChildExit(c, 15_000))) c.kill('SIGKILL');
      }
      await runIn(d.ns, process.execPath, [BIN, 'stop', '--detach', '-c', d.configFile], {
        mode: 'nsenter',
        allowFail: true,
        timeoutMs: 20_000,
      }).catch(() => undefined);
    }
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGTERM');
        if (!(await waitChildExit(c, 5000))) c.kill('SIGKILL');
      }
    }
    await Promise.all(this.dbs.map((d) => d.destroy().catch(() => undefined)));
    for (const ns of this.namespaces.reverse()) {
      const r = await run('ip', ['netns', 'pids', ns], { allowFail: true });
      for (const pid of r.stdout.split(/\s+/).filter(Boolean).map(Number)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await run('ip', ['netns', 'del', ns], { allowFail: true });
    }
    fs.rmSync(this.tmp, { recursive: true, force: true });
    fs.rmSync(this.pinDir, { recursive: true, force: true });
  }
}

/** The long-lived sessions driver (sessions.ts) running in the client namespace. */
export class Sessions {
  private child!: ChildProcess;
  private waiters: ((obj: { event: string; sessions: SessionRow[] }) => void)[] = [];
  private stderr = '';

  static async start(f: Fabric, count: number, intervalMs = 100): Promise<{ s: Sessions; ready: SessionRow[] }> {
    return Sessions.startWith((args) => spawnIn(f.cl.ns, process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] }), {
      host: VIP,
      count,
      intervalMs,
    });
  }

  /**
   * The driver started by `spawn` (node with these arguments, in the client's namespace, stdio
   * piped): `count` sessions to `host` numbered from `firstId`, opened `parallel` at a time.
   */
  static async startWith(
    spawn: (args: string[]) => ChildProcess,
    o: { host: string; port?: number; count: number; intervalMs?: number; firstId?: number; parallel?: number },
  ): Promise<{ s: Sessions; ready: SessionRow[] }> {
    const s = new Sessions();
    s.child = spawn([
      path.join(__dirname, 'sessions.js'),
      '--host',
      o.host,
      '--sessions',
      String(o.count),
      '--interval',
      String(o.intervalMs ?? 100),
      '--first-id',
      String(o.firstId ?? 1),
      '--parallel',
      String(o.parallel ?? 1),
      '--port',
      String(o.port ?? 3306),
    ]);
    let buf = '';
    s.child.stdout!.setEncoding('utf8');
    s.child.stdout!.on('data', (c: string) => {
      buf += c;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const obj = JSON.parse(line);
          s.waiters.shift()?.(obj);
        } catch {
          /* not ours */
        }
      }
    });
    s.child.stderr!.on('data', (c: Buffer) => {
      s.stderr = (s.stderr + c.toString()).slice(-4000);
    });
    const ready = await s.next(60_000);
    return { s, ready };
  }

  private next(timeoutMs = 30_000): Promise<SessionRow[]> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`sessions driver: no report within ${timeoutMs} ms: ${this.stderr}`)),
        timeoutMs,
      );
      const exited = (code: number | null) => reject(new Error(`sessions driver exited ${code}: ${this.stderr}`));
      this.child.once('exit', exited);
      this.waiters.push((obj) => {
        clearTimeout(t);
        this.child.off('exit', exited); // reports are polled: one listener per pending report only
        resolve(obj.sessions);
      });
    });
  }

  async report(): Promise<SessionRow[]> {
    const p = this.next();
    this.child.stdin!.write('report\n');
    return p;
  }

  async stop(): Promise<SessionRow[]> {
    const p = this.next();
    this.child.stdin!.write('stop\n');
    const r = await p;
    await waitChildExit(this.child, 10_000);
    return r;
  }

  kill(): void {
    if (this.child && this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

export interface SessionRow {
  id: number;
  localPort: number;
  serverId: number;
  acked: number;
  error?: string;
  maxGapMs: number;
}
