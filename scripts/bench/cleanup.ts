// Leftovers of an interrupted earlier run (Ctrl-C, kill): every kernel resource
// and temp dir of a run carries the prefix xdh<pid>; when that pid no longer
// runs, its namespaces, the ring-apply veth, pin directories, MariaDB servers and temp dirs are
// removed here, by exact name. The bench director's placeholder veth in this namespace
// (xdb<pid>-<n>a, director.ts) goes the same way. Nothing of a live run is touched.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run, pidAlive } from '../lab/exec';
import { cleanupStaleMariaDB } from '../lab/mariadb';
import type { Logger } from '../../src/log';

const RE = /^xdh(\d+)[a-z]*(?:-|$)/;

function deadPidOf(pid: number): number | null {
  return pid !== process.pid && !pidAlive(pid) ? pid : null;
}

function deadPid(name: string): number | null {
  const m = RE.exec(name);
  return m ? deadPidOf(Number(m[1])) : null;
}

/** Remove what dead earlier runs left behind; returns what was removed. */
export async function cleanupStaleRuns(log: Logger): Promise<string[]> {
  const removed: string[] = [];
  const pids = new Set<number>();
  const { stdout } = await run('ip', ['netns', 'list']);
  for (const ns of stdout
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter(Boolean)) {
    const pid = deadPid(ns);
    if (pid === null) continue;
    pids.add(pid);
    // Processes still inside (a leaked haproxy, generator) go with the namespace's last reference only
    // when they exit; list and kill them by pid first.
    const pidsIn = await run('ip', ['netns', 'pids', ns], { allowFail: true });
    for (const p of pidsIn.stdout
      .split('\n')
      .map(Number)
      .filter((n) => n > 1)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await run('ip', ['netns', 'del', ns], { allowFail: true });
    removed.push(`netns ${ns}`);
  }
  // Veth pairs in this namespace: the ring-apply measurement's xdh<pid>ma / xdh<pid>mb, and the
  // director's placeholder (director.ts placeholderName) xdb<pid>-<n>a / xdb<pid>-<n>b. Deleting
  // the a end removes its peer.
  const links = await run('ip', ['-o', 'link', 'show'], { allowFail: true });
  for (const m of links.stdout.matchAll(/^\d+: (xdh\d+ma|xdb(\d+)-\d+a)[@:]/gm)) {
    const pid = m[2] !== undefined ? deadPidOf(Number(m[2])) : deadPid(m[1]);
    if (pid === null) continue;
    pids.add(pid);
    await run('ip', ['link', 'del', m[1]], { allowFail: true });
    removed.push(`veth ${m[1]}`);
  }
  if (fs.existsSync('/sys/fs/bpf')) {
    for (const d of fs.readdirSync('/sys/fs/bpf')) {
      const pid = deadPid(d);
      if (pid === null) continue;
      pids.add(pid);
      fs.rmSync(path.join('/sys/fs/bpf', d), { recursive: true, force: true });
      removed.push(`pin dir /sys/fs/bpf/${d}`);
    }
  }
  for (const d of fs.readdirSync(os.tmpdir())) {
    const pid = deadPid(d);
    if (pid !== null) pids.add(pid);
  }
  for (const pid of pids) {
    for (const suffix of ['m', 'f']) {
      for (const dir of await cleanupStaleMariaDB(`xdh${pid}${suffix}`)) removed.push(`mariadb ${dir}`);
    }
    for (const d of fs.readdirSync(os.tmpdir())) {
      if (d.startsWith(`xdh${pid}-`) || d.startsWith(`xdh${pid}m-`)) {
        fs.rmSync(path.join(os.tmpdir(), d), { recursive: true, force: true });
        removed.push(`temp dir ${d}`);
      }
    }
  }
  if (removed.length) log.warn({ removed }, 'removed leftovers of interrupted benchmark runs');
  return removed;
}
