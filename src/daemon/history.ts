// What the daemon remembers about changes, for status, metrics and the status page: when each
// backend entered its dataplane state and how often it changed, and the outcome of config
// reloads; with its start, the per-second rates (rates.ts) and, for BGP's announce hold-down,
// since when no backend changed (DaemonHistory holds them all). Fed by the daemon after each
// successful apply, each reload and each counter sample; pure bookkeeping (the daemon logs).
import { SteadySince } from '../bgp';
import type { BackendState, DesiredState } from '../state/types';
import { RateEstimator } from './rates';

export interface BackendStateTime {
  service: string;
  /** Backend key ("address:port"). */
  backend: string;
  state: BackendState;
  /** When the backend entered this state (ISO time); the daemon's start for its first state. */
  since: string;
  /** State changes since the daemon started (the first state is not a change). */
  changes: number;
}

export interface ReloadRecord {
  /** Reloads attempted (SIGHUP, `xdirector reload`), and how many were refused or rolled back. */
  total: number;
  failures: number;
  /** The latest reload: when (ISO time), whether it was applied, and why not. */
  lastAt: string | null;
  lastOk: boolean | null;
  lastError: string | null;
}

export class BackendStateTimes {
  private readonly by = new Map<string, { state: BackendState; since: number; changes: number }>();

  /** Records the states of an applied desired state; backends no longer in it are forgotten. */
  observe(state: DesiredState, now = Date.now()): void {
    const seen = new Set<string>();
    for (const s of state.services) {
      for (const b of s.backends) {
        const k = `${s.name}\n${b.key}`;
        seen.add(k);
        const was = this.by.get(k);
        if (!was) this.by.set(k, { state: b.state, since: now, changes: 0 });
        else if (was.state !== b.state) this.by.set(k, { state: b.state, since: now, changes: was.changes + 1 });
      }
    }
    for (const k of this.by.keys()) if (!seen.has(k)) this.by.delete(k);
  }

  snapshot(): BackendStateTime[] {
    return [...this.by].map(([k, v]) => {
      const i = k.indexOf('\n');
      return {
        service: k.slice(0, i),
        backend: k.slice(i + 1),
        state: v.state,
        since: new Date(v.since).toISOString(),
        changes: v.changes,
      };
    });
  }
}

export class ReloadHistory {
  private r: ReloadRecord = { total: 0, failures: 0, lastAt: null, lastOk: null, lastError: null };

  record(err: unknown, now = new Date()): void {
    this.r = {
      total: this.r.total + 1,
      failures: this.r.failures + (err ? 1 : 0),
      lastAt: now.toISOString(),
      lastOk: !err,
      lastError: err ? ((err as Error).message ?? String(err)) : null,
    };
  }

  status(): ReloadRecord {
    return { ...this.r };
  }
}

/** A backend whose state or weight an applied state changed (or that it added: was 'new'), for the log. */
export interface BackendChange {
  service: string;
  /** Backend name. */
  backend: string;
  state: BackendState;
  weight: number;
  /** "state/weight" before, or 'new'. */
  was: string;
}

/** The backends whose state or weight differ from `prev` in `next`, in `next`'s order. */
export function backendChanges(prev: DesiredState | undefined, next: DesiredState): BackendChange[] {
  const before = new Map<string, string>();
  for (const s of prev?.services ?? [])
    for (const b of s.backends) before.set(`${s.name}/${b.key}`, `${b.state}/${b.weight}`);
  const out: BackendChange[] = [];
  for (const s of next.services)
    for (const b of s.backends) {
      const was = before.get(`${s.name}/${b.key}`);
      if (was !== `${b.state}/${b.weight}`)
        out.push({ service: s.name, backend: b.name, state: b.state, weight: b.weight, was: was ?? 'new' });
    }
  return out;
}

/** Everything the daemon remembers over its run for status and metrics, in one place. */
export class DaemonHistory {
  /** ISO time the daemon started. */
  readonly startedAt = new Date().toISOString();
  /** Per-second rates from two counter samples RATE_INTERVAL_MS apart (status, metrics, the HTTP page). */
  readonly rates = new RateEstimator();
  readonly states = new BackendStateTimes();
  readonly reloads = new ReloadHistory();
  /** Since when no backend's state or weight changed (BGP's announce hold-down; monotonic: bgp/hold-down.ts). */
  readonly steady = new SteadySince();

  /** An applied state: its state times, and the hold-down restarts when a backend changed. Returns the changes. */
  applied(prev: DesiredState | undefined, next: DesiredState): BackendChange[] {
    const changes = backendChanges(prev, next);
    if (changes.length) this.steady.changed();
    this.states.observe(next);
    return changes;
  }
}
