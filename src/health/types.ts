// Types shared by the health checker, the desired state and their callers.
// Pure: imports only types.

import type { CheckKind } from '../config';

export type { CheckKind };

/**
 * primary: writable and not replicating (a writer candidate).
 * replica: replication configured and running or attempted (IO or SQL thread not 'No').
 * readonly: read_only=1 and not replicating (e.g. a demoted old primary).
 * unknown: down, not checked yet, or the replica status could not be read.
 * none: not a MySQL check (tcp or none).
 */
export type BackendRole = 'primary' | 'replica' | 'readonly' | 'unknown' | 'none';

export interface ReplicationInfo {
  /** 'Yes' | 'No' | 'Connecting' | ... (Slave_IO_Running / Replica_IO_Running). */
  io: string;
  /** 'Yes' | 'No' (Slave_SQL_Running / Replica_SQL_Running). */
  sql: string;
  /** Seconds_Behind_Master / Seconds_Behind_Source (null when the server reports NULL). */
  secondsBehind: number | null;
  /** Which column family the server used: MariaDB / MySQL < 8.0.22 'slave', MySQL 8.0.22+ 'replica'. */
  columns: 'slave' | 'replica';
}

export interface BackendHealth {
  key: string;
  name: string;
  address: string;
  port: number;
  check: CheckKind;
  /** After rise/fall: true = takes traffic (subject to pools and drain). false before the first check. */
  up: boolean;
  role: BackendRole;
  /** @@read_only (null: unknown / not MySQL). */
  readOnly: boolean | null;
  /** @@super_read_only where the server has it (MySQL); null on MariaDB. */
  superReadOnly: boolean | null;
  replication: ReplicationInfo | null;
  /** Replication lag in seconds (max of Seconds_Behind_* and heartbeat age); null = unknown or not a replica. */
  lagSeconds: number | null;
  /** Why lag is unknown (replica only): "SQL thread not running", "missing privilege SLAVE MONITOR: ...". */
  lagUnknownReason: string | null;
  /** Replica with known lag <= max_replication_lag, debounced by rise on the way back. */
  readerEligible: boolean;
  threadsConnected: number | null;
  /** check: script with dynamic: the weight the script last set (exit 2+N: N); null: none set, the configured weight applies. */
  scriptWeight?: number | null;
  /** Weight factor from Threads_connected (lc scheduler), damped; 1..lc_damping.max_weight. */
  lcWeight: number;
  serverId: number | null;
  version: string | null;
  /**
   * The problem found by the latest check (its failure, or a warning such as a missing privilege
   * or an unreadable heartbeat); null when the latest check was clean. Never contains the password.
   */
  lastError: string | null;
  /** When lastError (or, once cleared, previousError) was last seen. */
  lastErrorAt: string | null;
  /** The most recent non-null lastError, kept after the problem clears (history for status). */
  previousError: string | null;
  /** When `up` last changed (ISO time), null before the first check. */
  lastChange: string | null;
  lastCheckAt: string | null;
  /** Total checks run, and how many failed. */
  checks: number;
  failures: number;
  /** Duration of the latest check (ms) and the sum over all checks (s), for metrics. */
  lastCheckMs?: number;
  checkSecondsTotal?: number;
  /** Current streaks (rise/fall). */
  consecutiveOk: number;
  consecutiveFail: number;
}

export type AlertKind = 'split-brain' | 'no-writer' | 'ambiguous-writer' | 'readers-empty';

export interface HealthAlert {
  kind: AlertKind;
  service: string;
  message: string;
  /** ISO time the alert was first raised (it stays raised while the condition holds). */
  since: string;
}

export interface HealthSnapshot {
  at: string;
  /** Completed check rounds. */
  round: number;
  backends: BackendHealth[];
  /** Elected writer key per service with pool writer (or readers with readersIncludeWriter); null = none (fail closed). */
  writers: Record<string, string | null>;
  alerts: HealthAlert[];
  counters: {
    /** Times a split-brain alert was raised (two or more writable servers). */
    splitBrain: number;
    /** Times a no-writer / ambiguous-writer alert was raised. */
    noWriter: number;
    /** Total alerts raised. */
    alertsRaised: number;
    checks: number;
    failures: number;
    /** Times a service's writer changed (including to none). */
    writerChanges: number;
  };
}

/**
 * Where a backend starts before its first check result (a hot restart over a
 * dataplane that kept forwarding): the first results then count towards rise or
 * fall like any later one, instead of deciding up/down on their own.
 */
export interface InitialBackendState {
  up: boolean;
  /** The role it was serving in (writer of a writer pool: 'primary'; reader: 'replica'). */
  role?: BackendRole;
  /** It was in a readers pool. */
  readerEligible?: boolean;
}

export interface InitialHealth {
  /** By backend key. */
  backends: ReadonlyMap<string, InitialBackendState>;
  /** The established writer per service (by service name: backend key). */
  writers?: Readonly<Record<string, string>>;
}
