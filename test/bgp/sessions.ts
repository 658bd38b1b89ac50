// Long-lived MySQL sessions for the ECMP tests, run inside the client namespace:
//
//   node dist/test/bgp/sessions.js --host 10.77.0.100 --sessions 40 --interval 100 [--first-id 1] [--parallel 1] [--port 3306]
//
// Sessions are numbered from --first-id (two drivers writing to one server use disjoint ids) and
// opened --parallel at a time.
// Each session connects once (its own source port), reads @@server_id, then every interval
// inserts (session, seq) into lab.acks and counts the inserts the server acknowledged. A
// session that fails is never reopened: it counts as broken. Commands on stdin, one JSON
// line each on stdout: "report" → the sessions now; "stop" → close them, report, exit.
import * as readline from 'node:readline';
import mysql from 'mysql2/promise';

export interface SessionReport {
  id: number;
  localPort: number;
  serverId: number;
  /** Inserts acknowledged by the server. */
  acked: number;
  /** First failure (the session is then closed and not reopened). */
  error?: string;
  /** Longest time between two acknowledged inserts, ms. */
  maxGapMs: number;
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

async function main(): Promise<void> {
  const host = arg('--host', '10.77.0.100');
  const port = Number(arg('--port', '3306'));
  const count = Number(arg('--sessions', '40'));
  const interval = Number(arg('--interval', '100'));
  const firstId = Number(arg('--first-id', '1'));
  const parallel = Math.max(1, Number(arg('--parallel', '1')));
  const sessions: (SessionReport & { conn?: mysql.Connection; last: number })[] = [];
  let stopping = false;
  const open = async (id: number) => {
    const conn = await mysql.createConnection({
      host,
      port,
      user: 'app',
      password: 'app',
      database: 'lab',
      connectTimeout: 5000,
    });
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@server_id AS id');
    const s = {
      id,
      localPort: (conn as unknown as { connection: { stream: { localPort: number } } }).connection.stream.localPort,
      serverId: Number(rows[0]!.id),
      acked: 0,
      maxGapMs: 0,
      conn,
      last: performance.now(),
    };
    conn.on('error', () => undefined);
    sessions.push(s);
    return s;
  };
  const loop = async (s: (typeof sessions)[number]) => {
    while (!stopping && !s.error) {
      const t = performance.now();
      try {
        await s.conn!.query({
          sql: 'INSERT INTO acks (sess, seq, server_id) VALUES (?, ?, @@server_id)',
          values: [s.id, s.acked + 1],
          timeout: 20_000,
        });
        s.acked++;
        const now = performance.now();
        s.maxGapMs = Math.max(s.maxGapMs, Math.round(now - s.last));
        s.last = now;
      } catch (err) {
        s.error = (err as Error).message.split('\n')[0]!.slice(0, 160);
        s.conn?.destroy();
        break;
      }
      const wait = interval - (performance.now() - t);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  };
  const loops: Promise<void>[] = [];
  for (let i = 0; i < count; i += parallel) {
    const opened = await Promise.all(
      Array.from({ length: Math.min(parallel, count - i) }, (_, k) => open(firstId + i + k)),
    );
    for (const s of opened) loops.push(loop(s));
  }
  sessions.sort((a, b) => a.id - b.id);
  const report = () => sessions.map(({ conn: _c, last: _l, ...r }) => r);
  process.stdout.write(`${JSON.stringify({ event: 'ready', sessions: report() })}\n`);
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (line.trim() === 'report') process.stdout.write(`${JSON.stringify({ event: 'report', sessions: report() })}\n`);
    if (line.trim() === 'stop') break;
  }
  stopping = true;
  await Promise.all(loops);
  process.stdout.write(`${JSON.stringify({ event: 'final', sessions: report() })}\n`);
  await Promise.all(sessions.map((s) => s.conn?.end().catch(() => s.conn?.destroy())));
  process.exit(0);
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  });
}
