// The namespace lab: one L2 segment (a bridge in its own namespace) with a
// client, one or two directors and N real servers, set up for direct routing.
//
//   ${prefix}cl  client     eth0 02:77:00:00:00:10  10.77.0.10   fd77::10
//   ${prefix}d1  director 1 eth0 02:77:00:00:00:02  10.77.0.2    fd77::2
//   ${prefix}d2  director 2 eth0 02:77:00:00:00:03  10.77.0.3    fd77::3
//   ${prefix}rK  real K     eth0 02:77:00:00:00:1K  10.77.0.1K   fd77::1K   (K = 1..)
//   VIP 10.77.0.100, VIP6 fd77::100
//
// Each eth0 is a veth whose peer `p-<role>` sits in `${prefix}sw`, enslaved to
// br0. Real servers hold the VIPs on lo and never answer ARP/NS for them
// (arp_ignore=1, arp_announce=2; IPv6 answers NS only for addresses on the
// receiving interface), so only a director can draw VIP traffic.
//
// Native XDP on veth (measured on 6.18, see bpf/README.md): XDP_TX frames are only
// delivered when the peer has an XDP program, so a director's bridge-side peer
// gets dist/bpf/tools/xdp_pass.bpf.o; and frames from a local stack carry partial
// checksums that XDP_TX does not complete, so the client and real servers send
// with TX checksum offload off. Generic mode needs neither.
import { ChildProcess, SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { XdError, wrap } from '../../src/errors';
import {
  run,
  runIn,
  spawnIn,
  RunOptions,
  RunResult,
  NsMode,
  pidAlive,
  waitPidExit,
  waitChildExit,
  checkNsName,
} from './exec';
import { cleanupStaleMariaDB } from './mariadb';
import { clientScript, jsonLines, ConnectionsReport, HoldReport } from './client';
import { ToolError, toolWrap } from '../errors';

export type XdpMode = 'native' | 'generic';
export type Role = 'client' | 'director' | 'real';

export interface LabOptions {
  /** Unique per run (helper prefix + pid, e.g. 'xdf1234'); every namespace name starts with it. Max 12 chars. */
  prefix: string;
  directors?: 1 | 2;
  realServers?: number;
  ipv6?: boolean;
  xdpMode?: XdpMode;
  /** The XDP_PASS program attached to directors' bridge-side peers in native mode. Default dist/bpf/tools/xdp_pass.bpf.o. */
  xdpPassObject?: string;
}

export interface LabHost {
  role: Role;
  /** 'cl', 'd1', 'd2', 'r1', … */
  name: string;
  /** Network namespace name: prefix + name. */
  ns: string;
  /** Interface inside the namespace. */
  ifname: 'eth0';
  /** Its veth peer in the switch namespace. */
  peer: string;
  /** The host number: last octet of the IPv4 address, last group of the IPv6 one. */
  hostNo: number;
  mac: string;
  ipv4: string;
  ipv6: string;
}

export const LAB_NET4 = '10.77.0';
export const LAB_NET6 = 'fd77:';
export const VIP4 = '10.77.0.100';
export const VIP6 = 'fd77::100';

/** Repository root (dist/scripts/lab → ../../..; scripts/lab → ../..). */
export function repoRoot(): string {
  let d = __dirname;
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(d, 'package.json'))) return d;
    d = path.dirname(d);
  }
  throw new ToolError('XD_ERR_LAB', `cannot find the repository root above ${__dirname}`);
}

function host(prefix: string, role: Role, name: string, hostNo: number): LabHost {
  const nn = String(hostNo).padStart(2, '0');
  return {
    role,
    name,
    ns: `${prefix}${name}`,
    ifname: 'eth0',
    peer: `p-${name}`,
    hostNo,
    mac: `02:77:00:00:00:${nn}`,
    ipv4: `${LAB_NET4}.${hostNo}`,
    ipv6: `fd77::${hostNo}`,
  };
}

/** A built lab. Every method that changes something records it so destroy() can undo exactly that. */
export class Lab {
  readonly prefix: string;
  readonly sw: string;
  readonly client: LabHost;
  readonly directors: LabHost[];
  readonly realServers: LabHost[];
  readonly vip = VIP4;
  readonly vip6 = VIP6;
  readonly ipv6: boolean;
  readonly xdpMode: XdpMode;
  /** Namespaces this lab created (in creation order). */
  readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;

  constructor(opts: Required<Omit<LabOptions, 'xdpPassObject'>>) {
    this.prefix = opts.prefix;
    this.sw = `${opts.prefix}sw`;
    this.ipv6 = opts.ipv6;
    this.xdpMode = opts.xdpMode;
    this.client = host(opts.prefix, 'client', 'cl', 10);
    this.directors = Array.from({ length: opts.directors }, (_, i) =>
      host(opts.prefix, 'director', `d${i + 1}`, 2 + i),
    );
    this.realServers = Array.from({ length: opts.realServers }, (_, i) =>
      host(opts.prefix, 'real', `r${i + 1}`, 11 + i),
    );
  }

  /** Every host (client, directors, real servers). */
  hosts(): LabHost[] {
    return [this.client, ...this.directors, ...this.realServers];
  }

  /** Look a host up by name ('cl', 'd1', 'r2', …). */
  host(name: string): LabHost {
    const h = this.hosts().find((x) => x.name === name);
    if (!h)
      throw new XdError(
        'XD_ERR_NOT_FOUND',
        `lab ${this.prefix}: no host ${JSON.stringify(name)} (have ${this.hosts()
          .map((x) => x.name)
          .join(', ')})`,
      );
    return h;
  }

  private nsOf(target: LabHost | string): string {
    return typeof target === 'string' ? target : target.ns;
  }

  /** Run a command in a lab namespace (`ip netns exec`; mode 'nsenter' keeps bpffs visible). */
  run(
    ns: LabHost | string,
    cmd: string,
    args: readonly string[],
    opts: RunOptions & { mode?: NsMode } = {},
  ): Promise<RunResult> {
    // `ip -n NS …` is `ip netns exec NS ip …` without the /sys remount: cheaper.
    if (cmd === 'ip' && opts.mode !== 'nsenter') return run('ip', ['-n', this.nsOf(ns), ...args], opts);
    return runIn(this.nsOf(ns), cmd, args, opts);
  }

  /** Run a command that touches /sys/fs/bpf in a lab namespace (`nsenter --net`). */
  runBpf(ns: LabHost | string, cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return runIn(this.nsOf(ns), cmd, args, { ...opts, mode: 'nsenter' });
  }

  /**
   * Start a long-running process in a lab namespace. The lab remembers it and
   * destroy() ends it by pid (SIGTERM, then SIGKILL after 5 s).
   */
  spawn(
    ns: LabHost | string,
    cmd: string,
    args: readonly string[],
    opts: SpawnOptions & { mode?: NsMode } = {},
  ): ChildProcess {
    const child = spawnIn(this.nsOf(ns), cmd, args, opts);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Let this Node process exit while the processes the lab spawned keep running (lab --keep). */
  release(): void {
    for (const c of this.children) {
      c.unref();
      c.stdout?.destroy();
      c.stderr?.destroy();
    }
  }

  /** Add VIP (and VIP6) to a director's eth0, as an operator without VRRP would. Idempotent. */
  async addVip(director: LabHost | string = this.directors[0]): Promise<void> {
    const d = typeof director === 'string' ? this.host(director) : director;
    await this.run(d, 'ip', ['addr', 'replace', `${this.vip}/32`, 'dev', 'eth0']);
    // preferred_lft 0 (deprecated): still answered and accepted, but never
    // chosen as the source of the director's own connections. Otherwise Linux
    // source selection (longest prefix, capped at each address's prefix
    // length) prefers the /128 VIP over the /64 address, and health checks to
    // the real servers go out from the VIP, whose replies the real servers
    // deliver to their own lo.
    if (this.ipv6)
      await this.run(d, 'ip', [
        '-6',
        'addr',
        'replace',
        `${this.vip6}/128`,
        'dev',
        'eth0',
        'nodad',
        'preferred_lft',
        '0',
      ]);
  }

  /** Remove the VIPs from a director's eth0 (no error if absent). */
  async removeVip(director: LabHost | string = this.directors[0]): Promise<void> {
    const d = typeof director === 'string' ? this.host(director) : director;
    await this.run(d, 'ip', ['addr', 'del', `${this.vip}/32`, 'dev', 'eth0'], { allowFail: true });
    if (this.ipv6)
      await this.run(d, 'ip', ['-6', 'addr', 'del', `${this.vip6}/128`, 'dev', 'eth0'], { allowFail: true });
  }

  /**
   * A kernel-only DR path without any XDP program: the director forwards VIP
   * traffic to the real servers by ECMP routing (L4 hash), and the client
   * reaches the VIP through a permanent neighbour entry pointing at the
   * director (the director does not hold the VIP, so the kernel forwards
   * instead of delivering locally). Replies go straight from the real server.
   */
  async kernelDr(director: LabHost | string = this.directors[0], reals: LabHost[] = this.realServers): Promise<void> {
    const d = typeof director === 'string' ? this.host(director) : director;
    if (reals.length === 0) throw new ToolError('XD_ERR_LAB', 'kernelDr: give at least one real server');
    await this.removeVip(d);
    await this.run(d, 'sysctl', [
      '-qw',
      'net.ipv4.ip_forward=1',
      'net.ipv4.fib_multipath_hash_policy=1',
      'net.ipv4.conf.all.send_redirects=0',
      'net.ipv4.conf.eth0.send_redirects=0',
    ]);
    const hops4 = reals.flatMap((r) => ['nexthop', 'via', r.ipv4, 'dev', 'eth0']);
    await this.run(d, 'ip', [
      'route',
      'replace',
      `${this.vip}/32`,
      ...(reals.length === 1 ? ['via', reals[0].ipv4, 'dev', 'eth0'] : hops4),
    ]);
    await this.run(this.client, 'ip', [
      'neigh',
      'replace',
      this.vip,
      'lladdr',
      d.mac,
      'dev',
      'eth0',
      'nud',
      'permanent',
    ]);
    if (this.ipv6) {
      await this.run(d, 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1', 'net.ipv6.fib_multipath_hash_policy=1']);
      const hops6 = reals.flatMap((r) => ['nexthop', 'via', r.ipv6, 'dev', 'eth0']);
      await this.run(d, 'ip', [
        '-6',
        'route',
        'replace',
        `${this.vip6}/128`,
        ...(reals.length === 1 ? ['via', reals[0].ipv6, 'dev', 'eth0'] : hops6),
      ]);
      await this.run(this.client, 'ip', [
        '-6',
        'neigh',
        'replace',
        this.vip6,
        'lladdr',
        d.mac,
        'dev',
        'eth0',
        'nud',
        'permanent',
      ]);
    }
  }

  /** Undo kernelDr(): remove the routes, the client's static neighbour entries, and forwarding. */
  async removeKernelDr(director: LabHost | string = this.directors[0]): Promise<void> {
    const d = typeof director === 'string' ? this.host(director) : director;
    await this.run(d, 'ip', ['route', 'del', `${this.vip}/32`], { allowFail: true });
    await this.run(this.client, 'ip', ['neigh', 'del', this.vip, 'dev', 'eth0'], { allowFail: true });
    await this.run(d, 'sysctl', ['-qw', 'net.ipv4.ip_forward=0']);
    if (this.ipv6) {
      await this.run(d, 'ip', ['-6', 'route', 'del', `${this.vip6}/128`], { allowFail: true });
      await this.run(this.client, 'ip', ['-6', 'neigh', 'del', this.vip6, 'dev', 'eth0'], { allowFail: true });
      await this.run(d, 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=0']);
    }
  }

  /**
   * Attach the XDP_PASS program to a host's bridge-side peer (native mode), so
   * that native XDP_TX / redirected frames sent out of the host's eth0 are
   * delivered. createLab does this for the directors; a generator on the
   * client needs it on p-cl.
   */
  async attachPeerXdpPass(h: LabHost | string, object = defaultXdpPassObject()): Promise<void> {
    const hh = typeof h === 'string' ? this.host(h) : h;
    if (!fs.existsSync(object)) {
      throw new XdError(
        'XD_ERR_BPF_OBJECT',
        `native XDP lab: ${object} is missing (the XDP_PASS program for ${hh.peer}); build it with \`make -C bpf\` (or bash scripts/setup.sh), or use xdpMode 'generic'`,
      );
    }
    try {
      await run('ip', ['-n', this.sw, 'link', 'set', 'dev', hh.peer, 'xdpdrv', 'obj', object, 'sec', 'xdp']);
    } catch (err) {
      throw wrap('XD_ERR_XDP_ATTACH', `attach xdp_pass (native) to ${hh.peer} in ${this.sw}`, err, {
        interface: hh.peer,
        mode: 'native',
      });
    }
  }

  /**
   * Run the lab client (dist/scripts/lab/client.js) in the client namespace in
   * connection mode and return its report (it reports failures; it does not throw for them).
   */
  async runClient(o: ClientRunOptions = {}): Promise<ConnectionsReport> {
    const r = await this.run(this.client, process.execPath, [clientScript(), ...clientArgs(this, o), '--json'], {
      allowFail: true,
      timeoutMs: o.runTimeoutMs ?? 300_000,
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as ConnectionsReport;
    } catch {
      throw new ToolError(
        'XD_ERR_LAB',
        `lab client exited with ${r.code ?? r.signal} and no report: ${r.stderr.trim().slice(-500)}`,
      );
    }
  }

  /**
   * Start the lab client in stream mode (new connections, concurrency C, until stopped).
   * Resolves once a connection has worked; `stop()` sends SIGTERM and resolves with the report.
   */
  async startStream(o: ClientRunOptions = {}): Promise<{ stop(): Promise<ConnectionsReport> }> {
    const child = this.spawn(
      this.client,
      process.execPath,
      [clientScript(), '--stream', '--json', ...clientArgs(this, o)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
    let report: ConnectionsReport | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new ToolError('XD_ERR_LAB', `lab stream client: no connection within 10 s: ${stderr.trim()}`)),
        10_000,
      );
      jsonLines(child, (obj) => {
        if (obj.event === 'ready') {
          clearTimeout(t);
          resolve();
        } else if (obj.mode === 'connections') report = obj as unknown as ConnectionsReport;
      });
      child.once('exit', (code, sig) => {
        clearTimeout(t);
        reject(
          new ToolError(
            'XD_ERR_LAB',
            `lab stream client exited (${code ?? sig}) before a connection worked: ${stderr.trim()}`,
          ),
        );
      });
    });
    try {
      await ready;
    } catch (err) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      throw err;
    }
    return {
      stop: async (): Promise<ConnectionsReport> => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        if (!(await waitChildExit(child, 15_000))) {
          child.kill('SIGKILL');
          throw new ToolError('XD_ERR_LAB', 'lab stream client did not stop within 15 s of SIGTERM');
        }
        if (!report) throw new ToolError('XD_ERR_LAB', `lab stream client exited without a report: ${stderr.trim()}`);
        return report;
      },
    };
  }

  /**
   * Start the lab client in hold mode (one session, a query every interval).
   * Resolves once the session has answered its first query; `stop()` sends
   * SIGTERM and resolves with the summary.
   */
  async startHold(o: ClientRunOptions & { intervalMs?: number } = {}): Promise<HoldSession> {
    const args = [
      clientScript(),
      '--hold',
      '--json',
      ...clientArgs(this, o),
      ...(o.intervalMs ? ['--interval', String(o.intervalMs)] : []),
    ];
    const child = this.spawn(this.client, process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
    let summary: HoldReport | undefined;
    const ready = new Promise<number>((resolve, reject) => {
      const t = setTimeout(
        () =>
          reject(
            new ToolError(
              'XD_ERR_LAB',
              `lab hold client: no session within ${o.timeoutMs ?? 5000} ms + 5 s: ${stderr.trim()}`,
            ),
          ),
        (o.timeoutMs ?? 5000) + 5000,
      );
      jsonLines(child, (obj) => {
        if (obj.event === 'ready') {
          clearTimeout(t);
          resolve(Number(obj.serverId));
        } else if (obj.event === 'summary') {
          summary = obj as unknown as HoldReport;
        }
      });
      child.once('exit', (code, sig) => {
        clearTimeout(t);
        reject(
          new ToolError(
            'XD_ERR_LAB',
            `lab hold client exited (${code ?? sig}) before its session was ready: ${stderr.trim()}`,
          ),
        );
      });
    });
    let serverId: number;
    try {
      serverId = await ready;
    } catch (err) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      throw err;
    }
    return {
      serverId,
      child,
      stop: async (): Promise<HoldReport> => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        if (!(await waitChildExit(child, 15_000))) {
          child.kill('SIGKILL');
          throw new ToolError('XD_ERR_LAB', 'lab hold client did not stop within 15 s of SIGTERM');
        }
        if (!summary) throw new ToolError('XD_ERR_LAB', `lab hold client exited without a summary: ${stderr.trim()}`);
        return summary;
      },
    };
  }

  /**
   * Tear down exactly what this lab made: processes it spawned (by pid), any
   * process still inside its namespaces (by pid, from `ip netns pids`), then
   * the namespaces (which removes their veths and the bridge). Safe to call twice.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    const errors: string[] = [];
    for (const child of [...this.children]) {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue;
      try {
        child.kill('SIGTERM');
      } catch {
        /* already gone */
      }
      if (!(await waitChildExit(child, 5_000))) {
        try {
          child.kill('SIGKILL');
        } catch {
          /* gone */
        }
        await waitChildExit(child, 5_000);
      }
    }
    for (const ns of [...this.namespaces].reverse()) {
      try {
        await killNamespacePids(ns);
        await run('ip', ['netns', 'del', ns]);
      } catch (err) {
        if (fs.existsSync(`/run/netns/${ns}`)) errors.push(err instanceof Error ? err.message : String(err));
      }
    }
    this.namespaces.length = 0;
    this.destroyed = true;
    if (errors.length)
      throw new ToolError('XD_ERR_LAB', `lab ${this.prefix}: teardown incomplete: ${errors.join('; ')}`);
  }
}

export interface ClientRunOptions {
  /** Default: the IPv4 VIP. */
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  /** Connection mode: new connections to open (default 300). */
  connections?: number;
  concurrency?: number;
  /** Connect/query timeout per attempt, ms. */
  timeoutMs?: number;
  /** Kill the client process after this long (connection mode). Default 300 s. */
  runTimeoutMs?: number;
}

export interface HoldSession {
  /** server_id that answered the first query. */
  serverId: number;
  child: ChildProcess;
  /** SIGTERM the client and return its summary. */
  stop(): Promise<HoldReport>;
}

function clientArgs(lab: Lab, o: ClientRunOptions): string[] {
  const a = ['--host', o.host ?? lab.vip];
  if (o.port !== undefined) a.push('--port', String(o.port));
  if (o.user !== undefined) a.push('--user', o.user);
  if (o.password !== undefined) a.push('--password', o.password);
  if (o.connections !== undefined) a.push('--connections', String(o.connections));
  if (o.concurrency !== undefined) a.push('--concurrency', String(o.concurrency));
  if (o.timeoutMs !== undefined) a.push('--timeout', String(o.timeoutMs));
  return a;
}

export function defaultXdpPassObject(): string {
  return path.join(repoRoot(), 'dist', 'bpf', 'tools', 'xdp_pass.bpf.o');
}

/** Kill every process inside namespace `ns` by pid (SIGKILL; SIGCONT first for stopped ones) and wait for them. */
async function killNamespacePids(ns: string): Promise<void> {
  const r = await run('ip', ['netns', 'pids', ns], { allowFail: true });
  if (r.code !== 0) return;
  const pids = r.stdout
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((p) => Number.isInteger(p) && p > 1 && p !== process.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const pid of pids) await waitPidExit(pid, 5_000);
}

async function sysctlIn(ns: string, settings: string[], ignoreMissing = false): Promise<void> {
  const r = await runIn(ns, 'sysctl', ['-qw', ...settings], { allowFail: ignoreMissing });
  if (ignoreMissing && r.code !== 0 && !/cannot stat|No such file/.test(r.stderr)) {
    throw new ToolError('XD_ERR_LAB', `sysctl in ${ns}: ${r.stderr.trim()}`);
  }
}

/** Build the lab. On any failure everything built so far is removed before the error is thrown. */
export async function createLab(opts: LabOptions): Promise<Lab> {
  const prefix = opts.prefix;
  if (!/^[a-z][a-z0-9]{0,11}$/.test(prefix)) {
    throw new ToolError(
      'XD_ERR_LAB',
      `lab prefix ${JSON.stringify(prefix)}: use 1–12 lowercase letters/digits starting with a letter (e.g. 'xdf' + pid)`,
    );
  }
  const directors = opts.directors ?? 1;
  const realServers = opts.realServers ?? 3;
  if (directors !== 1 && directors !== 2) throw new ToolError('XD_ERR_LAB', `lab directors: ${directors}: use 1 or 2`);
  if (!Number.isInteger(realServers) || realServers < 1 || realServers > 9) {
    throw new ToolError('XD_ERR_LAB', `lab realServers: ${realServers}: use 1..9 (host numbers 11..19)`);
  }
  const xdpMode = opts.xdpMode ?? 'native';
  if (xdpMode !== 'native' && xdpMode !== 'generic')
    throw new ToolError('XD_ERR_LAB', `lab xdpMode: ${String(xdpMode)}: use 'native' or 'generic'`);
  const xdpPass = opts.xdpPassObject ?? defaultXdpPassObject();
  if (xdpMode === 'native' && !fs.existsSync(xdpPass)) {
    throw new XdError(
      'XD_ERR_BPF_OBJECT',
      `native XDP lab needs ${xdpPass} (XDP_PASS on the directors' bridge ports so XDP_TX frames are delivered); build it with \`make -C bpf\` (or bash scripts/setup.sh), or use xdpMode 'generic'`,
    );
  }
  const lab = new Lab({ prefix, directors, realServers, ipv6: opts.ipv6 ?? true, xdpMode });
  for (const ns of [lab.sw, ...lab.hosts().map((h) => h.ns)]) {
    checkNsName(ns);
    if (fs.existsSync(`/run/netns/${ns}`)) {
      throw new ToolError(
        'XD_ERR_LAB',
        `network namespace ${ns} already exists: another run uses prefix ${prefix}, or a stale one is left (remove it with cleanupStale('${prefix}'))`,
      );
    }
  }
  try {
    await build(lab, xdpPass);
  } catch (err) {
    await lab.destroy().catch(() => undefined);
    throw err instanceof XdError ? err : toolWrap('XD_ERR_LAB', `build lab ${prefix}`, err);
  }
  return lab;
}

async function build(lab: Lab, xdpPass: string): Promise<void> {
  const hosts = lab.hosts();
  await Promise.all(
    [lab.sw, ...hosts.map((h) => h.ns)].map(async (ns) => {
      await run('ip', ['netns', 'add', ns]);
      lab.namespaces.push(ns);
    }),
  );
  // Switch: a plain learning bridge, no STP delay, no multicast snooping (VRRP
  // and NS multicast must flood), no netfilter on bridged frames.
  await sysctlIn(lab.sw, ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  await run('ip', ['-n', lab.sw, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0']);
  await run('ip', ['-n', lab.sw, 'link', 'set', 'br0', 'up']);
  await run('ip', ['-n', lab.sw, 'link', 'set', 'lo', 'up']);
  if (fs.existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables')) {
    await sysctlIn(
      lab.sw,
      [
        'net.bridge.bridge-nf-call-iptables=0',
        'net.bridge.bridge-nf-call-ip6tables=0',
        'net.bridge.bridge-nf-call-arptables=0',
      ],
      true,
    );
  }

  await Promise.all(
    hosts.map(async (h) => {
      // Addresses are usable at once (no DAD delay) in a lab on one segment.
      await sysctlIn(h.ns, [
        'net.ipv6.conf.all.accept_dad=0',
        'net.ipv6.conf.default.accept_dad=0',
        ...(lab.ipv6 ? [] : ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']),
      ]);
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
        h.peer,
        'netns',
        lab.sw,
      ]);
      await run('ip', ['-n', lab.sw, 'link', 'set', h.peer, 'master', 'br0', 'up']);
      await run('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
      await run('ip', ['-n', h.ns, 'addr', 'add', `${h.ipv4}/24`, 'dev', 'eth0']);
      if (lab.ipv6) await run('ip', ['-n', h.ns, '-6', 'addr', 'add', `${h.ipv6}/64`, 'dev', 'eth0', 'nodad']);
      if (h.role === 'real') {
        // The VIPs on lo; never answer ARP for them (arp_ignore=1: only for
        // addresses on the receiving interface) nor use them as ARP source
        // (arp_announce=2). IPv6 NS for an address on lo is not answered on
        // eth0 (ndisc_recv_ns looks the target up strictly on the receiving device).
        await sysctlIn(h.ns, [
          'net.ipv4.conf.all.arp_ignore=1',
          'net.ipv4.conf.all.arp_announce=2',
          'net.ipv4.conf.eth0.arp_ignore=1',
          'net.ipv4.conf.eth0.arp_announce=2',
        ]);
        await run('ip', ['-n', h.ns, 'addr', 'add', `${VIP4}/32`, 'dev', 'lo']);
        if (lab.ipv6)
          await run('ip', ['-n', h.ns, '-6', 'addr', 'add', `${VIP6}/128`, 'dev', 'lo', 'nodad', 'preferred_lft', '0']);
      }
      await run('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
      if (lab.xdpMode === 'native' && (h.role === 'client' || h.role === 'real')) {
        await runIn(h.ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
      }
    }),
  );
  if (lab.xdpMode === 'native') {
    for (const d of lab.directors) await lab.attachPeerXdpPass(d, xdpPass);
  }
}

/**
 * Remove leftovers of an earlier lab with exactly this prefix: kill the
 * processes inside its namespaces (`<prefix>sw`, `<prefix>cl`, `<prefix>d1`, …)
 * by pid, delete them, and remove its MariaDB temp dirs (`<prefix>-mariadb-*`).
 * With `onlyDeadOwners`, `prefix` is a family prefix (e.g. 'xdlab') and every
 * lab named `<prefix><pid>` whose pid is no longer alive is removed.
 */
export async function cleanupStale(prefix: string, opts: { onlyDeadOwners?: boolean } = {}): Promise<string[]> {
  if (!/^[a-z][a-z0-9]*$/.test(prefix))
    throw new ToolError('XD_ERR_LAB', `cleanup prefix ${JSON.stringify(prefix)}: use lowercase letters/digits`);
  const removed: string[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync('/run/netns');
  } catch {
    names = [];
  }
  const owners = new Set<string>();
  // Exactly the names a lab gives its namespaces, so that a prefix never
  // matches another lab whose prefix merely starts with it.
  const roles = '(sw|cl|d[12]|r[1-9])';
  const exact = new RegExp(`^${prefix}${roles}$`);
  const owned = new RegExp(`^${prefix}(\\d+)${roles}$`);
  for (const ns of names) {
    if (opts.onlyDeadOwners) {
      const m = owned.exec(ns);
      if (!m) continue;
      if (pidAlive(Number(m[1]))) continue;
      owners.add(`${prefix}${m[1]}`);
    } else if (!exact.test(ns)) {
      continue;
    }
    await killNamespacePids(ns);
    await run('ip', ['netns', 'del', ns], { allowFail: true });
    removed.push(ns);
  }
  if (opts.onlyDeadOwners) {
    // MariaDB temp dirs of dead owners, also those whose namespaces are gone already.
    let entries: string[] = [];
    try {
      entries = fs.readdirSync(os.tmpdir());
    } catch {
      entries = [];
    }
    for (const e of entries) {
      const m = new RegExp(`^${prefix}(\\d+)-mariadb-`).exec(e);
      if (m && !pidAlive(Number(m[1]))) owners.add(`${prefix}${m[1]}`);
    }
    for (const p of owners) removed.push(...(await cleanupStaleMariaDB(p)));
  } else {
    removed.push(...(await cleanupStaleMariaDB(prefix)));
  }
  return removed;
}
