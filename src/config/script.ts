// Operator scripts: `check: script` (keepalived's MISC_CHECK) and the unprivileged user scripts
// run as. The schema is pure; scriptFileProblems / scriptUserProblems read the file system and
// the user database (check-config, run and reload call them through loadConfig's checkFiles).
//
//   services:
//     - check: script
//       check_script:
//         command: "/usr/local/bin/check_slave.pl --max-lag 30 {address} {port}"
//         timeout: 5s          # default: health.timeout
//         user: xdcheck        # default: script_user
//         dynamic: true        # keepalived misc_dynamic: exit 2+N sets the weight to N
//   script_user: xdcheck       # who every operator script runs as (check, VRRP track and notify)
//
// The command is split into words (double or single quotes keep blanks) and run without a shell;
// {address} and {port} in it become the backend's, and when it names neither, the address and
// port are appended as its last two arguments (keepalived users write `check.sh 10.0.0.2 3306`).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { duration, parseDuration } from './duration';
import { bool, leaf, pattern, show } from './fields';
import type { UserIds } from '../proc/run-as-user';

/** A problem at a key path (the shape of rules.ts's Problem, kept here so rules.ts can import this file). */
export interface ScriptProblem {
  path: (string | number)[];
  message: string;
}

/** POSIX portable user names (useradd's default NAME_REGEX, plus upper case). */
const USER_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;
const USER_WHAT = 'a user name (letters, digits, _ . -, starting with a letter or _)';

export const scriptUserSchema = pattern(USER_RE, USER_WHAT, { optional: true });

/** A command line: an absolute executable path and its arguments. */
const command = leaf<string>((v) => {
  if (typeof v !== 'string' || v.trim() === '')
    return { problem: `must be a command line starting with the script's absolute path, got ${show(v)}` };
  const argv0 = splitCommand(v)[0] ?? '';
  if (!argv0.startsWith('/'))
    return {
      problem: `must start with the script's absolute path (it runs without a shell and without PATH), got ${show(argv0)}`,
    };
  return { value: v.trim() };
});

export const checkScriptSchema = z.strictObject({
  command,
  /** A run that outlives it is killed (its whole process group) and counts as a failure. */
  timeout: duration({ optional: true, min: 1 }),
  /** Overrides script_user for this service. */
  user: pattern(USER_RE, USER_WHAT, { optional: true }),
  /** keepalived's misc_dynamic: exit 2..255 is up with weight status - 2. */
  dynamic: bool({ default: false }),
});

export type CheckScriptInput = z.output<typeof checkScriptSchema>;

/** The resolved check script of a service (config/rules.ts finish()). */
export interface CheckScriptConfig {
  command: string;
  /** ms; default health.timeout. */
  timeout: number;
  user: string;
  dynamic: boolean;
}

/** Split a command line into words: blanks separate, "double" or 'single' quotes keep blanks. */
export function splitCommand(text: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

/** The argv one backend's check runs: placeholders filled, or address and port appended. */
export function scriptArgv(cmd: string, address: string, port: number): string[] {
  const words = splitCommand(cmd);
  if (!/\{address\}|\{port\}/.test(cmd)) return [...words, address, String(port)];
  return words.map((w) => w.replace(/\{address\}/g, address).replace(/\{port\}/g, String(port)));
}

/** A user's ids, as src/proc/run-as-user.ts runs a command with them. */
export type { UserIds };

/**
 * A user's ids from the system's user database (getent: /etc/passwd, LDAP, sssd alike), or
 * undefined when the user does not exist. Throws when getent cannot be run at all.
 */
export function lookupUser(name: string): UserIds | undefined {
  const r = spawnSync('getent', ['passwd', name], { encoding: 'utf8', timeout: 5000 });
  if (r.error) throw new Error(`getent passwd ${name}: ${r.error.message}`);
  if (r.status !== 0) return undefined;
  const f = r.stdout.split('\n')[0]!.split(':');
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The script user must exist and not be root: a check script runs on every interval against
 * data from the network, so a root one turns any bug in it into root on the director.
 */
export function scriptUserProblem(name: string): string | undefined {
  let ids: UserIds | undefined;
  try {
    ids = lookupUser(name);
  } catch (err) {
    return `cannot look the user up: ${(err as Error).message}`;
  }
  if (!ids)
    return `user ${name} does not exist: create it (useradd --system --no-create-home --shell /usr/sbin/nologin ${name}) or name an existing unprivileged user`;
  if (ids.uid === 0)
    return `user ${name} is root (uid 0): scripts run as an unprivileged user; create one (useradd --system --no-create-home --shell /usr/sbin/nologin xdscript)`;
  return undefined;
}

/**
 * Why running `file` as a script is unsafe, or undefined: missing, not a regular file, not
 * executable, or writable by someone other than its owner and root (the file or any directory
 * above it: whoever can replace it runs code as the script user on every check).
 */
export function scriptFileProblem(file: string): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return code === 'ENOENT'
      ? `${file} does not exist: install the script there or fix the path`
      : `cannot read ${file} (${code}): make it readable by root`;
  }
  if (!st.isFile()) return `${file} is not a regular file: give the script itself`;
  if ((st.mode & 0o111) === 0)
    return `${file} is not executable (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): chmod 755 ${file}`;
  if (st.mode & 0o002)
    return `${file} is writable by every user (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): anyone could replace the check; chmod o-w ${file}`;
  if (st.mode & 0o020 && st.gid !== 0)
    return `${file} is writable by its group (gid ${st.gid}): its members could replace the check; chmod g-w ${file} or chgrp root ${file}`;
  // Every directory up to / : a writable one lets its users rename the script away and put their own.
  for (let dir = path.dirname(path.resolve(file)); ; dir = path.dirname(dir)) {
    let ds: fs.Stats;
    try {
      ds = fs.statSync(dir);
    } catch {
      break;
    }
    const sticky = (ds.mode & 0o1000) !== 0 && ds.uid === 0 && st.uid === 0;
    if (ds.mode & 0o002 && !sticky)
      return `${file} is in ${dir}, which every user can write (mode ${(ds.mode & 0o7777).toString(8).padStart(4, '0')}): anyone could replace the check; move the script to a root-owned directory such as /usr/local/libexec/xdirector, or chmod o-w ${dir}`;
    if (dir === '/') break;
  }
  return undefined;
}

/** File-system and user-database problems of every service's check script and of script_user (loadConfig's checkFiles). */
export function scriptProblems(raw: unknown): ScriptProblem[] {
  if (!isObj(raw)) return [];
  const out: ScriptProblem[] = [];
  const users = new Map<string, (string | number)[]>();
  if (typeof raw.script_user === 'string') users.set(raw.script_user, ['script_user']);
  const services = Array.isArray(raw.services) ? raw.services : [];
  services.forEach((s, i) => {
    if (!isObj(s) || s.check !== 'script' || !isObj(s.check_script)) return;
    const cs = s.check_script;
    if (typeof cs.command === 'string') {
      const argv0 = splitCommand(cs.command)[0];
      const problem = argv0 && argv0.startsWith('/') ? scriptFileProblem(argv0) : undefined;
      if (problem) out.push({ path: ['services', i, 'check_script', 'command'], message: problem });
    }
    if (typeof cs.user === 'string' && !users.has(cs.user)) users.set(cs.user, ['services', i, 'check_script', 'user']);
  });
  for (const [name, p] of users) {
    const problem = scriptUserProblem(name);
    if (problem) out.push({ path: p, message: problem });
  }
  return out;
}

/** Rules across fields for one service's check: script (rules.ts crossCheck). */
export function scriptServiceProblems(
  raw: Record<string, unknown>,
  s: Record<string, unknown>,
  sp: (string | number)[],
): ScriptProblem[] {
  const out: ScriptProblem[] = [];
  if (s.check !== 'script') {
    if (s.check_script !== undefined)
      out.push({
        path: [...sp, 'check_script'],
        message: `is only read with check: script (check is ${s.check === undefined ? 'not set' : show(s.check)}): set check: script or remove check_script`,
      });
    return out;
  }
  if (!isObj(s.check_script)) {
    out.push({
      path: [...sp, 'check_script'],
      message:
        'check: script needs check_script: { command: "/path/to/script {address} {port}", user: NAME } (the script, and the unprivileged user it runs as)',
    });
    return out;
  }
  if (s.check_script.user === undefined && raw.script_user === undefined) {
    out.push({
      path: [...sp, 'check_script', 'user'],
      message: 'is required (or set script_user): check scripts run as an unprivileged user, never as root',
    });
  }
  if (s.pool === 'writer' || s.pool === 'readers') {
    out.push({
      path: [...sp, 'pool'],
      message: `pool ${s.pool} is chosen by MySQL role, which a script check cannot see: use check: mysql or pool: static`,
    });
  }
  const health = isObj(raw.health) ? raw.health : {};
  const interval = parseDurationMs(health.interval) ?? 1000;
  const timeout = parseDurationMs(s.check_script.timeout);
  if (timeout !== undefined && timeout > interval) {
    out.push({
      path: [...sp, 'check_script', 'timeout'],
      message: `(${timeout} ms) must not exceed health.interval (${interval} ms): a check must end before the next round starts; raise health.interval or lower the timeout`,
    });
  }
  return out;
}

function parseDurationMs(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const r = parseDuration(v);
  return 'value' in r ? r.value : undefined;
}

/** The resolved check script (rules.ts finish()): the defaults filled in. */
export function finishCheckScript(
  cs: CheckScriptInput,
  raw: { script_user?: string; health?: { timeout: number } },
): CheckScriptConfig {
  return {
    command: cs.command,
    timeout: cs.timeout ?? raw.health?.timeout ?? 500,
    user: (cs.user ?? raw.script_user)!,
    dynamic: cs.dynamic,
  };
}

/**
 * A real server is checked once however many services list it (health/monitor.ts), by the
 * strongest check. Two services checking one real server with different scripts (a primary check
 * on the writer VIP, a lag check on the reader VIP) would have one of the scripts never run.
 */
export function scriptCheckWarnings(
  services: readonly {
    name: string;
    check: string;
    checkScript?: CheckScriptConfig;
    backends: readonly { key: string; name: string }[];
  }[],
): string[] {
  const first = new Map<string, { service: string; command: string }>();
  const out: string[] = [];
  for (const s of services) {
    if (s.check !== 'script' || !s.checkScript) continue;
    for (const b of s.backends) {
      const f = first.get(b.key);
      if (!f) first.set(b.key, { service: s.name, command: s.checkScript.command });
      else if (f.command !== s.checkScript.command)
        out.push(
          `services ${f.service} and ${s.name} check real server ${b.name} with different scripts, but a real server is checked once: only the script of ${f.service} runs, and its result counts for both; give each service its own real servers (another address or port) or one script for both`,
        );
    }
  }
  return out;
}
