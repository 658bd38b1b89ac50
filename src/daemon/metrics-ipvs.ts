// node_exporter's IPVS collector series (collector/ipvs_linux.go: same names, types and labels),
// from the XDP counters, so dashboards and alerts written for IPVS keep working after the move.
// Only with the XDP dataplane: with the IPVS dataplane node_exporter reads the kernel's own.
//
// Differences to node_exporter on an IPVS director, all from what the director sees:
// - outgoing packets and bytes are 0: with DR and tunnel forwarding the replies go from the real
//   server to the client (IPVS counts none there either; only NAT counts them);
// - connections_total counts flows created (a new flow per opening packet, as IPVS creates a
//   connection per SYN); incoming counts the packets and bytes forwarded to backends;
// - backend_connections_active / _inactive are xdirector_backend_active_flows /
//   _inactive_flows (IPVS's ActiveConn / InActConn as far as the client's side shows them,
//   src/dataplane/xdp/flow-counts.ts); local_mark is always "" (no fwmark services).
import type { DaemonStatus } from './status';
import type { MetricWriter, Labels } from './metric-types';

export function nodeIpvsMetrics(st: DaemonStatus, metric: MetricWriter): void {
  if (st.dataplane.kind !== 'xdp') return;
  const svcs = st.dataplane.services;
  const sum = (f: (s: (typeof svcs)[number]) => number) => svcs.reduce((a, s) => a + f(s), 0);
  metric('node_ipvs_connections_total', 'The total number of connections made.', 'counter', [
    [{}, sum((s) => s.newFlows)],
  ]);
  metric('node_ipvs_incoming_packets_total', 'The total number of incoming packets.', 'counter', [
    [{}, sum((s) => s.packets)],
  ]);
  metric('node_ipvs_outgoing_packets_total', 'The total number of outgoing packets.', 'counter', [[{}, 0]]);
  metric('node_ipvs_incoming_bytes_total', 'The total amount of incoming data.', 'counter', [
    [{}, sum((s) => s.bytes)],
  ]);
  metric('node_ipvs_outgoing_bytes_total', 'The total amount of outgoing data.', 'counter', [[{}, 0]]);
  // node_exporter sums backends that share a label set; here one (VIP, port, proto, backend) is one backend.
  const rows = new Map<string, { labels: Labels; active: number; inactive: number; weight: number }>();
  for (const s of svcs) {
    for (const b of s.backends) {
      const labels: Labels = {
        local_address: s.vip,
        local_port: s.port,
        remote_address: b.address,
        remote_port: b.port,
        proto: s.proto.toUpperCase(),
        local_mark: '',
      };
      const k = JSON.stringify(labels);
      const r = rows.get(k) ?? { labels, active: 0, inactive: 0, weight: 0 };
      r.active += b.activeFlows;
      r.inactive += b.inactiveFlows;
      r.weight += b.weight;
      rows.set(k, r);
    }
  }
  const all = [...rows.values()];
  metric(
    'node_ipvs_backend_connections_active',
    'The current active connections by local and remote address.',
    'gauge',
    all.map((r) => [r.labels, r.active]),
  );
  metric(
    'node_ipvs_backend_connections_inactive',
    'The current inactive connections by local and remote address.',
    'gauge',
    all.map((r) => [r.labels, r.inactive]),
  );
  metric(
    'node_ipvs_backend_weight',
    'The current backend weight by local and remote address.',
    'gauge',
    all.map((r) => [r.labels, r.weight]),
  );
}
