// The README's main command (`bash scripts/lab.sh`, which runs scripts/setup.sh
// first): build the namespace lab, start a real MariaDB on each real server,
// start `xdirector run` in the director namespace, open many new MySQL
// connections from the client through the VIP, print which backend
// (@@server_id) served how many and the `xdirector status` table, then tear
// everything down — also on Ctrl-C and on error. `--keep` leaves it running.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import YAML from 'yaml';
import { XdError } from '../../src/errors';
import { createLab, cleanupStale, repoRoot, Lab, XdpMode } from './topology';
import { MariaDB } from './mariadb';
import { runIn, pidAlive, waitChildExit, waitPidExit, sleep } from './exec';
import { ConnectionsReport } from './client';
import { ToolError } from '../errors';

export interface LabMainOptions {
  keep: boolean;
  mode: XdpMode;
  connections: number;
  connections6: number;
  concurrency: number;
  /** Config template (YAML); default scripts/config/lab.yaml when present, else generated from the topology. */
  config?: string;
  /** Tear down a lab left with --keep (its prefix, e.g. xdlab1234). */
  down?: string;
}

const USAGE = `usage: bash scripts/lab.sh [--keep] [--mode native|generic] [--connections N] [--connections6 N]
                        [--concurrency C] [--config FILE]
       bash scripts/lab.sh --down PREFIX      tear down a lab left running with --keep`;

export function parseMainArgs(argv: string[]): LabMainOptions {
  const o: LabMainOptions = { keep: false, mode: 'native', connections: 300, connections6: 60, concurrency: 8 };
  const int = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min)
      throw new XdError('XD_ERR_USAGE', `${name} ${v ?? '(missing)'}: expected an integer >= ${min}\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--keep':
        o.keep = true;
        break;
      case '--mode': {
        const m = argv[++i];
        if (m !== 'native' && m !== 'generic')
          throw new XdError('XD_ERR_USAGE', `--mode ${m ?? '(missing)'}: use native or generic\n${USAGE}`);
        o.mode = m;
        break;
      }
      case '--connections':
        o.connections = int(a, argv[++i], 1);
        break;
      case '--connections6':
        o.connections6 = int(a, argv[++i], 0);
        break;
      case '--concurrency':
        o.concurrency = int(a, argv[++i], 1);
        break;
      case '--config': {
        const f = argv[++i];
        if (!f) throw new XdError('XD_ERR_USAGE', `--config: missing file name\n${USAGE}`);
        o.config = path.resolve(f);
        break;
      }
      case '--down': {
        const p = argv[++i];
        if (!p || !/^xdlab\d+$/.test(p))
          throw new XdError(
            'XD_ERR_USAGE',
            `--down ${p ?? '(missing)'}: give the lab prefix printed by --keep (xdlab<pid>)\n${USAGE}`,
          );
        o.down = p;
        break;
      }
      case '-h':
      case '--help':
        throw new XdError('XD_ERR_USAGE', USAGE);
      default:
        throw new XdError('XD_ERR_USAGE', `unknown argument ${JSON.stringify(a)}\n${USAGE}`);
    }
  }
  return o;
}

const t0 = Date.now();
function say(msg: string): void {
  process.stdout.write(`lab [${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}\n`);
}

/** What a kept lab needs for its later teardown (written to <workdir>/state.json). */
export interface LabState {
  prefix: string;
  workdir: string;
  config: string;
  socket: string;
  pinDir: string;
  director: string;
  daemonPid?: number;
  /** Left running with --keep: only --down removes it. */
  kept?: boolean;
}

/** Where a lab with this prefix keeps its files, socket and pins. */
export function labState(prefix: string): LabState {
  const workdir = path.join(os.tmpdir(), `${prefix}-lab`);
  return {
    prefix,
    workdir,
    config: path.join(workdir, 'xdirector.yaml'),
    socket: `/run/xdirector/${prefix}.sock`,
    pinDir: `/sys/fs/bpf/xdirector/${prefix}`,
    director: `${prefix}d1`,
  };
}

function xdirectorBin(): string {
  return path.join(repoRoot(), 'bin', 'xdirector.js');
}

/** The embedded default config for this lab: one IPv4 and one IPv6 MySQL service over the three real servers, weights 1:1:2. */
export function generateConfig(lab: Lab, st: LabState, mode: XdpMode, monitorPwFile: string): Record<string, unknown> {
  const weights = [1, 1, 2];
  return {
    instance: st.prefix,
    interface: 'eth0',
    dataplane: 'xdp',
    xdp: { mode, pin_dir: path.dirname(st.pinDir) },
    admin: { socket: st.socket },
    log: { level: 'info' },
    monitor: { user: 'monitor', password_file: monitorPwFile },
    health: { interval: '500ms', timeout: '400ms', rise: 2, fall: 3 },
    services: [
      {
        name: 'mysql',
        vip: lab.vip,
        port: 3306,
        protocol: 'tcp',
        scheduler: 'maglev',
        check: 'mysql',
        backends: lab.realServers.map((r, i) => ({ name: r.name, address: r.ipv4, weight: weights[i] ?? 1 })),
      },
      ...(lab.ipv6
        ? [
            {
              name: 'mysql6',
              vip: lab.vip6,
              port: 3306,
              protocol: 'tcp',
              scheduler: 'maglev',
              check: 'mysql',
              backends: lab.realServers.map((r, i) => ({
                name: `${r.name}-6`,
                address: r.ipv6,
                weight: weights[i] ?? 1,
              })),
            },
          ]
        : []),
    ],
  };
}

/**
 * The config the daemon runs with: scripts/config/lab.yaml (or --config) when
 * present, with the per-run keys (instance, interface, mode, socket, pin dir,
 * monitor password file) set for this lab; else the generated one.
 */
export function buildConfig(
  lab: Lab,
  st: LabState,
  o: LabMainOptions,
  monitorPwFile: string,
): { doc: Record<string, unknown>; source: string } {
  const template = o.config ?? path.join(repoRoot(), 'scripts', 'config', 'lab.yaml');
  if (!fs.existsSync(template)) {
    if (o.config) throw new XdError('XD_ERR_CONFIG_READ', `--config ${o.config}: no such file`);
    return { doc: generateConfig(lab, st, o.mode, monitorPwFile), source: 'generated from the lab topology' };
  }
  let doc: Record<string, unknown>;
  try {
    doc = YAML.parse(fs.readFileSync(template, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new XdError('XD_ERR_CONFIG_PARSE', `${template}: ${(err as Error).message}`, { cause: err });
  }
  if (!doc || typeof doc !== 'object')
    throw new XdError('XD_ERR_CONFIG_INVALID', `${template}: expected a YAML mapping at the top`);
  doc.instance = st.prefix;
  doc.interface = 'eth0';
  doc.xdp = { ...((doc.xdp as Record<string, unknown>) ?? {}), mode: o.mode, pin_dir: path.dirname(st.pinDir) };
  doc.admin = { ...((doc.admin as Record<string, unknown>) ?? {}), socket: st.socket };
  const mon = { ...((doc.monitor as Record<string, unknown>) ?? { user: 'monitor' }) };
  delete mon.password_env;
  mon.password_file = monitorPwFile;
  doc.monitor = mon;
  if (Array.isArray(doc.vrrp)) {
    // A kept single director: the VRRP instances run on its eth0.
    doc.vrrp = (doc.vrrp as Record<string, unknown>[]).map((v) => ({ ...v, interface: 'eth0' }));
  }
  return { doc, source: path.relative(process.cwd(), template) || template };
}

async function xdirectorCli(st: LabState, args: string[], opts: { allowFail?: boolean } = {}) {
  return runIn(st.director, process.execPath, [xdirectorBin(), ...args], {
    mode: 'nsenter',
    timeoutMs: 30_000,
    allowFail: opts.allowFail,
  });
}

interface StatusBackend {
  key: string;
  name?: string;
  mac?: string;
  weight: number;
  state: string;
}
interface StatusService {
  name: string;
  backends: StatusBackend[];
}

/** Wait until `xdirector status --json` lists every service with all its backends active (MAC known, weight > 0). */
async function waitServing(
  st: LabState,
  daemon: ChildProcess,
  logFile: string,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    if (daemon.exitCode !== null || daemon.signalCode !== null) {
      throw new ToolError(
        'XD_ERR_LAB',
        `xdirector run exited (${daemon.exitCode ?? daemon.signalCode}) before serving; log ${logFile}:\n${tail(logFile, 25)}`,
      );
    }
    if (fs.existsSync(st.socket)) {
      const r = await xdirectorCli(st, ['status', '--json', '--socket', st.socket], { allowFail: true });
      if (r.code === 0) {
        try {
          const status = JSON.parse(r.stdout) as Record<string, unknown>;
          const services = ((status.dataplane as Record<string, unknown>)?.services ?? []) as StatusService[];
          const notReady = services.flatMap((s) =>
            s.backends
              .filter((b) => b.state !== 'active' || !b.mac || b.weight <= 0)
              .map((b) => `${s.name}/${b.name ?? b.key}: ${b.state}${b.mac ? '' : ', no MAC'}`),
          );
          if (services.length > 0 && services.every((s) => s.backends.length > 0) && notReady.length === 0)
            return status;
          last = services.length === 0 ? 'no services yet' : `waiting for ${notReady.join('; ')}`;
        } catch (err) {
          last = `unreadable status: ${(err as Error).message}`;
        }
      } else {
        last = r.stderr.trim() || `status exited ${r.code}`;
      }
    }
    if (Date.now() >= deadline) {
      throw new ToolError(
        'XD_ERR_LAB',
        `xdirector did not serve every backend within ${timeoutMs / 1000} s (${last}); log ${logFile}:\n${tail(logFile, 25)}`,
      );
    }
    await sleep(500);
  }
}

function tail(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function printCounts(
  title: string,
  rep: ConnectionsReport,
  names: Map<string, string>,
  weights: Map<string, number>,
): void {
  const total = Math.max(1, rep.ok);
  const wsum = [...weights.values()].reduce((a, b) => a + b, 0) || 1;
  process.stdout.write(
    `\n${title}: ${rep.attempted} new connections to ${rep.host.includes(':') ? `[${rep.host}]` : rep.host}:${rep.port}, ${rep.ok} ok, ${rep.failed} failed, ${rep.elapsedMs} ms\n`,
  );
  process.stdout.write(
    `  ${'server_id'.padEnd(10)} ${'backend'.padEnd(14)} ${'connections'.padStart(11)} ${'share'.padStart(7)} ${'weight share'.padStart(12)}\n`,
  );
  const ids = [...new Set([...names.keys(), ...Object.keys(rep.byServerId)])].sort((a, b) => Number(a) - Number(b));
  for (const id of ids) {
    const n = rep.byServerId[id] ?? 0;
    const w = weights.get(id);
    process.stdout.write(
      `  ${id.padEnd(10)} ${(names.get(id) ?? '?').padEnd(14)} ${String(n).padStart(11)} ${`${((100 * n) / total).toFixed(1)}%`.padStart(7)} ${(w !== undefined ? `${((100 * w) / wsum).toFixed(1)}%` : '-').padStart(12)}\n`,
    );
  }
  for (const [why, n] of Object.entries(rep.failures)) process.stdout.write(`  failed ${n}x: ${why}\n`);
  const t = rep.connectMs;
  process.stdout.write(`  connect ms: avg ${t.avg}, p50 ${t.p50}, p99 ${t.p99}, max ${t.max}\n`);
}

/** Orderly teardown of a lab described by `st` (also used by --down). Never throws; reports what failed. */
async function teardown(
  st: LabState,
  parts: { lab?: Lab; servers?: MariaDB[]; daemon?: ChildProcess },
): Promise<string[]> {
  const problems: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      problems.push(`${what}: ${(err as Error).message}`);
    }
  };
  // 1. The daemon: SIGTERM by pid (it keeps program and pins for a hot restart) …
  const pid = parts.daemon?.pid ?? st.daemonPid;
  // A pid from a state file is only ours if it still runs this lab's config.
  const ours = (p: number): boolean => {
    if (parts.daemon) return true;
    try {
      return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(st.config);
    } catch {
      return false;
    }
  };
  if (pid !== undefined && pidAlive(pid) && ours(pid)) {
    await attempt(`stop xdirector (pid ${pid})`, async () => {
      process.kill(pid, 'SIGTERM');
      const gone = parts.daemon ? await waitChildExit(parts.daemon, 15_000) : await waitPidExit(pid, 15_000);
      if (!gone) {
        process.kill(pid, 'SIGKILL');
        throw new ToolError('XD_ERR_LAB', 'did not exit within 15 s of SIGTERM; killed');
      }
    });
  }
  // 2. … then `xdirector stop --detach` removes the program and the pins.
  if (fs.existsSync(st.config) && fs.existsSync(`/run/netns/${st.director}`)) {
    await attempt('xdirector stop --detach', () => xdirectorCli(st, ['stop', '--detach', '-c', st.config]));
  }
  if (fs.existsSync(st.pinDir)) {
    // Only this run's instance directory (its name is the unique prefix).
    await attempt(`remove leftover pins ${st.pinDir}`, async () =>
      fs.rmSync(st.pinDir, { recursive: true, force: true }),
    );
  }
  // The parent is shared with other labs and real instances: removed only when empty.
  try {
    fs.rmdirSync(path.dirname(st.pinDir));
  } catch {
    /* in use, or already gone */
  }
  // 3. MariaDB, namespaces (and anything still inside them), work dir.
  for (const s of parts.servers ?? []) await attempt(`stop ${s.label}`, () => s.destroy());
  if (parts.lab) await attempt('remove namespaces', () => parts.lab!.destroy());
  await attempt('remove stale leftovers', () => cleanupStale(st.prefix));
  await attempt(`remove ${st.workdir}`, async () => fs.rmSync(st.workdir, { recursive: true, force: true }));
  try {
    fs.rmSync(st.socket, { force: true });
  } catch {
    /* the daemon removes it itself */
  }
  return problems;
}

/**
 * Remove what earlier lab runs left behind when they died without tearing down
 * (killed, machine reset): every `xdlab<pid>` namespace, work dir, MariaDB dir
 * and pin dir whose <pid> is no longer alive — except labs left with --keep.
 */
export async function cleanupDeadLabs(): Promise<string[]> {
  const prefixes = new Set<string>();
  const scan = (dir: string): void => {
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const m = /^xdlab(\d+)/.exec(n);
      if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) prefixes.add(`xdlab${m[1]}`);
    }
  };
  scan('/run/netns');
  scan(os.tmpdir());
  scan('/sys/fs/bpf/xdirector');
  const removed: string[] = [];
  for (const prefix of prefixes) {
    let st = labState(prefix);
    try {
      const saved = JSON.parse(fs.readFileSync(path.join(st.workdir, 'state.json'), 'utf8')) as LabState;
      if (saved.kept) continue;
      st = saved;
    } catch {
      /* no state file: the defaults name everything */
    }
    await teardown(st, {});
    removed.push(prefix);
  }
  return removed;
}

async function down(prefix: string): Promise<number> {
  const workdir = path.join(os.tmpdir(), `${prefix}-lab`);
  let st: LabState;
  try {
    st = JSON.parse(fs.readFileSync(path.join(workdir, 'state.json'), 'utf8')) as LabState;
  } catch {
    st = labState(prefix);
  }
  say(`tearing down ${prefix}`);
  const problems = await teardown(st, {});
  for (const p of problems) say(`teardown problem: ${p}`);
  say(problems.length ? 'teardown finished with problems' : 'torn down: nothing left');
  return problems.length ? 1 : 0;
}

export async function main(argv: string[]): Promise<number> {
  let o: LabMainOptions;
  try {
    o = parseMainArgs(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('lab: must run as root (network namespaces, XDP, bpffs)\n');
    return 1;
  }
  if (o.down) return down(o.down);

  const prefix = `xdlab${process.pid}`;
  const st = labState(prefix);
  const workdir = st.workdir;
  const parts: { lab?: Lab; servers?: MariaDB[]; daemon?: ChildProcess } = {};
  let interrupted: string | undefined;
  let tearingDown: Promise<string[]> | undefined;
  const doTeardown = (): Promise<string[]> => (tearingDown ??= teardown(st, parts));
  let rejectInterrupt!: (e: Error) => void;
  const interruptedP = new Promise<never>((_, rej) => (rejectInterrupt = rej));
  interruptedP.catch(() => undefined);
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = sig;
    process.stdout.write('\n');
    say(`${sig}: stopping and tearing down`);
    rejectInterrupt(new ToolError('XD_ERR_LAB', `interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  // Any step can be cut short by a signal; teardown then runs from finally.
  // The step in flight is awaited before teardown, so that a half-built part
  // (namespaces being created, a server starting) is complete and known.
  let inflight: Promise<unknown> = Promise.resolve();
  const step = <T>(p: Promise<T>): Promise<T> => {
    inflight = p.catch(() => undefined);
    return Promise.race([p, interruptedP]);
  };

  let code = 0;
  let kept = false;
  try {
    const stale = await step(cleanupDeadLabs());
    if (stale.length) say(`removed leftovers of earlier runs that died: ${stale.join(', ')}`);
    fs.mkdirSync(workdir, { recursive: true, mode: 0o700 });

    say(`building namespaces ${prefix}{sw,cl,d1,r1,r2,r3} (${o.mode} XDP)`);
    const lab = await step(
      createLab({ prefix, directors: 1, realServers: 3, ipv6: true, xdpMode: o.mode }).then((l) => (parts.lab = l)),
    );

    const monitorPw = crypto.randomBytes(12).toString('base64url');
    const monitorPwFile = path.join(workdir, 'monitor.pw');
    fs.writeFileSync(monitorPwFile, `${monitorPw}\n`, { mode: 0o600 });
    say('starting MariaDB on r1, r2, r3 (server_id 1, 2, 3)');
    parts.servers = lab.realServers.map(
      (r, i) =>
        new MariaDB({
          prefix,
          name: r.name,
          serverId: i + 1,
          netns: r.ns,
          advertiseHost: r.ipv4,
          monitorPassword: monitorPw,
        }),
    );
    await step(Promise.all(parts.servers.map((s) => s.start())));

    const { doc, source } = buildConfig(lab, st, o, monitorPwFile);
    fs.writeFileSync(st.config, YAML.stringify(doc), { mode: 0o600 });
    say(`config ${st.config} (${source})`);
    if (!Array.isArray(doc.vrrp) || doc.vrrp.length === 0) {
      await step(lab.addVip(lab.directors[0]));
      say(`VIPs ${lab.vip} and ${lab.vip6} on ${lab.directors[0].ns} eth0 (no VRRP in this config)`);
    }

    const logFile = path.join(workdir, 'xdirector.log');
    const logFd = fs.openSync(logFile, 'a');
    say(`starting xdirector run -c ${st.config} in ${st.director} (log ${logFile})`);
    const daemon = lab.spawn(lab.directors[0], process.execPath, [xdirectorBin(), 'run', '-c', st.config], {
      mode: 'nsenter',
      stdio: ['ignore', logFd, logFd],
      detached: true, // own process group: Ctrl-C reaches only this controller, which stops it in order
    });
    fs.closeSync(logFd);
    parts.daemon = daemon;
    await step(
      new Promise<void>((resolve, reject) => {
        daemon.once('spawn', resolve);
        daemon.once('error', reject);
      }),
    );
    st.daemonPid = daemon.pid;
    fs.writeFileSync(path.join(workdir, 'state.json'), JSON.stringify(st, null, 2));

    await step(waitServing(st, daemon, logFile, 60_000));
    say('xdirector serves every backend');

    const names = new Map<string, string>();
    const names6 = new Map<string, string>();
    const weights4 = new Map<string, number>();
    const weights6 = new Map<string, number>();
    const services = (doc.services ?? []) as {
      vip: string;
      backends: { address: string; name?: string; weight?: number }[];
    }[];
    for (const [i, r] of lab.realServers.entries()) {
      const id = String(i + 1);
      names.set(id, `${r.name} ${r.ipv4}`);
      names6.set(id, `${r.name} ${r.ipv6}`);
      for (const s of services) {
        const b = s.backends.find((x) => x.address === r.ipv4 || x.address === r.ipv6);
        if (!b) continue;
        (s.vip.includes(':') ? weights6 : weights4).set(id, b.weight ?? 1);
      }
    }

    say(`client: ${o.connections} new connections to ${lab.vip}:3306 (concurrency ${o.concurrency})`);
    const rep4 = await step(lab.runClient({ connections: o.connections, concurrency: o.concurrency }));
    printCounts('IPv4', rep4, names, weights4);
    let rep6: ConnectionsReport | undefined;
    if (o.connections6 > 0 && services.some((s) => s.vip === lab.vip6)) {
      say(`client: ${o.connections6} new connections to [${lab.vip6}]:3306`);
      rep6 = await step(lab.runClient({ host: lab.vip6, connections: o.connections6, concurrency: o.concurrency }));
      printCounts('IPv6', rep6, names6, weights6);
    }

    const status = await step(xdirectorCli(st, ['status', '--socket', st.socket]));
    process.stdout.write(`\nxdirector status\n${status.stdout}\n`);

    const failed = rep4.failed + (rep6?.failed ?? 0);
    if (failed > 0) {
      say(`${failed} connection(s) failed`);
      code = 1;
    }
    if (rep4.ok > 0 && Object.keys(rep4.byServerId).length < lab.realServers.length) {
      say(`only ${Object.keys(rep4.byServerId).length} of ${lab.realServers.length} backends served IPv4 connections`);
      code = 1;
    }

    if (o.keep) {
      kept = true;
      st.kept = true;
      fs.writeFileSync(path.join(workdir, 'state.json'), JSON.stringify(st, null, 2));
      for (const s of parts.servers) s.release();
      lab.release();
      const cl = lab.client.ns;
      process.stdout.write(
        [
          '',
          `The lab ${prefix} keeps running.`,
          `  connect:   ip netns exec ${cl} mariadb --no-defaults -h ${lab.vip} -uapp -papp -e 'SELECT @@server_id'`,
          `             ip netns exec ${cl} node ${path.relative(process.cwd(), path.join(__dirname, 'client.js'))} --host ${lab.vip} --connections 100`,
          `  status:    node ${path.relative(process.cwd(), xdirectorBin())} status --socket ${st.socket}`,
          `  log:       ${path.join(workdir, 'xdirector.log')}`,
          `  tear down: bash scripts/lab.sh --down ${prefix}`,
          '',
        ].join('\n'),
      );
    }
  } catch (err) {
    if (!interrupted) process.stderr.write(`lab: FAILED: ${(err as Error).message}\n`);
    code = interrupted ? 130 : 1;
  } finally {
    if (!kept) {
      if (interrupted) await Promise.race([inflight, sleep(60_000)]);
      say('tearing down');
      const problems = await doTeardown();
      for (const p of problems) say(`teardown problem: ${p}`);
      if (problems.length) code = code || 1;
      else say('torn down: namespaces, processes, pins and temp files removed');
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
  return code;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`lab: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
