// The monitoring series beside renderMetrics()'s (metrics.ts): build info, process, per-backend
// new-connection counters and IPVS's InActConn, backend state changes and time in state, config
// reloads, VRRP priority / adverts / tracking, flow-table fill, BGP session state as a number.
import type { DaemonStatus } from './status';
import type { MetricWriter, Labels } from './metric-types';
import type { ProcessSample } from './process-metrics';

const VRRP_STATES = ['INIT', 'BACKUP', 'MASTER', 'FAULT', 'STOP'] as const;

/** BGP FSM states as numbers (RFC 4271 order, as bgp exporters number them); 0: unknown (BIRD down or not reporting one). */
export const BGP_STATE_NUMBER: Record<string, number> = {
  Idle: 1,
  Connect: 2,
  Active: 3,
  OpenSent: 4,
  OpenConfirm: 5,
  Established: 6,
};

const seconds = (iso: string | null | undefined): number[] => {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(t) ? [t / 1000] : [];
};

export function monitoringMetrics(st: DaemonStatus, proc: ProcessSample, metric: MetricWriter): void {
  metric('xdirector_build_info', 'The xdirector version and Node.js version the daemon runs (1).', 'gauge', [
    [{ version: st.version ?? 'unknown', node_version: proc.nodeVersion }, 1],
  ]);

  // prom-client's default process series (same names and meaning).
  metric('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', 'gauge', [
    [{}, proc.startTimeSeconds],
  ]);
  metric('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', 'counter', [
    [{}, proc.cpuUserSeconds],
  ]);
  metric('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.', 'counter', [
    [{}, proc.cpuSystemSeconds],
  ]);
  metric('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', 'counter', [
    [{}, proc.cpuUserSeconds + proc.cpuSystemSeconds],
  ]);
  metric('process_resident_memory_bytes', 'Resident memory size in bytes.', 'gauge', [[{}, proc.residentBytes]]);
  metric(
    'process_open_fds',
    'Number of open file descriptors.',
    'gauge',
    proc.openFds === null ? [] : [[{}, proc.openFds]],
  );
  metric('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', 'gauge', [
    [{}, proc.heapTotalBytes],
  ]);
  metric('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', 'gauge', [
    [{}, proc.heapUsedBytes],
  ]);
  metric('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', 'gauge', [[{}, proc.externalBytes]]);

  const bes = st.dataplane.services.flatMap((s) => s.backends.map((b) => ({ s, b })));
  metric(
    'xdirector_backend_new_flows_total',
    "New connections (flows created) per backend, like IPVS's Conns; rate() it for connections per second.",
    'counter',
    bes.map(({ s, b }) => [{ service: s.name, backend: b.name }, b.newFlows]),
  );
  metric(
    'xdirector_backend_inactive_flows',
    "Connections per backend as IPVS counts InActConn: TCP flows whose client sent FIN or RST, for 120 s after their last packet, and every UDP flow (XDP), or the kernel's InActConn (IPVS).",
    'gauge',
    bes.map(({ s, b }) => [{ service: s.name, backend: b.name }, b.inactiveFlows]),
  );

  // Backend state history: keyed by backend key in status, labelled by name like the other backend series.
  const nameOf = new Map<string, string>(bes.map(({ s, b }) => [`${s.name}\n${b.key}`, b.name]));
  const times = st.backendStates.filter((t) => nameOf.has(`${t.service}\n${t.backend}`));
  const lb = (t: { service: string; backend: string }): Labels => ({
    service: t.service,
    backend: nameOf.get(`${t.service}\n${t.backend}`)!,
  });
  metric(
    'xdirector_backend_state_changes_total',
    'Dataplane state changes per backend (active, draining, down, maint) since the daemon started.',
    'counter',
    times.map((t) => [lb(t), t.changes]),
  );
  metric(
    'xdirector_backend_state_since_timestamp_seconds',
    'When the backend entered its current dataplane state, Unix time (time in state: time() minus this).',
    'gauge',
    times.flatMap((t) => seconds(t.since).map((v): [Labels, number] => [lb(t), v])),
  );
  metric(
    'xdirector_health_last_change_timestamp_seconds',
    "When the backend's health result (up/down after rise/fall) last changed, Unix time.",
    'gauge',
    (st.health?.backends ?? []).flatMap((b) =>
      seconds(b.lastChange).map((v): [Labels, number] => [{ backend: b.name }, v]),
    ),
  );

  const r = st.reloads;
  metric('xdirector_config_reloads_total', 'Config reloads attempted (SIGHUP, xdirector reload).', 'counter', [
    [{}, r.total],
  ]);
  metric(
    'xdirector_config_reload_failures_total',
    'Config reloads refused or rolled back (the previous config kept serving).',
    'counter',
    [[{}, r.failures]],
  );
  metric(
    'xdirector_config_last_reload_successful',
    'The latest config reload was applied (1) or not (0); 1 before any reload.',
    'gauge',
    [[{}, r.lastOk === false ? 0 : 1]],
  );
  metric(
    'xdirector_config_last_reload_timestamp_seconds',
    'When the latest config reload was attempted, Unix time.',
    'gauge',
    seconds(r.lastAt).map((v): [Labels, number] => [{}, v]),
  );

  metric(
    'xdirector_vrrp_state',
    'VRRP instance state (1 for the current state).',
    'gauge',
    st.vrrp.flatMap((v) =>
      VRRP_STATES.map((state): [Labels, number] => [{ instance: v.name, state }, v.state === state ? 1 : 0]),
    ),
  );
  metric(
    'xdirector_vrrp_priority',
    'Configured VRRP priority.',
    'gauge',
    st.vrrp.map((v) => [{ instance: v.name }, v.priority]),
  );
  metric(
    'xdirector_vrrp_effective_priority',
    'VRRP priority after track weights (what the adverts carry).',
    'gauge',
    st.vrrp.map((v) => [{ instance: v.name }, v.effectivePriority]),
  );
  metric(
    'xdirector_vrrp_adverts_sent_total',
    'VRRP adverts sent.',
    'counter',
    st.vrrp.map((v) => [{ instance: v.name }, v.counters.sent]),
  );
  metric(
    'xdirector_vrrp_adverts_received_total',
    'VRRP adverts received for this instance.',
    'counter',
    st.vrrp.map((v) => [{ instance: v.name }, v.counters.received]),
  );
  metric(
    'xdirector_vrrp_track_ok',
    'A VRRP tracker passes (1) or fails (0; its weight is taken off the priority).',
    'gauge',
    st.vrrp.flatMap((v) =>
      v.trackers.map((t): [Labels, number] => [{ instance: v.name, track: t.name }, t.ok ? 1 : 0]),
    ),
  );

  // Fill against capacity, from the background walk that counts the flows (flow-counts.ts):
  // a scrape reads its last result and never walks the table itself.
  const tables = st.dataplane.kind === 'xdp' ? (st.dataplane.detail.flowCounts.tables ?? {}) : {};
  metric(
    'xdirector_flow_table_entries',
    'Entries in each flow table (flow4/flow6: flows, prb4/prb6: probation, tko4/tko6: takeover) as of the last flow count.',
    'gauge',
    Object.entries(tables).map(([table, t]) => [{ table }, t.entries]),
  );
  metric(
    'xdirector_flow_table_capacity',
    'Capacity (max entries) of each flow table; entries / capacity is its fill (an LRU table evicts its oldest flows when full; the flow4/flow6 tables, 2-way buckets with two entries per configured flow, evict within a bucket that overflows, ~10% of random flows at the configured count).',
    'gauge',
    Object.entries(tables).map(([table, t]) => [{ table }, t.capacity]),
  );

  if (st.bgp) {
    metric(
      'xdirector_bgp_session_state',
      'BGP session state as a number: 1 Idle, 2 Connect, 3 Active, 4 OpenSent, 5 OpenConfirm, 6 Established, 0 unknown.',
      'gauge',
      st.bgp.neighbours.map((n) => [{ neighbour: n.name, address: n.address }, BGP_STATE_NUMBER[n.state] ?? 0]),
    );
  }
}
