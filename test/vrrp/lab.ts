// A small L2 lab for VRRP tests: a "switch" namespace with a bridge, two
// director namespaces (A, B) and a client namespace (C), each with eth0 on the
// bridge. Names carry the prefix xdd<pid>; everything is removed by close().
// Directors run either our standalone runner or a real keepalived, each under
// `nsenter --net=...`, killed only by their own pid.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const SUBNET = '10.77.0';
export const VIP4 = `${SUBNET}.100`;
export const VIP6 = 'fd77::100';
export const ADDR = { a: `${SUBNET}.1`, b: `${SUBNET}.2`, c: `${SUBNET}.50` } as const;
export const ADDR6 = { a: 'fd77::1', b: 'fd77::2', c: 'fd77::50' } as const;
export type Dir = 'a' | 'b';

const CLI = resolve(__dirname, 'standalone.js');

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(
  what: string,
  fn: () => boolean | Promise<boolean>,
  timeoutMs: number,
  stepMs = 10,
): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await fn()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

export interface Running {
  kind: 'ours' | 'keepalived';
  ns: string;
  proc: ChildProcess;
  /** stderr+stdout lines so far. */
  lines: string[];
  /** keepalived: pid files. */
  pidFiles?: { main: string; vrrp: string };
  exited: Promise<number | null>;
}

/**
 * Follows one address on eth0 of one namespace through `ip -ts monitor address`
 * (no polling). Each change carries `t`, this process's clock when it was read,
 * and `wall`, the wall-clock time `ip` stamped when the kernel told it: the
 * latter does not suffer from this process being slow to read its pipe.
 */
export class AddrWatch {
  held = false;
  readonly events: { t: number; held: boolean; wall: number }[] = [];
  private proc: ChildProcess;
  private waiters: { want: boolean; resolve: (t: number) => void }[] = [];

  constructor(
    ns: string,
    readonly vip: string,
  ) {
    this.proc = spawn('ip', ['-ts', '-n', ns, 'monitor', 'address'], {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, TZ: 'UTC' },
    });
    let buf = '';
    this.proc.stdout!.on('data', (d: Buffer) => {
      const t = performance.now();
      buf += d.toString('utf8');
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        const m = /^\[([\d-]+T[\d:.]+)\] (Deleted )?\d+: eth0\s+inet6? (\S+)\//.exec(l);
        if (!m || m[3] !== vip) continue;
        this.set(!m[2], t, Date.parse(`${m[1]!.slice(0, 23)}Z`));
      }
    });
  }

  set(held: boolean, t = performance.now(), wall = Date.now()): void {
    if (held === this.held) return;
    this.held = held;
    this.events.push({ t, held, wall });
    this.waiters = this.waiters.filter((w) => (w.want === held ? (w.resolve(t), false) : true));
  }

  /** Resolves with the time the address reached `want` (now if it already has). */
  until(want: boolean, timeoutMs: number): Promise<number> {
    if (this.held === want) return Promise.resolve(performance.now());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`timed out after ${timeoutMs} ms waiting for ${this.vip} to be ${want ? 'added' : 'removed'}`),
          ),
        timeoutMs,
      );
      this.waiters.push({ want, resolve: (t) => (clearTimeout(timer), resolve(t)) });
    });
  }

  stop(): void {
    this.proc.kill('SIGTERM');
  }
}

/** Longest stretch (ms) in [from, to] during which both watches held their address. */
export function longestOverlap(a: AddrWatch, b: AddrWatch, from: number, to: number): number {
  const times = [...a.events, ...b.events].map((e) => e.t).filter((t) => t > from && t < to);
  const at = (w: AddrWatch, t: number) => {
    let h = false;
    for (const e of w.events) if (e.t <= t) h = e.held;
    return h;
  };
  const points = [from, ...times.sort((x, y) => x - y), to];
  let best = 0;
  let start: number | undefined;
  for (const t of points) {
    const both = at(a, t) && at(b, t);
    if (both && start === undefined) start = t;
    if (!both && start !== undefined) {
      best = Math.max(best, t - start);
      start = undefined;
    }
  }
  if (start !== undefined) best = Math.max(best, to - start);
  return best;
}

export class VrrpLab {
  readonly id = `xdd${process.pid}`;
  readonly ns: Record<'s' | 'a' | 'b' | 'c', string>;
  readonly dir: string;
  private running = new Set<Running>();
  private watches = new Set<AddrWatch>();

  constructor() {
    if (this.id.length > 11) throw new Error(`lab prefix ${this.id} too long for interface names`);
    this.ns = { s: `${this.id}s`, a: `${this.id}a`, b: `${this.id}b`, c: `${this.id}c` };
    this.dir = mkdtempSync(join(tmpdir(), `${this.id}-`));
  }

  setup(): void {
    const { s } = this.ns;
    for (const n of Object.values(this.ns)) sh('ip', ['netns', 'add', n]);
    for (const n of Object.values(this.ns)) {
      sh('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
      // Addresses usable at once (no duplicate address detection): the link-local is the VRRPv3 IPv6 source.
      sh('ip', [
        'netns',
        'exec',
        n,
        'sysctl',
        '-qw',
        'net.ipv6.conf.all.accept_dad=0',
        'net.ipv6.conf.default.accept_dad=0',
      ]);
    }
    sh('ip', ['-n', s, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0']);
    sh('ip', ['-n', s, 'link', 'set', 'br0', 'up']);
    for (const k of ['a', 'b', 'c'] as const) {
      const port = `p${k}`;
      sh('ip', ['-n', s, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.ns[k]]);
      sh('ip', ['-n', s, 'link', 'set', port, 'master', 'br0', 'up']);
      sh('ip', ['-n', this.ns[k], 'addr', 'add', `${ADDR[k]}/24`, 'dev', 'eth0']);
      sh('ip', ['-n', this.ns[k], 'addr', 'add', `${ADDR6[k]}/64`, 'dev', 'eth0', 'nodad']);
      sh('ip', ['-n', this.ns[k], 'link', 'set', 'eth0', 'up']);
    }
  }

  /** Addresses on eth0 of a namespace (one `ip -o addr` call). */
  addrs(k: 'a' | 'b' | 'c'): string[] {
    const out = sh('ip', ['-n', this.ns[k], '-o', 'addr', 'show', 'dev', 'eth0']);
    return out
      .split('\n')
      .map((l) => /inet6? (\S+)\//.exec(l)?.[1])
      .filter((x): x is string => !!x);
  }

  /** Start following `vip` on director `k` (initial state from a listing). */
  watch(k: Dir, vip = VIP4): AddrWatch {
    const w = new AddrWatch(this.ns[k], vip);
    this.watches.add(w);
    if (this.holds(k, vip)) w.set(true);
    return w;
  }

  holds(k: Dir, vip = VIP4): boolean {
    return this.addrs(k).includes(vip);
  }

  holders(vip = VIP4): Dir[] {
    return (['a', 'b'] as const).filter((k) => this.holds(k, vip));
  }

  write(name: string, text: string): string {
    const p = join(this.dir, name);
    writeFileSync(p, text);
    return p;
  }

  private track(r: Running): Running {
    this.running.add(r);
    const onData = (d: Buffer) => r.lines.push(...d.toString('utf8').split('\n').filter(Boolean));
    r.proc.stdout?.on('data', onData);
    r.proc.stderr?.on('data', onData);
    void r.exited.then(() => this.running.delete(r));
    return r;
  }

  /** Our standalone runner in director namespace `k` with this YAML. */
  startOurs(k: Dir, yaml: string): Running {
    const conf = this.write(`ours-${k}-${Date.now()}.yaml`, yaml);
    const proc = spawn('nsenter', [`--net=/run/netns/${this.ns[k]}`, process.execPath, CLI, conf], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, XDIRECTOR_LOG_LEVEL: 'debug' },
    });
    const exited = new Promise<number | null>((res) => proc.on('exit', (code) => res(code)));
    return this.track({ kind: 'ours', ns: this.ns[k], proc, lines: [], exited });
  }

  /** A real keepalived (VRRP only, foreground, console log) in director namespace `k`. */
  startKeepalived(k: Dir, conf: string): Running {
    const tag = `ka-${k}-${Date.now()}`;
    const file = this.write(`${tag}.conf`, conf);
    const main = join(this.dir, `${tag}.pid`);
    const vrrp = join(this.dir, `${tag}-vrrp.pid`);
    const checkers = join(this.dir, `${tag}-checkers.pid`);
    const proc = spawn(
      'nsenter',
      [
        `--net=/run/netns/${this.ns[k]}`,
        'keepalived',
        '-n',
        '-l',
        '-D',
        '-G',
        '-P',
        '-R',
        '-f',
        file,
        '-p',
        main,
        '-r',
        vrrp,
        '-c',
        checkers,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise<number | null>((res) => proc.on('exit', (code) => res(code)));
    return this.track({ kind: 'keepalived', ns: this.ns[k], proc, lines: [], pidFiles: { main, vrrp }, exited });
  }

  /** SIGKILL: our runner, or keepalived's VRRP child and then its parent (so nothing sends priority 0). */
  async kill(r: Running): Promise<void> {
    if (r.kind === 'keepalived' && r.pidFiles && existsSync(r.pidFiles.vrrp)) {
      const child = Number(readFileSync(r.pidFiles.vrrp, 'utf8').trim());
      if (child > 0) {
        try {
          process.kill(child, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    r.proc.kill('SIGKILL');
    await r.exited;
    // keepalived's VRRP child may still be exiting: wait until its pid is gone.
    if (r.kind === 'keepalived' && r.pidFiles && existsSync(r.pidFiles.vrrp)) {
      const child = Number(readFileSync(r.pidFiles.vrrp, 'utf8').trim());
      await waitFor(
        'keepalived vrrp child to exit',
        () => !existsSync(`/proc/${child}`) || readFileSync(`/proc/${child}/stat`, 'utf8').split(' ')[2] === 'Z',
        5000,
      ).catch(() => undefined);
    }
  }

  /** SIGTERM and wait: graceful stop. */
  async stop(r: Running): Promise<void> {
    r.proc.kill('SIGTERM');
    await r.exited;
  }

  /** Ask our runner for its status (SIGUSR1 → one JSON line). */
  async status(r: Running): Promise<any[]> {
    const before = r.lines.length;
    r.proc.kill('SIGUSR1');
    let found: any;
    await waitFor(
      'status line',
      () => {
        for (const l of r.lines.slice(before)) {
          if (l.startsWith('{"status"')) {
            found = JSON.parse(l).status;
            return true;
          }
        }
        return false;
      },
      3000,
    );
    return found;
  }

  /** Wait until our runner has started every instance. */
  async started(r: Running, timeoutMs = 25_000): Promise<void> {
    await waitFor(
      'the runner to start its instances',
      () => r.lines.some((l) => l.includes('"all vrrp instances started"')),
      timeoutMs,
      20,
    );
  }

  /** Log lines (pino JSON) of our runner that match `re` in their msg. */
  logs(r: Running, re: RegExp): any[] {
    return r.lines
      .filter((l) => l.startsWith('{"level"'))
      .map((l) => JSON.parse(l))
      .filter((o) => re.test(o.msg ?? ''));
  }

  async close(): Promise<void> {
    for (const w of this.watches) w.stop();
    for (const r of [...this.running]) await this.kill(r).catch(() => undefined);
    for (const n of Object.values(this.ns)) {
      try {
        sh('ip', ['netns', 'del', n]);
      } catch {
        /* not created */
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** YAML for our runner: one IPv4 instance (and optionally an IPv6 one) on eth0. */
export function oursYaml(o: {
  priority: number;
  version?: 2 | 3;
  interval?: string;
  preempt?: boolean;
  unicastSrc?: string;
  peers?: string[];
  password?: string;
  v6?: boolean;
  /** Only the IPv6 instance (VRID 52). */
  v6only?: boolean;
  extra?: string;
}): string {
  const lines = ['interface: eth0', 'vrrp:'];
  if (!o.v6only)
    lines.push(
      '  - name: vi4',
      '    vrid: 51',
      `    priority: ${o.priority}`,
      `    version: ${o.version ?? 3}`,
      `    advert_interval: ${o.interval ?? '100ms'}`,
      `    vips: ["${VIP4}/24"]`,
      `    preempt: ${o.preempt ?? true}`,
      '    garp: { repeat: 3, interval: 20ms, refresh: 0 }',
    );
  if (o.peers && !o.v6only)
    lines.push(`    unicast_src: ${o.unicastSrc}`, `    unicast_peers: [${o.peers.join(', ')}]`);
  if (o.password && !o.v6only) lines.push(`    auth: { type: pass, password: ${o.password} }`);
  if (o.extra && !o.v6only) lines.push(o.extra);
  if (o.v6 || o.v6only) {
    lines.push(
      '  - name: vi6',
      '    vrid: 52',
      `    priority: ${o.priority}`,
      '    version: 3',
      `    advert_interval: ${o.interval ?? '100ms'}`,
      `    vips: ["${VIP6}/64"]`,
      `    preempt: ${o.preempt ?? true}`,
      '    garp: { repeat: 3, interval: 20ms, refresh: 0 }',
    );
  }
  return lines.join('\n') + '\n';
}

/** keepalived.conf with one instance matching oursYaml(). */
export function keepalivedConf(o: {
  id: string;
  priority: number;
  version?: 2 | 3;
  interval?: string;
  preempt?: boolean;
  unicastSrc?: string;
  peers?: string[];
  password?: string;
  /** An IPv6 instance (VRID 52, VIP6) instead of the IPv4 one. */
  v6?: boolean;
}): string {
  const inst = [
    `vrrp_instance VI${o.v6 ? 6 : 4} {`,
    '  state BACKUP',
    '  interface eth0',
    `  virtual_router_id ${o.v6 ? 52 : 51}`,
    `  priority ${o.priority}`,
    `  version ${o.version ?? 3}`,
    `  advert_int ${o.interval ?? '0.1'}`,
    o.preempt === false ? '  nopreempt' : '',
    o.peers
      ? `  unicast_src_ip ${o.unicastSrc}\n  unicast_peer {\n${o.peers.map((p) => `    ${p}`).join('\n')}\n  }`
      : '',
    o.password ? `  authentication {\n    auth_type PASS\n    auth_pass ${o.password}\n  }` : '',
    `  virtual_ipaddress {\n    ${o.v6 ? `${VIP6}/64` : `${VIP4}/24`} dev eth0\n  }`,
    '}',
  ];
  return [
    'global_defs {',
    `  router_id ${o.id}`,
    '  vrrp_garp_master_repeat 3',
    '  vrrp_garp_master_delay 0',
    '  vrrp_garp_master_refresh 0',
    '}',
    ...inst.filter(Boolean),
    '',
  ].join('\n');
}
