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
// environment (PATH, HOME=/, LANG=C): nothing of the daemon's (no monitor password) leaks to it
// (src/proc/run-as-user.ts runs it).

import { minimalEnv, runAsUser } from '../proc/run-as-user';
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

export async function scriptCheck(
  cs: CheckScriptConfig,
  ids: UserIds,
  address: string,
  port: number,
): Promise<ScriptProbe> {
  const argv = scriptArgv(cs.command, address, port);
  const t0 = performance.now();
  const r = await runAsUser({
    argv: [argv[0]!, ...argv.slice(1)],
    as: ids,
    env: minimalEnv({ XDIRECTOR_BACKEND_ADDRESS: address, XDIRECTOR_BACKEND_PORT: String(port) }),
    timeoutMs: cs.timeout,
    keepOutput: OUTPUT_KEEP,
  });
  const durationMs = Math.round(performance.now() - t0);
  const last = r.output.trim().split('\n').pop()?.trim();
  const said = last ? `: ${last}` : '';
  const down = (error: string): ScriptProbe => ({ ok: false, weight: null, error, durationMs });
  if (r.error) return down(`check script ${argv[0]} could not start: ${r.error.message}`);
  if (r.timedOut) return down(`check script ${argv[0]} still running after ${cs.timeout} ms: killed${said}`);
  if (r.signal) return down(`check script ${argv[0]} killed by ${r.signal}${said}`);
  if (r.code === 0) return { ok: true, weight: null, error: null, durationMs };
  if (cs.dynamic && r.code !== null && r.code >= 2 && r.code <= 255)
    return { ok: true, weight: r.code - 2, error: null, durationMs };
  return down(`check script ${argv[0]} exited with status ${r.code}${said}`);
}
