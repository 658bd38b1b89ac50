// A DaemonStatus around one dataplane's status, as the daemon would answer with nothing else
// going on (no health, no VRRP): for metrics and CLI formatter tests.
import type { DaemonStatus } from '../../src/daemon/status';
import type { DataplaneStatus } from '../../src/state/types';

export function daemonStatus(dataplane: DataplaneStatus, over: Partial<DaemonStatus> = {}): DaemonStatus {
  return {
    instance: 'test',
    pid: process.pid,
    startedAt: new Date(0).toISOString(),
    config: '/dev/null',
    dataplane,
    lastApplyError: null,
    lastApplyAt: null,
    apply: { diverged: false, since: null, failures: 0, failuresTotal: 0, lastError: null, nextRetryAt: null },
    dataplaneReason: null,
    health: null,
    writers: {},
    alerts: [],
    drained: [],
    maint: [],
    weights: [],
    rates: null,
    unresolved: [],
    vrrp: [],
    bgp: null,
    liveness: { cannotServe: null, stalled: null, healthAgeMs: null, limitMs: 5000, txErrorsRising: false },
    version: '0.0.0-test',
    backendStates: [],
    reloads: { total: 0, failures: 0, lastAt: null, lastOk: null, lastError: null },
    ...over,
  };
}
