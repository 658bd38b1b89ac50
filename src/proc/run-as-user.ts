// Running an operator's command for the daemon (health's check scripts, VRRP's track scripts and
// notify hooks): without a shell of our own, as the user given (the config's script user), in a
// process group of its own. At the timeout the whole group is killed, so what the command
// started (a shell's children, a `sleep` in the background) goes with it. Never rejects: a
// command that cannot start (ENOENT, EACCES) is an outcome like any other.
import { spawn, type ChildProcess } from 'node:child_process';

/** A user's ids (config/script.ts lookupUser() gives them). */
export interface UserIds {
  uid: number;
  gid: number;
}

/** PATH for a minimal environment: the system's directories only. */
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A minimal environment (PATH, HOME=/, LANG=C) plus `extra`: nothing of the daemon's (no monitor password) leaks into it. */
export function minimalEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: SYSTEM_PATH, HOME: '/', LANG: 'C', ...extra };
}

export interface RunAsUserOptions {
  /** The program and its arguments (no shell: a caller that wants one says /bin/sh -c). */
  argv: readonly [string, ...string[]];
  /** The user to run as, in / ; absent: the daemon's own user, in its working directory. */
  as?: UserIds;
  /** The environment; absent: the daemon's own. */
  env?: NodeJS.ProcessEnv;
  /** Past this the process group is killed (SIGKILL) and the outcome says timedOut. */
  timeoutMs: number;
  /** Keep the last this many characters of stdout and stderr together; absent: both are discarded. */
  keepOutput?: number;
}

export interface RunOutcome {
  /** Exit status; null when killed by a signal or not started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Killed at the timeout. */
  timedOut: boolean;
  /** Why it could not start (spawn's error). */
  error?: Error;
  /** The tail of its output (keepOutput), '' without it. */
  output: string;
}

/** SIGKILL to the child's whole process group; a child that leads none (not detached, or gone) gets SIGKILL itself. */
export function killProcessGroup(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

export function runAsUser(o: RunAsUserOptions): Promise<RunOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    let timedOut = false;
    let output = '';
    const keep = o.keepOutput;
    const child = spawn(o.argv[0], o.argv.slice(1), {
      // Its own process group, so that the timeout kills what it started too.
      detached: true,
      stdio: keep === undefined ? 'ignore' : ['ignore', 'pipe', 'pipe'],
      ...(o.as ? { uid: o.as.uid, gid: o.as.gid, cwd: '/' } : {}),
      ...(o.env ? { env: o.env } : {}),
    });
    if (keep !== undefined) {
      const add = (b: Buffer) => {
        output = (output + b.toString()).slice(-keep);
      };
      child.stdout?.on('data', add);
      child.stderr?.on('data', add);
    }
    const timer = setTimeout(() => {
      timedOut = true;
      killProcessGroup(child);
    }, o.timeoutMs);
    const done = (r: Omit<RunOutcome, 'timedOut' | 'output'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...r, timedOut, output });
    };
    child.on('error', (error) => done({ code: null, signal: null, error }));
    // 'close': the process has exited and its output is all read.
    child.on('close', (code, signal) => done({ code, signal }));
  });
}
