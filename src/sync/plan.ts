// Import planning (pure): which received sync entries a director installs, and where. The
// socket and map code (src/sync/index.ts) reads the local state into a LocalView and the
// existing entries through `existing` (all of a message's at once), and writes what this returns.
//
// Rules (each refusal is counted under its reason):
//   - the service (VIP, port, protocol) must be one of this director's, and the backend one of
//     that service's usable backends here (in use, not DOWN): an entry names a backend, it never
//     supplies a destination, so nothing a peer sends makes this director forward elsewhere;
//   - the forwarding must match this director's for that backend;
//   - a flow this director saw open (flow table, probation or embryonic table) is its own and is
//     never touched: it completed its handshake here, so this director's entry is the truth;
//   - a takeover-table entry that saw a packet more recently than the entry is kept;
//   - everything else goes into the takeover table only. That table is an LRU of its own, so a
//     burst of imports can evict takeover entries (imported or taken over mid-stream) but never
//     a flow of the flow or probation tables: this director's established flows stay.
import type { SyncEntry, SyncForwarding } from './codec';

export interface LocalBackend {
  index: number;
  generation: number;
  forwarding: SyncForwarding;
  /** NAT: the backend's address and its own port (a reply's source), for the reverse entry. */
  addr?: Buffer;
  port?: number;
}

export interface LocalService {
  /** Usable backends by address text (bytes as hex: see addrKey). */
  backends: Map<string, LocalBackend>;
}

export interface LocalView {
  /** Services by serviceKey(). */
  services: Map<string, LocalService>;
}

/** Where a flow already is on this director, and its last packet (monotonic ns). */
export interface Existing {
  table: 'flow' | 'probation' | 'embryonic' | 'takeover';
  lastSeenNs: bigint;
}

export type RejectReason = 'no_service' | 'no_backend' | 'forwarding' | 'local_flow' | 'local_newer';

export interface Install {
  entry: SyncEntry;
  backend: LocalBackend;
  /** last_seen_ns for the installed entry: now minus the entry's age, so it ages like a local one. */
  lastSeenNs: bigint;
}

export interface ImportPlan {
  installs: Install[];
  rejected: Partial<Record<RejectReason, number>>;
  /** The first refused entry per reason, for one log line each. */
  examples: Partial<Record<RejectReason, SyncEntry>>;
}

export const addrKey = (b: Buffer): string => b.toString('hex');

export function serviceKey(family: number, vip: Buffer, port: number, proto: 'tcp' | 'udp'): string {
  return `${family}|${addrKey(vip)}|${port}|${proto}`;
}

/**
 * The installs for `entries` received `transitMs` after they were sent (clamped at 0: clocks
 * differ), at monotonic `nowNs`. `existing` looks up, in one call, where this director has the
 * flows of the entries that passed the service and backend checks (one answer per entry, in
 * order): the caller can do every map lookup of a message at once.
 */
export function planImport(
  entries: readonly SyncEntry[],
  view: LocalView,
  nowNs: bigint,
  transitMs: number,
  existing: (es: readonly SyncEntry[]) => readonly (Existing | undefined)[],
): ImportPlan {
  const plan: ImportPlan = { installs: [], rejected: {}, examples: {} };
  const reject = (why: RejectReason, e: SyncEntry): void => {
    plan.rejected[why] = (plan.rejected[why] ?? 0) + 1;
    plan.examples[why] ??= e;
  };
  const transitNs = BigInt(Math.max(0, Math.round(transitMs))) * 1_000_000n;
  const ours: SyncEntry[] = [];
  const backends: LocalBackend[] = [];
  // The previous entry's service and backend: a message's entries mostly share them, and the
  // text keys cost more than comparing the bytes.
  let last: SyncEntry | undefined;
  let lastSvc: LocalService | undefined;
  let lastBe: LocalBackend | undefined;
  for (const e of entries) {
    const sameSvc =
      last !== undefined &&
      last.family === e.family &&
      last.vipPort === e.vipPort &&
      last.proto === e.proto &&
      last.vip.equals(e.vip);
    const svc = sameSvc ? lastSvc : view.services.get(serviceKey(e.family, e.vip, e.vipPort, e.proto));
    const be = !svc
      ? undefined
      : sameSvc && last!.backend.equals(e.backend)
        ? lastBe
        : svc.backends.get(addrKey(e.backend));
    last = e;
    lastSvc = svc;
    lastBe = be;
    if (!svc) {
      reject('no_service', e);
      continue;
    }
    if (!be) {
      reject('no_backend', e);
      continue;
    }
    if (be.forwarding !== e.forwarding) {
      reject('forwarding', e);
      continue;
    }
    ours.push(e);
    backends.push(be);
  }
  if (!ours.length) return plan;
  const have = existing(ours);
  if (have.length !== ours.length)
    throw new RangeError(`import plan: existing() answered ${have.length} entries for ${ours.length}`);
  ours.forEach((e, i) => {
    const ageNs = BigInt(e.ageMs) * 1_000_000n + transitNs;
    const lastSeenNs = nowNs > ageNs ? nowNs - ageNs : 0n;
    const h = have[i];
    if (h && h.table !== 'takeover') reject('local_flow', e);
    else if (h && h.lastSeenNs >= lastSeenNs) reject('local_newer', e);
    else plan.installs.push({ entry: e, backend: backends[i]!, lastSeenNs });
  });
  return plan;
}
