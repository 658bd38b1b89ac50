// The health state a hot restart starts from, read back from the dataplane it adopted.
//
// After a restart over pinned XDP maps the program has kept forwarding with the
// states the previous run wrote (backend flags active / draining / down). Starting
// the new health monitor from nothing would let the very first result decide:
// one slow first login marks a healthy writer down and re-hashes its established
// flows. So each backend starts as it was pinned, and needs `fall` failures to go
// down (or `rise` successes to come up), as if the monitor had never stopped.
// Pure.
import type { ServiceConfig } from '../config';
import type { BackendState, PinnedBackend } from '../state/types';
import { needsWriter } from './election';
import type { InitialBackendState, InitialHealth } from './types';

export type { PinnedBackend };

/**
 * A backend is up if some service holds it active or draining (a drained backend
 * that failed its checks is pinned down); down if every service that holds it has
 * it down; absent (first result decides, as for a new backend) if none holds it. With
 * `absentIsDown` (a dataplane that removes down backends, as IPVS removes the dest), a configured
 * backend missing from a service the dataplane holds was down: it needs `rise` successes.
 * The active backend of a writer pool was its writer; an active backend of a
 * readers pool was an eligible reader.
 */
export function initialFromPinned(
  services: readonly ServiceConfig[],
  pinned: readonly PinnedBackend[],
  opts: { absentIsDown?: boolean } = {},
): InitialHealth {
  const norm = (a: string) => a.toLowerCase();
  const bySvc = new Map<string, Map<string, BackendState>>();
  for (const p of pinned) {
    const k = `${norm(p.vip)}|${p.port}|${p.proto}`;
    let m = bySvc.get(k);
    if (!m) {
      m = new Map();
      bySvc.set(k, m);
    }
    m.set(norm(p.address), p.state);
  }
  const backends = new Map<string, InitialBackendState>();
  const writers: Record<string, string> = {};
  for (const s of services) {
    const held = bySvc.get(`${norm(s.vip)}|${s.port}|${s.protocol}`);
    if (!held) continue;
    const pool = s.pool;
    const active = s.backends.filter((b) => held.get(norm(b.address)) === 'active').map((b) => b.key);
    if (pool === 'writer' && needsWriter(s) && active.length === 1) writers[s.name] = active[0]!;
    for (const b of s.backends) {
      const state = held.get(norm(b.address)) ?? (opts.absentIsDown ? 'down' : undefined);
      if (state === undefined) continue;
      const key = b.key;
      const cur = backends.get(key) ?? { up: false };
      const up = cur.up || state !== 'down';
      const next: InitialBackendState = { ...cur, up };
      if (state === 'active' && pool === 'writer') next.role = 'primary';
      if (state === 'active' && pool === 'readers' && next.role !== 'primary') {
        next.role = 'replica';
        next.readerEligible = true;
      }
      backends.set(key, next);
    }
  }
  return { backends, writers };
}
