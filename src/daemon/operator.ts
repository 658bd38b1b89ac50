// The operator's decisions about backends at run time: drain, maintenance and run-time weights
// (`xdirector drain|undrain|maint|unmaint|weight`). One path for every way in: the admin socket
// and the HTTP listener call the same methods (through the daemon's one handler table). Each
// decision is written to its state file (drains.ts) first, then held here, then applied by one
// reconcile; desiredState() reads the sets and weights held here.
import path from 'node:path';
import type { Logger } from 'pino';
import { XdError } from '../errors';
import { WEIGHT_MAX, type ServiceConfig } from '../config';
import { resolveTarget } from '../desired';
import type { StateFile } from '../state/file';
import { DrainStore, WeightStore } from './drains';
import type { DaemonStatus } from './status';

/** A backend mark: drained (established flows finish) or in maintenance (they end; HAProxy's MAINT). */
export type Mark = 'drain' | 'maint';

/** What differs between the two marks: their file and their words (the rest is one path). */
const MARKS: Record<
  Mark,
  {
    file: 'drained' | 'maint';
    off: string;
    logOn: string;
    /** How the backend's flows fare while it is marked. */
    effect: string;
    logOff: string;
    answerOn: (target: string, where: string) => string;
    answerOff: (target: string, where: string) => string;
    still: string;
  }
> = {
  drain: {
    file: 'drained',
    off: 'undrain',
    logOn: 'drained',
    effect: 'established flows finish, no new flows',
    logOff: 'undrained',
    answerOn: (t, where) => `drained ${t} (${where}): established flows finish, new flows go elsewhere`,
    answerOff: (t, where) => `undrained ${t} (${where})`,
    still: 'still drained by',
  },
  maint: {
    file: 'maint',
    off: 'unmaint',
    logOn: 'in maintenance',
    effect: 'no new flows, established flows end',
    logOff: 'out of maintenance',
    answerOn: (t, where) =>
      `maint ${t} (${where}): no new flows, established flows end (re-hashed to another backend, which resets them)`,
    answerOff: (t, where) => `${t} out of maintenance (${where})`,
    still: 'still in maintenance by',
  },
};

export interface OperatorOptions {
  stateDir: string;
  instance: string;
  /** The running config's services (a reload replaces them): targets are resolved against these. */
  services: () => readonly ServiceConfig[];
  /** Apply the change: one reconcile, queued behind the running one (run.ts). */
  apply: (reason: string) => Promise<void>;
  log: Logger;
}

export class Operator {
  private readonly marks: Record<Mark, Set<string>> = { drain: new Set(), maint: new Set() };
  /** Run-time weights (`xdirector weight`) by target: what the weights file holds. They outlive reloads. */
  private weightMap = new Map<string, number>();
  /** State files whose last write failed (state file -> alert): the decision is in effect, not on disk. */
  private readonly notPersisted = new Map<string, string>();
  private readonly stores: Record<Mark, DrainStore>;
  private readonly weightStore: WeightStore;

  constructor(private readonly o: OperatorOptions) {
    this.stores = {
      drain: DrainStore.forInstance(o.stateDir, o.instance),
      maint: DrainStore.forInstance(o.stateDir, o.instance, 'maint'),
    };
    this.weightStore = WeightStore.forInstance(o.stateDir, o.instance);
  }

  /** Operator drains, BACKEND or SERVICE/BACKEND (desired/targets.ts): what the drains file holds. */
  get drained(): ReadonlySet<string> {
    return this.marks.drain;
  }

  /** Backends in maintenance (`xdirector maint`), targets like drains: what the maint file holds. */
  get maint(): ReadonlySet<string> {
    return this.marks.maint;
  }

  get weights(): ReadonlyMap<string, number> {
    return this.weightMap;
  }

  /**
   * The decisions of the previous run, from the state files. A corrupt or unsafe file stops the
   * start here (XD_ERR_STATE_FILE, path and fix), before anything is applied.
   */
  restore(): void {
    const log = this.o.log;
    this.marks.drain = this.stores.drain.load();
    if (this.marks.drain.size) log.info({ drained: [...this.marks.drain] }, 'drains restored from the previous run');
    this.marks.maint = this.stores.maint.load();
    if (this.marks.maint.size) log.info({ maint: [...this.marks.maint] }, 'maintenance restored from the previous run');
    this.weightMap = this.weightStore.load();
    if (this.weightMap.size)
      log.info(
        { weights: Object.fromEntries(this.weightMap) },
        "run-time weights restored from the previous run (they override the config's)",
      );
  }

  /**
   * Writes an operator decision (drain, maint, weight, director drain) to its state file. A failed
   * write, e.g. a full disk, does not refuse it: an emergency drain must take effect. It is applied
   * anyway and an alert (status, log) says it is not kept: a restart would lose it. The next
   * successful write of that file clears the alert. Returns what to add to the command's answer.
   */
  persist(store: StateFile, save: () => void, what: string): string {
    try {
      save();
    } catch (err) {
      const msg = `${what} is in effect but NOT persisted: ${(err as Error).message}; a restart would lose it; fix: free space in ${path.dirname(store.file)} (state_dir), then repeat the command to write it`;
      this.notPersisted.set(store.file, `ALERT ${msg}`);
      this.o.log.error({ err, alert: 'state-not-persisted', file: store.file }, `ALERT ${msg}`);
      return `; WARNING: ${msg}`;
    }
    if (this.notPersisted.delete(store.file))
      this.o.log.info({ alert: 'state-not-persisted', file: store.file }, `alert cleared: ${store.file} is written`);
    return '';
  }

  /**
   * Drain (established flows finish, no new flows) or maintenance (no new flows and established
   * flows end; health does not bring the backend back until unmaint) of a target, set or cleared.
   */
  async mark(mark: Mark, target: string, on: boolean): Promise<{ message: string }> {
    const m = MARKS[mark];
    const t = resolveTarget(this.o.services(), target); // unknown service or backend: refused, nothing changes
    const next = new Set(this.marks[mark]);
    if (on) next.add(t.text);
    else {
      next.delete(t.text);
      next.delete(t.given);
    }
    // First on disk (atomically), then in effect; a failed write (a full disk) is applied anyway, with an alert.
    const store = this.stores[mark];
    const warn = this.persist(store, () => store.save(next), `${on ? mark : m.off} of ${t.text}`);
    this.marks[mark] = next;
    const where = t.service ? `in service ${t.service}` : 'in every service';
    this.o.log.info(
      { backend: t.backend, service: t.service },
      on ? `backend ${t.backend} ${m.logOn} ${where}: ${m.effect}` : `backend ${t.backend} ${m.logOff} ${where}`,
    );
    await this.o.apply(on ? mark : m.off);
    const also = !on && otherForms(next, t.backend, t.text);
    return {
      message:
        (on ? m.answerOn(t.text, where) : `${m.answerOff(t.text, where)}${also ? `; ${m.still} ${also}` : ''}`) + warn,
    };
  }

  /** Run-time weight: overrides the config's (kept across reloads and restarts); null resets to the config's. */
  async weight(target: string, weight: number | null): Promise<{ message: string }> {
    if (weight !== null && (!Number.isInteger(weight) || weight < 0 || weight > WEIGHT_MAX)) {
      throw new XdError(
        'XD_ERR_USAGE',
        `weight ${target} ${weight}: a weight must be an integer from 0 to ${WEIGHT_MAX} (the config's weight rule)`,
      );
    }
    const services = this.o.services();
    const t = resolveTarget(services, target);
    const next = new Map(this.weightMap);
    next.delete(t.given);
    if (weight === null) next.delete(t.text);
    else next.set(t.text, weight);
    const warn = this.persist(
      this.weightStore,
      () => this.weightStore.save(next),
      `weight ${weight === null ? 'reset' : weight} of ${t.text}`,
    );
    this.weightMap = next;
    const where = t.service ? `in service ${t.service}` : 'in every service';
    const config = [
      ...new Set(
        services
          .filter((s) => !t.service || s.name === t.service)
          .flatMap((s) => s.backends.filter((b) => b.name === t.backend || b.key === t.backend).map((b) => b.weight)),
      ),
    ].join('/');
    this.o.log.info(
      { backend: t.backend, service: t.service, weight, configWeight: config },
      weight === null
        ? `backend ${t.backend} back to the config's weight ${where}`
        : `backend ${t.backend} weight ${weight} ${where} (run-time, overrides the config's ${config})`,
    );
    await this.o.apply('weight');
    return {
      message:
        (weight === null
          ? `weight ${t.text} (${where}): back to the config's weight ${config}`
          : `weight ${t.text} (${where}): ${weight}, overriding the config's ${config}; kept across reload and restart until \`xdirector weight ${t.text} --reset\``) +
        warn,
    };
  }

  /** The alerts of state files not written (the decision is in effect, not on disk). */
  alerts(): string[] {
    return [...this.notPersisted.values()];
  }

  /** The status fields of the operator's decisions. */
  status(): Pick<DaemonStatus, 'drained' | 'maint' | 'weights'> {
    return { drained: [...this.marks.drain], maint: [...this.marks.maint], weights: this.weightOverrides() };
  }

  /** Each run-time weight with the config weights it overrides (per service it applies to). */
  private weightOverrides(): DaemonStatus['weights'] {
    return [...this.weightMap].map(([target, weight]) => {
      const slash = target.indexOf('/');
      const service = slash < 0 ? undefined : target.slice(0, slash);
      const backend = slash < 0 ? target : target.slice(slash + 1);
      const config: Record<string, number> = {};
      for (const s of this.o.services()) {
        if (service && s.name !== service) continue;
        for (const b of s.backends) if (b.name === backend || b.key === backend) config[s.name] = b.weight;
      }
      return { target, weight, config };
    });
  }

  /** `stop --detach`: the drains, maint and weights files go with the dataplane state (a failure is logged). */
  removeFiles(): void {
    for (const f of [this.stores.drain, this.stores.maint, this.weightStore]) {
      try {
        f.remove();
      } catch (err) {
        this.o.log.warn({ err }, (err as Error).message);
      }
    }
  }
}

/** Another target form in `set` that still names `backend` (e.g. undrain mysql/db1 while db1 is drained everywhere), for the message. */
function otherForms(set: ReadonlySet<string>, backend: string, except: string): string | false {
  const others = [...set].filter((x) => x !== except && (x === backend || x.endsWith(`/${backend}`)));
  return others.length ? others.join(', ') : false;
}
