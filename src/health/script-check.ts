// check: script (keepalived's MISC_CHECK): run the operator's command for one backend, as the
// configured unprivileged user, and read its exit status:
//   0            up (and, with dynamic, the weight stays what the script last set)
//   1            down
//   2..255       dynamic: up with weight status - 2 (0..253), keepalived's misc_dynamic rule
//                (check_misc.c: "The actual weight set when using misc_dynamic is two less than
//                the exit status returned"); without dynamic: down
//   killed, or still running at the timeout (its whole process group is killed): down
// The command runs without a shell, in its own process group, with the backend in its argv
// (config/script.ts scriptArgv) and in XDIRECTOR_BACKEND_ADDRESS / _PORT, and a minimal
// environment (PATH, HOME=/, LANG=C): nothing of the daemon's (no monitor password) leaks to it.

import { spawn } from 'node:child_process';
import { scriptArgv, type CheckScriptConfig, type UserIds } from '../config';

export interface ScriptProbe {
  ok: boolean;
  error: string | null;
  /** The weight a dynamic check set (exit 2+N: N); null when this run set none. */
  weight: number | null;
  durationMs: number;
}

/** The largest weight misc_dynamic can set (exit 255). */
export const SCRIPT_MAX_WEIGHT = 253;

/** Keep this much of the script's output for the error text (its last line says why, usually). */
const OUTPUT_KEEP = 512;

export function scriptCheck(cs: CheckScriptConfig, ids: UserIds, address: string, port: number): Promise<ScriptProbe> {
  const argv = scriptArgv(cs.command, address, port);
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  return new Promise((resolve) => {
    let settled = false;
    let timedOut = false;
    let output = '';
    const child = spawn(argv[0]!, argv.slice(1), {
      uid: ids.uid,
      gid: ids.gid,
      cwd: '/',
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        HOME: '/',
        LANG: 'C',
        XDIRECTOR_BACKEND_ADDRESS: address,
        XDIRECTOR_BACKEND_PORT: String(port),
      },
    });
    const keep = (b: Buffer) => {
      output = (output + b.toString()).slice(-OUTPUT_KEEP);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, cs.timeout);
    const said = () => {
      const last = output.trim().split('\n').pop()?.trim();
      return last ? `: ${last}` : '';
    };
    const done = (p: Omit<ScriptProbe, 'durationMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...p, durationMs: ms() });
    };
    child.on('error', (err) =>
      done({ ok: false, weight: null, error: `check script ${argv[0]} could not start: ${err.message}` }),
    );
    child.on('close', (code, signal) => {
      if (timedOut)
        return done({
          ok: false,
          weight: null,
          error: `check script ${argv[0]} still running after ${cs.timeout} ms: killed${said()}`,
        });
      if (signal)
        return done({ ok: false, weight: null, error: `check script ${argv[0]} killed by ${signal}${said()}` });
      if (code === 0) return done({ ok: true, weight: null, error: null });
      if (cs.dynamic && code !== null && code >= 2 && code <= 255)
        return done({ ok: true, weight: code - 2, error: null });
      done({ ok: false, weight: null, error: `check script ${argv[0]} exited with status ${code}${said()}` });
    });
  });
}
