// The one duration grammar of the config: a number (decimals allowed) followed by its unit,
// ms, s, m or h: "500ms", "1.5s", "2m", "1h". The unit is required everywhere: a bare number
// (10, or "1000") is refused, because users coming from ProxySQL or keepalived read 10 as
// seconds where a millisecond default would silently make it 10 ms. Only 0 reads the same in
// every unit and may stand alone ("refresh: 0" = off). Values come out as whole milliseconds. Pure.

import { leaf, show } from './fields';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const BARE_RE = /^\d+(?:\.\d+)?$/;

type Result = { value: number } | { problem: string };

/** Milliseconds as the grammar writes them back: "1.5s", "250ms", "2m". */
export function formatDuration(ms: number): string {
  if (ms !== 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms !== 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms !== 0 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Parse one duration value from the config: whole milliseconds, or the problem and its fix. */
export function parseDuration(v: unknown): Result {
  const text = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim() : undefined;
  if (text === '0') return { value: 0 };
  if (text !== undefined && BARE_RE.test(text)) {
    return { problem: `is a bare number (${show(v)}): durations need their unit, write ${text}s or ${text}ms` };
  }
  const m = text === undefined ? null : DURATION_RE.exec(text);
  if (!m)
    return {
      problem: `must be a duration with its unit (ms, s, m or h), e.g. "500ms", "1.5s" or "2m", got ${show(v)}`,
    };
  const ms = Number(m[1]) * UNIT_MS[m[2]!]!;
  // Multiplying a decimal by the unit can land a hair off an integer (0.07 * 1000): round to a microsecond first.
  const rounded = Math.round(ms * 1000) / 1000;
  if (!Number.isInteger(rounded))
    return { problem: `must be a whole number of milliseconds, got ${show(v)} (${rounded} ms)` };
  if (!Number.isSafeInteger(rounded)) return { problem: `is too long, got ${show(v)}` };
  return { value: rounded };
}

export interface DurationOpts {
  /** Value in ms when the key is absent. */
  default?: number;
  /** An absent key yields undefined. */
  optional?: boolean;
  /** Smallest and largest accepted value in ms (inclusive). */
  min?: number;
  max?: number;
}

/** A config leaf holding a duration (output: ms). `min: 1` for timers that must be greater than 0. */
export function duration(opts: DurationOpts = {}) {
  return leaf<number>(
    (v) => {
      const r = parseDuration(v);
      if ('problem' in r) return r;
      const { min, max } = opts;
      if (min !== undefined && max !== undefined && (r.value < min || r.value > max)) {
        return { problem: `must be from ${formatDuration(min)} to ${formatDuration(max)}, got ${show(v)}` };
      }
      if (min !== undefined && r.value < min) {
        return {
          problem:
            min === 1
              ? `must be greater than 0, got ${show(v)}`
              : `must be at least ${formatDuration(min)}, got ${show(v)}`,
        };
      }
      if (max !== undefined && r.value > max)
        return { problem: `must be at most ${formatDuration(max)}, got ${show(v)}` };
      return r;
    },
    { default: opts.default, optional: opts.optional },
  );
}
