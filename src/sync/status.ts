// Connection sync's status as the daemon reports it (status and metrics), apart from index.ts so
// metrics.ts reads it without importing the daemon part back.
import type { DecodeProblem } from './codec';
import type { RejectReason } from './plan';

export interface SyncPeerStatus {
  address: string;
  sender: number | null;
  messages: number;
  entries: number;
  lastHeardMsAgo: number | null;
  silent: boolean;
}

export interface SyncStatus {
  source: string;
  transport: string;
  peers: SyncPeerStatus[];
  sent: { messages: number; entries: number; bytes: number };
  received: { messages: number; entries: number; installed: number };
  /** Datagrams dropped before their entries were read, by why. */
  dropped: Record<DecodeProblem | 'replay' | 'own' | 'rate', number>;
  /** Entries refused by the import rules, by why. */
  rejected: Record<RejectReason, number>;
  /** The program's export counters: records written, records lost to a full ring. */
  exported: { events: number; lost: number };
  /** Lag (ms) from a flow's report on the sending director to its install here: recent samples. */
  lagMs: { p50: number; p99: number; max: number; samples: number } | null;
  alerts: string[];
}
