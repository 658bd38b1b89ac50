// Writer election and pool alerts: the one place a service's writer is chosen. The health
// monitor calls electWriters() once per check round and publishes the result in its snapshot
// (snapshot.writers, snapshot.alerts); the desired state only reads it. Pure.
//
//   writer : the one writable, non-replicating, up server (role 'primary'). Two or more such
//            servers (split brain): the established writer stays and an alert is raised, never
//            a flip-flop; with no established writer among them, or none at all, the service
//            fails closed (no writer) and an alert is raised.
//   readers: an alert when no replica is eligible (and the writer is not included).

import type { ServiceConfig } from '../config';
import type { AlertKind, BackendHealth } from './types';

/** Does this service need a writer election (and so an entry in snapshot.writers)? */
export function needsWriter(s: ServiceConfig): boolean {
  return s.pool === 'writer' || (s.pool === 'readers' && s.readersIncludeWriter);
}

export interface RaisedAlert {
  kind: AlertKind;
  service: string;
  message: string;
}

export interface WriterElection {
  writer?: string;
  alerts: RaisedAlert[];
}

/**
 * One service: elect the writer among `candidates` (keys of up backends with role 'primary',
 * in config order), keeping `prevWriter` whenever it is still a candidate. `names` maps keys
 * to names for messages.
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
          service,
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
          service,
          message: `service ${service}: no writable server (read_only=0, not replicating, up): writer service has no backend`,
        },
      ],
    };
  }
  return {
    alerts: [
      {
        kind: 'ambiguous-writer',
        service,
        message:
          `service ${service}: ${candidates.length} writable servers (${candidates.map(names).join(', ')}) and no established writer: ` +
          `failing closed (writer service has no backend) until exactly one is writable`,
      },
    ],
  };
}

/** Writer candidates of a service, in config order. */
export function writerCandidates(service: ServiceConfig, byKey: ReadonlyMap<string, BackendHealth>): string[] {
  const out: string[] = [];
  for (const b of service.backends) {
    const h = byKey.get(b.key);
    if (h && h.up && h.role === 'primary' && !out.includes(h.key)) out.push(h.key);
  }
  return out;
}

export interface RoundElection {
  /** Elected writer key per service that needs one; null = none (fail closed). */
  writers: Map<string, string | null>;
  /** Alerts raised this round, by id "kind/service". */
  alerts: Map<string, RaisedAlert>;
}

/**
 * The writer election of a round, for every service: the one election. `prev` holds the
 * writers of the previous round, `maxLagMs` the readers' lag limit (for the alert text).
 */
export function electWriters(
  services: readonly ServiceConfig[],
  byKey: ReadonlyMap<string, BackendHealth>,
  prev: ReadonlyMap<string, string | null>,
  maxLagMs: number,
): RoundElection {
  const names = (k: string): string => byKey.get(k)?.name ?? k;
  const out: RoundElection = { writers: new Map(), alerts: new Map() };
  for (const s of services) {
    if (needsWriter(s)) {
      const e = electWriter(s.name, writerCandidates(s, byKey), prev.get(s.name) ?? undefined, names);
      out.writers.set(s.name, e.writer ?? null);
      for (const a of e.alerts) out.alerts.set(`${a.kind}/${s.name}`, a);
    }
    if (s.pool === 'readers') {
      const eligible = s.backends.some((b) => byKey.get(b.key)?.readerEligible);
      if (!eligible && !(s.readersIncludeWriter && out.writers.get(s.name))) {
        out.alerts.set(`readers-empty/${s.name}`, {
          kind: 'readers-empty',
          service: s.name,
          message: `service ${s.name}: readers pool is empty (no healthy replica within ${maxLagMs / 1000} s of lag)`,
        });
      }
    }
  }
  return out;
}
