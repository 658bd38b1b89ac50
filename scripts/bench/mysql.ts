// Section 3: MySQL through the VIP. New connections/s and simple queries/s with
// N concurrent clients, against the same two MariaDB backends, from the same
// client namespace, over three paths that all exist at once (so they are
// measured interleaved, point by point):
//   xdp      client → VIP:3306 → XDP director (native, DR) → backend
//   direct   client → backend r1 :3306
//   haproxy  client → VIP:3307 → HAProxy (TCP mode) on the director → backends
// (HAProxy listens on another port so the XDP program, which only takes
// VIP:3306, passes its traffic to the director's stack untouched.)
import { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { wrap } from '../../src/errors';
import { run, runIn, spawnIn, waitChildExit, sleep } from '../lab/exec';
import { MariaDB } from '../lab/mariadb';
import type { Logger } from '../../src/log';
import { loadCounter, loadDirector, type BenchDirector, type CounterProg } from './director';
import type { LoadOptions, LoadResult } from './mysqlload';
import { createTopology, setDirectorVip, txChecksumOff, xdpAttachPinned, xdpDetach, type Topology } from './topology';
import { spread } from './stats';
import type { MysqlData, MysqlPoint, MysqlTarget, MysqlTargetResult } from './types';
import { ToolError } from '../errors';

export interface MysqlBenchOptions {
  prefix: string;
  clients: number[];
  /** Seconds per measurement (each of connect and query, per round). */
  seconds: number;
  /** Rounds per point; the point is the median over rounds (targets interleaved in every round, order rotated). */
  rounds: number;
  backends: number;
  log: Logger;
  progress?: (msg: string) => void;
}

export const MYSQL_FULL = { clients: [1, 8, 32], seconds: 2, rounds: 3, backends: 2 };
export const MYSQL_QUICK = { clients: [1, 8], seconds: 0.5, rounds: 1, backends: 2 };

const HAPROXY_PORT = 3307;

/** Path of an executable on PATH, or null. */
export async function which(cmd: string): Promise<string | null> {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = path.join(dir, cmd);
    try {
      await fs.access(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

/** HAProxy configuration: TCP mode, round robin over the backends, no health checks (a TCP check counts against max_connect_errors). */
export function haproxyConfig(
  bind: string,
  port: number,
  backends: { name: string; ip: string; port: number }[],
): string {
  return [
    'global',
    '    maxconn 4000',
    '    nbthread 2',
    'defaults',
    '    mode tcp',
    '    timeout connect 5s',
    '    timeout client 60s',
    '    timeout server 60s',
    'listen mysql',
    `    bind ${bind}:${port}`,
    '    balance roundrobin',
    ...backends.map((b) => `    server ${b.name} ${b.ip}:${b.port}`),
    '',
  ].join('\n');
}

async function startHaproxy(t: Topology, dir: string, log: Logger): Promise<ChildProcess> {
  const cfg = path.join(dir, 'haproxy.cfg');
  await fs.writeFile(
    cfg,
    haproxyConfig(
      t.vip,
      HAPROXY_PORT,
      t.receivers.map((r, i) => ({ name: `r${i + 1}`, ip: r.ip, port: 3306 })),
    ),
  );
  await run('haproxy', ['-c', '-q', '-f', cfg]);
  const child = spawnIn(t.director.ns, 'haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null)
      throw new ToolError('XD_ERR_BENCH', `haproxy exited with code ${child.exitCode}: ${stderr.trim()}`);
    const { stdout } = await runIn(t.director.ns, 'ss', ['-Hltn', `sport = :${HAPROXY_PORT}`]);
    if (stdout.trim()) {
      log.debug({ pid: child.pid }, 'haproxy listening');
      return child;
    }
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new ToolError(
    'XD_ERR_BENCH',
    `haproxy did not listen on ${t.vip}:${HAPROXY_PORT} within 5 s: ${stderr.trim()}`,
  );
}

/** Run the mysql2 loader as a child process inside the client namespace: the jobs in order, in one process. */
async function load(t: Topology, jobs: LoadOptions[]): Promise<LoadResult[]> {
  const script = path.join(__dirname, 'mysqlload.js');
  const budget = jobs.reduce((s, j) => s + j.seconds + 20, 30);
  const { stdout } = await runIn(t.client.ns, process.execPath, [script, JSON.stringify(jobs)], {
    timeoutMs: budget * 1000,
  });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '[]') as LoadResult[];
}

export async function runMysqlBench(o: MysqlBenchOptions): Promise<MysqlData> {
  const log = o.log.child({ component: 'bench-mysql' });
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), `${o.prefix}-mysql-`));
  const haproxyPath = await which('haproxy');
  const servers: MariaDB[] = [];
  let topo: Topology | undefined;
  let director: BenchDirector | undefined;
  let peer: CounterProg | undefined;
  let haproxy: ChildProcess | undefined;
  const targets: MysqlTargetResult[] = [
    {
      target: 'xdp',
      description: 'client → VIP:3306 → xdirector (native XDP, DR) → 2 backends',
      status: 'ok',
      points: [],
    },
    { target: 'direct', description: 'client → backend r1:3306 directly', status: 'ok', points: [] },
    {
      target: 'haproxy',
      description: `client → VIP:${HAPROXY_PORT} → HAProxy TCP mode on the director → 2 backends`,
      status: 'ok',
      points: [],
    },
  ];
  const tgt = (t: MysqlTarget): MysqlTargetResult => targets.find((x) => x.target === t)!;
  try {
    topo = await createTopology(`${o.prefix}m`, o.backends);
    const t = topo;
    // Native XDP_TX of locally sent frames carries partial checksums: sender TX offload off (bpf/README.md, kernel and lab facts).
    await txChecksumOff(t.client.ns);
    await setDirectorVip(t, true);
    for (let i = 0; i < t.receivers.length; i++) {
      const m = new MariaDB({ prefix: `${o.prefix}m`, name: `r${i + 1}`, serverId: i + 1, netns: t.receivers[i].ns });
      servers.push(m);
    }
    await Promise.all(servers.map((m) => m.start()));
    o.progress?.(`mysql: ${servers.length} MariaDB backends up`);

    // The director: xdirector program on its eth0 (native), a pass program on the bridge-side peer (veth NAPI for XDP_TX).
    const pinDir = `/sys/fs/bpf/${o.prefix}m`;
    director = await loadDirector({ pinDir, log, mac: t.director.mac });
    await director.setService({
      vip: t.vip,
      port: 3306,
      proto: 'tcp',
      backends: t.receivers.map((r) => ({ address: r.ip, port: 3306, mac: r.mac })),
    });
    peer = await loadCounter({ pinDir, name: 'peer', verdict: 'pass' });
    await xdpAttachPinned(t.bridgeNs, t.director.port, 'native', peer.pinPath);
    await xdpAttachPinned(t.director.ns, 'eth0', 'native', director.pinPath);

    if (!haproxyPath) {
      Object.assign(tgt('haproxy'), {
        status: 'skipped',
        reason: 'haproxy is not installed (not found on PATH)',
        install: 'apt-get install -y haproxy',
      });
    } else {
      try {
        haproxy = await startHaproxy(t, tmp, log);
      } catch (err) {
        Object.assign(tgt('haproxy'), { status: 'error', reason: err instanceof Error ? err.message : String(err) });
      }
    }

    const endpoint: Record<MysqlTarget, { host: string; port: number }> = {
      xdp: { host: t.vip, port: 3306 },
      direct: { host: t.receivers[0].ip, port: 3306 },
      haproxy: { host: t.vip, port: HAPROXY_PORT },
    };
    for (const clients of o.clients) {
      const live = targets.filter((x) => x.status === 'ok');
      const conn = new Map<MysqlTarget, number[]>(live.map((x) => [x.target, []]));
      const qry = new Map<MysqlTarget, number[]>(live.map((x) => [x.target, []]));
      const errors = new Map<MysqlTarget, number>(live.map((x) => [x.target, 0]));
      const backends = new Map<MysqlTarget, Record<string, number>>(live.map((x) => [x.target, {}]));
      for (let r = 0; r < o.rounds; r++) {
        // One loader process per round: every target, connect then query; the order rotates by round.
        const order = live.map((_, i) => live[(i + r) % live.length]);
        const jobs = order.flatMap((target) => {
          const base = { ...endpoint[target.target], user: 'app', password: 'app', clients, seconds: o.seconds };
          return [
            { ...base, mode: 'connect' as const },
            { ...base, mode: 'query' as const },
          ];
        });
        const results = await load(t, jobs);
        order.forEach((target, i) => {
          const c = results[2 * i];
          const q = results[2 * i + 1];
          if (!c || !q || c.completed === 0 || q.completed === 0) {
            throw new ToolError(
              'XD_ERR_BENCH',
              `mysql via ${target.target} with ${clients} clients completed nothing (connect ${c?.completed}, query ${q?.completed}): ${c?.firstError ?? q?.firstError ?? 'no error reported'}`,
            );
          }
          conn.get(target.target)!.push(c.perSec);
          qry.get(target.target)!.push(q.perSec);
          errors.set(target.target, errors.get(target.target)! + c.errors + q.errors);
          const b = backends.get(target.target)!;
          for (const [id, n] of Object.entries(c.backends)) b[id] = (b[id] ?? 0) + n;
          if (c.errors + q.errors > 0)
            log.warn({ target: target.target, clients, error: c.firstError ?? q.firstError }, 'mysql load errors');
        });
      }
      for (const target of live) {
        const point: MysqlPoint = {
          clients,
          connectsPerSec: Math.round(spread(conn.get(target.target)!).median),
          queriesPerSec: Math.round(spread(qry.get(target.target)!).median),
          errors: errors.get(target.target)!,
          backends: backends.get(target.target)!,
        };
        target.points.push(point);
        o.progress?.(
          `mysql ${target.target} clients=${clients}: ${point.connectsPerSec} conn/s, ${point.queriesPerSec} q/s (median of ${o.rounds})${point.errors ? `, ${point.errors} errors` : ''}`,
        );
      }
    }
    // DR proof for the xdp target: more than one backend answered the connects.
    const xdp = tgt('xdp');
    const seen = new Set(xdp.points.flatMap((p) => Object.keys(p.backends)));
    if (xdp.points.length && seen.size < Math.min(2, o.backends)) {
      throw new ToolError(
        'XD_ERR_BENCH',
        `mysql via xdp reached only server_id ${[...seen].join(',')}: the director is not spreading connections`,
      );
    }
    return {
      loader: 'mysql2 (Node.js) in the client namespace, one process',
      seconds: o.seconds,
      rounds: o.rounds,
      clients: o.clients,
      backends: o.backends,
      targets,
    };
  } finally {
    if (haproxy?.pid) {
      haproxy.kill('SIGTERM');
      if (!(await waitChildExit(haproxy, 3000))) haproxy.kill('SIGKILL');
    }
    for (const m of servers) await m.destroy().catch((err: unknown) => log.warn({ err }, 'stop mariadb'));
    if (topo) {
      await xdpDetach(topo.director.ns, 'eth0').catch(() => undefined);
      await topo.destroy().catch((err: unknown) => log.warn({ err }, 'remove topology'));
    }
    await director?.close().catch(() => undefined);
    await peer?.close().catch(() => undefined);
    await fs.rm(tmp, { recursive: true, force: true });
    await fs
      .rm(`/sys/fs/bpf/${o.prefix}m`, { recursive: true, force: true })
      .catch((err: unknown) => log.warn({ err: wrap('XD_ERR_BPF_PIN', 'remove pin dir', err) }, 'cleanup'));
  }
}
