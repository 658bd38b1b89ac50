// MySQL load generator (mysql2): new connections per second, or simple
// queries per second over kept-open connections, with N concurrent clients.
//
// Runs as its own process inside the client network namespace
// (`ip netns exec <client> node mysqlload.js '<json>'`), prints one JSON
// result line on stdout. Also importable (runLoad) for loopback use.
import mysql from 'mysql2';

export interface LoadOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  clients: number;
  seconds: number;
  /** connect: connect + login + `SELECT @@server_id` + quit per iteration; query: `SELECT @@server_id` on a kept-open connection. */
  mode: 'connect' | 'query';
}

export interface LoadResult {
  mode: 'connect' | 'query';
  clients: number;
  /** Operations completed inside the timed window. */
  completed: number;
  errors: number;
  /** First error message seen (for the report), if any. */
  firstError?: string;
  seconds: number;
  perSec: number;
  /** server_id → operations it answered. */
  backends: Record<string, number>;
}

type Conn = mysql.Connection;

function connect(o: LoadOptions): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const c = mysql.createConnection({
      host: o.host,
      port: o.port,
      user: o.user,
      password: o.password,
      connectTimeout: 5000,
    });
    c.connect((err) => (err ? (c.destroy(), reject(err)) : resolve(c)));
    // An error after connect (server gone) must not crash the loader.
    c.on('error', () => undefined);
  });
}

function serverId(c: Conn): Promise<string> {
  return new Promise((resolve, reject) => {
    c.query('SELECT @@server_id AS id', (err, rows) =>
      err ? reject(err) : resolve(String((rows as { id: number }[])[0].id)),
    );
  });
}

function quit(c: Conn): Promise<void> {
  return new Promise((resolve) => c.end(() => resolve()));
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
  const backends: Record<string, number> = {};
  const fail = (err: unknown): void => {
    errors++;
    if (firstError === undefined) firstError = err instanceof Error ? err.message : String(err);
  };
  // Query mode: open every connection before the clock starts.
  const conns: Conn[] = [];
  if (o.mode === 'query') {
    for (let i = 0; i < o.clients; i++) conns.push(await connect(o));
  }
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(Math.round(o.seconds * 1e9));
  const inWindow = (): boolean => process.hrtime.bigint() < deadline;
  const worker = async (i: number): Promise<void> => {
    while (inWindow()) {
      try {
        if (o.mode === 'connect') {
          const c = await connect(o);
          const id = await serverId(c);
          await quit(c);
          if (!inWindow()) break;
          backends[id] = (backends[id] ?? 0) + 1;
        } else {
          const id = await serverId(conns[i]);
          if (!inWindow()) break;
          backends[id] = (backends[id] ?? 0) + 1;
        }
        completed++;
      } catch (err) {
        fail(err);
        if (o.mode === 'query') {
          // The kept-open connection is broken: replace it (counts as an error, not as work).
          conns[i].destroy();
          try {
            conns[i] = await connect(o);
          } catch (e) {
            fail(e);
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      }
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, i) => worker(i)));
  // Only operations that finished inside the window count, so the window is the time base.
  const seconds = o.seconds;
  await Promise.all(conns.map((c) => quit(c)));
  return {
    mode: o.mode,
    clients: o.clients,
    completed,
    errors,
    firstError,
    seconds,
    perSec: completed / Math.max(seconds, 1e-9),
    backends,
  };
}

/** Run jobs one after another (the argument is one job or an array of jobs; the output mirrors it). */
export async function runJobs(jobs: LoadOptions[]): Promise<LoadResult[]> {
  // Untimed warm-up per endpoint: module loading, JIT and the servers' thread caches.
  const seen = new Set<string>();
  for (const j of jobs) {
    const k = `${j.host}:${j.port}`;
    if (seen.has(k)) continue;
    seen.add(k);
    for (let i = 0; i < 3; i++) {
      try {
        const c = await connect(j);
        await serverId(c);
        await quit(c);
      } catch {
        /* the timed job reports the error */
      }
    }
  }
  const out: LoadResult[] = [];
  for (const j of jobs) out.push(await runLoad(j));
  return out;
}

if (require.main === module) {
  const arg = JSON.parse(process.argv[2] ?? '[]') as LoadOptions | LoadOptions[];
  runJobs(Array.isArray(arg) ? arg : [arg]).then(
    (r) => {
      process.stdout.write(JSON.stringify(Array.isArray(arg) ? r : r[0]) + '\n');
    },
    (err: unknown) => {
      process.stderr.write(`mysqlload: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
