// One VRRP instance on one interface: the state machine (machine.ts) wired to
// the raw socket (sockets.ts), the interface addresses (net/address.ts),
// gratuitous ARP / unsolicited NA (frames.ts), tracking (track.ts) and notify
// hooks (exec.ts).
//
// On MASTER: add the VIPs, announce them (repeat × interval, then a periodic
// refresh). On leaving MASTER (BACKUP, FAULT, STOP): stop announcing, remove
// them. A VIP with `dev` lives on that other interface and moves with the rest
// (keepalived's `ADDR dev IFACE`: LVS-NAT's inner gateway next to the VIP); its
// interface is tracked (weight 0: down = Fault) unless track.interfaces names it,
// since a Master that cannot hold its gateway cannot serve. stop() sends priority 0 first so the Backup takes over after its skew time.
// Tracking inputs the daemon owns ("XDP attached", "pool has a healthy backend")
// come in through setXdpAttached() / setPoolHealthy().

import { readFileSync } from 'node:fs';
import type { ResolvedVrrpInstanceConfig } from '../config';
import { XdError } from '../errors';
import type { Logger } from '../log';
import { Rtnl } from '../net/address';
import { DROP_REASONS, VRRP_MCAST4, VRRP_MCAST6, encodeAdvert, type DropReason, type RxMeta } from './codec';
import { NotifyQueue, runCommand } from './exec';
import { lookupUser, type UserIds } from '../config';
import { gratuitousArp, unsolicitedNa } from './frames';
import { canonicalAddress } from '../net/inet';
import {
  VrrpMachine,
  realTimers,
  type MachineStatus,
  type Timers,
  type TransitionInfo,
  type VrrpState,
} from './machine';
import { VrrpSocket, sendFrame } from './sockets';
import { Tracker, effectivePriority } from './track';
import type { SyncGroup } from './sync';

export interface VrrpInstanceStatus extends MachineStatus {
  interface: string;
  /** The sync group it fails over with (sync.ts). */
  syncGroup?: string;
  vrid: number;
  version: 2 | 3;
  family: 4 | 6;
  vips: string[];
  primaryAddress?: string;
  mode: 'multicast' | 'unicast';
  trackers: { name: string; weight: number; ok: boolean }[];
  announcementsSent: number;
  vipErrors: number;
  notifyRuns: number;
  notifyFailures: number;
  /** Datagrams dropped before decoding because the JS thread fell behind. */
  socketQueueDrops: number;
  transitions: (TransitionInfo & { at: string })[];
}

export interface VrrpInstanceOptions {
  log: Logger;
  /** Injected timers for the state machine (tests); real timers by default. */
  timers?: Timers;
  /** Called after every state change, in order (for the daemon: metrics, status pushes). */
  onTransition?: (t: TransitionInfo & { instance: string }) => void;
}

const MAX_TRANSITION_HISTORY = 20;

export class VrrpInstance {
  readonly cfg: ResolvedVrrpInstanceConfig;
  private log: Logger;
  private rt = new Rtnl();
  private sock?: VrrpSocket;
  private machine?: VrrpMachine;
  private trackers: Tracker[] = [];
  private xdpTracker?: Tracker;
  /** Always there: "this director can serve" from the daemon (fresh health, TX errors not rising); track.xdp's weight, else 0 (Fault). */
  private directorTracker: Tracker;
  private poolTrackers = new Map<string, Tracker>();
  private ifindex = 0;
  private mac: Buffer = Buffer.alloc(6);
  /** Index and MAC of every interface a VIP lives on (the instance's and each dev). */
  private links = new Map<string, { index: number; mac: Buffer }>();
  /** track.interfaces plus each VIP dev interface not listed there (weight 0). */
  private readonly trackedInterfaces: { name: string; weight: number }[];
  private primary?: string;
  private notify: NotifyQueue;
  private addrChain: Promise<void> = Promise.resolve();
  private announceTimers: NodeJS.Timeout[] = [];
  private refreshTimer?: NodeJS.Timeout;
  private trackTimers = new Set<NodeJS.Timeout>();
  private announcementsSent = 0;
  private vipErrors = 0;
  private history: (TransitionInfo & { at: string })[] = [];
  private stopped = false;
  private timers: Timers;
  private onTransitionCb?: VrrpInstanceOptions['onTransition'];
  private scriptIds?: UserIds;
  private group?: SyncGroup;

  constructor(cfg: ResolvedVrrpInstanceConfig, opts: VrrpInstanceOptions) {
    this.cfg = cfg;
    this.log = opts.log.child({ component: 'vrrp', instance: cfg.name });
    this.timers = opts.timers ?? realTimers;
    this.onTransitionCb = opts.onTransition;
    // script_user: track and notify scripts run as it (keepalived's script_user); absent: as the daemon's user.
    if (cfg.scriptUser) {
      this.scriptIds = lookupUser(cfg.scriptUser);
      if (!this.scriptIds)
        throw new XdError(
          'XD_ERR_CONFIG_INVALID',
          `vrrp instance ${cfg.name}: script_user ${cfg.scriptUser} does not exist: create it (useradd --system --no-create-home --shell /usr/sbin/nologin ${cfg.scriptUser}) or remove script_user`,
        );
    }
    this.notify = new NotifyQueue(cfg.notify, this.log, undefined, this.scriptIds);
    this.trackedInterfaces = [...cfg.track.interfaces];
    for (const v of cfg.vips) {
      if (v.dev && v.dev !== cfg.interface && !this.trackedInterfaces.some((t) => t.name === v.dev))
        this.trackedInterfaces.push({ name: v.dev, weight: 0 });
    }
    for (const t of this.trackedInterfaces)
      this.trackers.push(new Tracker({ name: `interface:${t.name}`, weight: t.weight }));
    if (cfg.track.xdp)
      this.trackers.push((this.xdpTracker = new Tracker({ name: 'xdp', weight: cfg.track.xdp.weight })));
    this.trackers.push((this.directorTracker = new Tracker({ name: 'director', weight: cfg.track.xdp?.weight ?? 0 })));
    for (const p of cfg.track.pools) {
      const t = new Tracker({ name: `pool:${p.service}`, weight: p.weight });
      this.poolTrackers.set(p.service, t);
      this.trackers.push(t);
    }
    for (const s of cfg.track.scripts)
      this.trackers.push(new Tracker({ name: `script:${s.command}`, weight: s.weight, rise: s.rise, fall: s.fall }));
  }

  get state(): VrrpState {
    return this.machine?.state ?? 'INIT';
  }

  /** Resolve the interface, open the socket, release stale VIPs, start tracking and the state machine. */
  async start(): Promise<void> {
    const c = this.cfg;
    const link = await this.rt.link(c.interface);
    this.ifindex = link.index;
    if (link.mac.length === 6) this.mac = link.mac;
    this.links.set(c.interface, { index: link.index, mac: this.mac });
    for (const dev of new Set(c.vips.map((v) => v.dev).filter((d): d is string => !!d && d !== c.interface))) {
      let l: Awaited<ReturnType<Rtnl['link']>>;
      try {
        l = await this.rt.link(dev);
      } catch (err) {
        throw new XdError(
          'XD_ERR_VRRP',
          `vrrp instance ${c.name}: a VIP lives on ${dev} (dev ${dev}), which cannot be found: ${(err as Error).message}; create the interface or fix the VIP's dev`,
          { cause: err, detail: { interface: dev } },
        );
      }
      this.links.set(dev, { index: l.index, mac: l.mac.length === 6 ? l.mac : Buffer.alloc(6) });
    }
    this.primary = await this.findPrimary();
    const unicast = c.unicast_peers.length > 0;
    // A previous run killed while Master leaves its VIPs behind: we start as Backup, so they go.
    await this.removeVips();
    const vips = c.vips.map((v) => canonicalAddress(v.address));
    this.machine = new VrrpMachine(
      {
        name: c.name,
        vrid: c.vrid,
        version: c.version,
        family: c.family,
        priority: c.priority,
        intervalMs: c.advert_interval,
        preempt: c.preempt,
        preemptDelayMs: c.preempt_delay,
        primaryAddress: this.primary,
        vips,
        password: c.auth?.password,
        unicastPeers: c.unicast_peers,
      },
      {
        send: (p) => this.sendAdvert(p),
        transition: (t) => this.onTransition(t),
        mayBecomeMaster: () => this.group?.mayBecomeMaster(this) ?? true,
        mayLeaveFault: () => this.group?.mayLeaveFault(this) ?? true,
      },
      this.timers,
      this.log,
    );
    const m = this.machine;
    this.sock = new VrrpSocket({
      family: c.family,
      ifname: c.interface,
      multicast: !unicast,
      onPacket: (payload, meta) => this.onPacket(payload, meta),
      onDrop: (reason) => {
        m.counters.received++;
        m.counters.dropped[reason]++;
      },
    });
    this.startTracking();
    this.recompute();
    m.start();
    this.log.info(
      {
        vrid: c.vrid,
        version: c.version,
        priority: c.priority,
        primary: this.primary,
        mode: unicast ? 'unicast' : 'multicast',
        vips,
      },
      'vrrp instance started',
    );
  }

  /** Graceful stop: priority 0 advert if Master, VIPs removed, socket closed, queued notify hooks run. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.trackTimers) clearTimeout(t);
    this.trackTimers.clear();
    this.machine?.stop();
    this.cancelAnnouncements();
    // After any queued add/remove, so a late add cannot leave a VIP behind.
    this.queueAddr(() => this.removeVips());
    await this.addrChain;
    this.sock?.close();
    await this.notify.drain();
    this.rt.close();
  }

  /** Fail over with the other members of a sync group (sync.ts); before start(). */
  joinSyncGroup(g: SyncGroup): void {
    this.group = g;
  }

  /** Sync group: this member wants (or holds) Master. */
  get wantsMaster(): boolean {
    return this.machine?.wantsMaster ?? false;
  }

  /** Sync group: in Fault by its own tracking. */
  get ownFault(): boolean {
    return this.machine?.ownFault ?? false;
  }

  syncMaster(reason: string): void {
    this.machine?.syncMaster(reason);
  }

  syncBackup(reason: string): void {
    this.machine?.syncBackup(reason);
  }

  syncFault(reason: string): void {
    this.machine?.syncFault(reason);
  }

  syncFaultCleared(reason: string): void {
    this.machine?.syncFaultCleared(reason);
  }

  /** Tracking input from the daemon: the XDP program is attached on this director. */
  setXdpAttached(ok: boolean): void {
    if (this.xdpTracker?.set(ok)) this.trackerChanged(this.xdpTracker);
  }

  /** Tracking input from the daemon: this director can serve (daemon/liveness.ts). */
  setDirectorServing(ok: boolean): void {
    if (this.directorTracker.set(ok)) this.trackerChanged(this.directorTracker);
  }

  /** Tracking input from the daemon: `service` has at least one healthy backend. */
  setPoolHealthy(service: string, ok: boolean): void {
    const t = this.poolTrackers.get(service);
    if (t?.set(ok)) this.trackerChanged(t);
  }

  status(): VrrpInstanceStatus {
    const c = this.cfg;
    const base: MachineStatus = this.machine?.status() ?? {
      name: c.name,
      state: 'INIT',
      priority: c.priority,
      effectivePriority: c.priority,
      masterAdverIntervalMs: c.advert_interval,
      masterDownIntervalMs: 0,
      counters: {
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
      },
    };
    return {
      ...base,
      interface: c.interface,
      ...(c.sync_group ? { syncGroup: c.sync_group } : {}),
      vrid: c.vrid,
      version: c.version,
      family: c.family,
      vips: c.vips.map((v) => `${v.address}/${v.prefix}${v.dev ? ` dev ${v.dev}` : ''}`),
      primaryAddress: this.primary,
      mode: c.unicast_peers.length > 0 ? 'unicast' : 'multicast',
      trackers: this.trackers.map((t) => ({ name: t.name, weight: t.weight, ok: t.isOk })),
      announcementsSent: this.announcementsSent,
      vipErrors: this.vipErrors,
      notifyRuns: this.notify.runs,
      notifyFailures: this.notify.failures,
      socketQueueDrops: this.sock?.queueDrops ?? 0,
      transitions: [...this.history],
    };
  }

  // --- internals -------------------------------------------------------------

  /** The advert source: unicast_src, else the interface's first IPv4 address (not a VIP) / its IPv6 link-local address. */
  private async findPrimary(): Promise<string> {
    const c = this.cfg;
    if (c.unicast_src) return canonicalAddress(c.unicast_src);
    const vips = new Set(c.vips.map((v) => canonicalAddress(v.address)));
    const deadline = performance.now() + 3000;
    for (;;) {
      const addrs = (await this.rt.listAddresses(c.interface)).filter(
        (a) => a.family === c.family && !vips.has(a.address),
      );
      const pick = c.family === 4 ? (addrs.find((a) => !a.secondary) ?? addrs[0]) : addrs.find((a) => a.scope === 253);
      // An IPv6 link-local address still doing duplicate address detection cannot send yet.
      if (pick && !pick.tentative) return pick.address;
      if (!pick || performance.now() > deadline) {
        const what = c.family === 4 ? 'an IPv4 address' : 'an IPv6 link-local address';
        throw new XdError(
          'XD_ERR_VRRP',
          `vrrp instance ${c.name}: ${c.interface} has no usable ${what} to send adverts from: add one, or set unicast_src`,
          { detail: { interface: c.interface } },
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private onPacket(payload: Buffer, meta: RxMeta): void {
    if (this.stopped || !this.machine) return;
    this.machine.handlePacket(payload, meta);
  }

  private sendAdvert(priority: number): void {
    const c = this.cfg;
    if (!this.sock || !this.primary) return;
    const advert = {
      version: c.version,
      vrid: c.vrid,
      priority,
      intervalMs: c.advert_interval,
      addresses: c.vips.map((v) => v.address),
    };
    const dsts = c.unicast_peers.length > 0 ? c.unicast_peers : [c.family === 4 ? VRRP_MCAST4 : VRRP_MCAST6];
    for (const dst of dsts) {
      const msg = encodeAdvert(advert, {
        family: c.family,
        src: this.primary,
        dst,
        v4PseudoHeader: !c.v3_checksum_as_v2,
        password: c.auth?.password,
      });
      try {
        this.sock.send(msg, dst, this.primary);
      } catch (err) {
        this.log.warn({ err, dst }, 'advert not sent');
      }
    }
  }

  private onTransition(t: TransitionInfo): void {
    const at = new Date().toISOString();
    this.history.push({ ...t, at });
    if (this.history.length > MAX_TRANSITION_HISTORY) this.history.shift();
    if (t.to === 'MASTER') {
      this.queueAddr(() => this.addVips());
      this.queueAddr(async () => this.announce());
    } else if (t.from === 'MASTER') {
      this.cancelAnnouncements();
      this.queueAddr(() => this.removeVips());
    }
    this.notify.push(this.cfg.name, t.to, t.priority);
    if (!this.stopped) this.group?.transition(this, t);
    try {
      this.onTransitionCb?.({ ...t, instance: this.cfg.name });
    } catch (err) {
      this.log.error({ err }, 'transition listener failed');
    }
  }

  /** Address changes run one after another in transition order. */
  private queueAddr(fn: () => Promise<void>): void {
    this.addrChain = this.addrChain.then(fn).catch((err) => {
      this.vipErrors++;
      this.log.error({ err }, 'changing the VIPs failed');
    });
  }

  private async addVips(): Promise<void> {
    if (this.machine?.state !== 'MASTER') return; // left MASTER before this ran
    for (const v of this.cfg.vips) {
      const itf = v.dev ?? this.cfg.interface;
      try {
        await this.rt.addAddress(itf, v.address, v.prefix, this.links.get(itf)?.index || undefined);
      } catch (err) {
        this.vipErrors++;
        this.log.error({ err, vip: v.address }, 'could not add VIP');
      }
    }
  }

  private async removeVips(): Promise<void> {
    for (const v of this.cfg.vips) {
      const itf = v.dev ?? this.cfg.interface;
      try {
        await this.rt.removeAddress(itf, v.address, v.prefix, this.links.get(itf)?.index || undefined);
      } catch (err) {
        this.vipErrors++;
        this.log.error({ err, vip: v.address }, 'could not remove VIP');
      }
    }
  }

  /** Gratuitous ARP / unsolicited NA: `repeat` bursts `interval` apart, then every `refresh`. */
  private announce(): void {
    if (this.machine?.state !== 'MASTER') return;
    this.cancelAnnouncements();
    const g = this.cfg.garp;
    const burst = () => {
      if (this.machine?.state !== 'MASTER') return;
      this.sendAnnouncements();
    };
    burst();
    for (let i = 1; i < g.repeat; i++) this.announceTimers.push(setTimeout(burst, i * g.interval));
    if (g.refresh > 0) {
      const refresh = () => {
        burst();
        this.refreshTimer = setTimeout(refresh, g.refresh);
      };
      this.refreshTimer = setTimeout(refresh, g.refresh);
    }
  }

  private sendAnnouncements(): void {
    for (const v of this.cfg.vips) {
      // Each address is announced on its own interface, from that interface's MAC.
      const itf = v.dev ?? this.cfg.interface;
      const link = this.links.get(itf) ?? { index: this.ifindex, mac: this.mac };
      const frame =
        v.family === 4
          ? gratuitousArp(link.mac, v.address)
          : unsolicitedNa(link.mac, v.address, this.ipv6Forwarding(itf));
      try {
        sendFrame(link.index, frame, itf);
        this.announcementsSent++;
      } catch (err) {
        this.log.warn({ err, vip: v.address }, 'announcement not sent');
      }
    }
  }

  private ipv6Forwarding(itf: string): boolean {
    try {
      return readFileSync(`/proc/sys/net/ipv6/conf/${itf}/forwarding`, 'utf8').trim() === '1';
    } catch {
      return false;
    }
  }

  private cancelAnnouncements(): void {
    for (const t of this.announceTimers) clearTimeout(t);
    this.announceTimers = [];
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  private startTracking(): void {
    const c = this.cfg;
    // Interfaces: poll the operational state (cheap: one rtnetlink dump).
    if (this.trackedInterfaces.length > 0) {
      const poll = async () => {
        if (this.stopped) return;
        try {
          const links = await this.rt.links();
          for (const spec of this.trackedInterfaces) {
            const t = this.trackers.find((x) => x.name === `interface:${spec.name}`)!;
            const l = links.find((x) => x.name === spec.name);
            if (t.report(!!l && l.operUp)) this.trackerChanged(t);
          }
        } catch (err) {
          this.log.warn({ err }, 'interface tracking poll failed');
        }
        this.later(poll, 500);
      };
      void poll();
    }
    c.track.scripts.forEach((s, k) => {
      const t = this.trackers.find((x) => x.name === `script:${s.command}`) ?? this.trackers[k];
      const run = async () => {
        if (this.stopped) return;
        const r = await runCommand(s.command, [], s.timeout ?? s.interval, this.scriptIds);
        if (this.stopped) return;
        if (t && t.report(r.ok)) this.trackerChanged(t);
        this.later(run, s.interval);
      };
      void run();
    });
  }

  private later(fn: () => void, ms: number): void {
    if (this.stopped) return;
    const h = setTimeout(() => {
      this.trackTimers.delete(h);
      fn();
    }, ms);
    this.trackTimers.add(h);
  }

  private trackerChanged(t: Tracker): void {
    this.log.info(
      { tracker: t.name, ok: t.isOk, weight: t.weight },
      `tracker ${t.name} is ${t.isOk ? 'OK' : 'failing'}`,
    );
    this.recompute();
  }

  private recompute(): void {
    const e = effectivePriority(this.cfg.priority, this.trackers);
    this.machine?.setPriority(e.priority, e.fault);
  }
}
