// Prometheus text exposition of `status`.
import { syncMetrics } from '../sync';
import type { DaemonStatus } from './status';
import { monitoringMetrics } from './metrics-monitoring';
import { nodeIpvsMetrics } from './metrics-ipvs';
import { sampleProcess, type ProcessSample } from './process-metrics';

import type { Labels, MetricWriter } from './metric-types';

const BACKEND_STATES = ['active', 'draining', 'down', 'maint'] as const;

function esc(v: string | number): string {
  return String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** `proc`: the process series (prom-client's names); sampled now unless given. */
export function renderMetrics(st: DaemonStatus, proc: ProcessSample = sampleProcess()): string {
  const lines: string[] = [];
  const metric: MetricWriter = (name, help, type, rows) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of rows) {
      const l = Object.entries(labels)
        .map(([k, x]) => `${k}="${esc(x)}"`)
        .join(',');
      lines.push(`${name}${l ? `{${l}}` : ''} ${v}`);
    }
  };
  const svcs = st.dataplane.services;
  metric(
    'xdirector_service_packets_total',
    'Packets forwarded per service.',
    'counter',
    svcs.map((s) => [{ service: s.name }, s.packets]),
  );
  metric(
    'xdirector_service_bytes_total',
    'Bytes forwarded per service.',
    'counter',
    svcs.map((s) => [{ service: s.name }, s.bytes]),
  );
  metric(
    'xdirector_service_new_flows_total',
    'Flows created per service.',
    'counter',
    svcs.map((s) => [{ service: s.name }, s.newFlows]),
  );
  metric(
    'xdirector_service_no_backend_packets_total',
    'Packets that found no usable backend.',
    'counter',
    svcs.map((s) => [{ service: s.name }, s.noBackend]),
  );
  const bes = svcs.flatMap((s) => s.backends.map((b) => ({ s, b })));
  metric(
    'xdirector_backend_packets_total',
    'Packets forwarded per backend.',
    'counter',
    bes.map(({ s, b }) => [{ service: s.name, backend: b.name }, b.packets]),
  );
  metric(
    'xdirector_backend_bytes_total',
    'Bytes forwarded per backend.',
    'counter',
    bes.map(({ s, b }) => [{ service: s.name, backend: b.name }, b.bytes]),
  );
  // NAT: the director sees both directions; Out is the replies it rewrote back to VIP:port (ipvsadm --stats OutPkts / OutBytes).
  const nat = bes.filter(({ b }) => b.outPackets !== undefined);
  metric(
    'xdirector_backend_out_packets_total',
    'NAT: reply packets rewritten back to VIP:port per backend.',
    'counter',
    nat.map(({ s, b }) => [{ service: s.name, backend: b.name }, b.outPackets ?? 0]),
  );
  metric(
    'xdirector_backend_out_bytes_total',
    'NAT: reply bytes rewritten back to VIP:port per backend.',
    'counter',
    nat.map(({ s, b }) => [{ service: s.name, backend: b.name }, b.outBytes ?? 0]),
  );
  metric(
    'xdirector_service_forwarding_info',
    'Forwarding method per service (dr, tunnel/ipip, tunnel/gue:PORT, nat), always 1.',
    'gauge',
    svcs.map((s) => [{ service: s.name, forwarding: s.forwarding ?? 'dr' }, 1]),
  );
  metric(
    'xdirector_backend_active_flows',
    "Connections per backend as IPVS counts ActiveConn: TCP flows whose client sent no FIN or RST and that saw a packet within the flow idle time (XDP), or the kernel's ActiveConn (IPVS).",
    'gauge',
    bes.map(({ s, b }) => [{ service: s.name, backend: b.name }, b.activeFlows]),
  );
  metric(
    'xdirector_backend_weight',
    'Effective weight per backend (0: drained, down or out of the pool).',
    'gauge',
    bes.map(({ s, b }) => [{ service: s.name, backend: b.name }, b.weight]),
  );
  // One series per possible state (1 = current), so a state change starts no new series anywhere.
  metric(
    'xdirector_backend_state',
    'Backend state in the dataplane (1 for the current state).',
    'gauge',
    bes.flatMap(({ s, b }) =>
      BACKEND_STATES.map((state): [Labels, number] => [
        { service: s.name, backend: b.name, state },
        b.state === state ? 1 : 0,
      ]),
    ),
  );
  // The daemon's rate estimator (rates.ts): the numbers `status --rate` and the status page show.
  const rs = st.rates?.services ?? [];
  const rbs = rs.flatMap((s) => s.backends.map((b) => ({ s, b })));
  metric(
    'xdirector_service_new_flows_per_second',
    "New flows per second per service over the daemon's last rate window (like ipvsadm --rate CPS).",
    'gauge',
    rs.map((s) => [{ service: s.name }, s.cps]),
  );
  metric(
    'xdirector_service_packets_per_second',
    'Packets per second per service over the last rate window (InPPS).',
    'gauge',
    rs.map((s) => [{ service: s.name }, s.inPps]),
  );
  metric(
    'xdirector_service_bytes_per_second',
    'Bytes per second per service over the last rate window (InBPS).',
    'gauge',
    rs.map((s) => [{ service: s.name }, s.inBps]),
  );
  metric(
    'xdirector_backend_new_flows_per_second',
    'New flows per second per backend over the last rate window (CPS).',
    'gauge',
    rbs.map(({ s, b }) => [{ service: s.name, backend: b.name }, b.cps]),
  );
  metric(
    'xdirector_backend_packets_per_second',
    'Packets per second per backend over the last rate window (InPPS).',
    'gauge',
    rbs.map(({ s, b }) => [{ service: s.name, backend: b.name }, b.inPps]),
  );
  metric(
    'xdirector_backend_bytes_per_second',
    'Bytes per second per backend over the last rate window (InBPS).',
    'gauge',
    rbs.map(({ s, b }) => [{ service: s.name, backend: b.name }, b.inBps]),
  );
  metric(
    'xdirector_verdict_packets_total',
    'Packets per XDP verdict reason.',
    'counter',
    Object.entries(st.dataplane.reasons ?? {}).map(([r, v]) => [{ reason: r }, v]),
  );
  const xd = st.dataplane.kind === 'xdp' ? st.dataplane.detail : undefined;
  const drv = xd?.driverTxErrors && 'driver' in xd.driverTxErrors ? xd.driverTxErrors : undefined;
  metric(
    'xdirector_xdp_driver_tx_errors_total',
    'Frames the network driver dropped on XDP transmit (ethtool -S XDP TX / xmit error counters).',
    'counter',
    xd && drv
      ? [
          [{ interface: xd.interface, kind: 'tx' }, drv.txErrors],
          [{ interface: xd.interface, kind: 'xmit' }, drv.xmitErrors],
        ]
      : [],
  );
  metric(
    'xdirector_xdp_tx_failing',
    'Forwarded frames are turning into driver TX errors (1: alert raised).',
    'gauge',
    xd ? [[{ interface: xd.interface }, xd.txAlert ? 1 : 0]] : [],
  );
  metric(
    'xdirector_flood_pressure',
    'The flood guard is under pressure: takeover or probation tables churning, or new_flow_rate reached (1: alert raised).',
    'gauge',
    xd ? [[{ interface: xd.interface }, xd.floodAlert ? 1 : 0]] : [],
  );
  const flood = st.dataplane.flood;
  if (flood) {
    metric(
      'xdirector_embryonic_flows_total',
      'Flows entered into the embryonic tables (opening packet seen, not yet promoted).',
      'counter',
      [[{}, flood.embryonicCreated]],
    );
    metric(
      'xdirector_rate_limited_flows_total',
      'Proven flows kept in the probation table by the new-flow rate guard (still tracked and served).',
      'counter',
      [[{}, flood.rateLimited]],
    );
    metric(
      'xdirector_takeover_flows_total',
      'Flows entered into the takeover tables by a non-opening packet of an unknown flow (mid-stream takeover, or a spoofed ACK).',
      'counter',
      [[{}, flood.takeoversCreated]],
    );
    metric(
      'xdirector_handshake_flows_total',
      'Flows whose handshake completed here (moved from the embryonic to the probation tables until proven).',
      'counter',
      [[{}, flood.handshakes]],
    );
  }
  const hb = st.health?.backends ?? [];
  metric(
    'xdirector_health_checks_total',
    'Health checks run per backend.',
    'counter',
    hb.map((b) => [{ backend: b.name }, b.checks]),
  );
  metric(
    'xdirector_health_check_failures_total',
    'Health checks that failed per backend.',
    'counter',
    hb.map((b) => [{ backend: b.name }, b.failures]),
  );
  metric(
    'xdirector_health_check_seconds_total',
    'Time spent in health checks per backend (divide by checks_total for the mean latency).',
    'counter',
    hb.map((b) => [{ backend: b.name }, b.checkSecondsTotal ?? 0]),
  );
  metric(
    'xdirector_health_check_last_seconds',
    'Duration of the latest health check per backend.',
    'gauge',
    hb.flatMap((b): [Labels, number][] =>
      b.lastCheckMs === undefined ? [] : [[{ backend: b.name }, b.lastCheckMs / 1000]],
    ),
  );
  metric('xdirector_health_writer_changes_total', "Times a service's writer changed (including to none).", 'counter', [
    [{}, st.health?.counters.writerChanges ?? 0],
  ]);
  metric(
    'xdirector_health_up',
    'Backend passes its health checks (after rise/fall).',
    'gauge',
    hb.map((b) => [{ backend: b.name }, b.up ? 1 : 0]),
  );
  metric(
    'xdirector_replication_lag_seconds',
    'Replica lag (NaN: unknown).',
    'gauge',
    hb.filter((b) => b.role === 'replica').map((b) => [{ backend: b.name }, b.lagSeconds ?? NaN]),
  );
  metric('xdirector_alerts', 'Active alerts (split brain, no writer, empty readers).', 'gauge', [
    [{}, st.health?.alerts.length ?? 0],
  ]);
  metric('xdirector_health_split_brain_total', 'Times two writable servers were seen at once.', 'counter', [
    [{}, st.health?.counters.splitBrain ?? 0],
  ]);
  metric(
    'xdirector_dataplane_diverged',
    'The dataplane differs from the desired state (the last apply failed; retried with backoff).',
    'gauge',
    [[{}, st.apply.diverged ? 1 : 0]],
  );
  metric('xdirector_apply_failures_total', 'Failed applies of the desired state to the dataplane.', 'counter', [
    [{}, st.apply.failuresTotal],
  ]);
  metric(
    'xdirector_vrrp_master',
    'VRRP instance is MASTER.',
    'gauge',
    st.vrrp.map((v) => [{ instance: v.name }, v.state === 'MASTER' ? 1 : 0]),
  );
  metric(
    'xdirector_vrrp_transitions_total',
    'VRRP state transitions per instance.',
    'counter',
    st.vrrp.map((v) => [{ instance: v.name }, v.counters.transitions]),
  );
  const d = st.dataplane;
  metric('xdirector_dataplane_info', 'The dataplane in use (1), its mode and why it was chosen.', 'gauge', [
    [
      { kind: d.kind, mode: d.kind === 'xdp' ? d.detail.mode : 'kernel', reason: st.dataplaneReason ?? 'configured' },
      1,
    ],
  ]);
  metric(
    'xdirector_last_apply_success',
    'The last apply of the desired state to the dataplane succeeded (1) or failed (0).',
    'gauge',
    [[{}, st.lastApplyError ? 0 : 1]],
  );
  metric(
    'xdirector_last_apply_timestamp_seconds',
    'When the desired state was last applied (successfully or not), Unix time.',
    'gauge',
    st.lastApplyAt ? [[{}, Date.parse(st.lastApplyAt) / 1000]] : [],
  );
  const bgp = st.bgp;
  if (bgp) {
    // No state label: a label that changes with the session starts a new series each time (xdirector_bgp_session_state has the state as a number).
    metric(
      'xdirector_bgp_session_established',
      'BGP session with the neighbour is Established.',
      'gauge',
      bgp.neighbours.map((n) => [{ neighbour: n.name, address: n.address }, n.established ? 1 : 0]),
    );
    metric(
      'xdirector_bgp_prefixes_exported',
      'Prefixes announced to the neighbour.',
      'gauge',
      bgp.neighbours.map((n) => [{ neighbour: n.name, address: n.address }, n.exported]),
    );
    const announced = new Set<string>(bgp.announced);
    const vips = [...new Set<string>([...bgp.announced, ...bgp.wanted, ...Object.keys(bgp.withdrawnBecause)])];
    metric(
      'xdirector_bgp_vip_announced',
      'The VIP is announced by this director.',
      'gauge',
      vips.map((v) => [{ vip: v }, announced.has(v) ? 1 : 0]),
    );
    metric(
      'xdirector_bgp_daemon_restarts_total',
      'Times the BGP daemon (bird) was restarted after exiting or being killed as hung.',
      'counter',
      [[{}, bgp.daemon.restarts]],
    );
    metric('xdirector_bgp_daemon_up', 'The BGP daemon (bird) runs and answers its control socket.', 'gauge', [
      [{}, bgp.daemon.running ? 1 : 0],
    ]);
    metric(
      'xdirector_bgp_daemon_hung',
      'The BGP daemon (bird) runs but has stopped answering its control socket (it is killed and restarted).',
      'gauge',
      [[{}, bgp.daemon.hung ? 1 : 0]],
    );
    metric('xdirector_director_drained', 'The whole director is drained (no VIP announced).', 'gauge', [
      [{}, bgp.directorDrained ? 1 : 0],
    ]);
  }
  // Connection sync (src/sync/metrics.ts).
  if (st.sync) syncMetrics(st.sync, metric);
  monitoringMetrics(st, proc, metric);
  nodeIpvsMetrics(st, metric);
  return lines.join('\n') + '\n';
}
