// Tracking with keepalived's weight semantics (vrrp_track.c), pure.
//
// - weight > 0: added to the priority while the tracker is OK;
// - weight < 0: subtracted while it is failing;
// - weight 0: the instance goes to Fault while it is failing.
// A tracker turns OK after `rise` consecutive successes and failing after
// `fall` consecutive failures. The effective priority is clamped to 1–254; the
// address owner (255) is never adjusted.

export interface TrackerSpec {
  /** For logs and status, e.g. "script:check_mysql", "pool:rw", "xdp", "interface:eth1". */
  name: string;
  weight: number;
  rise?: number;
  fall?: number;
  /** Start failing (keepalived init_fail) instead of one success away from OK. */
  initFail?: boolean;
}

export class Tracker {
  readonly name: string;
  readonly weight: number;
  private readonly rise: number;
  private readonly fall: number;
  private ok: boolean;
  /** Consecutive observations against the current state. */
  private against = 0;

  constructor(spec: TrackerSpec) {
    this.name = spec.name;
    this.weight = spec.weight;
    this.rise = Math.max(1, spec.rise ?? 1);
    this.fall = Math.max(1, spec.fall ?? 1);
    // Assumed OK until told otherwise, like keepalived without init_fail.
    this.ok = !spec.initFail;
  }

  get isOk(): boolean {
    return this.ok;
  }

  /** Feed one observation (e.g. a script exit status); true when OK/failing changed. */
  report(success: boolean): boolean {
    if (success === this.ok) {
      this.against = 0;
      return false;
    }
    this.against++;
    if (this.against >= (this.ok ? this.fall : this.rise)) {
      this.ok = success;
      this.against = 0;
      return true;
    }
    return false;
  }

  /** Set the state directly (level inputs: "XDP attached", "pool has a healthy backend"); true when it changed. */
  set(ok: boolean): boolean {
    this.against = 0;
    if (ok === this.ok) return false;
    this.ok = ok;
    return true;
  }
}

export interface EffectivePriority {
  priority: number;
  fault: boolean;
  /** The trackers currently failing, for logs/status. */
  failing: string[];
}

/** Effective priority from the configured one and the trackers (keepalived vrrp_set_effective_priority). */
export function effectivePriority(base: number, trackers: readonly Tracker[]): EffectivePriority {
  const failing = trackers.filter((t) => !t.isOk).map((t) => t.name);
  const fault = trackers.some((t) => !t.isOk && t.weight === 0);
  if (base === 255) return { priority: 255, fault, failing };
  let p = base;
  for (const t of trackers) {
    if (t.weight > 0 && t.isOk) p += t.weight;
    else if (t.weight < 0 && !t.isOk) p += t.weight;
  }
  return { priority: Math.min(254, Math.max(1, p)), fault, failing };
}
