// The daemon's status: what `GET /status` answers, `xdirector status` prints and the metrics
// are rendered from. One typed shape for the three (it travels as JSON; nothing in it is
// optional by guesswork).
import type { SyncStatus } from '../sync';
import type { LivenessStatus } from './liveness';
import type { BgpStatus } from '../bgp';
import type { ApplyDivergence } from './apply-retry';
import type { HealthSnapshot } from '../health';
import type { DataplaneStatus } from '../state/types';
import type { VrrpInstanceStatus } from '../vrrp/instance';
import type { RateStatus } from './rates';
import type { BackendStateTime, ReloadRecord } from './history';

export interface UnresolvedStatus {
  service: string;
  /** Backend name. */
  backend: string;
  /** Why it has no MAC (the neighbour table's answer, or "not resolved yet"). */
  error: string;
}

export interface DaemonStatus {
  instance: string;
  /** The running daemon's xdirector version (absent from daemons older than this field). */
  version?: string;
  pid: number;
  /** ISO time the daemon started. */
  startedAt: string;
  /** Absolute path of the config file. */
  config: string;
  dataplane: DataplaneStatus;
  /** The last apply's error (the dataplane kept its previous state), null after a good apply. */
  lastApplyError: string | null;
  /** When the desired state was last applied (successfully or not), ISO time. */
  lastApplyAt: string | null;
  /** Whether the dataplane differs from the desired state (failed applies, retried with backoff). */
  apply: ApplyDivergence;
  /** Why this dataplane runs ("auto: XDP available", "ipvs requested", "switched to ipvs at run time ..."). */
  dataplaneReason: string | null;
  /** null: no service is health checked. */
  health: HealthSnapshot | null;
  /** Elected writer key per service that has one (null: none, failing closed). */
  writers: Record<string, string | null>;
  /** Messages of the raised alerts (health's alerts, also in health.alerts with their kind). */
  alerts: string[];
  /** Drain targets: BACKEND (every service) or SERVICE/BACKEND. */
  drained: string[];
  /** Maintenance targets (`xdirector maint`), like drained. */
  maint: string[];
  /** Run-time weights (`xdirector weight`): each overrides the config weight of the backend in the services of `config` (service -> config weight) until `weight TARGET --reset`. */
  weights: { target: string; weight: number; config: Record<string, number> }[];
  /** Per-second rates over the daemon's last sampling window (rates.ts); null until two samples were taken. */
  rates: RateStatus | null;
  /** Backends left out of XDP for want of a MAC. */
  unresolved: UnresolvedStatus[];
  vrrp: VrrpInstanceStatus[];
  /** null: no bgp section. */
  bgp: BgpStatus | null;
  /** Whether this director makes progress and can serve (liveness.ts). */
  liveness: LivenessStatus;
  /** Connection sync between directors (src/sync); null: no sync section. Optional: older daemons lack it. */
  sync?: SyncStatus | null;
  // Monitoring (metrics, the status page, `xdirector check`).
  /** Per backend of the applied state: its dataplane state, since when, how many changes. */
  backendStates: BackendStateTime[];
  /** Config reloads since the start and the latest one's outcome. */
  reloads: ReloadRecord;
}
