// Connection sync's Prometheus series (called by src/daemon/metrics.ts with its writer).
import type { SyncStatus } from './status';

type Labels = Record<string, string>;
type Metric = (name: string, help: string, type: 'counter' | 'gauge', rows: [Labels, number][]) => void;

export function syncMetrics(s: SyncStatus, metric: Metric): void {
  metric('xdirector_sync_messages_sent_total', 'Sync messages sent (each to every peer or the group).', 'counter', [
    [{}, s.sent.messages],
  ]);
  metric('xdirector_sync_entries_sent_total', 'Flow entries sent to the sync peers.', 'counter', [
    [{}, s.sent.entries],
  ]);
  metric('xdirector_sync_bytes_sent_total', 'Bytes of sync messages sent (UDP payload, once per message).', 'counter', [
    [{}, s.sent.bytes],
  ]);
  metric('xdirector_sync_messages_received_total', 'Authenticated, fresh sync messages received.', 'counter', [
    [{}, s.received.messages],
  ]);
  metric('xdirector_sync_entries_received_total', 'Flow entries in the received sync messages.', 'counter', [
    [{}, s.received.entries],
  ]);
  metric(
    'xdirector_sync_entries_installed_total',
    'Received flow entries installed in the takeover tables.',
    'counter',
    [[{}, s.received.installed]],
  );
  metric(
    'xdirector_sync_datagrams_dropped_total',
    'Sync datagrams dropped before their entries were read, by reason (hmac: forged; replay: old sequence; rate: over max_import_rate, counted in entries).',
    'counter',
    Object.entries(s.dropped).map(([reason, n]) => [{ reason }, n]),
  );
  metric(
    'xdirector_sync_entries_rejected_total',
    'Received flow entries refused by the import rules, by reason.',
    'counter',
    Object.entries(s.rejected).map(([reason, n]) => [{ reason }, n]),
  );
  metric('xdirector_sync_exported_total', 'Flow reports the XDP program wrote to the sync ring buffer.', 'counter', [
    [{}, s.exported.events],
  ]);
  metric('xdirector_sync_export_lost_total', 'Flow reports lost to a full sync ring buffer.', 'counter', [
    [{}, s.exported.lost],
  ]);
  metric(
    'xdirector_sync_peer_silent',
    'The sync peer has sent nothing for sync.silent_after.',
    'gauge',
    s.peers.map((p) => [{ peer: p.address }, p.silent ? 1 : 0]),
  );
  metric(
    'xdirector_sync_peer_last_heard_seconds',
    "Seconds since the sync peer's last message (-1: never).",
    'gauge',
    s.peers.map((p) => [{ peer: p.address }, p.lastHeardMsAgo === null ? -1 : p.lastHeardMsAgo / 1000]),
  );
  if (s.lagMs) {
    metric(
      'xdirector_sync_lag_seconds',
      "Lag from a flow's report on the peer to its install here (recent samples).",
      'gauge',
      [
        [{ quantile: '0.5' }, s.lagMs.p50 / 1000],
        [{ quantile: '0.99' }, s.lagMs.p99 / 1000],
        [{ quantile: '1' }, s.lagMs.max / 1000],
      ],
    );
  }
}
