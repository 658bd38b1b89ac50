// Is this director still working, beyond "the event loop turns"? Pure, with an injected
// monotonic clock (tests drive it by hand); the daemon logs the alert changes checkAlert() reports.
//
// Two answers from the same marks:
// - cannotServe(): a reason this director must not draw traffic now (BGP withdraws every VIP,
//   VRRP's `director` tracker fails): the health snapshot is stale (no completed round for
//   max(3 x interval, floor)), a reconcile has been running that long, or the driver's XDP TX
//   error counter is rising (forwarded frames are being dropped) and has not been quiet for
//   TX_QUIET_MS.
// - stalled(): a reason to withhold the systemd watchdog ping: the health round, a reconcile or
//   the BGP speaker's sync loop has not made progress within the same limit. TX errors do not
//   stop the watchdog: a restart would not fix the driver.

import { monotonicMs, type Clock } from '../clock';
import { healthRoundMs, type Config } from '../config';

/** The smallest staleness limit: a round of one slow check must not count as a stall. */
export const STALE_FLOOR_MS = 5000;
/** TX errors must stop rising for this long before a director that withdrew for them serves again. */
export const TX_QUIET_MS = 8000;

export interface LivenessOptions {
  /** Health check interval (ms), or null when no service is checked (no health rounds expected). */
  healthIntervalMs: number | null;
  /** One health round's own budget (connect timeout + check timeout): the limit is at least this plus the floor. */
  healthRoundMs?: number;
  /** A BGP speaker runs (its sync loop is watched). */
  bgp: boolean;
  now?: Clock;
}

/** The options for a daemon's config: its health checks' interval and round budget (none without checks), and BGP. */
export function livenessOptions(cfg: Pick<Config, 'services' | 'monitor' | 'health' | 'bgp'>): LivenessOptions {
  const checked = cfg.services.some((s) => s.check !== 'none');
  return {
    healthIntervalMs: checked ? cfg.health.interval : null,
    healthRoundMs: healthRoundMs(cfg.monitor, cfg.health),
    bgp: !!cfg.bgp,
  };
}

/** What checkAlert() found: the alert raised (and why), cleared, or as it was (undefined). */
export type AlertChange = { raised: string; why: string } | 'cleared' | undefined;

export interface LivenessStatus {
  /** Why the director must not draw traffic (null: it may). */
  cannotServe: string | null;
  /** Why the watchdog is withheld (null: fed). */
  stalled: string | null;
  /** ms since the last completed health round (null: no health checks). */
  healthAgeMs: number | null;
  limitMs: number;
  txErrorsRising: boolean;
}

export class Liveness {
  private readonly now: Clock;
  private healthAt: number;
  private reconcileSince: number | null = null;
  private bgpTurnAt: number;
  private txRiseAt: number | null = null;
  private txLast = 0;
  readonly limitMs: number;
  private alertText?: string;

  constructor(private readonly o: LivenessOptions) {
    this.now = o.now ?? monotonicMs;
    const t = this.now();
    this.healthAt = t;
    this.bgpTurnAt = t;
    const iv = o.healthIntervalMs ?? 1000;
    this.limitMs = Math.max(3 * iv, (o.healthRoundMs ?? 0) + STALE_FLOOR_MS);
  }

  /** A health round completed. */
  healthRound(): void {
    this.healthAt = this.now();
  }

  /** A reconcile (compute + apply) started / ended (either way). */
  reconcileStarted(): void {
    if (this.reconcileSince === null) this.reconcileSince = this.now();
  }

  reconcileEnded(): void {
    this.reconcileSince = null;
  }

  /** The BGP speaker finished a sync attempt (answered or not: its loop turns). */
  bgpTurned(): void {
    this.bgpTurnAt = this.now();
  }

  /** One poll of the driver's XDP TX errors: how many were counted since the previous poll. */
  txErrors(sincePrevious: number): void {
    this.txLast = sincePrevious;
    if (sincePrevious > 0) this.txRiseAt = this.now();
  }

  private txRising(): boolean {
    return this.txRiseAt !== null && this.now() - this.txRiseAt < TX_QUIET_MS;
  }

  private healthStale(): string | undefined {
    if (this.o.healthIntervalMs === null) return undefined;
    const age = this.now() - this.healthAt;
    return age > this.limitMs
      ? `the health snapshot is ${(age / 1000).toFixed(1)} s old (no completed check round within ${(this.limitMs / 1000).toFixed(1)} s): backend states are unknown`
      : undefined;
  }

  private reconcileStalled(): string | undefined {
    if (this.reconcileSince === null) return undefined;
    const age = this.now() - this.reconcileSince;
    return age > this.limitMs
      ? `a reconcile has been running for ${(age / 1000).toFixed(1)} s: the dataplane may not match the current state`
      : undefined;
  }

  cannotServe(): string | undefined {
    const h = this.healthStale() ?? this.reconcileStalled();
    if (h) return h;
    if (this.txRising())
      return `the driver is dropping forwarded frames (XDP TX errors rose ${((this.now() - this.txRiseAt!) / 1000).toFixed(1)} s ago, last poll +${this.txLast}): serving again after ${TX_QUIET_MS / 1000} s without new errors`;
    return undefined;
  }

  stalled(): string | undefined {
    const h = this.healthStale() ?? this.reconcileStalled();
    if (h) return h;
    if (this.o.bgp) {
      const age = this.now() - this.bgpTurnAt;
      if (age > this.limitMs) return `the BGP speaker's sync loop has not turned for ${(age / 1000).toFixed(1)} s`;
    }
    return undefined;
  }

  /** The alert in status while this director cannot serve or stalls, as of the last checkAlert(). */
  get alert(): string | undefined {
    return this.alertText;
  }

  /**
   * The daemon's own liveness check (with or without systemd), on its tick: updates the alert
   * and says whether it was raised or cleared (the daemon logs those). The BGP withdrawal and
   * VRRP's director tracker read cannotServe() on their own ticks.
   */
  checkAlert(): AlertChange {
    const why = this.cannotServe() ?? this.stalled();
    const alert = why === undefined ? undefined : `this director cannot serve: ${why}`;
    const was = this.alertText;
    this.alertText = alert;
    if (alert !== undefined && was === undefined) return { raised: alert, why: why! };
    if (alert === undefined && was !== undefined) return 'cleared';
    return undefined;
  }

  status(): LivenessStatus {
    return {
      cannotServe: this.cannotServe() ?? null,
      stalled: this.stalled() ?? null,
      healthAgeMs: this.o.healthIntervalMs === null ? null : Math.round(this.now() - this.healthAt),
      limitMs: this.limitMs,
      txErrorsRising: this.txRising(),
    };
  }
}
