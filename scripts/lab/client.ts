// The lab's MySQL client, run inside the client namespace:
//
//   ip netns exec ${prefix}cl node dist/scripts/lab/client.js --host 10.77.0.100 \
//       --port 3306 --user app --password app --connections 300 --concurrency 8 --json
//
// Connection mode (default): opens N new connections (concurrency C), runs
// `SELECT @@server_id` on each, closes it (COM_QUIT), and reports how many each
// server_id served, the failures with their reasons, and timings.
//
// Stream mode (--stream): connection mode without a count, new connections until SIGTERM/SIGINT
// (the connections under way finish), then the same report; with --json a line
// {"event":"ready"} first, once a connection has worked.
//
// Hold mode (--hold): keeps one session open and runs the query every
// --interval ms (default 100), recording every failure (and reconnecting, so
// an outage has a measured length) until SIGTERM/SIGINT, then prints a summary.
// With --json it first prints a line {"event":"ready",…} once the session works.
//
// Exit code: 0 when nothing failed, 1 when some connection or query failed,
// 2 for a usage error.
import { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import mysql from 'mysql2/promise';
import { XdError } from '../../src/errors';

export interface ClientOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  connections: number;
  concurrency: number;
  /** Connect timeout per attempt, ms. */
  timeoutMs: number;
  hold: boolean;
  intervalMs: number;
  json: boolean;
  /** Hold mode: stop by itself after this many ms (0 = until a signal). */
  durationMs: number;
  /** Connection mode until a signal instead of `connections`. */
  stream: boolean;
}

export interface Timing {
  count: number;
  min: number;
  avg: number;
  p50: number;
  p99: number;
  max: number;
}

export interface ConnectionsReport {
  mode: 'connections';
  host: string;
  port: number;
  attempted: number;
  ok: number;
  failed: number;
  /** server_id → connections it served. */
  byServerId: Record<string, number>;
  /** failure reason → count. */
  failures: Record<string, number>;
  elapsedMs: number;
  connectMs: Timing;
}

export interface HoldReport {
  mode: 'hold';
  host: string;
  port: number;
  queries: number;
  ok: number;
  failed: number;
  /** Sessions opened (1 when the first session survived throughout). */
  sessions: number;
  byServerId: Record<string, number>;
  failures: { atMs: number; reason: string }[];
  /** Longest time between two successful queries, ms. */
  maxGapMs: number;
  elapsedMs: number;
}

export const DEFAULTS: ClientOptions = {
  host: '10.77.0.100',
  port: 3306,
  user: 'app',
  password: 'app',
  connections: 300,
  concurrency: 8,
  timeoutMs: 5_000,
  hold: false,
  intervalMs: 100,
  json: false,
  durationMs: 0,
  stream: false,
};

const USAGE = `usage: node dist/scripts/lab/client.js [--host H] [--port P] [--user U] [--password PW]
         [--connections N | --stream] [--concurrency C] [--timeout MS] [--json]
       node dist/scripts/lab/client.js --hold [--interval MS] [--duration MS] [--host H] ... [--json]`;

/** Parse argv (without node and script). Throws XD_ERR_USAGE naming the bad argument. */
export function parseArgs(argv: string[]): ClientOptions {
  const o: ClientOptions = { ...DEFAULTS };
  const num = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min)
      throw new XdError('XD_ERR_USAGE', `${name} ${v ?? '(missing)'}: expected an integer >= ${min}\n${USAGE}`);
    return n;
  };
  const str = (name: string, v: string | undefined): string => {
    if (v === undefined) throw new XdError('XD_ERR_USAGE', `${name}: missing value\n${USAGE}`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--host':
        o.host = str(a, argv[++i]);
        break;
      case '--port':
        o.port = num(a, argv[++i], 1);
        break;
      case '--user':
        o.user = str(a, argv[++i]);
        break;
      case '--password':
        o.password = str(a, argv[++i]);
        break;
      case '--connections':
        o.connections = num(a, argv[++i], 1);
        break;
      case '--concurrency':
        o.concurrency = num(a, argv[++i], 1);
        break;
      case '--timeout':
        o.timeoutMs = num(a, argv[++i], 1);
        break;
      case '--interval':
        o.intervalMs = num(a, argv[++i], 1);
        break;
      case '--duration':
        o.durationMs = num(a, argv[++i], 0);
        break;
      case '--hold':
        o.hold = true;
        break;
      case '--stream':
        o.stream = true;
        break;
      case '--json':
        o.json = true;
        break;
      case '-h':
      case '--help':
        throw new XdError('XD_ERR_USAGE', USAGE);
      default:
        throw new XdError('XD_ERR_USAGE', `unknown argument ${JSON.stringify(a)}\n${USAGE}`);
    }
  }
  if (o.port > 65535) throw new XdError('XD_ERR_USAGE', `--port ${o.port}: expected 1..65535`);
  return o;
}

function reason(err: unknown): string {
  const e = err as { code?: string; errno?: number; message?: string };
  const msg = (e?.message ?? String(err)).split('\n')[0].slice(0, 160);
  return e?.code && !msg.includes(e.code) ? `${e.code}: ${msg}` : msg;
}

function timing(samples: number[]): Timing {
  if (samples.length === 0) return { count: 0, min: 0, avg: 0, p50: 0, p99: 0, max: 0 };
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  const r = (x: number): number => Math.round(x * 100) / 100;
  return {
    count: s.length,
    min: r(s[0]),
    avg: r(s.reduce((a, b) => a + b, 0) / s.length),
    p50: r(q(0.5)),
    p99: r(q(0.99)),
    max: r(s[s.length - 1]),
  };
}

function connect(o: ClientOptions): Promise<mysql.Connection> {
  return mysql.createConnection({
    host: o.host,
    port: o.port,
    user: o.user,
    password: o.password,
    connectTimeout: o.timeoutMs,
  });
}

/**
 * Open o.connections new connections (o.stream: until `stop` resolves), each runs
 * SELECT @@server_id and quits. `onReady` is called after the first one that worked.
 */
export async function runConnections(
  o: ClientOptions,
  stop?: Promise<void>,
  onReady?: () => void,
): Promise<ConnectionsReport> {
  let stopped = false;
  void stop?.then(() => {
    stopped = true;
  });
  const byServerId: Record<string, number> = {};
  const failures: Record<string, number> = {};
  const connectMs: number[] = [];
  let next = 0;
  let ok = 0;
  let failed = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (o.stream ? !stopped : next < o.connections) {
      next++;
      const t = performance.now();
      let conn: mysql.Connection | undefined;
      try {
        conn = await connect(o);
        connectMs.push(performance.now() - t);
        const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@server_id AS id');
        const id = String(rows[0].id);
        byServerId[id] = (byServerId[id] ?? 0) + 1;
        if (ok++ === 0) onReady?.();
      } catch (err) {
        const r = reason(err);
        failures[r] = (failures[r] ?? 0) + 1;
        failed++;
      } finally {
        if (conn) await conn.end().catch(() => conn?.destroy());
      }
    }
  };
  await Promise.all(Array.from({ length: o.stream ? o.concurrency : Math.min(o.concurrency, o.connections) }, worker));
  return {
    mode: 'connections',
    host: o.host,
    port: o.port,
    attempted: next,
    ok,
    failed,
    byServerId,
    failures,
    elapsedMs: Math.round(performance.now() - t0),
    connectMs: timing(connectMs),
  };
}

/**
 * Keep one session and query it every o.intervalMs until `stop` resolves (or
 * o.durationMs passes). On failure, record it and reconnect for the next tick.
 */
export async function runHold(
  o: ClientOptions,
  stop: Promise<void>,
  onReady?: (serverId: number) => void,
): Promise<HoldReport> {
  const rep: HoldReport = {
    mode: 'hold',
    host: o.host,
    port: o.port,
    queries: 0,
    ok: 0,
    failed: 0,
    sessions: 0,
    byServerId: {},
    failures: [],
    maxGapMs: 0,
    elapsedMs: 0,
  };
  const t0 = performance.now();
  let stopped = false;
  void stop.then(() => {
    stopped = true;
  });
  let conn: mysql.Connection | undefined;
  let lastOk = t0;
  let ready = false;
  const deadline = o.durationMs > 0 ? t0 + o.durationMs : Infinity;
  while (!stopped && performance.now() < deadline) {
    const tick = performance.now();
    rep.queries++;
    try {
      if (!conn) {
        conn = await connect(o);
        rep.sessions++;
        conn.on('error', () => undefined); // a broken session is noticed by the next query
      }
      const q = conn.query<mysql.RowDataPacket[]>({ sql: 'SELECT @@server_id AS id', timeout: o.timeoutMs });
      const [rows] = await q;
      const id = String(rows[0].id);
      rep.byServerId[id] = (rep.byServerId[id] ?? 0) + 1;
      rep.ok++;
      const now = performance.now();
      rep.maxGapMs = Math.max(rep.maxGapMs, now - lastOk);
      lastOk = now;
      if (!ready) {
        ready = true;
        // The gap before the first success is start-up, not an outage.
        rep.maxGapMs = 0;
        onReady?.(Number(id));
      }
    } catch (err) {
      rep.failed++;
      rep.failures.push({ atMs: Math.round(performance.now() - t0), reason: reason(err) });
      const c = conn;
      conn = undefined;
      c?.destroy();
    }
    const wait = o.intervalMs - (performance.now() - tick);
    if (wait > 0 && !stopped) await Promise.race([new Promise((r) => setTimeout(r, wait)), stop]);
  }
  if (conn) await conn.end().catch(() => conn?.destroy());
  rep.maxGapMs = Math.round(Math.max(rep.maxGapMs, ready ? performance.now() - lastOk - o.intervalMs : 0));
  rep.maxGapMs = Math.max(0, rep.maxGapMs);
  rep.elapsedMs = Math.round(performance.now() - t0);
  return rep;
}

/** Human-readable report lines. */
export function formatReport(r: ConnectionsReport | HoldReport): string {
  const lines: string[] = [];
  const ids = Object.keys(r.byServerId).sort((a, b) => Number(a) - Number(b));
  if (r.mode === 'connections') {
    lines.push(
      `${r.attempted} new connections to ${r.host}:${r.port}: ${r.ok} ok, ${r.failed} failed, ${r.elapsedMs} ms`,
    );
    for (const id of ids) {
      const n = r.byServerId[id];
      lines.push(
        `  server_id ${id.padStart(3)}: ${String(n).padStart(5)}  (${((100 * n) / Math.max(1, r.ok)).toFixed(1)}%)`,
      );
    }
    for (const [why, n] of Object.entries(r.failures)) lines.push(`  failed ${n}x: ${why}`);
    const t = r.connectMs;
    lines.push(`  connect ms: min ${t.min} avg ${t.avg} p50 ${t.p50} p99 ${t.p99} max ${t.max}`);
  } else {
    lines.push(
      `held a session to ${r.host}:${r.port} for ${r.elapsedMs} ms: ${r.queries} queries, ${r.ok} ok, ${r.failed} failed, ${r.sessions} session(s), longest gap ${r.maxGapMs} ms`,
    );
    for (const id of ids) lines.push(`  server_id ${id.padStart(3)}: ${r.byServerId[id]} queries`);
    for (const f of r.failures.slice(0, 20)) lines.push(`  failed at ${f.atMs} ms: ${f.reason}`);
    if (r.failures.length > 20) lines.push(`  … ${r.failures.length - 20} more failures`);
  }
  return lines.join('\n');
}

/** Path of the compiled client script (for spawning it inside a namespace). */
export function clientScript(): string {
  return path.join(__dirname, 'client.js');
}

/** Read a child's stdout as JSON lines, calling onLine for each parsed object. */
export function jsonLines(child: ChildProcess, onLine: (obj: Record<string, unknown>) => void): void {
  let buf = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line) continue;
      try {
        onLine(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* not JSON: ignore */
      }
    }
  });
}

async function main(): Promise<number> {
  let o: ClientOptions;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  if (!o.hold) {
    let endStream!: () => void;
    const stop = new Promise<void>((r) => (endStream = r));
    if (o.stream) {
      process.once('SIGTERM', () => endStream());
      process.once('SIGINT', () => endStream());
    }
    const r = await runConnections(o, stop, () => {
      if (o.stream && o.json) process.stdout.write(`${JSON.stringify({ event: 'ready' })}\n`);
    });
    process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : `${formatReport(r)}\n`);
    return r.failed === 0 ? 0 : 1;
  }
  let resolveStop!: () => void;
  const stop = new Promise<void>((r) => (resolveStop = r));
  process.once('SIGTERM', () => resolveStop());
  process.once('SIGINT', () => resolveStop());
  const r = await runHold(o, stop, (id) => {
    if (o.json) process.stdout.write(`${JSON.stringify({ event: 'ready', serverId: id })}\n`);
    else process.stderr.write(`session ready on server_id ${id}\n`);
  });
  process.stdout.write(o.json ? `${JSON.stringify({ event: 'summary', ...r })}\n` : `${formatReport(r)}\n`);
  return r.failed === 0 ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`client: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
