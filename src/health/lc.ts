// Least-connections weights for the lc scheduler, with damping.
//
// Formula: among the backends that are up, let t_min be the smallest Threads_connected.
// A backend with t threads gets
//
//     target = round(max_weight × (1 + t_min) / (1 + t)),  clamped to [1, max_weight]
//
// so weights are proportional to 1/(1+t) (the least-loaded backend gets max_weight) and the
// Maglev ring gives each backend a share of new flows inversely proportional to its load.
// Threads_connected includes the checker's own connection, hence the +1 never divides by 0.
//
// Damping: a backend's weight only moves to its target when the change exceeds `threshold`
// (relative to the current weight) and at least `min_intervals` check rounds have passed since
// its last change; a backend that (re)appears takes its target at once. So the ring is rebuilt
// at most every min_intervals rounds per backend, and never for noise below the threshold.
// Pure.

export interface LcDampingSettings {
  max_weight: number;
  threshold: number;
  min_intervals: number;
}

export function lcTargetWeights(threads: ReadonlyMap<string, number>, maxWeight: number): Map<string, number> {
  const out = new Map<string, number>();
  if (threads.size === 0) return out;
  let tMin = Infinity;
  for (const t of threads.values()) tMin = Math.min(tMin, Math.max(0, t));
  for (const [k, t] of threads) {
    const w = Math.round((maxWeight * (1 + tMin)) / (1 + Math.max(0, t)));
    out.set(k, Math.min(maxWeight, Math.max(1, w)));
  }
  return out;
}

export class LcDamper {
  private readonly cur = new Map<string, { weight: number; changedAt: number }>();

  constructor(private readonly s: LcDampingSettings) {}

  /**
   * Feed the targets of round `round`; returns the damped weights of every backend in `targets`
   * and whether any of them changed. Backends absent from `targets` are forgotten.
   */
  update(targets: ReadonlyMap<string, number>, round: number): { weights: Map<string, number>; changed: boolean } {
    let changed = false;
    for (const k of [...this.cur.keys()]) {
      if (!targets.has(k)) {
        this.cur.delete(k);
        changed = true;
      }
    }
    const weights = new Map<string, number>();
    for (const [k, target] of targets) {
      const c = this.cur.get(k);
      if (!c) {
        this.cur.set(k, { weight: target, changedAt: round });
        weights.set(k, target);
        changed = true;
        continue;
      }
      const rel = Math.abs(target - c.weight) / c.weight;
      if (target !== c.weight && rel > this.s.threshold && round - c.changedAt >= this.s.min_intervals) {
        c.weight = target;
        c.changedAt = round;
        changed = true;
      }
      weights.set(k, c.weight);
    }
    return { weights, changed };
  }

  get(key: string): number | undefined {
    return this.cur.get(key)?.weight;
  }
}
