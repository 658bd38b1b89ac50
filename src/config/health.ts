// Config schemas for the MySQL-aware health checker: the `monitor:` block (who the checker logs
// in as) and the `health:` block (timers, thresholds, lag, lc damping). Pure: zod only.
// config/schema.ts composes these into the top-level config; per-service `check`, `pool` and
// `readers_include_writer` live in the service schema.
//
// Durations follow the one grammar of ./duration (units required); parsed values are ms.

import { z } from 'zod';
import { duration } from './duration';

/** Connect + handshake + login timeout of a check connection when the config gives none (also with no monitor section: TCP checks). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 1000;

/** MySQL identifiers `db.table` / `column`: plain names only, since they are spliced into SQL. */
const IDENT_RE = /^[A-Za-z0-9_$]+$/;

export const monitorSchema = z
  .strictObject({
    /** The monitor account (MariaDB: GRANT SLAVE MONITOR; MySQL: GRANT REPLICATION CLIENT). */
    user: z.string().min(1, 'monitor.user must not be empty'),
    /** Path of a file whose content (trailing newline stripped) is the password. */
    password_file: z.string().min(1).optional(),
    /** Name of an environment variable holding the password. */
    password_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'monitor.password_env must be an environment variable name')
      .optional(),
    /** Connect + handshake + login timeout for every check connection. */
    connect_timeout: duration({ default: DEFAULT_CONNECT_TIMEOUT_MS, min: 1 }),
    /** Optional local address to bind check connections to (the director's address the servers see). */
    source_address: z.string().min(1).optional(),
  })
  .superRefine((m, ctx) => {
    const n = (m.password_file !== undefined ? 1 : 0) + (m.password_env !== undefined ? 1 : 0);
    if (n !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          n === 0
            ? 'monitor needs exactly one of password_file or password_env (a literal password is not allowed in the config)'
            : 'monitor has both password_file and password_env: keep exactly one',
        path: n === 0 ? ['password_file'] : ['password_env'],
      });
    }
  });

export const heartbeatSchema = z.strictObject({
  /** "db.table" written by the primary (pt-heartbeat style); read on every replica. */
  table: z.string().refine((t) => {
    const parts = t.split('.');
    return parts.length === 2 && parts.every((p) => IDENT_RE.test(p));
  }, 'health.heartbeat.table must be "db.table" with plain names (letters, digits, _ or $)'),
  /** DATETIME/TIMESTAMP(6) column holding the primary's NOW(6) at each beat. */
  column: z.string().regex(IDENT_RE, 'health.heartbeat.column must be a plain column name').default('ts'),
});

export const lcDampingSchema = z.strictObject({
  /** Largest weight given to an idle backend; weights are integers in [1, max_weight]. */
  max_weight: z.number().int().min(2).max(65535).default(100),
  /** A backend's weight only changes when it moves by more than this fraction of its current weight. */
  threshold: z.number().min(0).max(10).default(0.2),
  /** ... and at most once every this many check intervals. */
  min_intervals: z.number().int().min(1).default(5),
});

export const healthSchema = z
  .strictObject({
    /** Time between check rounds. */
    interval: duration({ default: 1000, min: 1 }),
    /** Per-query timeout; a timed-out check is a failure. */
    timeout: duration({ default: 500, min: 1 }),
    /** Consecutive successes to mark a backend up. */
    rise: z.number().int().min(1).default(2),
    /** Consecutive failures to mark a backend down. */
    fall: z.number().int().min(1).default(3),
    /** How often a fresh connect + login + quit runs beside the kept-open connection. */
    fresh_connect_interval: duration({ default: 10_000, min: 1 }),
    /** Replicas further behind than this (or with unknown lag) leave the readers pool. */
    max_replication_lag: duration({ default: 10_000 }),
    /** Optional heartbeat table for lag measured on the server clock. */
    heartbeat: heartbeatSchema.optional(),
    /** Damping for the lc scheduler's Threads_connected-driven weights. */
    lc_damping: lcDampingSchema.default({ max_weight: 100, threshold: 0.2, min_intervals: 5 }),
  })
  .superRefine((h, ctx) => {
    if (h.timeout > h.interval) {
      ctx.addIssue({
        code: 'custom',
        message: `health.timeout (${h.timeout} ms) must not exceed health.interval (${h.interval} ms)`,
        path: ['timeout'],
      });
    }
  });

export type MonitorConfig = z.output<typeof monitorSchema>;
export type MonitorConfigInput = z.input<typeof monitorSchema>;
export type HealthConfig = z.output<typeof healthSchema>;
export type HealthConfigInput = z.input<typeof healthSchema>;
export type HeartbeatConfig = z.output<typeof heartbeatSchema>;
export type LcDampingConfig = z.output<typeof lcDampingSchema>;

/** The longest one check can take: the connection's timeout, then the query's (what a health round waits for at most, before slack). */
export function healthRoundMs(monitor: MonitorConfig | undefined, health: HealthConfig): number {
  return (monitor?.connect_timeout ?? DEFAULT_CONNECT_TIMEOUT_MS) + health.timeout;
}
