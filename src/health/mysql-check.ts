// One MySQL backend's checker: a kept-open authenticated monitor connection that each round runs
//   SELECT @@global.read_only [, @@global.super_read_only]     (super_read_only detected once)
//   SHOW REPLICA STATUS   (falls back to SHOW SLAVE STATUS on servers that lack the synonym)
//   optional heartbeat:   SELECT TIMESTAMPDIFF(MICROSECOND, MAX(ts), NOW(6)) FROM db.table
//   SHOW GLOBAL STATUS LIKE 'Threads_connected'
// with one time budget (health.timeout) shared by the queries, plus every
// fresh_connect_interval a fresh connect + login + COM_QUIT.
//
// max_connect_errors (ERROR 1129) hygiene. A server counts a "handshake error" against the
// client's address whenever a TCP connection it accepted ends before authentication (bare
// connect/close, greeting read then close, a client that gives up mid-login); at
// max_connect_errors it blocks that address. Only a successful login resets the count; a
// wrong password is an authentication error and does not count. So this checker:
//   - never probes with a bare TCP connect or a greeting-only read;
//   - never abandons a login attempt the server has accepted: when a connect takes longer than
//     monitor.connect_timeout the check fails, but the attempt stays open in the background
//     (one per backend) until the server answers it (a SIGSTOPped server that wakes up then
//     completes the login, which resets its counter) or closes it;
//   - abandons an attempt only while TCP is not yet established (the server never saw it), or
//     when the peer's first bytes are not a MySQL packet (not a MySQL server);
//   - closes connections only after login (an aborted authenticated session is not a
//     handshake error).
// A lost connection is re-opened with exponential backoff (interval, 2×, 4× ... capped at
// 5 × interval); while waiting the check fails with the last error. Every interval, timeout and
// backoff here is measured on the monotonic clock (src/clock.ts): a wall-clock step changes none.

import * as net from 'node:net';
import mysql from 'mysql2';
import type { Connection } from 'mysql2';
import type { BackendRole, ReplicationInfo } from './types';
import { monotonicMs } from '../clock';
import { hostPort } from '../net/inet';
import {
  describeConnectError,
  describeQueryError,
  looksLikeMysqlFirstPacket,
  previewBytes,
  replicaPrivilege,
  scrub,
} from './describe';

export interface MysqlCheckSettings {
  host: string;
  port: number;
  user: string;
  /** Called at every connect (password file re-read); may throw (the error text becomes the check error). */
  password: () => string;
  connectTimeoutMs: number;
  queryTimeoutMs: number;
  intervalMs: number;
  freshConnectIntervalMs: number;
  sourceAddress?: string;
  heartbeat?: { table: string; column: string };
}

export interface MysqlProbe {
  ok: boolean;
  /** Why the check failed (ok=false). */
  error: string | null;
  /** Problems that do not fail the check (missing privilege, heartbeat table). */
  warnings: string[];
  readOnly: boolean | null;
  superReadOnly: boolean | null;
  /** null: not a replica; undefined: unknown (could not read it). */
  replication: ReplicationInfo | null | undefined;
  /** Why replication is unknown. */
  replicationError: string | null;
  /** Heartbeat age in seconds; undefined when not configured or not a replica; null when unreadable/empty. */
  heartbeatLagSeconds: number | null | undefined;
  heartbeatError: string | null;
  threadsConnected: number | null;
  serverId: number | null;
  version: string | null;
  durationMs: number;
}

interface Attempt {
  conn: Connection;
  socket: net.Socket;
  startedAt: number;
  settled: boolean;
  err: unknown;
  firstBytes: Buffer | null;
  done: Promise<void>;
}

interface ServerInfo {
  version: string;
  serverId: number;
  isMariaDB: boolean;
  hasSuperReadOnly: boolean;
  replicaStatusSql: 'SHOW REPLICA STATUS' | 'SHOW SLAVE STATUS';
}

const sleepOrDone = (ms: number, p: Promise<void>): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    p.then(() => {
      clearTimeout(t);
      resolve();
    });
  });

function num(v: unknown): number | null {
  if (v === null || v === undefined || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/** Parse one row of SHOW REPLICA/SLAVE STATUS (MariaDB and MySQL < 8.0.22: Slave_*; MySQL 8.0.22+: Replica_*). */
export function parseReplicaStatus(row: Record<string, unknown> | undefined): ReplicationInfo | null {
  if (!row) return null;
  if ('Replica_IO_Running' in row) {
    return {
      io: String(row.Replica_IO_Running ?? 'No'),
      sql: String(row.Replica_SQL_Running ?? 'No'),
      secondsBehind: num(row.Seconds_Behind_Source),
      columns: 'replica',
    };
  }
  return {
    io: String(row.Slave_IO_Running ?? 'No'),
    sql: String(row.Slave_SQL_Running ?? 'No'),
    secondsBehind: num(row.Seconds_Behind_Master),
    columns: 'slave',
  };
}

/** Role from one successful probe. */
export function roleOf(p: Pick<MysqlProbe, 'readOnly' | 'superReadOnly' | 'replication'>): BackendRole {
  if (p.readOnly === null || p.replication === undefined) return 'unknown';
  const r = p.replication;
  const replicating = r !== null && (r.io !== 'No' || r.sql !== 'No');
  if (replicating) return 'replica';
  if (!p.readOnly && p.superReadOnly !== true) return 'primary';
  return r !== null ? 'replica' : 'readonly';
}

/**
 * Lag of a replica: the larger of Seconds_Behind_* and the heartbeat age. null (unknown) when
 * replication is unknown, a thread is not running, the server reports NULL, or the configured
 * heartbeat cannot be read. Not a replica: lag null with no reason.
 */
export function replicaLag(
  p: Pick<MysqlProbe, 'replication' | 'replicationError' | 'heartbeatLagSeconds' | 'heartbeatError'>,
  heartbeatConfigured: boolean,
): { lag: number | null; reason: string | null } {
  const r = p.replication;
  if (r === undefined) return { lag: null, reason: p.replicationError ?? 'replica status unknown' };
  if (r === null) return { lag: null, reason: null };
  if (r.io !== 'Yes') return { lag: null, reason: `replication IO thread ${r.io === 'No' ? 'not running' : r.io}` };
  if (r.sql !== 'Yes') return { lag: null, reason: 'replication SQL thread not running' };
  if (r.secondsBehind === null)
    return {
      lag: null,
      reason: `${r.columns === 'replica' ? 'Seconds_Behind_Source' : 'Seconds_Behind_Master'} is NULL`,
    };
  let lag = r.secondsBehind;
  if (heartbeatConfigured) {
    if (p.heartbeatLagSeconds === null || p.heartbeatLagSeconds === undefined) {
      return { lag: null, reason: p.heartbeatError ?? 'heartbeat unreadable' };
    }
    lag = Math.max(lag, p.heartbeatLagSeconds);
  }
  return { lag, reason: null };
}

export class MysqlChecker {
  private conn: Connection | null = null;
  private info: ServerInfo | null = null;
  /** In-flight login for the kept-open connection (kept across rounds; never abandoned after TCP is up). */
  private opening: Attempt | null = null;
  /** In-flight fresh-connect check. */
  private fresh: Attempt | null = null;
  private lastFreshAt = -Infinity;
  private freshFailing = false;
  private reconnectFailures = 0;
  private nextReconnectAt = 0;
  private lastConnectError: string | null = null;
  private lostError: string | null = null;
  private closed = false;
  private lastPassword: string | undefined;
  readonly target: string;

  constructor(private readonly s: MysqlCheckSettings) {
    this.target = hostPort(s.host, s.port);
  }

  private scrubbed(text: string): string {
    return scrub(text, [this.lastPassword]);
  }

  /** Start a login. Throws only if the password cannot be read. */
  private startAttempt(): Attempt {
    const password = this.s.password();
    this.lastPassword = password;
    const socket = net.connect({ host: this.s.host, port: this.s.port, localAddress: this.s.sourceAddress });
    socket.setNoDelay(true);
    socket.once('connect', () => socket.setKeepAlive(true, 10_000));
    const conn = mysql.createConnection({
      stream: socket,
      user: this.s.user,
      password,
      // No mysql2 connect timer: it would destroy a socket the server accepted (a handshake
      // error on the server). Our own timer decides the verdict; see the header comment.
      connectTimeout: 0,
      supportBigNumbers: true,
      bigNumberStrings: false,
      dateStrings: true,
      multipleStatements: false,
    });
    const a: Attempt = {
      conn,
      socket,
      startedAt: monotonicMs(),
      settled: false,
      err: null,
      firstBytes: null,
      done: Promise.resolve(),
    };
    socket.once('data', (b: Buffer) => {
      a.firstBytes = b;
    });
    a.done = new Promise<void>((resolve) => {
      conn.connect((err) => {
        a.settled = true;
        a.err = err ?? null;
        resolve();
      });
    });
    // Errors after login (server gone) surface here; they must never be unhandled.
    conn.on('error', (err) => {
      if (this.conn === conn) {
        this.conn = null;
        this.info = null;
        this.lostError = this.scrubbed(`connection lost: ${(err as Error).message}`);
      }
    });
    return a;
  }

  /**
   * Wait up to connect_timeout for `a`. Returns 'ok', an error text (failed: attempt finished or
   * abandoned safely), or a 'pending' text (failed this round, attempt kept open).
   */
  private async awaitAttempt(
    a: Attempt,
    what: string,
  ): Promise<{ status: 'ok' } | { status: 'failed' | 'pending'; error: string }> {
    const left = this.s.connectTimeoutMs - (monotonicMs() - a.startedAt);
    if (!a.settled && left > 0) await sleepOrDone(left, a.done);
    if (a.settled) {
      if (!a.err) return { status: 'ok' };
      destroyQuietly(a);
      return { status: 'failed', error: this.scrubbed(describeConnectError(a.err, this.target)) };
    }
    const waited = Math.round(monotonicMs() - a.startedAt);
    if (a.socket.connecting) {
      // TCP not established: the server never saw this attempt; abandoning it is harmless.
      destroyQuietly(a);
      return {
        status: 'failed',
        error: `timeout after ${waited} ms: TCP connect to ${this.target} not answered (host down or filtered)`,
      };
    }
    if (a.firstBytes && looksLikeMysqlFirstPacket(a.firstBytes) === false) {
      destroyQuietly(a);
      return {
        status: 'failed',
        error: `not a MySQL server at ${this.target}: its first bytes ${previewBytes(a.firstBytes)} are not a MySQL greeting`,
      };
    }
    const phase = a.firstBytes
      ? 'waiting for the login result'
      : 'waiting for the MySQL greeting (TCP accepted: server hung or overloaded)';
    return {
      status: 'pending',
      error: `timeout after ${this.s.connectTimeoutMs} ms on ${what}: ${phase}; the attempt stays open (${Math.round(waited / 100) / 10} s so far) so the server counts no handshake error`,
    };
  }

  /** Run one check round. Never throws. */
  async check(): Promise<MysqlProbe> {
    const t0 = monotonicMs();
    const probe: MysqlProbe = {
      ok: false,
      error: null,
      warnings: [],
      readOnly: null,
      superReadOnly: null,
      replication: undefined,
      replicationError: null,
      heartbeatLagSeconds: undefined,
      heartbeatError: null,
      threadsConnected: null,
      serverId: null,
      version: null,
      durationMs: 0,
    };
    const fail = (error: string): MysqlProbe => {
      probe.ok = false;
      probe.error = this.scrubbed(error);
      probe.durationMs = Math.round(monotonicMs() - t0);
      return probe;
    };
    if (this.closed) return fail('checker stopped');

    // 1. The kept-open connection.
    if (!this.conn) {
      if (!this.opening) {
        if (monotonicMs() < this.nextReconnectAt) {
          const base = this.lastConnectError ?? this.lostError ?? 'not connected';
          return fail(`${base} (next reconnect in ${Math.ceil(this.nextReconnectAt - monotonicMs())} ms)`);
        }
        try {
          this.opening = this.startAttempt();
        } catch (err) {
          this.noteConnectFailure((err as Error).message);
          return fail((err as Error).message);
        }
      }
      const r = await this.awaitAttempt(this.opening, 'connect + login');
      if (r.status === 'pending') return fail(r.error);
      const a = this.opening;
      this.opening = null;
      if (r.status === 'failed') {
        this.noteConnectFailure(r.error);
        return fail(r.error);
      }
      this.conn = a.conn;
      this.info = null;
      this.lostError = null;
      this.lastConnectError = null;
      this.reconnectFailures = 0;
      this.nextReconnectAt = 0;
      this.lastFreshAt = monotonicMs(); // a new login is as good as a fresh-connect check
    }

    // 2. The queries, sharing one budget.
    const conn = this.conn;
    const deadline = monotonicMs() + this.s.queryTimeoutMs;
    let queryError: string | null = null;
    try {
      if (!this.info) this.info = await this.serverInfo(conn, deadline);
      const info = this.info;
      probe.version = info.version;
      probe.serverId = info.serverId;
      const roSql = info.hasSuperReadOnly
        ? 'SELECT @@global.read_only AS ro, @@global.super_read_only AS sro'
        : 'SELECT @@global.read_only AS ro';
      const ro = (await this.query(conn, roSql, deadline)) as Record<string, unknown>[];
      probe.readOnly = Number(ro[0]?.ro) === 1;
      probe.superReadOnly = info.hasSuperReadOnly ? Number(ro[0]?.sro) === 1 : null;

      try {
        const rs = (await this.query(conn, info.replicaStatusSql, deadline)) as Record<string, unknown>[];
        probe.replication = parseReplicaStatus(rs[0]);
      } catch (err) {
        if (
          err instanceof QueryFailure &&
          !err.fatal &&
          err.errno === 1064 &&
          info.replicaStatusSql === 'SHOW REPLICA STATUS'
        ) {
          info.replicaStatusSql = 'SHOW SLAVE STATUS';
          const rs = (await this.query(conn, info.replicaStatusSql, deadline)) as Record<string, unknown>[];
          probe.replication = parseReplicaStatus(rs[0]);
        } else if (err instanceof QueryFailure && !err.fatal) {
          probe.replication = undefined;
          probe.replicationError = err.message;
          probe.warnings.push(err.message);
        } else throw err;
      }

      if (this.s.heartbeat && probe.replication) {
        const { table, column } = this.s.heartbeat;
        const [db, tbl] = table.split('.');
        const sql = `SELECT TIMESTAMPDIFF(MICROSECOND, MAX(\`${column}\`), NOW(6)) AS us FROM \`${db}\`.\`${tbl}\``;
        try {
          const hb = (await this.query(conn, sql, deadline)) as Record<string, unknown>[];
          const us = num(hb[0]?.us);
          probe.heartbeatLagSeconds = us === null ? null : Math.round(Math.max(0, us) / 1000) / 1000; // ms precision
          if (us === null) probe.heartbeatError = `heartbeat table ${table} is empty`;
        } catch (err) {
          if (err instanceof QueryFailure && !err.fatal) {
            probe.heartbeatLagSeconds = null;
            probe.heartbeatError = `heartbeat ${table}.${column}: ${err.message}`;
            probe.warnings.push(probe.heartbeatError);
          } else throw err;
        }
      }

      const tc = (await this.query(conn, "SHOW GLOBAL STATUS LIKE 'Threads_connected'", deadline)) as Record<
        string,
        unknown
      >[];
      probe.threadsConnected = num(tc[0]?.Value);
    } catch (err) {
      queryError = err instanceof Error ? err.message : String(err);
    }

    if (queryError) return fail(queryError);

    // 3. A fresh connect + login + quit, when due (or still failing), after the queries so that
    //    it never shows up in this round's Threads_connected (lc weights).
    if (this.fresh || this.freshFailing || monotonicMs() - this.lastFreshAt >= this.s.freshConnectIntervalMs) {
      const freshError = await this.freshConnect();
      this.freshFailing = freshError !== null;
      if (freshError) return fail(freshError);
    }
    probe.ok = true;
    probe.warnings = probe.warnings.map((w) => this.scrubbed(w));
    probe.replicationError = probe.replicationError && this.scrubbed(probe.replicationError);
    probe.heartbeatError = probe.heartbeatError && this.scrubbed(probe.heartbeatError);
    probe.durationMs = Math.round(monotonicMs() - t0);
    return probe;
  }

  private noteConnectFailure(error: string): void {
    this.lastConnectError = error;
    this.reconnectFailures++;
    const delay = Math.min(this.s.intervalMs * 2 ** (this.reconnectFailures - 1), 5 * this.s.intervalMs);
    // The next round may start the attempt once the delay (minus a little slack for round timing) has passed.
    this.nextReconnectAt = monotonicMs() + delay - Math.min(delay, this.s.intervalMs);
  }

  /** Fresh connect + login + COM_QUIT. Returns an error text or null. */
  private async freshConnect(): Promise<string | null> {
    if (!this.fresh) {
      try {
        this.fresh = this.startAttempt();
      } catch (err) {
        return (err as Error).message;
      }
    }
    const a = this.fresh;
    const r = await this.awaitAttempt(a, 'fresh connect + login');
    if (r.status === 'pending') return r.error;
    this.fresh = null;
    // A failed fresh connect is retried every round (not every fresh_connect_interval), so an
    // auth or max_connections problem fails `fall` checks in a row and marks the backend down.
    if (r.status === 'failed') return `fresh connect: ${r.error}`;
    this.lastFreshAt = monotonicMs();
    await endQuietly(a.conn, this.s.queryTimeoutMs);
    return null;
  }

  private async serverInfo(conn: Connection, deadline: number): Promise<ServerInfo> {
    const v = (await this.query(conn, 'SELECT @@version AS version, @@server_id AS server_id', deadline)) as Record<
      string,
      unknown
    >[];
    const sro = (await this.query(conn, "SHOW GLOBAL VARIABLES LIKE 'super_read_only'", deadline)) as unknown[];
    const version = String(v[0]?.version ?? '');
    return {
      version,
      serverId: Number(v[0]?.server_id ?? 0),
      isMariaDB: /mariadb/i.test(version),
      hasSuperReadOnly: sro.length > 0,
      replicaStatusSql: 'SHOW REPLICA STATUS',
    };
  }

  /** Run `sql` with the time left until `deadline`; on timeout or a fatal error the connection is dropped. */
  private query(conn: Connection, sql: string, deadline: number): Promise<unknown> {
    const timeout = Math.max(1, Math.round(deadline - monotonicMs()));
    return new Promise((resolve, reject) => {
      conn.query({ sql, timeout }, (err, rows) => {
        if (!err) return resolve(rows);
        const e = err as unknown as { code?: string; errno?: number; fatal?: boolean };
        const fatal = e.fatal === true || e.code === 'PROTOCOL_SEQUENCE_TIMEOUT';
        if (fatal) this.dropConnection(conn);
        const text = describeQueryError(err, sql, this.s.queryTimeoutMs, this.info?.isMariaDB ?? true);
        reject(new QueryFailure(this.scrubbed(text), e.errno, fatal));
      });
    });
  }

  /** Drop an authenticated connection (safe for max_connect_errors: login already happened). */
  private dropConnection(conn: Connection): void {
    if (this.conn === conn) {
      this.conn = null;
      this.info = null;
    }
    try {
      conn.destroy();
      (conn as unknown as { stream?: net.Socket }).stream?.destroy();
    } catch {
      /* already gone */
    }
  }

  /** Close everything. Pending logins are abandoned here (once, at shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    const conn = this.conn;
    this.conn = null;
    if (conn) await endQuietly(conn, 1000);
    for (const a of [this.opening, this.fresh]) if (a) destroyQuietly(a);
    this.opening = null;
    this.fresh = null;
  }

  /** The MySQL privilege the replica-status query needs on this server. */
  get replicaPrivilege(): string {
    return replicaPrivilege(this.info?.isMariaDB ?? true);
  }
}

class QueryFailure extends Error {
  constructor(
    message: string,
    readonly errno: number | undefined,
    readonly fatal: boolean,
  ) {
    super(message);
  }
}

function destroyQuietly(a: Attempt): void {
  try {
    a.conn.destroy();
  } catch {
    /* ignore */
  }
  a.socket.destroy();
}

/** COM_QUIT and close; destroy if the server does not answer within `ms`. */
function endQuietly(conn: Connection, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      try {
        conn.destroy();
        (conn as unknown as { stream?: net.Socket }).stream?.destroy();
      } catch {
        /* ignore */
      }
      resolve();
    }, ms);
    conn.end(() => {
      clearTimeout(t);
      resolve();
    });
  });
}
