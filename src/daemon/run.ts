// `xdirector run`: the daemon. Config and health produce a desired state; the
// dataplane is told the whole state and works out the difference; VRRP decides
// whether this director holds the VIPs. One reconcile at a time, coalesced.
import { xdirectorVersion } from '../version';
import path from 'node:path';
import type { Logger } from 'pino';
import { createLogger } from '../log';
import { XdError } from '../errors';
import type { Config } from '../config';
import type { Dataplane } from '../state/types';
import type { HealthMonitor } from '../health';
import type { InitialHealth } from '../health';
import type { BgpDirector } from '../bgp';
import type { SyncDaemon } from '../sync';
import { VrrpGroup, type DirectorTracking } from '../vrrp/group';
import { dataplaneKind, detachXdp, openDataplane, switchDataplane } from '../dataplane/select';
import { startAdmin, type AdminEndpoints } from '../api/admin';
import type { ApiHandlers } from '../api/server';
import { desiredState, type DesiredOutput } from '../desired';
import { renderMetrics } from './metrics';
import { DaemonHistory } from './history';
import { BackendMacs } from './macs';
import { DrainStore, migrateStateFiles } from './drains';
import { Operator } from './operator';
import { healthRoundMs } from '../config';
import { installCrashHandlers } from './crash';
import { ApplyRetry } from './apply-retry';
import { fixedSectionsChanged, healthInputsChanged } from './reload';
import type { DaemonStatus } from './status';
import { SystemdNotifier } from '../systemd/notify';
import { InstanceLock } from './lock';
import { monotonicMs } from '../clock';
import { Liveness, livenessOptions } from './liveness';

const MAC_REFRESH_MS = 30000;
const UNRESOLVED_RETRY_MS = 2000;
const TRACKING_MS = 500;
/** How often the XDP dataplane's driver TX error counters are polled (its alert, status, and liveness.ts: rising errors withdraw). */
const TX_ERRORS_POLL_MS = 2000;
/** How long start waits, beyond one check's timeouts, for the health monitor's first round. */
const FIRST_ROUND_SLACK_MS = 2000;
/** The rate estimator's window: counters are sampled this often and rates are the last two samples' difference (IPVS's estimator also ticks every 2 s). */
const RATE_INTERVAL_MS = 2000;

async function loadConfigFile(file: string): Promise<Config> {
  const { loadConfig } = await import('../config');
  return loadConfig(file);
}

export class Daemon {
  private cfg!: Config;
  private dataplane!: Dataplane;
  private readonly macs: BackendMacs;
  /** Drains, maintenance and run-time weights (operator.ts), restored at start. */
  private operator!: Operator;
  private health: HealthMonitor | null = null;
  private readonly vrrp: VrrpGroup;
  private bgp: BgpDirector | null = null;
  /** Connection sync (src/sync); undefined: no sync section, or not the XDP dataplane. */
  private sync?: SyncDaemon;
  /** The admin socket and the optional HTTP listener (api/admin.ts). */
  private admin?: AdminEndpoints;
  private last?: DesiredOutput;
  private lastApplyError: string | null = null;
  private lastApplyAt: string | null = null;
  private dataplaneWhy: { reason?: string } = {};
  private readonly applyRetry: ApplyRetry;
  /** Fault injection for tests: XDIRECTOR_TEST_FAULTS=apply makes SIGUSR2 fail the next 3 applies. */
  private injectedApplyFailures = 0;
  private chain: Promise<void> = Promise.resolve();
  private pending = false;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Its start, rates, backend state times, reload outcomes and the BGP hold-down's clock (status, metrics, the status page). */
  private readonly history = new DaemonHistory();
  private stopping = false;
  /** This instance's lock (lock.ts), taken before anything is touched, released last. */
  private lock?: InstanceLock;
  /** Progress and "can serve" (liveness.ts): withdraws BGP, fails VRRP's director tracker, withholds the watchdog. */
  private liveness: Liveness | null = null;
  onStop?: (code: number) => void;

  constructor(
    private readonly configFile: string,
    private readonly log: Logger,
  ) {
    this.macs = new BackendMacs(log);
    this.vrrp = new VrrpGroup(log);
    this.applyRetry = new ApplyRetry({ log: this.log, retry: () => this.kick('retry after a failed apply') });
    if (process.env.XDIRECTOR_TEST_FAULTS === 'apply') {
      process.on('SIGUSR2', () => {
        this.log.warn('fault injection (XDIRECTOR_TEST_FAULTS=apply): the next 3 applies fail');
        this.injectedApplyFailures = 3;
        this.kick('injected fault');
      });
    }
  }

  async start(): Promise<void> {
    this.cfg = await loadConfigFile(this.configFile);
    // Nothing is read yet (restore() below); stop --detach removes its files once a config is known.
    this.operator = new Operator({
      stateDir: this.cfg.stateDir,
      instance: this.cfg.instance,
      services: () => this.cfg.services,
      apply: (reason) => this.serial(() => this.reconcile(reason)),
      log: this.log,
    });
    // First, before pins, XDP, VRRP, BIRD or any socket: a second run of a running instance
    // is refused here with nothing changed.
    this.lock = await InstanceLock.acquire(this.cfg.instance, { config: path.resolve(this.configFile) });
    for (const w of this.cfg.warnings) this.log.warn(`config: ${w}`);
    // State files an older version kept beside the admin socket (in /run, emptied by a reboot) move to state_dir.
    const mig = migrateStateFiles(path.dirname(this.cfg.admin.socket), this.cfg.stateDir, this.cfg.instance);
    for (const m of mig.moved) this.log.info(`state file moved to state_dir: ${m}`);
    for (const m of mig.ignored) this.log.warn(`state file of an older version ignored: ${m}; remove it`);
    // A corrupt or unsafe state file stops the start here (XD_ERR_STATE_FILE, path and fix), before anything is applied.
    this.operator.restore();
    this.dataplane = await openDataplane(this.cfg, this.log, this.cfg.dataplane, this.dataplaneWhy);
    this.liveness = new Liveness(livenessOptions(this.cfg));
    await this.startHealth(await this.adoptedHealth());
    await this.refreshMacs();
    await this.reconcile('start');
    // Sync before VRRP and BGP: its first heartbeat makes the peers send every flow they have
    // before this director can be given a VIP or an ECMP share.
    await this.startSync();
    await this.startVrrp();
    await this.startBgp();
    this.admin = await startAdmin(this.cfg.admin, this.handlers(), this.log);
    this.timers.push(
      setInterval(
        () => void this.refreshMacs(false).then((changed) => changed && this.kick('neighbour')),
        UNRESOLVED_RETRY_MS,
      ),
    );
    this.timers.push(
      setInterval(
        () => void this.refreshMacs(true).then((changed) => changed && this.kick('neighbour refresh')),
        MAC_REFRESH_MS,
      ),
    );
    this.timers.push(setInterval(() => this.pollTxErrors(), TX_ERRORS_POLL_MS));
    this.timers.push(setInterval(() => void this.sampleRates(), RATE_INTERVAL_MS));
    this.timers.push(setInterval(() => this.checkLiveness(), TRACKING_MS));
    await this.sampleRates();
    this.log.info(
      { instance: this.cfg.instance, dataplane: this.dataplane.kind, services: this.cfg.services.length },
      'xdirector running',
    );
  }

  /**
   * The admin API's handler table, built once: the socket answers all of it, the HTTP listener
   * its subset (api/admin.ts).
   */
  private handlers(): ApiHandlers {
    return {
      status: async () => this.status(),
      metrics: async () => renderMetrics(await this.status()),
      drain: async (b) => this.operator.mark('drain', b, true),
      undrain: async (b) => this.operator.mark('drain', b, false),
      maint: async (b) => this.operator.mark('maint', b, true),
      unmaint: async (b) => this.operator.mark('maint', b, false),
      weight: async (b, w) => this.operator.weight(b, w),
      drainDirector: async (on) => this.drainDirector(on),
      dataplane: async (k) => this.switchDataplane(k),
      reload: async () => this.reload(),
      stop: async ({ detach }) => {
        setImmediate(() => void this.stop({ detach }).then(() => this.onStop?.(0)));
        return {
          message: detach
            ? 'stopping; the XDP program and pins will be removed'
            : 'stopping; the dataplane state is kept for a hot restart',
        };
      },
    };
  }

  /**
   * After a hot restart over an adopted dataplane (XDP: the pinned maps; IPVS: the kernel's
   * services and dests): the states the backends were in, for health to start from (issue: the
   * first result alone must not decide, one slow first login would re-hash a healthy backend's
   * flows). Both dataplanes answer through pinnedBackends(); empty after a fresh start.
   */
  private async adoptedHealth(): Promise<InitialHealth | undefined> {
    const pinned = this.dataplane.pinnedBackends?.() ?? [];
    if (pinned.length === 0) return undefined;
    const { initialFromPinned } = await import('../health');
    return initialFromPinned(this.cfg.services, pinned, { absentIsDown: this.dataplane.omitsDownBackends === true });
  }

  private async startHealth(initial?: InitialHealth): Promise<void> {
    const services = this.cfg.services;
    if (!services.some((s) => s.check !== 'none')) return;
    const { HealthMonitor } = await import('../health');
    const hm = new HealthMonitor({
      services,
      monitor: this.cfg.monitor,
      health: this.cfg.health,
      log: this.log.child({ component: 'health' }),
      ...(initial ? { initial } : {}),
    });
    hm.on('change', () => {
      if (this.health === hm) this.kick('health');
    });
    hm.on('round', () => this.liveness?.healthRound());
    // Without a seed the first round decides up/down; until it completes every backend would count as down.
    const first = hm.nextRound();
    hm.start();
    const limit = healthRoundMs(this.cfg.monitor, this.cfg.health) + FIRST_ROUND_SLACK_MS;
    await Promise.race([first, new Promise((r) => setTimeout(r, limit))]);
    this.health = hm;
  }

  private async startVrrp(): Promise<void> {
    // The config's list has each instance's interface resolved (default: the top-level interface).
    await this.vrrp.start(this.cfg.vrrp, () => this.tracking());
    if (this.vrrp.size) this.timers.push(setInterval(() => this.vrrp.track(this.tracking()), TRACKING_MS));
  }

  /** Connection sync: exports and imports flows through the XDP dataplane's pinned maps (src/sync). */
  private async startSync(): Promise<void> {
    if (!this.cfg.sync) return;
    if (this.dataplane.kind !== 'xdp') {
      this.log.warn('sync: connection sync works with the XDP dataplane only; the IPVS dataplane runs without it');
      return;
    }
    const { SyncDaemon } = await import('../sync');
    const { instancePinDir } = await import('../dataplane/xdp/dataplane');
    this.sync = await SyncDaemon.start(
      this.cfg.sync,
      instancePinDir(this.cfg.xdp.pinDir, this.cfg.instance),
      this.cfg.interface,
      this.log.child({ component: 'sync' }),
    );
  }

  /** BGP: announce the VIPs this director can serve (src/bgp), withdraw the others. */
  private async startBgp(): Promise<void> {
    if (!this.cfg.bgp) return;
    const { BgpSpeaker, BgpDirector, assertVipsNotLocal } = await import('../bgp');
    const announce = this.cfg.bgp.announce.map((a) => a.vip);
    assertVipsNotLocal(announce);
    const sp = new BgpSpeaker({
      cfg: this.cfg.bgp,
      instance: this.cfg.instance,
      log: this.log.child({ component: 'bgp' }),
      onSyncTurn: () => this.liveness?.bgpTurned(),
    });
    await sp.start();
    const drainFile = DrainStore.forInstance(this.cfg.stateDir, this.cfg.instance, 'director-drained');
    this.bgp = new BgpDirector({
      speaker: sp,
      announce,
      steady: this.history.steady,
      drainFile,
      persist: (save, what) => this.operator.persist(drainFile, save, what),
      log: this.log,
    });
    await this.bgp.restoreDrain();
    this.updateBgp();
    this.timers.push(setInterval(() => this.updateBgp(), 500));
  }

  private updateBgp(): void {
    if (!this.bgp || this.stopping) return;
    const attached = this.dataplane.attached();
    this.bgp.update({
      cannotServe: this.liveness?.cannotServe(),
      services: this.last?.state.services ?? [],
      dataplaneReady: attached && this.lastApplyError === null,
      dataplaneReason: attached
        ? `the last apply failed: ${this.lastApplyError}`
        : `the XDP program is not attached to ${this.cfg.interface}`,
      healthReady:
        !this.cfg.services.some((x) => x.check !== 'none') ||
        (this.health !== null && this.health.snapshot().round >= 1),
      health: this.cfg.health,
    });
  }

  /** Drain the whole director: withdraw every BGP VIP (src/bgp/director.ts). */
  async drainDirector(on: boolean): Promise<{ message: string }> {
    if (!this.bgp)
      throw new XdError(
        'XD_ERR_USAGE',
        `drain --director withdraws this director's BGP announcements, but ${this.configFile} has no bgp section: drain backends by name instead, or add bgp`,
      );
    return this.bgp.drain(on, () => this.updateBgp());
  }

  /** What VRRP tracks of this director now (vrrp/group.ts). */
  private tracking(): DirectorTracking {
    return {
      xdpAttached: this.dataplane.attached(),
      serving: this.liveness?.cannotServe() === undefined,
      services: this.last?.state.services ?? [],
    };
  }

  /** Resolve backend MACs (macs.ts). all=false: only the unresolved ones. Returns whether anything changed. */
  private async refreshMacs(all = true): Promise<boolean> {
    if (this.stopping) return false;
    return this.macs.refresh(this.cfg.interface, this.cfg.services, all, this.cfg.nat.interface);
  }

  /** XDP: read the driver's XDP TX error counters (raises / clears the TX alert, status shows them). */
  private pollTxErrors(): void {
    if (this.stopping || !this.dataplane.pollTxErrors) return;
    try {
      this.liveness?.txErrors(this.dataplane.pollTxErrors().txErrors);
    } catch (err) {
      this.log.warn({ err }, `polling the driver XDP TX error counters failed: ${(err as Error).message}`);
    }
  }

  /** Why the daemon makes no progress (the systemd watchdog is withheld), or undefined. */
  stalled(): string | undefined {
    return this.stopping ? undefined : this.liveness?.stalled();
  }

  /** The daemon's own liveness check (with or without systemd): the alert in status and the log (liveness.ts). */
  private checkLiveness(): void {
    if (this.stopping || !this.liveness) return;
    const c = this.liveness.checkAlert();
    if (c === 'cleared') this.log.info('this director can serve again: announcing and VRRP tracking resume');
    else if (c)
      this.log.error({ reason: c.why }, `ALERT ${c.raised}; BGP VIPs withdrawn, VRRP director tracker failing`);
  }

  /** Ask for a reconcile; several asks while one runs collapse into one more. */
  kick(reason: string): void {
    if (this.pending || this.stopping) return;
    this.pending = true;
    this.chain = this.chain.then(() => {
      this.pending = false;
      return this.reconcile(reason).catch((err) => {
        this.log.error(
          { err },
          `reconcile (${reason}) failed; the dataplane keeps its previous state and the next change retries`,
        );
      });
    });
  }

  private compute(): DesiredOutput {
    return desiredState({
      services: this.cfg.services,
      macs: this.macs.macs,
      tunnel: this.cfg.tunnel,
      mtus: this.macs.mtus,
      health: this.health ? this.health.snapshot() : null,
      drained: this.operator.drained,
      maint: this.operator.maint,
      weights: this.operator.weights,
    });
  }

  /** One counter sample for the rate estimator (rates.ts). */
  private async sampleRates(): Promise<void> {
    if (this.stopping) return;
    try {
      this.history.rates.sample(
        (await this.dataplane.status({ countFlows: false })).services,
        monotonicMs(),
        Date.now(),
      );
    } catch (err) {
      this.log.warn({ err }, `sampling counters for the rates failed: ${(err as Error).message}`);
    }
  }

  async reconcile(reason: string): Promise<void> {
    this.liveness?.reconcileStarted();
    try {
      await this.reconcileOnce(reason);
    } finally {
      this.liveness?.reconcileEnded();
    }
  }

  private async reconcileOnce(reason: string): Promise<void> {
    const out = this.compute();
    this.lastApplyAt = new Date().toISOString();
    try {
      if (this.injectedApplyFailures > 0) {
        this.injectedApplyFailures--;
        throw new XdError(
          'XD_ERR_BPF_MAP',
          'apply desired state: injected fault (XDIRECTOR_TEST_FAULTS=apply, SIGUSR2)',
        );
      }
      await this.dataplane.apply(out.state);
      this.lastApplyError = null;
      this.applyRetry.succeeded();
    } catch (err) {
      this.lastApplyError = (err as Error).message;
      // Retried with backoff; alert and status/metrics while the dataplane differs (apply-retry.ts).
      this.applyRetry.failed(err, reason);
      throw err;
    }
    for (const c of this.history.applied(this.last?.state, out.state))
      this.log.info(c, `${c.service}: backend ${c.backend} is ${c.state} (weight ${c.weight})`);
    this.last = out;
    this.vrrp.track(this.tracking());
    this.updateBgp();
    this.log.debug({ reason }, 'dataplane reconciled');
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  async reload(): Promise<{ message: string }> {
    try {
      const r = await this.reloadOnce();
      this.history.reloads.record(null);
      return r;
    } catch (err) {
      this.history.reloads.record(err);
      throw err;
    }
  }

  private async reloadOnce(): Promise<{ message: string }> {
    return this.serial(async () => {
      let next: Config;
      try {
        next = await loadConfigFile(this.configFile);
      } catch (err) {
        this.log.error({ err }, `reload refused, the running config stays: ${(err as Error).message}`);
        throw err;
      }
      const restartNeeded = fixedSectionsChanged(this.cfg, next);
      if (restartNeeded.length) {
        const err = new XdError(
          'XD_ERR_CONFIG_INVALID',
          `${this.configFile}: ${restartNeeded.join(', ')} cannot change on reload; the running config stays; restart xdirector to apply them`,
        );
        this.log.error({ err }, err.message);
        throw err;
      }
      for (const w of next.warnings) this.log.warn(`config: ${w}`);
      const prev = this.cfg;
      const prevHealth = this.health;
      const keepHealth = !healthInputsChanged(prev, next);
      this.cfg = next;
      try {
        if (!keepHealth) {
          // The new monitor runs its first round before it replaces the old one, so a
          // reload never shows healthy backends as down in between.
          this.health = null;
          await this.startHealth();
        }
        await this.refreshMacs(true);
        await this.bgp?.speaker.reconcileRoutes();
        await this.reconcile('reload');
      } catch (err) {
        const failed = this.health;
        this.cfg = prev;
        this.health = prevHealth;
        if (failed && failed !== prevHealth) await failed.stop().catch(() => undefined);
        this.log.error({ err }, `reload failed while applying; back to the previous config: ${(err as Error).message}`);
        await this.reconcile('reload rollback').catch(() => undefined);
        throw err;
      }
      if (!keepHealth && prevHealth)
        await prevHealth
          .stop()
          .catch((e: unknown) => this.log.error({ err: e }, 'stopping the previous health monitor failed'));
      this.log.info({ services: next.services.length }, 'config reloaded');
      const kept = [...this.operator.weights].map(([k, w]) => `${k}=${w}`).join(', ');
      return {
        message: `reloaded ${this.configFile}: ${next.services.length} service(s)${kept ? `; run-time weights kept, overriding the config's: ${kept} (xdirector weight TARGET --reset returns to the config's)` : ''}`,
      };
    });
  }

  async switchDataplane(name: string): Promise<{ message: string }> {
    const kind = dataplaneKind(name);
    return this.serial(async () => {
      const old = this.dataplane;
      if (old.kind === kind) return { message: `dataplane is already ${kind}` };
      // The new one is programmed with the live state before the old one is removed (select.ts).
      this.dataplane = await switchDataplane(old, kind, this.compute().state, this.cfg, this.log);
      this.dataplaneWhy = { reason: `switched to ${kind} at run time (xdirector dataplane)` };
      await this.reconcile('dataplane switch');
      this.log.info({ from: old.kind, to: kind }, `dataplane switched from ${old.kind} to ${kind}`);
      return { message: `dataplane switched from ${old.kind} to ${kind}` };
    });
  }

  async status(): Promise<DaemonStatus> {
    const dp = await this.dataplane.status();
    const snapshot = this.health ? this.health.snapshot() : null;
    const applyAlert = this.applyRetry.alert();
    return {
      instance: this.cfg.instance,
      version: xdirectorVersion(),
      pid: process.pid,
      startedAt: this.history.startedAt,
      config: path.resolve(this.configFile),
      dataplane: dp,
      lastApplyError: this.lastApplyError,
      lastApplyAt: this.lastApplyAt,
      dataplaneReason: this.dataplaneWhy.reason ?? null,
      apply: this.applyRetry.status(),
      health: snapshot,
      writers: this.last?.writers ?? {},
      alerts: [
        ...(snapshot ? snapshot.alerts.map((a) => a.message) : []),
        ...(applyAlert ? [applyAlert] : []),
        ...this.operator.alerts(),
        ...(this.liveness?.alert ? [this.liveness.alert] : []),
        ...(this.sync?.alerts() ?? []),
      ],
      ...this.operator.status(),
      rates: this.history.rates.current(),
      unresolved: (this.last?.unresolved ?? []).map((u) => ({
        service: u.service,
        backend: u.backend,
        error: this.macs.errorOf(u.address),
      })),
      vrrp: this.vrrp.status(),
      bgp: this.bgp ? this.bgp.speaker.status() : null,
      liveness: this.liveness?.status() ?? {
        cannotServe: null,
        stalled: null,
        healthAgeMs: null,
        limitMs: 0,
        txErrorsRising: false,
      },
      ...this.syncStatus(),
      backendStates: this.history.states.snapshot(),
      reloads: this.history.reloads.status(),
    };
  }

  /** Connection sync's status block, its alerts added to the others by the caller's spread. */
  private syncStatus(): { sync: DaemonStatus['sync'] } {
    return { sync: this.sync?.status() ?? null };
  }

  private stopped?: Promise<void>;

  /** After a fatal error: every VRRP instance sends priority 0 (if Master) and removes its VIPs. */
  async resignVrrp(): Promise<void> {
    this.stopping = true;
    await this.vrrp.resign();
  }

  async stop(opts: { detach?: boolean } = {}): Promise<void> {
    if (this.stopped) {
      // A stop is under way (e.g. SIGTERM, then `stop --detach`): finish it, then detach too.
      await this.stopped;
      if (opts.detach && this.dataplane?.kind === 'xdp' && this.cfg) {
        this.log.info(await detachXdp(this.cfg, this.log));
      }
      return;
    }
    this.stopped = this.doStop(opts);
    return this.stopped;
  }

  private async doStop(opts: { detach?: boolean }): Promise<void> {
    this.stopping = true;
    this.applyRetry.stop();
    for (const t of this.timers) clearInterval(t);
    // Withdraw first: the routers move new flows to the other directors while this one still forwards.
    if (this.bgp) await this.bgp.speaker.stop().catch((err: unknown) => this.log.error({ err }, 'bgp stop failed'));
    await this.chain.catch(() => undefined);
    await this.vrrp.stop();
    if (this.health) await this.health.stop().catch((err: unknown) => this.log.error({ err }, 'health stop failed'));
    await this.admin?.close();
    await this.sync?.stop().catch((err: unknown) => this.log.error({ err }, 'sync stop failed'));
    const dp = this.dataplane as Dataplane | undefined;
    let detachRefused = false;
    if (dp) {
      try {
        await dp.close({ keepState: !opts.detach });
      } catch (err) {
        if (!opts.detach) throw err;
        // e.g. XD_ERR_PIN_DIR_UNSAFE: the pins cannot be removed safely; stop as a plain stop does.
        this.log.error(
          { err },
          `stop --detach: ${(err as Error).message}; the XDP program stays attached and the maps pinned`,
        );
        detachRefused = true;
        await dp.close({ keepState: true });
      }
    }
    if (opts.detach && this.cfg && !detachRefused) {
      this.operator.removeFiles();
    }
    this.macs.close();
    if (!dp) this.log.info('stopped before a dataplane was set up: nothing was applied');
    else if (opts.detach && !detachRefused) this.log.info(`stopped; the ${dp.kind} state was removed`);
    else
      this.log.info(
        dp.kind === 'xdp'
          ? 'stopped; the XDP program stays attached and the maps stay pinned for the next run'
          : 'stopped; the IPVS services stay in the kernel for the next run',
      );
    // Last: until everything above is done, a new run of this instance is refused.
    await this.lock?.release();
  }
}

export async function runDaemon(configFile: string, opts: { logLevel?: string } = {}): Promise<number> {
  let level = opts.logLevel;
  if (!level) {
    try {
      level = (await loadConfigFile(configFile)).log?.level;
    } catch {
      /* reported below */
    }
  }
  const log = createLogger({ level });
  const d = new Daemon(configFile, log);
  const sd = new SystemdNotifier(log.child({ component: 'systemd' }));
  // Uncaught exception / unhandled rejection: resign VRRP, remove the VIPs, exit 70 (crash.ts).
  installCrashHandlers({ log, resign: () => d.resignVrrp() });
  try {
    await d.start();
    sd.ready(`serving (config ${configFile})`, () => d.stalled());
  } catch (err) {
    log.error({ err }, (err as Error).message);
    await d.stop().catch(() => undefined);
    process.stderr.write(`xdirector: ${(err as Error).message}\n`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    let done = false;
    const finish = (code: number) => {
      if (!done) {
        done = true;
        resolve(code);
      }
    };
    d.onStop = (code) => {
      sd.stopping();
      finish(code);
    };
    const onSignal = (sig: string) => {
      log.info({ signal: sig }, 'stopping');
      sd.stopping();
      void d.stop().then(
        () => finish(0),
        (err) => {
          log.error({ err }, 'stop failed');
          finish(1);
        },
      );
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
    process.on('SIGHUP', () => {
      sd.reloading();
      void d.reload().then(
        (r) => sd.reloaded(r.message),
        (err) => sd.reloaded(`reload failed, the previous config keeps serving: ${(err as Error).message}`),
      );
    });
  });
}

/** stop --detach without a running daemon: remove the program and pins of the config's instance. */
export async function detachInstance(configFile: string): Promise<string> {
  const cfg = await loadConfigFile(configFile);
  return detachXdp(cfg, createLogger({ level: 'warn' }));
}
