// The VRRP state machine (RFC 3768 §6, RFC 5798 §6, with keepalived's choices
// where the RFCs leave room). Pure: time comes from an injected Timers, packets
// come in as bytes + IP metadata, and everything it wants done (send an advert,
// take or release the VIPs) goes out through hooks. Deterministically testable.

import type { Logger } from '../log';
import {
  DROP_REASONS,
  decodeAdvert,
  type Advert,
  type ChecksumVariant,
  type DropReason,
  type Expect,
  type Family,
  type RxMeta,
} from './codec';
import { canonicalAddress, compareAddress } from '../net/inet';

export type VrrpState = 'INIT' | 'BACKUP' | 'MASTER' | 'FAULT' | 'STOP';

/** Time source and one-shot timers (real ones in production, a fake clock in tests). */
export interface Timers {
  now(): number;
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const realTimers: Timers = {
  now: () => performance.now(),
  set: (fn, ms) => setTimeout(fn, Math.max(0, ms)),
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface MachineConfig {
  name: string;
  vrid: number;
  version: 2 | 3;
  family: Family;
  /** Configured priority (1–255). The effective one comes from tracking via setPriority(). */
  priority: number;
  intervalMs: number;
  preempt: boolean;
  preemptDelayMs: number;
  /** Our primary address (the advert source): tie-break at equal priority, and to recognise our own packets. */
  primaryAddress: string;
  vips: string[];
  password?: string;
  /**
   * Unicast peers (empty: multicast). In unicast mode the TTL check is skipped (keepalived) and
   * only adverts from these addresses are accepted; in multicast mode TTL/hop limit 255 is required.
   */
  unicastPeers: readonly string[];
}

export interface TransitionInfo {
  from: VrrpState;
  to: VrrpState;
  priority: number;
  reason: string;
}

export interface MachineHooks {
  /** Send one advertisement with this priority (0 = "I am leaving"). */
  send(priority: number): void;
  /** Called after every state change, in order. The instance takes the VIPs on MASTER and releases them on leaving it. */
  transition(info: TransitionInfo): void;
  /**
   * Sync group (keepalived's vrrp_sync_group, sync.ts): may this instance become Master now?
   * Only when every member wants to (keepalived's vrrp_sync_can_goto_master); otherwise it waits
   * another Master_Down_Interval and asks again. Absent: always.
   */
  mayBecomeMaster?(): boolean;
  /** Sync group: may this instance leave Fault now that its own tracking is fine (no other member faulted)? Absent: always. */
  mayLeaveFault?(): boolean;
}

export interface MachineCounters {
  received: number;
  accepted: number;
  dropped: Record<DropReason, number>;
  checksumVariants: Partial<Record<ChecksumVariant, number>>;
  sent: number;
  priorityZeroSent: number;
  priorityZeroReceived: number;
  transitions: number;
  becameMaster: number;
  intervalMismatch: number;
}

export interface MachineStatus {
  name: string;
  state: VrrpState;
  priority: number;
  effectivePriority: number;
  masterAddress?: string;
  masterPriority?: number;
  masterAdverIntervalMs: number;
  masterDownIntervalMs: number;
  counters: MachineCounters;
  lastTransition?: TransitionInfo & { at: number };
}

export class VrrpMachine {
  private cfg: MachineConfig;
  private hooks: MachineHooks;
  private timers: Timers;
  private log?: Logger;
  private st: VrrpState = 'INIT';
  private effPriority: number;
  private fault = false;
  /** In FAULT because another member of the sync group is (not by its own tracking). */
  private syncFaulted = false;
  /** The election says Master (its Master_Down timer ran out, or a priority 0 came) but the sync group holds it back. */
  private wantMaster = false;
  private masterAdverIntervalMs: number;
  private timer: unknown;
  private timerDeadline?: number;
  private preemptAt?: number;
  private masterAddr?: string;
  private masterPrio?: number;
  private lastTransition?: TransitionInfo & { at: number };
  private expect: Expect;
  private primary: string;
  /** Last time a drop of each reason was logged (drops are counted always, logged at most once a minute per reason). */
  private dropLoggedAt = new Map<DropReason, number>();
  readonly counters: MachineCounters;

  constructor(cfg: MachineConfig, hooks: MachineHooks, timers: Timers = realTimers, log?: Logger) {
    this.cfg = cfg;
    this.hooks = hooks;
    this.timers = timers;
    this.log = log;
    this.effPriority = cfg.priority;
    this.masterAdverIntervalMs = cfg.intervalMs;
    this.primary = canonicalAddress(cfg.primaryAddress);
    this.expect = {
      vrid: cfg.vrid,
      version: cfg.version,
      addresses: cfg.vips,
      intervalMs: cfg.version === 2 ? cfg.intervalMs : undefined,
      password: cfg.password,
      checkTtl: cfg.unicastPeers.length === 0,
      peers: cfg.unicastPeers.length > 0 ? cfg.unicastPeers.map(canonicalAddress) : undefined,
    };
    this.counters = {
      received: 0,
      accepted: 0,
      dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>,
      checksumVariants: {},
      sent: 0,
      priorityZeroSent: 0,
      priorityZeroReceived: 0,
      transitions: 0,
      becameMaster: 0,
      intervalMismatch: 0,
    };
  }

  get state(): VrrpState {
    return this.st;
  }

  get effectivePriority(): number {
    return this.effPriority;
  }

  /** Skew_Time in ms: v2 (256 − Priority)/256 s; v3 ((256 − Priority) × Master_Adver_Interval)/256. */
  skewMs(): number {
    const p = this.effPriority;
    return this.cfg.version === 2 ? ((256 - p) * 1000) / 256 : ((256 - p) * this.masterAdverIntervalMs) / 256;
  }

  /** Master_Down_Interval in ms: 3 × Master_Adver_Interval + Skew_Time. */
  masterDownMs(): number {
    const adver = this.cfg.version === 2 ? this.cfg.intervalMs : this.masterAdverIntervalMs;
    return 3 * adver + this.skewMs();
  }

  /** When the running timer (advert timer in MASTER, master-down timer in BACKUP) fires, in Timers.now() units. */
  get deadline(): number | undefined {
    return this.timerDeadline;
  }

  status(): MachineStatus {
    return {
      name: this.cfg.name,
      state: this.st,
      priority: this.cfg.priority,
      effectivePriority: this.effPriority,
      masterAddress: this.st === 'MASTER' ? this.primary : this.masterAddr,
      masterPriority: this.st === 'MASTER' ? this.effPriority : this.masterPrio,
      masterAdverIntervalMs: this.masterAdverIntervalMs,
      masterDownIntervalMs: this.masterDownMs(),
      counters: structuredClone(this.counters),
      lastTransition: this.lastTransition,
    };
  }

  /** Leave INIT: the owner (255) becomes Master at once, everyone else Backup. */
  start(): void {
    if (this.st !== 'INIT') return;
    if (this.fault) return this.go('FAULT', 'a weight-0 tracker is failing at startup');
    if (this.effPriority === 255) return this.becomeMaster('address owner (priority 255) starts as master');
    this.becomeBackup('startup');
    if (this.cfg.preemptDelayMs > 0) this.preemptAt = this.timers.now() + this.cfg.preemptDelayMs;
  }

  /** Graceful stop: a Master sends priority 0 so the Backup takes over after its skew time only. */
  stop(): void {
    if (this.st === 'STOP') return;
    const wasMaster = this.st === 'MASTER';
    this.clearTimer();
    if (wasMaster) this.sendAdvert(0);
    this.go('STOP', 'stopped');
  }

  /**
   * New effective priority and fault flag from tracking (see track.ts). The
   * owner's priority is never adjusted; a fault takes the instance out of the election.
   */
  setPriority(effective: number, fault: boolean): void {
    const p = this.cfg.priority === 255 ? 255 : Math.min(254, Math.max(1, Math.round(effective)));
    const changed = p !== this.effPriority;
    this.effPriority = p;
    const wasFault = this.fault;
    this.fault = fault;
    if (this.st === 'INIT' || this.st === 'STOP') return;
    if (fault && !wasFault) {
      const wasMaster = this.st === 'MASTER';
      this.clearTimer();
      if (wasMaster) this.sendAdvert(0);
      return this.go('FAULT', 'a weight-0 tracker is failing');
    }
    if (fault) this.syncFaulted = false; // its own fault keeps it in Fault now
    if (!fault && wasFault && this.st === 'FAULT') {
      if (this.hooks.mayLeaveFault && !this.hooks.mayLeaveFault()) {
        this.syncFaulted = true; // another member is still faulted: stay, the group clears it
        return;
      }
      if (this.effPriority === 255) return this.becomeMaster('fault cleared; address owner');
      return this.becomeBackup('fault cleared');
    }
    if (changed) {
      this.log?.info({ priority: p }, 'effective priority changed');
      // A Master announces a new priority at once so a better Backup can preempt without waiting an interval.
      if (this.st === 'MASTER') {
        this.sendAdvert(this.effPriority);
        this.armAdvertTimer();
      }
    }
  }

  /** One received VRRP message (IP payload) with what the IP layer said about it. Never throws. */
  handlePacket(payload: Uint8Array, meta: RxMeta): DropReason | 'accepted' {
    this.counters.received++;
    let r;
    try {
      r = decodeAdvert(payload, meta, this.expect);
    } catch (err) {
      // decodeAdvert is written not to throw; if it ever does, it is a bad packet, not a crash.
      this.counters.dropped.truncated++;
      this.log?.warn({ err }, 'decoder threw on a received packet');
      return 'truncated';
    }
    if (!r.ok) {
      this.counters.dropped[r.reason]++;
      this.logDrop(r.reason, meta.src, r.message);
      return r.reason;
    }
    if (r.src === this.primary) {
      this.counters.dropped.own++;
      return 'own';
    }
    this.counters.accepted++;
    this.counters.checksumVariants[r.checksum] = (this.counters.checksumVariants[r.checksum] ?? 0) + 1;
    this.onAdvert(r.advert, r.src);
    return 'accepted';
  }

  private logDrop(reason: DropReason, src: string, message: string): void {
    if (!this.log || reason === 'vrid') return; // other VRIDs on the segment are normal
    const now = this.timers.now();
    const last = this.dropLoggedAt.get(reason);
    if (last !== undefined && now - last < 60_000) return;
    this.dropLoggedAt.set(reason, now);
    this.log.warn(
      { reason, src, dropped: this.counters.dropped[reason] },
      `dropping VRRP packets: ${message} (logged at most once a minute per reason; see counters)`,
    );
  }

  private onAdvert(a: Advert, src: string): void {
    if (a.priority === 0) this.counters.priorityZeroReceived++;
    if (this.cfg.version === 3 && a.intervalMs !== this.cfg.intervalMs && a.intervalMs !== this.masterAdverIntervalMs) {
      this.counters.intervalMismatch++;
      this.log?.warn(
        { src, theirs: a.intervalMs, ours: this.cfg.intervalMs },
        'advert interval differs from ours: following the master (RFC 5798 §6.4.2)',
      );
    }
    if (this.st === 'BACKUP') return this.backupRx(a, src);
    if (this.st === 'MASTER') return this.masterRx(a, src);
    // INIT, FAULT, STOP: adverts are counted and ignored.
  }

  private backupRx(a: Advert, src: string): void {
    if (a.priority === 0) {
      // The master is leaving: take over after the skew time only.
      this.armTimer(this.skewMs(), () => this.tryMaster('master sent priority 0'));
      return;
    }
    const now = this.timers.now();
    let accept = !this.cfg.preempt || a.priority >= this.effPriority;
    if (!accept && this.cfg.preemptDelayMs > 0) {
      // keepalived: keep accepting a lower-priority master until the preempt delay has passed.
      if (this.preemptAt === undefined) this.preemptAt = now + this.cfg.preemptDelayMs;
      accept = now < this.preemptAt;
    }
    if (a.priority > this.effPriority && this.cfg.preemptDelayMs > 0) this.preemptAt = undefined;
    if (!accept) return; // A lower-priority master: let Master_Down_Timer run out and preempt.
    this.wantMaster = false;
    this.masterAddr = src;
    this.masterPrio = a.priority;
    if (this.cfg.version === 3) this.masterAdverIntervalMs = a.intervalMs;
    this.armTimer(this.masterDownMs(), () => this.tryMaster('master down timer expired'));
  }

  private masterRx(a: Advert, src: string): void {
    if (a.priority === 0) {
      // Another router is leaving: make sure everyone hears the current master at once.
      this.sendAdvert(this.effPriority);
      this.armAdvertTimer();
      return;
    }
    const higher =
      a.priority > this.effPriority || (a.priority === this.effPriority && compareAddress(src, this.primary) > 0);
    if (higher) {
      this.masterAddr = src;
      this.masterPrio = a.priority;
      if (this.cfg.version === 3) this.masterAdverIntervalMs = a.intervalMs;
      if (a.priority === 255 && this.effPriority === 255)
        this.log?.error({ src }, 'two address owners (priority 255) for one VRID: configuration error');
      this.becomeBackup(
        a.priority > this.effPriority
          ? `higher priority ${a.priority} from ${src}`
          : `equal priority from higher address ${src}`,
      );
      return;
    }
    // A lower-priority router thinks it is master (split brain healing, or it just started):
    // answer at once so it steps down now rather than after our next interval (RFC 9568 / keepalived default).
    this.sendAdvert(this.effPriority);
    this.armAdvertTimer();
  }

  private becomeMaster(reason: string): void {
    this.wantMaster = false;
    this.sendAdvert(this.effPriority);
    this.masterAddr = undefined;
    this.masterPrio = undefined;
    this.counters.becameMaster++;
    this.armAdvertTimer();
    this.go('MASTER', reason);
  }

  private becomeBackup(reason: string): void {
    this.wantMaster = false;
    this.armTimer(this.masterDownMs(), () => this.tryMaster('master down timer expired'));
    this.go('BACKUP', reason);
  }

  /** The election says Master; a sync group may hold it back until every member agrees. */
  private tryMaster(reason: string): void {
    this.wantMaster = true;
    if (this.hooks.mayBecomeMaster && !this.hooks.mayBecomeMaster()) {
      this.armTimer(this.masterDownMs(), () => this.tryMaster(reason));
      return;
    }
    this.becomeMaster(reason);
  }

  // --- sync group (sync.ts): another member's transition moves this one --------------------

  /** Wants (or holds) Master: what the other members of a sync group wait for. */
  get wantsMaster(): boolean {
    return this.st === 'MASTER' || (this.st === 'BACKUP' && this.wantMaster);
  }

  /** A fault of its own tracking (not the sync group's). */
  get ownFault(): boolean {
    return this.fault;
  }

  /** Another member became Master (every member wanted it): a Backup follows. */
  syncMaster(reason: string): void {
    if (this.st === 'BACKUP') this.becomeMaster(reason);
  }

  /** Another member left Master for Backup: a Master follows (priority 0, so the peer's member takes over at once). */
  syncBackup(reason: string): void {
    if (this.st !== 'MASTER') return;
    this.sendAdvert(0);
    this.becomeBackup(reason);
  }

  /** Another member went to Fault: this one follows (a Master sends priority 0 first). */
  syncFault(reason: string): void {
    if (this.st !== 'MASTER' && this.st !== 'BACKUP') return;
    const wasMaster = this.st === 'MASTER';
    this.clearTimer();
    if (wasMaster) this.sendAdvert(0);
    this.syncFaulted = true;
    this.go('FAULT', reason);
  }

  /** No member is faulted any more: an instance in Fault only for the group's sake becomes Backup. */
  syncFaultCleared(reason: string): void {
    if (this.st !== 'FAULT' || this.fault || !this.syncFaulted) return;
    this.syncFaulted = false;
    if (this.effPriority === 255) return this.becomeMaster(reason);
    this.becomeBackup(reason);
  }

  private armAdvertTimer(): void {
    this.armTimer(this.cfg.intervalMs, () => {
      this.sendAdvert(this.effPriority);
      this.armAdvertTimer();
    });
  }

  private sendAdvert(priority: number): void {
    this.counters.sent++;
    if (priority === 0) this.counters.priorityZeroSent++;
    try {
      this.hooks.send(priority);
    } catch (err) {
      this.log?.error({ err }, 'sending an advertisement failed');
    }
  }

  private armTimer(ms: number, fn: () => void): void {
    this.clearTimer();
    this.timerDeadline = this.timers.now() + ms;
    this.timer = this.timers.set(() => {
      this.timer = undefined;
      this.timerDeadline = undefined;
      fn();
    }, ms);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
    this.timerDeadline = undefined;
  }

  private go(to: VrrpState, reason: string): void {
    const from = this.st;
    if (from === to) return;
    this.st = to;
    this.counters.transitions++;
    const info: TransitionInfo = { from, to, priority: this.effPriority, reason };
    this.lastTransition = { ...info, at: Date.now() };
    this.log?.info(info, `${from} -> ${to}: ${reason}`);
    try {
      this.hooks.transition(info);
    } catch (err) {
      this.log?.error({ err }, 'state transition hook failed');
    }
  }
}
