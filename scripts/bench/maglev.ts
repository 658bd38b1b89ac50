// Section 4: Maglev table build time, balance and disruption (pure CPU work
// on src/maglev), and "ring apply": building and applying a new ring through
// the real XDP dataplane (measureApply of src/dataplane/xdp/measure.ts, which
// needs root and bpffs; the caller passes why it cannot run otherwise).
import { measureApply } from './measure';
import { buildMaglev, type MaglevBackend } from '../../src/maglev';
import { spread, round, roundSpread } from './stats';
import type { MaglevBalance, MaglevBuild, MaglevData, MaglevDisruption, RingApplyData } from './types';

export interface MaglevBenchOptions {
  /** Backend counts for the build-time table. */
  backends: number[];
  /** Table sizes (primes). */
  ringSizes: number[];
  /** Builds timed per (N, M) after one untimed warm-up build. */
  reps: number;
  /** Ring apply through the dataplane: samples (0 = not measured). */
  applySamples: number;
  /** Why the ring apply cannot run here (no root, no bpffs), or undefined. */
  applyUnavailable?: string;
  /** measureApply's prefix (veth and pin dir names, ≤ 12 of a-z0-9). */
  applyPrefix?: string;
  progress?: (msg: string) => void;
}

export const MAGLEV_FULL = { backends: [10, 100, 1000], ringSizes: [65537, 655373], reps: 5, applySamples: 10 };
export const MAGLEV_QUICK = { backends: [10, 100, 1000], ringSizes: [65537], reps: 1, applySamples: 3 };

/** The issue-2 goal: a new ring for M=65537, N=1000 built and applied in under 50 ms. */
export const APPLY_GOAL = { ringSize: 65537, backends: 1000, goalMs: 50 };

/** Ring build + apply through the real dataplane at M=65537, N=1000. */
export async function runRingApply(o: {
  samples: number;
  prefix: string;
  unavailable?: string;
  progress?: (msg: string) => void;
}): Promise<RingApplyData> {
  const base = {
    ringSize: APPLY_GOAL.ringSize,
    backends: APPLY_GOAL.backends,
    samples: o.samples,
    goalMs: APPLY_GOAL.goalMs,
  };
  if (o.unavailable) return { status: 'skipped', reason: o.unavailable, ...base };
  try {
    const m = await measureApply({
      ringSize: base.ringSize,
      backends: base.backends,
      samples: o.samples,
      prefix: o.prefix,
    });
    const d: RingApplyData = {
      status: 'ok',
      ...base,
      ringBuildMs: roundSpread(spread(m.ringBuildMs), 2),
      ringBuildCpuMs: roundSpread(spread(m.ringBuildCpuMs), 2),
      applyMs: roundSpread(spread(m.applyMs), 2),
      applyCpuMs: roundSpread(spread(m.applyCpuMs), 2),
      slotsWritten: roundSpread(spread(m.slotsWritten), 0),
      firstApplyMs: round(m.firstApplyMs, 2),
      loadavgBefore: m.loadavgBefore.map((x) => round(x, 2)),
      loadavgAfter: m.loadavgAfter.map((x) => round(x, 2)),
    };
    o.progress?.(
      `ring apply M=${base.ringSize} N=${base.backends}: apply ${d.applyMs!.median} ms wall, ${d.applyCpuMs!.median} ms CPU (median of ${o.samples})`,
    );
    return d;
  } catch (err) {
    return { status: 'error', reason: err instanceof Error ? err.message : String(err), ...base };
  }
}

/** N backends with distinct "address:port" keys; weights from `weightOf(i)`. */
export function makeBackends(n: number, weightOf: (i: number) => number = () => 1): MaglevBackend[] {
  return Array.from({ length: n }, (_, i) => ({
    id: i + 1,
    key: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:3306`,
    weight: weightOf(i),
  }));
}

function slotCounts(table: Uint32Array, maxId: number): number[] {
  const c = new Array<number>(maxId + 1).fill(0);
  for (let i = 0; i < table.length; i++) c[table[i]]++;
  return c;
}

/** Balance of a table against the weights: share / expected share per backend. */
export function balanceOf(backends: MaglevBackend[], table: Uint32Array): { max: number; min: number } {
  const counts = slotCounts(table, Math.max(...backends.map((b) => b.id)));
  const total = backends.reduce((s, b) => s + b.weight, 0);
  let max = -Infinity;
  let min = Infinity;
  for (const b of backends) {
    if (b.weight === 0) continue;
    const r = counts[b.id] / table.length / (b.weight / total);
    max = Math.max(max, r);
    min = Math.min(min, r);
  }
  return { max, min };
}

/** Slots that changed between two tables. */
export function movedSlots(a: Uint32Array, b: Uint32Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

function timeBuild(backends: MaglevBackend[], m: number): number {
  const t0 = process.hrtime.bigint();
  buildMaglev(backends, m);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export async function runMaglevBench(o: MaglevBenchOptions): Promise<MaglevData> {
  const builds: MaglevBuild[] = [];
  for (const m of o.ringSizes) {
    for (const n of o.backends) {
      const bs = makeBackends(n);
      timeBuild(bs, m); // warm-up: JIT and allocation
      const samples: number[] = [];
      for (let r = 0; r < o.reps; r++) {
        samples.push(timeBuild(bs, m));
        // Let timers and I/O run between builds (progress, signals).
        await new Promise((res) => setImmediate(res));
      }
      const ms = roundSpread(spread(samples), 3);
      builds.push({ backends: n, ringSize: m, ms });
      o.progress?.(`maglev build N=${n} M=${m}: ${ms.median} ms`);
    }
  }

  const balance: MaglevBalance[] = [];
  const disruption: MaglevDisruption[] = [];
  const balanceNs = o.backends.filter((n) => n <= 1000);
  for (const m of o.ringSizes) {
    for (const n of balanceNs) {
      for (const [label, wf] of [
        ['equal (1)', () => 1],
        ['1,2,3,4 cycling', (i: number) => (i % 4) + 1],
      ] as [string, (i: number) => number][]) {
        const bs = makeBackends(n, wf);
        const t = buildMaglev(bs, m);
        const b = balanceOf(bs, t);
        balance.push({
          backends: n,
          ringSize: m,
          weights: label,
          maxOverExpected: round(b.max, 4),
          minOverExpected: round(b.min, 4),
          maxMinRatio: round(b.max / b.min, 4),
        });
      }
      // Disruption, equal weights: remove the middle backend; add one new backend.
      const bs = makeBackends(n);
      const before = buildMaglev(bs, m);
      const victim = bs[Math.floor(n / 2)];
      const afterRemove = buildMaglev(
        bs.filter((b) => b !== victim),
        m,
      );
      const owned = slotCounts(before, n + 1)[victim.id];
      const movedR = movedSlots(before, afterRemove);
      disruption.push({
        backends: n,
        ringSize: m,
        change: 'remove-one',
        movedSlots: movedR,
        minimumSlots: owned,
        factor: round(movedR / owned, 4),
      });
      const added = [...bs, ...makeBackends(n + 1).slice(n)];
      const afterAdd = buildMaglev(added, m);
      const gained = slotCounts(afterAdd, n + 1)[n + 1];
      const movedA = movedSlots(before, afterAdd);
      disruption.push({
        backends: n,
        ringSize: m,
        change: 'add-one',
        movedSlots: movedA,
        minimumSlots: gained,
        factor: round(movedA / gained, 4),
      });
      o.progress?.(`maglev balance/disruption N=${n} M=${m}`);
    }
  }
  const apply =
    o.applySamples > 0
      ? await runRingApply({
          samples: o.applySamples,
          prefix: o.applyPrefix ?? `xdh${process.pid}m`,
          unavailable: o.applyUnavailable,
          progress: o.progress,
        })
      : undefined;
  return { builds, balance, disruption, apply };
}
