// HealthMonitor: checks every backend of every service once per interval (all in parallel,
// one checker per backend key however many services share it), applies rise/fall, derives
// roles, lag eligibility, lc weights, the writer election (election.ts) and alerts, and emits 'change' (at most
// once per round) when anything that affects routing changed. Each state, role, eligibility,
// writer and alert change is logged once, with the backend and the reason; nothing is logged
// per interval. The monitor password never reaches a log line, an error or the snapshot.
//
// It takes the already-parsed config (services, monitor and health sections): no second
// validation, no defaults of its own.
//
// Usage (daemon):
//   const hm = new HealthMonitor({ services: cfg.services, monitor: cfg.monitor, health: cfg.health, log });
//   hm.on('change', () => reconcile(desiredState({ services, health: hm.snapshot(), drained, macs })));
//   hm.start(); ... await hm.stop();

import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { XdError } from '../errors';
import type { HealthConfig, MonitorConfig } from '../config';
import { healthRoundMs } from '../config';
import type { ServiceConfig } from '../config';
import { electWriters, needsWriter } from './election';
import { LcDamper, lcTargetWeights } from './lc';
import { MysqlChecker, replicaLag, roleOf, type MysqlProbe } from './mysql-check';
import { readPassword } from './password';
import { initialRiseFall, riseFallStep, type RiseFallState } from './rise-fall';
import { tcpCheck } from './tcp-check';
import { scriptCheck } from './script-check';
import { lookupUser, type CheckScriptConfig, type UserIds } from '../config';
import type { BackendHealth, BackendRole, CheckKind, HealthAlert, HealthSnapshot, InitialHealth } from './types';

/** The already-parsed config sections (config/load.ts validated them and applied the defaults). */
export interface HealthMonitorOptions {
  services: readonly ServiceConfig[];
  /** Required when any backend uses check 'mysql'. */
  monitor?: MonitorConfig;
  health: HealthConfig;
  /**
   * Start from these states instead of "not checked yet" (a hot restart over an
   * adopted dataplane: src/health/adopt.ts). A seeded backend needs `fall`
   * failures to go down and `rise` successes to come up, from the first round on.
   */
  initial?: InitialHealth;
  log: Logger;
}

interface Entry {
  key: string;
  name: string;
  address: string;
  port: number;
  check: CheckKind;
  checker: MysqlChecker | null;
  /** check: script: the service's script and the ids of the user it runs as. */
  script?: { cfg: CheckScriptConfig; ids: UserIds };
  rf: RiseFallState;
  /** Reader eligibility: leaves at once (fall 1), returns after `rise` good readings. */
  reader: RiseFallState;
  /** Role from the last successful probe. */
  knownRole: BackendRole;
  lastWarning: string | null;
  h: BackendHealth;
  log: Logger;
}

// A backend shared by services with different checks is checked once, by the strongest check.
const RANK: Record<CheckKind, number> = { none: 0, tcp: 1, script: 2, mysql: 3 };

/** Beyond every check's own timeouts, how long a round may take before it is reported stuck. */
const ROUND_SLACK_MS = 2000;

/**
 * Fault injection for tests: with XDIRECTOR_TEST_FAULTS=stall-health, SIGUSR2 makes the health
 * rounds hang (none completes) until the next SIGUSR2.
 */
let testStall: { p: Promise<void>; release: () => void } | null = null;
if (process.env.XDIRECTOR_TEST_FAULTS === 'stall-health') {
  process.on('SIGUSR2', () => {
    if (testStall) {
      testStall.release();
      testStall = null;
      return;
    }
    let release!: () => void;
    const p = new Promise<void>((r) => {
      release = r;
    });
    testStall = { p, release };
  });
}

export class HealthMonitor extends EventEmitter {
  readonly health: HealthConfig;
  readonly monitor: MonitorConfig | undefined;
  private readonly services: readonly ServiceConfig[];
  private readonly entries: Entry[] = [];
  private readonly byKey = new Map<string, Entry>();
  private readonly log: Logger;
  private readonly writers = new Map<string, string | null>();
  private readonly alerts = new Map<string, HealthAlert>();
  private readonly damper: LcDamper;
  private readonly counters = { splitBrain: 0, noWriter: 0, alertsRaised: 0, checks: 0, failures: 0, writerChanges: 0 };
  private round = 0;
  private running = false;
  private loopDone: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  constructor(opts: HealthMonitorOptions) {
    super();
    this.health = opts.health;
    this.monitor = opts.monitor;
    this.services = opts.services;
    this.log = opts.log.child({ component: 'health' });
    this.damper = new LcDamper(this.health.lc_damping);

    const users = new Map<string, UserIds>();
    const scriptOf = (s: ServiceConfig): Entry['script'] => {
      const cs = s.checkScript;
      if (s.check !== 'script' || !cs) return undefined;
      let ids = users.get(cs.user);
      if (!ids) {
        ids = lookupUser(cs.user);
        if (!ids)
          throw new XdError(
            'XD_ERR_CONFIG_INVALID',
            `service ${s.name}: check script user ${cs.user} does not exist: create it (useradd --system --no-create-home --shell /usr/sbin/nologin ${cs.user}) or name an existing unprivileged user`,
          );
        users.set(cs.user, ids);
      }
      return { cfg: cs, ids };
    };
    const add = (b: ServiceConfig['backends'][number], check: CheckKind, s: ServiceConfig): void => {
      const key = b.key;
      const existing = this.byKey.get(key);
      if (existing) {
        if (RANK[check] > RANK[existing.check]) {
          existing.check = check;
          existing.script = scriptOf(s);
        }
        return;
      }
      const name = b.name;
      const e: Entry = {
        key,
        name,
        address: b.address,
        port: b.port,
        check,
        checker: null,
        script: scriptOf(s),
        rf: initialRiseFall(),
        reader: initialRiseFall(),
        knownRole: 'unknown',
        lastWarning: null,
        log: this.log.child({ backend: name }),
        h: {
          key,
          name,
          address: b.address,
          port: b.port,
          check,
          up: false,
          role: 'unknown',
          readOnly: null,
          superReadOnly: null,
          replication: null,
          lagSeconds: null,
          lagUnknownReason: null,
          readerEligible: false,
          threadsConnected: null,
          lcWeight: this.health.lc_damping.max_weight,
          serverId: null,
          version: null,
          lastError: null,
          lastErrorAt: null,
          previousError: null,
          lastChange: null,
          lastCheckAt: null,
          checks: 0,
          failures: 0,
          consecutiveOk: 0,
          consecutiveFail: 0,
        },
      };
      this.byKey.set(key, e);
      this.entries.push(e);
    };
    for (const s of this.services) for (const b of s.backends) add(b, s.check, s);

    const mysqlEntries = this.entries.filter((e) => e.check === 'mysql');
    if (mysqlEntries.length > 0 && !this.monitor) {
      throw new XdError(
        'XD_ERR_CONFIG_INVALID',
        `monitor: missing: backends ${mysqlEntries.map((e) => e.name).join(', ')} use check mysql, which needs a monitor: section (user and password_file or password_env)`,
      );
    }
    const m = this.monitor;
    if (m) {
      for (const e of mysqlEntries) {
        e.h.check = e.check;
        e.checker = new MysqlChecker({
          host: e.address,
          port: e.port,
          user: m.user,
          password: () => readPassword(m),
          connectTimeoutMs: m.connect_timeout,
          queryTimeoutMs: this.health.timeout,
          intervalMs: this.health.interval,
          freshConnectIntervalMs: this.health.fresh_connect_interval,
          sourceAddress: m.source_address,
          heartbeat: this.health.heartbeat,
        });
      }
    }
    for (const e of this.entries) {
      e.h.check = e.check;
      if (e.check !== 'mysql') e.h.role = 'none';
    }
    for (const s of this.services) if (needsWriter(s)) this.writers.set(s.name, null);
    if (opts.initial) this.seed(opts.initial);
  }

  /** Backends start as `initial` says (see HealthMonitorOptions.initial). */
  private seed(initial: InitialHealth): void {
    const seeded: string[] = [];
    for (const e of this.entries) {
      const i = initial.backends.get(e.key);
      if (!i) continue;
      e.rf = { up: i.up, okStreak: 0, failStreak: 0 };
      e.h.up = i.up;
      if (e.check === 'mysql') {
        e.knownRole = i.up && i.role ? i.role : 'unknown';
        e.h.role = i.up ? e.knownRole : 'unknown';
        e.reader = { up: i.readerEligible === true, okStreak: 0, failStreak: 0 };
        e.h.readerEligible = i.up && i.readerEligible === true;
      }
      seeded.push(`${e.name} ${i.up ? 'up' : 'down'}${e.check === 'mysql' && i.up && i.role ? ` (${i.role})` : ''}`);
    }
    for (const [service, key] of Object.entries(initial.writers ?? {})) {
      if (this.writers.has(service) && this.byKey.get(key)?.h.up) this.writers.set(service, key);
    }
    if (seeded.length)
      this.log.info(
        { seeded },
        `health starts from the adopted dataplane: ${seeded.join(', ')}; the first results count towards rise/fall`,
      );
  }

  /** Start checking (first round at once). Throws XdError if the monitor password cannot be read. */
  start(): void {
    if (this.running) return;
    if (this.monitor && this.entries.some((e) => e.check === 'mysql')) readPassword(this.monitor);
    this.running = true;
    this.log.info(
      {
        backends: this.entries.length,
        interval: this.health.interval,
        timeout: this.health.timeout,
        rise: this.health.rise,
        fall: this.health.fall,
      },
      'health checks started',
    );
    if (this.monitor && this.monitor.connect_timeout > this.health.interval) {
      // A round waits for its slowest check, so a hung backend would stretch every round.
      this.log.warn(
        { connectTimeout: this.monitor.connect_timeout, interval: this.health.interval },
        `monitor.connect_timeout (${this.monitor.connect_timeout} ms) exceeds health.interval (${this.health.interval} ms): a hung backend slows the checks of all backends; keep connect_timeout <= interval`,
      );
    }
    this.loopDone = this.loop();
  }

  /** Stop checking and close every connection. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake?.();
    testStall?.release();
    testStall = null;
    await this.loopDone;
    await Promise.all(this.entries.map((e) => e.checker?.close()));
    this.log.info('health checks stopped');
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const t0 = performance.now();
      // A round's deadline: every check has its own timeouts, so a round that outlives them all
      // is stuck. It is reported here; the daemon (daemon/liveness.ts) withdraws the director
      // while no round completes, since its snapshot grows stale.
      // Check scripts have timeouts of their own (at most health.interval, config/script.ts).
      const scriptMs = Math.max(0, ...this.entries.map((e) => e.script?.cfg.timeout ?? 0));
      const deadlineMs = Math.max(healthRoundMs(this.monitor, this.health), scriptMs) + ROUND_SLACK_MS;
      const overdue = setTimeout(
        () =>
          this.log.error(
            { deadlineMs },
            `health check round not finished within ${deadlineMs} ms: the health snapshot is going stale`,
          ),
        deadlineMs,
      );
      try {
        if (testStall) await testStall.p;
        await this.runRound();
      } catch (err) {
        this.log.error({ err }, 'health check round failed');
      } finally {
        clearTimeout(overdue);
      }
      const wait = this.health.interval - (performance.now() - t0);
      if (!this.running) break;
      if (wait > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, wait);
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wake = null;
      }
    }
  }

  private async checkOne(
    e: Entry,
    hc: HealthConfig,
  ): Promise<{ ok: boolean; error: string | null; probe: MysqlProbe | null; weight?: number | null }> {
    if (e.check === 'none') return { ok: true as const, error: null, probe: null };
    if (e.check === 'script' && e.script) {
      const r = await scriptCheck(e.script.cfg, e.script.ids, e.address, e.port);
      return { ok: r.ok, error: r.error, probe: null, weight: r.weight };
    }
    if (e.check === 'tcp' || !e.checker) {
      const r = await tcpCheck(e.address, e.port, hc.timeout, this.monitor?.source_address);
      return { ok: r.ok, error: r.error, probe: null };
    }
    const p = await e.checker.check();
    return { ok: p.ok, error: p.error, probe: p };
  }

  private async runRound(): Promise<void> {
    const hc = this.health;
    const results = await Promise.all(
      this.entries.map(async (e) => {
        const t0 = performance.now();
        const r = await this.checkOne(e, hc);
        return { ...r, ms: performance.now() - t0 };
      }),
    );
    if (!this.running) return;
    this.round++;
    const now = new Date().toISOString();
    let changed = this.round === 1;

    this.entries.forEach((e, i) => {
      const r = results[i];
      const h = e.h;
      h.checks++;
      this.counters.checks++;
      h.lastCheckAt = now;
      // Latency of the whole check (connect or kept-open queries), for metrics.
      h.lastCheckMs = Math.round(r.ms * 1000) / 1000;
      h.checkSecondsTotal = (h.checkSecondsTotal ?? 0) + r.ms / 1000;
      if (!r.ok) {
        h.failures++;
        this.counters.failures++;
        h.lastError = r.error;
        h.previousError = r.error;
        h.lastErrorAt = now;
      } else {
        h.lastError = null;
      }
      if (r.weight !== undefined && r.weight !== null && r.weight !== h.scriptWeight) {
        // keepalived's misc_dynamic: the script sets the weight, which stays until it sets another.
        e.log.info(
          { scriptWeight: r.weight, was: h.scriptWeight ?? null },
          `backend ${e.name} weight set by its check script: ${h.scriptWeight ?? 'configured'} -> ${r.weight}`,
        );
        h.scriptWeight = r.weight;
        changed = true;
      }
      const step = riseFallStep(e.rf, r.ok, hc.rise, hc.fall);
      e.rf = step.state;
      h.consecutiveOk = e.rf.okStreak;
      h.consecutiveFail = e.rf.failStreak;
      if (step.changed) {
        h.up = e.rf.up === true;
        h.lastChange = now;
        changed = true;
        if (h.up) e.log.info({ state: 'up', checks: h.checks }, `backend ${e.name} is up`);
        else e.log.warn({ state: 'down', reason: h.lastError }, `backend ${e.name} is down: ${h.lastError}`);
      }

      const p = r.probe;
      if (p && p.ok) {
        h.readOnly = p.readOnly;
        h.superReadOnly = p.superReadOnly;
        h.replication = p.replication ?? null;
        h.threadsConnected = p.threadsConnected;
        h.serverId = p.serverId;
        h.version = p.version;
        const warning = p.warnings.length ? p.warnings.join('; ') : null;
        if (warning) {
          h.lastError = warning;
          h.previousError = warning;
          h.lastErrorAt = now;
        }
        if (warning !== e.lastWarning) {
          if (warning) e.log.warn({ reason: warning }, `backend ${e.name}: ${warning}`);
          else if (e.lastWarning) e.log.info(`backend ${e.name}: resolved: ${e.lastWarning}`);
          e.lastWarning = warning;
        }
        const role = roleOf(p);
        if (role !== e.knownRole) {
          if (e.knownRole !== 'unknown' || role !== 'unknown') {
            e.log.info(
              {
                role,
                was: e.knownRole,
                readOnly: p.readOnly,
                replication: p.replication === undefined ? 'unknown' : (p.replication ?? 'none'),
              },
              `backend ${e.name} role ${e.knownRole} -> ${role}`,
            );
          }
          e.knownRole = role;
          changed = true;
        }
        const lag = replicaLag(p, hc.heartbeat !== undefined);
        h.lagSeconds = lag.lag;
        h.lagUnknownReason = lag.reason;
        const limitS = hc.max_replication_lag / 1000;
        const good = role === 'replica' && lag.lag !== null && lag.lag <= limitS;
        const rs = riseFallStep(e.reader, good, hc.rise, 1);
        e.reader = rs.state;
        if (rs.changed) {
          if (e.reader.up) {
            if (e.rf.up)
              e.log.info(
                { lag: lag.lag },
                `backend ${e.name} joins the readers pool (lag ${lag.lag} s <= ${limitS} s)`,
              );
          } else if (role === 'replica') {
            const why = lag.lag === null ? `lag unknown: ${lag.reason}` : `lag ${lag.lag} s > ${limitS} s`;
            e.log.warn({ lag: lag.lag, reason: why }, `backend ${e.name} leaves the readers pool: ${why}`);
          }
          changed = true;
        }
      }
      h.role = e.check !== 'mysql' ? 'none' : h.up ? e.knownRole : 'unknown';
      h.readerEligible = h.up && e.reader.up === true;
    });

    // lc weights from Threads_connected of the backends that are up.
    const threads = new Map<string, number>();
    for (const e of this.entries) if (e.h.up && e.h.threadsConnected !== null) threads.set(e.key, e.h.threadsConnected);
    const before = new Map(this.entries.map((e) => [e.key, e.h.lcWeight]));
    this.damper.update(lcTargetWeights(threads, hc.lc_damping.max_weight), this.round);
    const lcKeys = new Set<string>();
    for (const s of this.services) if (s.scheduler === 'lc') for (const b of s.backends) lcKeys.add(b.key);
    for (const e of this.entries) {
      e.h.lcWeight = this.damper.get(e.key) ?? e.h.lcWeight;
      if (lcKeys.has(e.key) && e.h.up && before.get(e.key) !== e.h.lcWeight) {
        e.log.info(
          { lcWeight: e.h.lcWeight, threadsConnected: e.h.threadsConnected },
          `backend ${e.name} lc weight ${before.get(e.key)} -> ${e.h.lcWeight}`,
        );
        changed = true;
      }
    }

    // Writer elections and alerts: the one election, published in the snapshot.
    const snapBackends = new Map(this.entries.map((e) => [e.key, e.h]));
    const names = (k: string): string => this.byKey.get(k)?.name ?? k;
    const election = electWriters(this.services, snapBackends, this.writers, hc.max_replication_lag);
    for (const [service, next] of election.writers) {
      const prev = this.writers.get(service) ?? null;
      if (next === prev) continue;
      this.writers.set(service, next);
      this.counters.writerChanges++;
      changed = true;
      if (next)
        this.log.info(
          { service, writer: names(next), was: prev ? names(prev) : null },
          `service ${service}: writer is now ${names(next)}${prev ? ` (was ${names(prev)})` : ''}`,
        );
      else
        this.log.warn(
          { service, was: prev ? names(prev) : null },
          `service ${service}: no writer${prev ? ` (was ${names(prev)})` : ''}`,
        );
    }
    const raised = election.alerts;
    for (const [id, a] of raised) {
      const cur = this.alerts.get(id);
      if (!cur) {
        this.alerts.set(id, { ...a, since: now });
        this.counters.alertsRaised++;
        if (a.kind === 'split-brain') this.counters.splitBrain++;
        if (a.kind === 'no-writer' || a.kind === 'ambiguous-writer') this.counters.noWriter++;
        this.log.warn({ alert: a.kind, service: a.service }, `ALERT ${a.message}`);
      } else if (cur.message !== a.message) {
        cur.message = a.message;
        this.log.warn({ alert: a.kind, service: a.service }, `ALERT ${a.message}`);
      }
    }
    for (const [id, a] of [...this.alerts]) {
      if (!raised.has(id)) {
        this.alerts.delete(id);
        this.log.info({ alert: a.kind, service: a.service }, `alert cleared: ${a.message}`);
      }
    }

    if (changed) this.emit('change', this.snapshot());
    this.emit('round', this.round);
  }

  /** A copy of the current state (safe to serialise: no secrets). */
  snapshot(): HealthSnapshot {
    return {
      at: new Date().toISOString(),
      round: this.round,
      backends: this.entries.map((e) => ({ ...e.h, replication: e.h.replication ? { ...e.h.replication } : null })),
      writers: Object.fromEntries(this.writers),
      alerts: [...this.alerts.values()].map((a) => ({ ...a })),
      counters: { ...this.counters },
    };
  }

  /** Resolves after the next completed check round (tests, and callers that want fresh state). */
  nextRound(): Promise<number> {
    return new Promise((resolve) => this.once('round', resolve));
  }

  /** The backend key for an operator-facing name or key (undefined if unknown): for drain commands. */
  resolveBackend(nameOrKey: string): string | undefined {
    if (this.byKey.has(nameOrKey)) return nameOrKey;
    return this.entries.find((e) => e.name === nameOrKey)?.key;
  }
}
