// Small pure statistics helpers for the benchmark sections.
import type { Spread } from './types';

/** Linear-interpolated quantile of sorted samples, q in [0, 1]. */
function quantileSorted(sorted: number[], q: number): number {
  if (sorted.length === 1) return sorted[0];
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Median and spread of samples; throws on an empty list (a section with no samples is a bug, not a zero). */
export function spread(samples: number[]): Spread {
  if (samples.length === 0) throw new RangeError('spread: no samples');
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length,
    median: quantileSorted(s, 0.5),
    min: s[0],
    max: s[s.length - 1],
    p25: quantileSorted(s, 0.25),
    p75: quantileSorted(s, 0.75),
  };
}

/** Round to `digits` significant decimals for display and JSON (keeps integers exact). */
export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function roundSpread(s: Spread, digits = 3): Spread {
  return {
    n: s.n,
    median: round(s.median, digits),
    min: round(s.min, digits),
    max: round(s.max, digits),
    p25: round(s.p25, digits),
    p75: round(s.p75, digits),
  };
}
