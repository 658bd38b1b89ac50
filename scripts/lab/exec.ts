// Running external commands for the lab: execFile (never a shell), optionally
// inside a network namespace, with errors that name the command line, the exit
// code or signal, and the command's stderr.
//
// Two ways into a namespace:
// - `ip netns exec NS cmd …` for ordinary tools. It also remounts /sys for the
//   namespace, which hides bpffs (/sys/fs/bpf).
// - `nsenter --net=/run/netns/NS cmd …` switches only the network namespace and
//   keeps the mount namespace, so pinned BPF objects stay visible: use it for
//   anything that touches /sys/fs/bpf (bpftool, xdirector).
import { spawn, ChildProcess, SpawnOptions } from 'node:child_process';
import { ToolError } from '../errors';

export interface RunOptions {
  /** Kill the command (SIGKILL) after this many milliseconds. Default 60 s. */
  timeoutMs?: number;
  /** Resolve instead of rejecting when the command exits non-zero. */
  allowFail?: boolean;
  /** Extra environment (merged over process.env). */
  env?: NodeJS.ProcessEnv;
  /** Working directory. */
  cwd?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  /** Exit code; null when the command was ended by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** How a command enters a namespace: `ip netns exec` (default) or `nsenter --net` (keeps bpffs visible). */
export type NsMode = 'ip' | 'nsenter';

/** The argv that runs `cmd args` inside network namespace `ns` (no namespace when ns is null). */
export function nsArgv(
  ns: string | null,
  cmd: string,
  args: readonly string[],
  mode: NsMode = 'ip',
): [string, string[]] {
  if (ns === null) return [cmd, [...args]];
  checkNsName(ns);
  if (mode === 'nsenter') return ['nsenter', [`--net=/run/netns/${ns}`, '--', cmd, ...args]];
  return ['ip', ['netns', 'exec', ns, cmd, ...args]];
}

/** A namespace name as `ip netns` accepts it: no slashes, no leading dot, at most 255 bytes. */
export function checkNsName(ns: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/.test(ns)) {
    throw new ToolError(
      'XD_ERR_LAB',
      `invalid network namespace name ${JSON.stringify(ns)}: use letters, digits, '_', '-', '.'`,
    );
  }
}

function quote(a: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** The command line as a user would type it, for messages. */
export function commandLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map(quote).join(' ');
}

/**
 * Run a command (no shell) and collect its output; rejects with XD_ERR_EXEC on
 * failure unless allowFail. The command runs in its own process group, so a
 * Ctrl-C in the terminal reaches only the Node process that decides how to
 * stop (a half-done step then completes and is torn down in order).
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const line = commandLine(cmd, args);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, [...args], {
        env: opts.env ? { ...process.env, ...opts.env } : process.env,
        cwd: opts.cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
    } catch (err) {
      reject(
        new ToolError('XD_ERR_EXEC', `${line}: ${(err as Error).message}`, { cause: err, detail: { command: line } }),
      );
      return;
    }
    const out: Buffer[] = [];
    const errOut: Buffer[] = [];
    let size = 0;
    const limit = 64 * 1024 * 1024;
    child.stdout?.on('data', (d: Buffer) => {
      size += d.length;
      if (size <= limit) out.push(d);
    });
    child.stderr?.on('data', (d: Buffer) => {
      size += d.length;
      if (size <= limit) errOut.push(d);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      // The command could not be started at all (ENOENT, EACCES): never "allowed".
      const hint = err.code === 'ENOENT' ? ` (is ${cmd} installed? run scripts/setup.sh)` : '';
      reject(
        new ToolError('XD_ERR_EXEC', `${line}: ${err.message}${hint}`, {
          cause: err,
          detail: { command: line, errno: err.code },
        }),
      );
    });
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(errOut).toString('utf8');
      if (code === 0 && !timedOut) {
        resolve({ stdout, stderr, code: 0, signal: null });
        return;
      }
      if (opts.allowFail && !timedOut) {
        resolve({ stdout, stderr, code, signal });
        return;
      }
      const how = timedOut
        ? `timed out after ${timeoutMs} ms (killed)`
        : signal
          ? `killed by ${signal}`
          : `exit code ${code}`;
      const tail = stderr.trim().split('\n').slice(-10).join('\n');
      reject(
        new ToolError('XD_ERR_EXEC', `${line}: ${how}${tail ? `: ${tail}` : ''}`, {
          detail: { command: line, code, signal, stderr, stdout },
        }),
      );
    });
  });
}

/** Run `cmd args` inside network namespace `ns` (`ip netns exec`, or `nsenter --net` with mode 'nsenter'). */
export function runIn(
  ns: string,
  cmd: string,
  args: readonly string[],
  opts: RunOptions & { mode?: NsMode } = {},
): Promise<RunResult> {
  const [c, a] = nsArgv(ns, cmd, args, opts.mode);
  return run(c, a, opts);
}

/** Start a long-running process inside `ns` (or in the current namespace when ns is null). */
export function spawnIn(
  ns: string | null,
  cmd: string,
  args: readonly string[],
  opts: SpawnOptions & { mode?: NsMode } = {},
): ChildProcess {
  const { mode, ...spawnOpts } = opts;
  const [c, a] = nsArgv(ns, cmd, args, mode);
  return spawn(c, a, spawnOpts);
}

/** True while a process with this pid exists (and is not a zombie we could reap). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Wait until `pid` has exited; false on timeout. */
export async function waitPidExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
  return true;
}

/**
 * Wait until a child process we spawned has exited (its 'exit' event, so the
 * zombie is reaped); false on timeout.
 */
export function waitChildExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(t);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
