// systemd service notifications (sd_notify(3)): READY=1 once the daemon serves, RELOADING=1 /
// READY=1 around a reload, STOPPING=1 on the way out, and WATCHDOG=1 every half WATCHDOG_USEC
// while the daemon makes progress: the event loop runs and the `stalled` check (health rounds,
// reconciles, BGP syncs recent: daemon/liveness.ts) finds nothing; a stalled daemon sends
// nothing and systemd restarts the service.
// Without $NOTIFY_SOCKET (not started by systemd with Type=notify) everything is a no-op.
//
// The datagram goes through the addon (native/notify.cc): Node's dgram has no AF_UNIX.
import { getNative } from '../bpf';
import type { Logger } from '../log';

export class SystemdNotifier {
  private timer?: NodeJS.Timeout;
  private warned = false;
  private withheld?: string;

  constructor(
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** Where notifications go, or undefined when not run by systemd. */
  get socket(): string | undefined {
    return this.env.NOTIFY_SOCKET || undefined;
  }

  /** Send one notification ("KEY=value" lines); never throws (a lost notification is logged once). */
  notify(...lines: string[]): boolean {
    const path = this.socket;
    if (!path) return false;
    try {
      getNative().unixDatagramSend(path, Buffer.from(lines.join('\n')));
      return true;
    } catch (err) {
      if (!this.warned) this.log.warn({ err, socket: path }, `systemd notification failed: ${(err as Error).message}`);
      this.warned = true;
      return false;
    }
  }

  /** The watchdog period systemd asked for (WATCHDOG_USEC, for this pid), in ms; undefined = none. */
  watchdogMs(): number | undefined {
    const usec = Number(this.env.WATCHDOG_USEC);
    if (!Number.isFinite(usec) || usec <= 0) return undefined;
    const pid = this.env.WATCHDOG_PID;
    if (pid && Number(pid) !== process.pid) return undefined;
    return usec / 1000;
  }

  /** `stalled`: why the daemon makes no progress (the watchdog ping is withheld), or undefined. */
  ready(status: string, stalled: () => string | undefined = () => undefined): void {
    this.notify('READY=1', `STATUS=${status}`, `MAINPID=${process.pid}`);
    const ms = this.watchdogMs();
    if (ms !== undefined && !this.timer) {
      // Half the period, as sd_watchdog_enabled(3) recommends.
      this.timer = setInterval(() => this.watchdog(stalled()), Math.max(1, Math.floor(ms / 2)));
      this.timer.unref();
      this.notify('WATCHDOG=1');
      this.log.info({ watchdogMs: ms }, 'systemd watchdog enabled');
    }
  }

  /** One watchdog tick: ping, or withhold it (logged once per stall) so that systemd restarts us. */
  watchdog(stalled: string | undefined): boolean {
    if (stalled === undefined) {
      if (this.withheld !== undefined) this.log.info('progress again: systemd watchdog pings resume');
      this.withheld = undefined;
      return this.notify('WATCHDOG=1');
    }
    if (this.withheld === undefined)
      this.log.error(
        { stalled },
        `ALERT no progress: ${stalled}; withholding the systemd watchdog ping (systemd restarts the service when WatchdogSec passes)`,
      );
    this.withheld = stalled;
    return false;
  }

  reloading(): void {
    // MONOTONIC_USEC lets Type=notify-reload match the reload to this message (systemd 253+).
    const mono = process.hrtime.bigint() / 1000n;
    this.notify('RELOADING=1', `MONOTONIC_USEC=${mono}`);
  }

  reloaded(status: string): void {
    this.notify('READY=1', `STATUS=${status}`);
  }

  stopping(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.notify('STOPPING=1');
  }
}
