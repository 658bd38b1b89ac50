// The daemon's BGP side (run.ts starts it when the config has a bgp section): which VIPs the
// speaker announces now, and the whole-director drain. servable.ts decides per VIP whether this
// director can serve it; this adds the announce hold-down (hold-down.ts) and keeps the director
// drain in its state file (the daemon's, passed in: daemon/drains.ts).
import type { Logger } from 'pino';
import { XdError } from '../errors';
import type { BgpSpeaker } from './speaker';
import type { SteadySince } from './hold-down';
import { servableVips, type ServableInput } from './servable';

/** The director drain's state file (atomic, refused if unsafe): ["director"] while drained. */
export interface DirectorDrainFile {
  readonly file: string;
  load(): Set<string>;
  save(targets: Iterable<string>): void;
  remove(): void;
}

export interface BgpDirectorOptions {
  speaker: BgpSpeaker;
  /** VIPs configured for announcement (canonical text). */
  announce: readonly string[];
  /** Since when no backend's state or weight changed (the daemon marks each change). */
  steady: SteadySince;
  drainFile: DirectorDrainFile;
  /**
   * Writes the drain file by `save`; a failed write (a full disk) does not refuse the drain but
   * raises an alert (daemon/operator.ts persist). Returns what to add to the command's answer.
   */
  persist: (save: () => void, what: string) => string;
  log: Logger;
}

/** What the daemon knows of itself for servableVips(); the VIPs, the hold-down and what is announced now are added here. */
export type DirectorState = Omit<ServableInput, 'announce' | 'holdDown' | 'announced'> & {
  /** The health checks' fall and interval: the hold-down lasts fall x interval. */
  health: { fall: number; interval: number };
};

/**
 * Before it announces a VIP it does not announce now (at start, and after a withdrawal, e.g.
 * its pool emptied and is coming back one backend at a time) a director waits until its
 * backend states have been steady for fall x interval (at least 2 s): a health view still
 * settling gives a ring that differs from the other directors', and the flows ECMP moves here
 * would be sent to another backend and reset.
 */
export function holdDownMs(health: { fall: number; interval: number }): number {
  return Math.max(2000, health.fall * health.interval);
}

export class BgpDirector {
  constructor(private readonly o: BgpDirectorOptions) {}

  get speaker(): BgpSpeaker {
    return this.o.speaker;
  }

  /** At start: a drain kept by the previous run holds; no VIP is announced until undrain --director. */
  async restoreDrain(): Promise<void> {
    if (!this.o.drainFile.load().has('director')) return;
    this.o.log.info('director drain restored from the previous run: no VIP is announced until undrain --director');
    // BIRD starts with every VIP disabled: unconfirmed, the drain still holds (the sync retries).
    await this.o.speaker
      .setDirectorDrained(true, new Set())
      .catch((err: unknown) => this.o.log.warn({ err }, `director drain: ${(err as Error).message}`));
  }

  /** Announce the VIPs this director can serve now, withdraw the others (on every reconcile and tick). */
  update(s: DirectorState): void {
    const { health, ...rest } = s;
    const r = servableVips({
      ...rest,
      announce: this.o.announce,
      holdDown: this.o.steady.holdDown(holdDownMs(health)),
      announced: new Set(this.o.speaker.status().wanted),
    });
    this.o.speaker.setServable(r.servable, r.reasons);
  }

  /**
   * Drain the whole director: withdraw every VIP (established flows keep coming through ECMP's
   * other paths); undrain announces the servable ones again (`reannounce`: the daemon's update).
   */
  async drain(on: boolean, reannounce: () => void): Promise<{ message: string }> {
    const sp = this.o.speaker;
    // Written before it takes effect; a write that fails (a full disk) does not stop it: alert instead.
    const store = this.o.drainFile;
    const warn = this.o.persist(
      () => (on ? store.save(['director']) : store.remove()),
      on ? 'the director drain' : 'the director undrain',
    );
    const saved = `${on ? 'the drain' : 'the undrain'} ${warn ? 'is kept by this daemon (NOT saved: see the alert)' : `is saved (${store.file})`} and applied by the next sync that reaches bird`;
    try {
      await sp.setDirectorDrained(on, new Set());
      if (!on) reannounce();
      await sp.syncNow();
    } catch (err) {
      // Never report a withdrawal BIRD did not confirm: the routers may still send new flows here.
      const st = sp.status();
      throw new XdError(
        'XD_ERR_BGP',
        `${on ? 'drain' : 'undrain'} --director: bird did not confirm it: ${(err as Error).message}; ${saved}; ${on ? 'until then the routers may still send new flows here: ' : ''}check bird (pid ${st.daemon.pid ?? 'none'}, control socket ${st.daemon.socket}) and the log, or restart xdirector`,
        { cause: err },
      );
    }
    const st = sp.status();
    if (on && st.announced.length) {
      throw new XdError(
        'XD_ERR_BGP',
        `drain --director: bird still has ${st.announced.join(', ')} enabled after the withdrawal; ${saved}; check bird (pid ${st.daemon.pid ?? 'none'}, control socket ${st.daemon.socket})`,
      );
    }
    this.o.log.info(
      { announced: st.announced },
      on ? 'director drained: every VIP withdrawn; established flows finish' : 'director undrained',
    );
    return {
      message:
        (on
          ? `director drained: withdrew ${this.o.announce.join(', ')}; established flows finish through the other directors`
          : `director undrained: announcing ${st.announced.join(', ') || 'nothing yet (no servable VIP)'}`) + warn,
    };
  }
}
