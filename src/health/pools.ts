// Pools and roles: which backends of a service take new flows, given the health snapshot.
// Pure (no I/O, no clock): the daemon calls computeBackends() for every service after each
// 'change' event and turns the result into the DesiredState.
//
//   static  : every configured backend that is up.
//   writer  : the one writable, non-replicating, up server (role 'primary'). Two or more such
//             servers (split brain): the established writer stays and an alert is raised,
//             never a flip-flop; with no established writer among them, or none at all, the
//             service fails closed (no backend takes new flows) and an alert is raised.
//   readers : up replicas whose lag is known and <= max_replication_lag (readerEligible,
//             decided by the monitor), plus the elected writer if readersIncludeWriter.
//
// Backend states in the result: 'active' (weight > 0), 'draining' (operator drain: weight 0,
// established flows finish; also an up replica that fell out of the readers pool), 'down'
// (failed checks, or not the writer of a writer pool: established flows are re-hashed, so a
// demoted primary keeps no sessions that would write to it).

import { backendKey } from '../net/inet';
import type { BackendState } from '../state/types';
import type {
  BackendHealth,
  CheckKind,
  ComputedBackend,
  ComputedService,
  HealthBackendConfig,
  HealthServiceConfig,
  HealthSnapshot,
  PoolKind,
} from './types';

export { backendKey };

export function keyOf(b: HealthBackendConfig): string {
  return b.key ?? backendKey(b.address, b.port);
}

export function nameOf(b: HealthBackendConfig): string {
  return b.name ?? keyOf(b);
}

export function serviceCheck(s: HealthServiceConfig): CheckKind {
  if (s.check) return s.check;
  const port = s.port ?? s.backends[0]?.port;
  return port === 3306 ? 'mysql' : 'tcp';
}

export function servicePool(s: HealthServiceConfig): PoolKind {
  return s.pool ?? 'static';
}

/** Does this service need a writer election (and so an entry in snapshot.writers)? */
export function needsWriter(s: HealthServiceConfig): boolean {
  const p = servicePool(s);
  return p === 'writer' || (p === 'readers' && s.readersIncludeWriter === true);
}

export interface WriterElection {
  writer?: string;
  alerts: { kind: 'split-brain' | 'no-writer' | 'ambiguous-writer'; message: string }[];
}

/**
 * Elect the writer among `candidates` (keys of up backends with role 'primary', in config
 * order), keeping `prevWriter` whenever it is still a candidate. `names` maps keys to names
 * for messages.
 */
export function electWriter(
  service: string,
  candidates: string[],
  prevWriter: string | undefined,
  names: (key: string) => string = (k) => k,
): WriterElection {
  if (prevWriter !== undefined && candidates.includes(prevWriter)) {
    if (candidates.length === 1) return { writer: prevWriter, alerts: [] };
    const others = candidates.filter((c) => c !== prevWriter).map(names);
    return {
      writer: prevWriter,
      alerts: [
        {
          kind: 'split-brain',
          message:
            `service ${service}: split brain: ${candidates.length} writable servers (${names(prevWriter)} is the writer, ` +
            `also writable: ${others.join(', ')}); keeping ${names(prevWriter)}: set read_only=1 on the others`,
        },
      ],
    };
  }
  if (candidates.length === 1) return { writer: candidates[0], alerts: [] };
  if (candidates.length === 0) {
    return {
      alerts: [
        {
          kind: 'no-writer',
          message: `service ${service}: no writable server (read_only=0, not replicating, up): writer service has no backend`,
        },
      ],
    };
  }
  return {
    alerts: [
      {
        kind: 'ambiguous-writer',
        message:
          `service ${service}: ${candidates.length} writable servers (${candidates.map(names).join(', ')}) and no established writer: ` +
          `failing closed (writer service has no backend) until exactly one is writable`,
      },
    ],
  };
}

function healthOf(snapshot: HealthSnapshot): Map<string, BackendHealth> {
  return new Map(snapshot.backends.map((b) => [b.key, b]));
}

/** Writer candidates of a service, in config order. */
export function writerCandidates(service: HealthServiceConfig, byKey: Map<string, BackendHealth>): string[] {
  const out: string[] = [];
  for (const b of service.backends) {
    const h = byKey.get(keyOf(b));
    if (h && h.up && h.role === 'primary' && !out.includes(h.key)) out.push(h.key);
  }
  return out;
}

/**
 * The backends of one service with their effective weight and state.
 * `drained`: backend names (or keys) the operator drained: 'draining', weight 0, whatever
 * their health, except that a drained backend that is down is reported 'down'.
 * `prevWriter`: the established writer's key (snapshot.writers[service.name]).
 */
export function computeBackends(
  service: HealthServiceConfig,
  snapshot: HealthSnapshot,
  drained: ReadonlySet<string>,
  prevWriter?: string,
): ComputedService {
  const byKey = healthOf(snapshot);
  const pool = servicePool(service);
  const check = serviceCheck(service);
  const nameByKey = new Map(service.backends.map((b) => [keyOf(b), nameOf(b)]));
  const names = (k: string): string => nameByKey.get(k) ?? byKey.get(k)?.name ?? k;
  const alerts: string[] = [];

  let writer: string | undefined;
  if (needsWriter(service)) {
    const e = electWriter(service.name, writerCandidates(service, byKey), prevWriter ?? undefined, names);
    writer = e.writer;
    for (const a of e.alerts) alerts.push(a.message);
  }

  const backends: ComputedBackend[] = [];
  let activeCount = 0;
  for (const b of service.backends) {
    const key = keyOf(b);
    const name = nameOf(b);
    const h = byKey.get(key);
    const cfgWeight = b.weight ?? 1;
    // check 'none': always up; otherwise up only once the monitor says so.
    const up = check === 'none' ? true : (h?.up ?? false);
    let inPool: boolean;
    let outState: BackendState = 'down';
    if (pool === 'writer') {
      inPool = key === writer;
      outState = 'down';
    } else if (pool === 'readers') {
      inPool = key === writer || (h?.readerEligible ?? false);
      outState = 'draining';
    } else {
      inPool = true;
    }
    let state: BackendState;
    let weight = 0;
    if (!up) state = 'down';
    else if (drained.has(name) || drained.has(key)) state = 'draining';
    else if (!inPool) state = outState;
    else {
      state = 'active';
      const lc = service.scheduler === 'lc' && h ? h.lcWeight : 1;
      weight = cfgWeight * lc;
      if (weight === 0) state = 'draining';
    }
    if (state === 'active') activeCount++;
    backends.push({ key, name, weight, state });
  }
  if (pool === 'readers' && activeCount === 0 && service.backends.length > 0) {
    alerts.push(`service ${service.name}: readers pool is empty (no healthy replica within the lag limit)`);
  }
  return writer === undefined ? { backends, alerts } : { backends, writer, alerts };
}
