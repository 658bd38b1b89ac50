// Leaf validators for the config schema: zod schemas whose problems read like the rest of
// xdirector's messages ("must be an integer >= 0, got 1.5"), with defaults applied when a
// key is absent. Each is `z.unknown().optional().transform(...)` so it runs for a missing
// key too (and can say "is required"). Pure.

import { z } from 'zod';
import { isPrime, nextPrime, MAX_RING_SIZE } from '../maglev';
import { isMac, parseAddress, unusableReason } from '../net/inet';
import type { Family } from '../state/types';

/** How a value is shown in a message: strings quoted, lists and maps named. */
export function show(v: unknown): string {
  if (v === null) return 'nothing (empty value)';
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return String(v);
}

type Result<T> = { value: T } | { problem: string };

interface LeafOpts<T> {
  /** Value used when the key is absent (a function for per-call objects). */
  default?: T | (() => T);
  /** Absent key is allowed and yields undefined. */
  optional?: boolean;
}

/**
 * A leaf: `check` turns a present value into T or a problem text. Absent (undefined) keys take
 * the default, are undefined when optional, else "is required". YAML `key:` with no value (null)
 * is a problem: "is empty".
 */
export function leaf<T>(check: (v: unknown) => Result<T>, opts: LeafOpts<T> = {}) {
  return z
    .unknown()
    .optional()
    .transform((v, ctx): T => {
      if (v === undefined) {
        if (opts.default !== undefined)
          return typeof opts.default === 'function' ? (opts.default as () => T)() : opts.default;
        if (opts.optional) return undefined as T;
        ctx.issues.push({ code: 'custom', message: 'is required', input: v });
        return z.NEVER;
      }
      if (v === null) {
        ctx.issues.push({ code: 'custom', message: 'is empty: give it a value or remove the key', input: v });
        return z.NEVER;
      }
      const r = check(v);
      if ('problem' in r) {
        ctx.issues.push({ code: 'custom', message: r.problem, input: v });
        return z.NEVER;
      }
      return r.value;
    });
}

/**
 * Integer in [min, max]. A non-integer or too small value reads "must be an integer >= min" when
 * `open` (weights, sizes: the upper bound is a sanity limit), else "must be an integer from min to max".
 */
export function int(min: number, max: number | undefined, opts: LeafOpts<number> & { open?: boolean } = {}) {
  return leaf<number>((v) => {
    const range = max === undefined || opts.open ? `>= ${min}` : `from ${min} to ${max}`;
    if (typeof v !== 'number' || !Number.isInteger(v))
      return { problem: `must be an integer ${range}, got ${show(v)}` };
    if (v < min) return { problem: `must be an integer ${range}, got ${v}` };
    if (max !== undefined && v > max)
      return {
        problem: opts.open ? `must be at most ${max}, got ${v}` : `must be an integer from ${min} to ${max}, got ${v}`,
      };
    return { value: v };
  }, opts);
}

export function bool(opts: LeafOpts<boolean> = {}) {
  return leaf<boolean>(
    (v) => (typeof v === 'boolean' ? { value: v } : { problem: `must be true or false, got ${show(v)}` }),
    opts,
  );
}

/** One of a fixed set of strings. */
export function oneOf<T extends string>(values: readonly T[], opts: LeafOpts<NoInfer<T>> = {}) {
  return leaf<T>((v) => {
    if (typeof v === 'string' && (values as readonly string[]).includes(v)) return { value: v as T };
    const hint = typeof v === 'string' ? suggest(v, values) : undefined;
    return {
      problem: `must be one of ${values.map((x) => JSON.stringify(x)).join(', ')}, got ${show(v)}${hint ? `; did you mean "${hint}"?` : ''}`,
    };
  }, opts);
}

/** A string matching `re`; `what` describes the expected form. */
export function pattern(re: RegExp, what: string, opts: LeafOpts<string> = {}) {
  return leaf<string>(
    (v) => (typeof v === 'string' && re.test(v) ? { value: v } : { problem: `must be ${what}, got ${show(v)}` }),
    opts,
  );
}

/** An absolute path (no NUL). */
export function absPath(opts: LeafOpts<string> & { maxBytes?: number } = {}) {
  return leaf<string>((v) => {
    if (typeof v !== 'string' || !v.startsWith('/') || v.includes('\0'))
      return { problem: `must be an absolute path, got ${show(v)}` };
    if (opts.maxBytes !== undefined && Buffer.byteLength(v) > opts.maxBytes)
      return {
        problem: `must be at most ${opts.maxBytes} bytes long (a unix socket path limit), got ${Buffer.byteLength(v)}`,
      };
    return { value: v.length > 1 ? v.replace(/\/+$/, '') : v };
  }, opts);
}

export interface Address {
  /** Canonical text form. */
  address: string;
  family: Family;
}

/** A unicast IPv4 or IPv6 address, returned in canonical form with its family. */
export function address(opts: LeafOpts<Address> = {}) {
  return leaf<Address>((v) => {
    if (typeof v !== 'string') return { problem: `must be an IPv4 or IPv6 address, got ${show(v)}` };
    if (v.includes('/')) return { problem: `must be a single address without a prefix length, got ${show(v)}` };
    if (v.includes('%'))
      return { problem: `must not carry a zone index (${show(v)}): use a global or unique-local address` };
    const a = parseAddress(v.trim());
    if (!a) return { problem: `is not an IPv4 or IPv6 address: ${show(v)} (write e.g. "10.77.0.11" or "fd00::11")` };
    const why = unusableReason(a);
    if (why) return { problem: `${show(v)} is ${why}: use a unicast address` };
    return { value: { address: a.text, family: a.family } };
  }, opts);
}

/** Linux IFNAMSIZ is 16 including the NUL; dev_valid_name() also refuses "/", ":" and whitespace, "." and "..". */
export function validInterfaceName(v: unknown): v is string {
  return typeof v === 'string' && v.length >= 1 && v.length <= 15 && v !== '.' && v !== '..' && !/[/:\s]/.test(v);
}

export function interfaceName(opts: LeafOpts<string> = {}) {
  return leaf<string>(
    (v) =>
      validInterfaceName(v)
        ? { value: v }
        : { problem: `is not a valid interface name: ${show(v)} (1 to 15 characters, no "/", ":" or spaces)` },
    opts,
  );
}

/** A unicast MAC "aa:bb:cc:dd:ee:ff" (also accepts "-" separators and upper case); output lower case with colons. */
export function mac(opts: LeafOpts<string> = {}) {
  return leaf<string>((v) => {
    const m = typeof v === 'string' ? v.toLowerCase().replace(/-/g, ':') : '';
    if (!isMac(m)) return { problem: `must be a MAC address like "02:00:00:00:00:11", got ${show(v)}` };
    if (m === '00:00:00:00:00:00')
      return { problem: `${show(v)} is the all-zero MAC: give the real server's interface MAC` };
    if (parseInt(m.slice(0, 2), 16) & 1)
      return { problem: `${show(v)} is a multicast/broadcast MAC: give the real server's unicast interface MAC` };
    return { value: m };
  }, opts);
}

/** Smallest ring size the config accepts (Maglev needs M >> N; the kernel's smallest mh table is 251). */
export const MIN_CONFIG_RING_SIZE = 251;

export function ringSize(opts: LeafOpts<number> = {}) {
  return leaf<number>((v) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < MIN_CONFIG_RING_SIZE || v > MAX_RING_SIZE) {
      return { problem: `must be a prime from ${MIN_CONFIG_RING_SIZE} to ${MAX_RING_SIZE}, got ${show(v)}` };
    }
    if (!isPrime(v))
      return { problem: `must be a prime (Maglev needs one), got ${v}: the next prime is ${nextPrime(v)}` };
    return { value: v };
  }, opts);
}

/** Edit distance with adjacent transpositions (optimal string alignment), for "did you mean". */
function distance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest of `candidates` to `word` if it is close enough to be a likely typo. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '');
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    if (norm(c) === norm(word)) return c; // ringSize / ring-size / RING_SIZE -> ring_size
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  if (bestD <= limit) return best;
  // An unambiguous abbreviation: "sched" -> "scheduler".
  const prefixed = word.length >= 3 ? candidates.filter((c) => c.toLowerCase().startsWith(word.toLowerCase())) : [];
  return prefixed.length === 1 ? prefixed[0] : undefined;
}
