// Throwaway MariaDB servers for the lab and the tests.
//
// A template datadir is initialised once per machine and MariaDB version
// (mariadb-install-db, ~1–2 s) and cached under /var/tmp; each server gets a
// copy in its own temp dir (socket, pid file, tmpdir, error log beside it), so
// starting a server costs well under a second. A server runs either inside a
// network namespace (listening on every address, port 3306 by default) or in
// the current namespace on 127.0.0.1 with a free port.
//
// Servers are told apart by @@server_id: @@hostname is the same in every
// namespace (namespaces do not change the UTS name).
import { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import mysql, { Connection, RowDataPacket } from 'mysql2/promise';
import { run, spawnIn, pidAlive, waitChildExit, waitPidExit, sleep } from './exec';
import { ToolError, toolWrap } from '../errors';

export interface MariaDBOptions {
  /** Per-run prefix for the temp dir (the helper/test prefix plus something per run, e.g. pid). */
  prefix: string;
  /** Short name for this server, unique within the prefix (e.g. 'r1'). */
  name: string;
  /** @@server_id (1..2^32-1); also how clients tell servers apart. */
  serverId: number;
  /** Run inside this network namespace; null/undefined: current namespace on 127.0.0.1. */
  netns?: string | null;
  /** TCP port. Default 3306 in a namespace, a free port on loopback. */
  port?: number;
  /** Address to listen on. Default '*' (all IPv4 and IPv6) in a namespace, '127.0.0.1' otherwise. */
  bindAddress?: string;
  /** Address other servers use to reach this one (replication). Default: 127.0.0.1 on loopback; required in a namespace for replication. */
  advertiseHost?: string;
  /** max_connect_errors (MariaDB default 100). */
  maxConnectErrors?: number;
  /** Password of the `monitor` user (health checks). Default 'monitor'. */
  monitorPassword?: string;
  /** Grant SLAVE MONITOR to `monitor` (needed for SHOW REPLICA STATUS on 10.5.9+). Default true; false to test the missing-grant error. */
  monitorSlaveMonitor?: boolean;
  /** Password of the `repl` replication user. Default 'repl'. */
  replPassword?: string;
  /** Password of the `app` user (ALL privileges). Default 'app'. */
  appPassword?: string;
  /** Extra mariadbd arguments (e.g. '--slave-net-timeout=4'). */
  extraArgs?: string[];
  /** Parent directory of the server's temp dir. Default os.tmpdir(). */
  baseDir?: string;
  /** Milliseconds to wait for the server to answer after start. Default 30 s. */
  startTimeoutMs?: number;
}

const TEMPLATE_ROOT = '/var/tmp';
const INSTALL_ARGS = ['--innodb-log-file-size=8M', '--innodb-buffer-pool-size=32M'];

let versionCache: string | undefined;

/** The installed mariadbd version, e.g. '10.11.19'. */
export async function mariadbVersion(): Promise<string> {
  if (versionCache) return versionCache;
  const { stdout } = await run('mariadbd', ['--version']);
  const m = /Ver\s+(\d+\.\d+\.\d+)/.exec(stdout);
  if (!m)
    throw new ToolError(
      'XD_ERR_MARIADB',
      `mariadbd --version: cannot find a version in ${JSON.stringify(stdout.trim())}`,
    );
  versionCache = m[1];
  return versionCache;
}

/**
 * The cached template datadir for this MariaDB version, created on first use.
 * Safe against concurrent callers: each builds in its own directory and renames
 * it into place; the loser of the race discards its copy.
 */
export async function ensureTemplate(): Promise<string> {
  const version = await mariadbVersion();
  const dir = path.join(TEMPLATE_ROOT, `xdirector-mariadb-template-${version}`);
  if (fs.existsSync(path.join(dir, 'mysql', 'global_priv.MAI'))) return dir;
  const tmp = await fsp.mkdtemp(path.join(TEMPLATE_ROOT, `xdirector-mariadb-template-${version}.tmp-`));
  try {
    await run(
      'mariadb-install-db',
      [
        '--no-defaults',
        `--datadir=${tmp}/data`,
        '--user=root',
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        '--skip-name-resolve',
        ...INSTALL_ARGS,
      ],
      { timeoutMs: 120_000 },
    );
    try {
      await fsp.rename(path.join(tmp, 'data'), dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
    }
  } catch (err) {
    throw toolWrap('XD_ERR_MARIADB', `initialise the MariaDB template datadir ${dir}`, err);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
  return dir;
}

/** A free TCP port on 127.0.0.1 (bound and released; small race, fine for tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export type MariaDBState = 'new' | 'running' | 'stopped';

/** One mariadbd with its own datadir, socket and log, owned by this process. */
export class MariaDB {
  readonly opts: Required<Omit<MariaDBOptions, 'netns' | 'port' | 'advertiseHost' | 'maxConnectErrors'>> & {
    netns: string | null;
    maxConnectErrors: number | undefined;
  };
  /** The server's own temp dir: data/, sock, pid, err.log, tmp/. */
  dir: string | undefined;
  port = 0;
  advertiseHost: string | undefined;
  /** Pid of the running mariadbd (undefined when not running). */
  pid: number | undefined;
  state: MariaDBState = 'new';
  private child: ChildProcess | undefined;
  private initialised = false;
  private stderr = '';

  constructor(opts: MariaDBOptions) {
    if (!/^[A-Za-z0-9_-]+$/.test(opts.prefix) || !/^[A-Za-z0-9_-]+$/.test(opts.name)) {
      throw new ToolError(
        'XD_ERR_MARIADB',
        `MariaDB prefix ${JSON.stringify(opts.prefix)} / name ${JSON.stringify(opts.name)}: use letters, digits, '_' and '-'`,
      );
    }
    if (!Number.isInteger(opts.serverId) || opts.serverId < 1 || opts.serverId > 0xffffffff) {
      throw new ToolError(
        'XD_ERR_MARIADB',
        `MariaDB ${opts.name}: serverId ${opts.serverId} must be an integer 1..4294967295`,
      );
    }
    const inNs = opts.netns != null;
    this.opts = {
      prefix: opts.prefix,
      name: opts.name,
      serverId: opts.serverId,
      netns: opts.netns ?? null,
      bindAddress: opts.bindAddress ?? (inNs ? '*' : '127.0.0.1'),
      maxConnectErrors: opts.maxConnectErrors,
      monitorPassword: opts.monitorPassword ?? 'monitor',
      monitorSlaveMonitor: opts.monitorSlaveMonitor ?? true,
      replPassword: opts.replPassword ?? 'repl',
      appPassword: opts.appPassword ?? 'app',
      extraArgs: opts.extraArgs ?? [],
      baseDir: opts.baseDir ?? os.tmpdir(),
      startTimeoutMs: opts.startTimeoutMs ?? 30_000,
    };
    if (opts.port !== undefined) this.port = opts.port;
    else if (inNs) this.port = 3306;
    this.advertiseHost =
      opts.advertiseHost ?? (inNs ? undefined : this.opts.bindAddress === '*' ? '127.0.0.1' : this.opts.bindAddress);
  }

  get label(): string {
    return `mariadb ${this.opts.name} (server_id ${this.opts.serverId}${this.opts.netns ? `, netns ${this.opts.netns}` : ''}, port ${this.port})`;
  }
  get socket(): string {
    return path.join(this.requireDir(), 'sock');
  }
  get pidFile(): string {
    return path.join(this.requireDir(), 'pid');
  }
  get errorLog(): string {
    return path.join(this.requireDir(), 'err.log');
  }

  private requireDir(): string {
    if (!this.dir) throw new ToolError('XD_ERR_MARIADB', `${this.label}: not started yet (no temp dir)`);
    return this.dir;
  }

  /** The last lines of the server's error log, for error messages. */
  logTail(lines = 15): string {
    try {
      return fs.readFileSync(this.errorLog, 'utf8').trim().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no error log)';
    }
  }

  /**
   * Start the server and wait until it answers. The first start copies the
   * template datadir and creates the users; later starts reuse the datadir.
   */
  async start(): Promise<void> {
    if (this.state === 'running')
      throw new ToolError('XD_ERR_MARIADB', `${this.label}: already running (pid ${this.pid})`);
    if (!this.dir) {
      const template = await ensureTemplate();
      this.dir = await fsp.mkdtemp(path.join(this.opts.baseDir, `${this.opts.prefix}-mariadb-${this.opts.name}-`));
      await fsp.mkdir(path.join(this.dir, 'tmp'));
      try {
        await run('cp', ['-a', '--reflink=auto', template, path.join(this.dir, 'data')]);
      } catch (err) {
        throw toolWrap('XD_ERR_MARIADB', `${this.label}: copy template datadir`, err);
      }
    }
    if (this.port === 0) this.port = await freePort();
    await fsp.rm(this.pidFile, { force: true });
    const d = this.dir;
    const args = [
      '--no-defaults',
      '--user=root',
      `--datadir=${d}/data`,
      `--socket=${d}/sock`,
      `--pid-file=${d}/pid`,
      `--log-error=${d}/err.log`,
      `--tmpdir=${d}/tmp`,
      `--port=${this.port}`,
      `--bind-address=${this.opts.bindAddress}`,
      `--server-id=${this.opts.serverId}`,
      // Replication: binary log with GTIDs, replicas log what they apply too.
      `--log-bin=${d}/data/bin`,
      `--relay-log=${d}/data/relay`,
      '--log-slave-updates=1',
      '--binlog-format=ROW',
      '--skip-name-resolve',
      // Small and fast: a test server, not a production one.
      ...INSTALL_ARGS,
      '--performance-schema=OFF',
      '--innodb-flush-log-at-trx-commit=2',
      '--sync-binlog=0',
      '--key-buffer-size=1M',
      '--max-connections=500',
      ...(this.opts.maxConnectErrors !== undefined ? [`--max-connect-errors=${this.opts.maxConnectErrors}`] : []),
      ...this.opts.extraArgs,
    ];
    // Own process group: a Ctrl-C in the terminal reaches only the lab's
    // controller, which then stops the servers in order.
    const child = spawnIn(this.opts.netns, 'mariadbd', args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    this.child = child;
    // mariadbd logs to its error log; stderr only carries failures before that
    // (e.g. `ip netns exec` not finding the namespace).
    this.stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => (this.stderr = (this.stderr + d).slice(-2000)));
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(toolWrap('XD_ERR_MARIADB', `${this.label}: start mariadbd`, err)));
    });
    this.pid = child.pid;
    this.state = 'running';
    child.once('exit', () => {
      if (this.child === child) {
        this.state = 'stopped';
        this.pid = undefined;
      }
    });
    try {
      await this.waitReady(this.opts.startTimeoutMs);
      if (!this.initialised) {
        await this.initUsers();
        this.initialised = true;
      }
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  /** Wait until the server accepts a root login over its socket; fails early if mariadbd exits. */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      if (this.state !== 'running') {
        const early = this.stderr.trim();
        throw new ToolError(
          'XD_ERR_MARIADB',
          `${this.label}: mariadbd exited during start${early ? `: ${early}` : ''}; error log ${this.errorLog}:\n${this.logTail()}`,
        );
      }
      try {
        await this.query('SELECT 1');
        return;
      } catch (err) {
        last = err;
      }
      if (Date.now() >= deadline) {
        throw new ToolError(
          'XD_ERR_MARIADB',
          `${this.label}: not ready after ${timeoutMs} ms (${last instanceof Error ? last.message : String(last)}); error log ${this.errorLog}:\n${this.logTail()}`,
          { cause: last },
        );
      }
      await sleep(50);
    }
  }

  /** Root connection over the unix socket (root has an empty password, reachable only through the socket and localhost). */
  async connect(): Promise<Connection> {
    return mysql.createConnection({
      socketPath: this.socket,
      user: 'root',
      password: '',
      multipleStatements: true,
      connectTimeout: 5_000,
    });
  }

  /** Run SQL as root over the unix socket; `values` are escaped client-side into `?` placeholders. */
  async query<T = RowDataPacket[]>(sql: string, values?: unknown[]): Promise<T> {
    let conn: Connection | undefined;
    try {
      conn = await this.connect();
      const [rows] = await conn.query(sql, values);
      return rows as T;
    } catch (err) {
      throw toolWrap('XD_ERR_MARIADB', `${this.label}: ${sql.length > 80 ? `${sql.slice(0, 77)}...` : sql}`, err);
    } finally {
      if (conn) await conn.end().catch(() => conn?.destroy());
    }
  }

  /**
   * Create the lab's users on this server only (sql_log_bin=0: not written to
   * the binary log, so replicas that have the same users locally never replay a
   * CREATE USER that would fail and stop replication).
   */
  private async initUsers(): Promise<void> {
    const grants = ['PROCESS', 'REPLICATION CLIENT', ...(this.opts.monitorSlaveMonitor ? ['SLAVE MONITOR'] : [])].join(
      ', ',
    );
    await this.query(
      [
        'SET SESSION sql_log_bin=0',
        // Root stays reachable only through the unix socket and localhost.
        "DELETE FROM mysql.global_priv WHERE User='root' AND Host NOT IN ('localhost')",
        "DELETE FROM mysql.global_priv WHERE User=''",
        'FLUSH PRIVILEGES',
        "CREATE USER 'app'@'%' IDENTIFIED BY ?",
        "GRANT ALL ON *.* TO 'app'@'%'",
        "CREATE USER 'monitor'@'%' IDENTIFIED BY ?",
        `GRANT ${grants} ON *.* TO 'monitor'@'%'`,
        "CREATE USER 'repl'@'%' IDENTIFIED BY ?",
        "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'",
        'CREATE DATABASE IF NOT EXISTS lab',
      ].join(';\n'),
      [this.opts.appPassword, this.opts.monitorPassword, this.opts.replPassword],
    );
  }

  /** Send a signal to mariadbd. SIGKILL waits until it is gone (state 'stopped'); SIGSTOP/SIGCONT freeze and thaw it. */
  async kill(signal: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT' | 'SIGTERM'): Promise<void> {
    const pid = this.pid;
    if (pid === undefined || this.state !== 'running')
      throw new ToolError('XD_ERR_MARIADB', `${this.label}: not running, cannot send ${signal}`);
    process.kill(pid, signal);
    if (signal === 'SIGKILL' || signal === 'SIGTERM') {
      const gone = this.child ? await waitChildExit(this.child, 30_000) : await waitPidExit(pid, 30_000);
      if (!gone) throw new ToolError('XD_ERR_MARIADB', `${this.label}: pid ${pid} still running 30 s after ${signal}`);
      this.state = 'stopped';
      this.pid = undefined;
    }
  }

  /** Orderly shutdown (SIGCONT in case it is frozen, SIGTERM, wait; SIGKILL after 30 s). Safe to call when not running. */
  async stop(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined || this.state !== 'running') return;
    try {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGTERM');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
    const wait = (ms: number): Promise<boolean> => (this.child ? waitChildExit(this.child, ms) : waitPidExit(pid, ms));
    if (!(await wait(30_000))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
      await wait(10_000);
    }
    this.state = 'stopped';
    this.pid = undefined;
  }

  /**
   * Let this Node process exit while the server keeps running (lab --keep);
   * it is then stopped by pid (pid file) or by removing its namespace.
   */
  release(): void {
    this.child?.stderr?.destroy();
    this.child?.unref();
  }

  /** stop() then start() on the same datadir and port. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stop the server and remove its temp dir. Safe to call twice. */
  async destroy(): Promise<void> {
    await this.stop();
    if (this.dir) {
      await fsp.rm(this.dir, { recursive: true, force: true });
      this.dir = undefined;
    }
  }

  /** @@server_id as the server reports it. */
  async serverId(): Promise<number> {
    const rows = await this.query('SELECT @@server_id AS id');
    return Number(rows[0].id);
  }
}

export interface ReplicationOptions {
  /** Make replicas read_only (default true), as a health checker expects of readers. */
  readOnly?: boolean;
  /** Wait this long for the replication threads to run. Default 20 s. */
  timeoutMs?: number;
}

/**
 * Make `replicas` replicate from `primary` with GTID (`MASTER_USE_GTID=slave_pos`)
 * and wait until both replication threads run on every replica.
 */
export async function setupReplication(
  primary: MariaDB,
  replicas: MariaDB[],
  opts: ReplicationOptions = {},
): Promise<void> {
  if (!primary.advertiseHost) {
    throw new ToolError(
      'XD_ERR_MARIADB',
      `${primary.label}: no advertiseHost: give the address replicas use to reach it (MariaDBOptions.advertiseHost)`,
    );
  }
  for (const r of replicas) {
    await r.query(
      [
        ...(opts.readOnly === false ? [] : ['SET GLOBAL read_only=1']),
        'STOP SLAVE',
        'RESET SLAVE ALL',
        "CHANGE MASTER TO MASTER_HOST=?, MASTER_PORT=?, MASTER_USER='repl', MASTER_PASSWORD=?, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1",
        'START SLAVE',
      ].join(';\n'),
      [primary.advertiseHost, primary.port, primary.opts.replPassword],
    );
  }
  const timeoutMs = opts.timeoutMs ?? 20_000;
  for (const r of replicas) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rows = await r.query('SHOW SLAVE STATUS');
      const s = rows[0] ?? {};
      if (s.Slave_IO_Running === 'Yes' && s.Slave_SQL_Running === 'Yes') break;
      if (Date.now() >= deadline) {
        throw new ToolError(
          'XD_ERR_MARIADB',
          `${r.label}: replication from ${primary.label} not running after ${timeoutMs} ms: ` +
            `Slave_IO_Running=${s.Slave_IO_Running} Slave_SQL_Running=${s.Slave_SQL_Running} ` +
            `Last_IO_Error=${JSON.stringify(s.Last_IO_Error ?? '')} Last_SQL_Error=${JSON.stringify(s.Last_SQL_Error ?? '')}`,
        );
      }
      await sleep(50);
    }
  }
}

/** Wait until every replica has applied everything the primary has binlogged so far (MASTER_GTID_WAIT). */
export async function syncReplicas(primary: MariaDB, replicas: MariaDB[], timeoutMs = 10_000): Promise<void> {
  const rows = await primary.query('SELECT @@gtid_binlog_pos AS pos');
  const pos = String(rows[0].pos ?? '');
  for (const r of replicas) {
    const res = await r.query('SELECT MASTER_GTID_WAIT(?, ?) AS w', [pos, timeoutMs / 1000]);
    if (Number(res[0].w) !== 0) {
      throw new ToolError(
        'XD_ERR_MARIADB',
        `${r.label}: did not reach the primary's GTID position ${pos} within ${timeoutMs} ms`,
      );
    }
  }
}

/**
 * Remove leftovers of earlier runs with exactly this prefix: kill mariadbd processes
 * whose pid file lies in a `<prefix>-mariadb-*` temp dir (by that exact pid,
 * and only if the process really is mariadbd), then remove those dirs.
 */
export async function cleanupStaleMariaDB(prefix: string, baseDir = os.tmpdir()): Promise<string[]> {
  if (!/^[A-Za-z0-9_-]+$/.test(prefix))
    throw new ToolError('XD_ERR_MARIADB', `cleanup prefix ${JSON.stringify(prefix)}: use letters, digits, '_' and '-'`);
  const removed: string[] = [];
  let entries: string[] = [];
  try {
    entries = await fsp.readdir(baseDir);
  } catch {
    return removed;
  }
  for (const e of entries) {
    if (!e.startsWith(`${prefix}-mariadb-`)) continue;
    const dir = path.join(baseDir, e);
    const pid = Number((await fsp.readFile(path.join(dir, 'pid'), 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 1 && pidAlive(pid)) {
      const comm = (await fsp.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
      if (comm === 'mariadbd' || comm === 'mysqld') {
        process.kill(pid, 'SIGCONT');
        process.kill(pid, 'SIGKILL');
        await waitPidExit(pid, 10_000);
      }
    }
    await fsp.rm(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}
