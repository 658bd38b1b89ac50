// Running operator commands for VRRP: track scripts (exit status = result) and
// notify hooks (run one after another, in the order the transitions happened).

import { runAsUser, type RunOutcome } from '../proc/run-as-user';
import type { Logger } from '../log';
import type { UserIds } from '../config';

/** How a command ended (proc/run-as-user.ts, its output not kept), and whether that counts as success. */
export interface RunResult extends Omit<RunOutcome, 'output'> {
  /** Exit status 0, not killed at the timeout. */
  ok: boolean;
}

/** Run `/bin/sh -c command` with extra positional arguments ($1, $2, ...), as `as` when given (script_user); never rejects. */
export async function runCommand(command: string, args: string[], timeoutMs: number, as?: UserIds): Promise<RunResult> {
  // Its own process group (proc/run-as-user.ts), so a timeout kills what the shell started too.
  const r = await runAsUser({
    argv: ['/bin/sh', '-c', `${command} "$@"`, 'xdirector-vrrp', ...args],
    timeoutMs,
    ...(as ? { as } : {}),
  });
  return {
    ok: !r.timedOut && !r.error && r.code === 0,
    code: r.code,
    signal: r.signal,
    timedOut: r.timedOut,
    ...(r.error ? { error: r.error } : {}),
  };
}

/**
 * Notify hooks run strictly in order, one at a time (keepalived's scripts may
 * run out of order; its notify FIFO exists because users need order).
 */
export class NotifyQueue {
  private chain: Promise<void> = Promise.resolve();
  private pending = 0;
  failures = 0;
  runs = 0;

  constructor(
    private readonly command: string | undefined,
    private readonly log: Logger,
    private readonly timeoutMs = 30_000,
    private readonly as?: UserIds,
  ) {}

  push(instance: string, state: string, priority: number): void {
    if (!this.command) return;
    const cmd = this.command;
    this.pending++;
    this.chain = this.chain.then(async () => {
      const r = await runCommand(cmd, [instance, state, String(priority)], this.timeoutMs, this.as);
      this.pending--;
      this.runs++;
      if (!r.ok) {
        this.failures++;
        this.log.warn(
          { command: cmd, state, code: r.code, signal: r.signal, timedOut: r.timedOut, err: r.error },
          'notify command failed',
        );
      }
    });
  }

  /** Resolves when every queued hook has run. */
  drain(): Promise<void> {
    return this.chain;
  }

  get queued(): number {
    return this.pending;
  }
}
