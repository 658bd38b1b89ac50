// Config + what health, drain and the neighbour table say -> the desired state handed to a
// Dataplane. A pure function: the daemon gathers the overrides and calls it again whenever
// one of them changes.

import type { BackendState, DesiredBackend, DesiredService, DesiredState } from '../state/types';
import type { Config } from './schema';
import { backendForwarding } from './forwarding';

export interface BackendOverride {
  /** Effective weight (>= 0) decided by health (e.g. lc) or pools. */
  weight?: number;
  state?: BackendState;
}

export interface DesiredOverrides {
  /** Health results per real server, by backend key ("address:port"): apply to every service with that backend. */
  backends?: ReadonlyMap<string, BackendOverride> | Readonly<Record<string, BackendOverride>>;
  /**
   * Per service name, per backend key: pool decisions (writer / readers) that differ by service.
   * Take precedence over `backends`. A backend of a writer/readers pool is "down" in that
   * service unless this map gives it a state (fail closed until health decides its role).
   */
  services?: ReadonlyMap<string, ReadonlyMap<string, BackendOverride>> | Readonly<Record<string, Readonly<Record<string, BackendOverride>>>>;
  /** Operator drains (`xdirector drain NAME`), by backend key or name: weight 0, state draining. */
  drained?: Iterable<string>;
  /** MACs from the neighbour table, by canonical backend address. A static `mac:` in the config wins. */
  macs?: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
  /** Path MTU per tunnel backend address (from the route towards it). */
  mtus?: ReadonlyMap<string, number>;
  /** Leave backends without a MAC out of the services (XDP needs one); they are reported either way. */
  requireMac?: boolean;
}

export interface MissingMac {
  service: string;
  key: string;
  name: string;
  address: string;
}

export interface DesiredResult extends DesiredState {
  services: DesiredService[];
  /** Backends with neither a static nor a neighbour-table MAC (not guessed). */
  withoutMac: MissingMac[];
}

function get<V>(m: ReadonlyMap<string, V> | Readonly<Record<string, V>> | undefined, k: string): V | undefined {
  if (!m) return undefined;
  if (m instanceof Map) return m.get(k);
  return Object.prototype.hasOwnProperty.call(m, k) ? (m as Record<string, V>)[k] : undefined;
}

/**
 * The desired services: config order, backends in config order, each backend's effective
 * weight and state:
 *   drained (operator)            -> weight 0, draining
 *   override state down           -> weight 0, down
 *   override state draining       -> weight 0, draining
 *   otherwise weight = override weight ?? config weight; weight 0 -> draining, else active
 * Precedence: drain > per-service override > per-backend override > config.
 */
export function desiredServices(config: Config, overrides: DesiredOverrides = {}): DesiredResult {
  const drained = new Set(overrides.drained ?? []);
  const withoutMac: MissingMac[] = [];
  const services = config.services.map((s): DesiredService => {
    const perService = overrides.services instanceof Map ? overrides.services.get(s.name) : get(overrides.services as Record<string, Record<string, BackendOverride>> | undefined, s.name);
    const backends: DesiredBackend[] = [];
    for (const b of s.backends) {
      const svcOv = get(perService as ReadonlyMap<string, BackendOverride> | Record<string, BackendOverride> | undefined, b.key);
      const beOv = get(overrides.backends, b.key);
      let state: BackendState;
      let weight: number;
      if (drained.has(b.key) || drained.has(b.name)) {
        state = 'draining';
        weight = 0;
      } else if (s.pool !== 'static' && svcOv === undefined) {
        // writer/readers membership comes only from health's per-service decision.
        state = 'down';
        weight = 0;
      } else {
        const st = svcOv?.state ?? beOv?.state ?? 'active';
        const w = svcOv?.weight ?? beOv?.weight ?? b.weight;
        if (st === 'down') { state = 'down'; weight = 0; }
        else if (st === 'draining' || w <= 0) { state = 'draining'; weight = 0; }
        else { state = 'active'; weight = Math.trunc(w); }
      }
      const mac = b.mac ?? get(overrides.macs, b.address);
      if (!mac) withoutMac.push({ service: s.name, key: b.key, name: b.name, address: b.address });
      if (!mac && overrides.requireMac) continue;
      backends.push({ key: b.key, name: b.name, address: b.address, port: b.port, family: b.family, weight, state, ...(mac ? { mac } : {}), ...backendForwarding(b, s, config.tunnel, overrides.mtus?.get(b.address)) });
    }
    return {
      name: s.name,
      vip: s.vip,
      port: s.port,
      proto: s.protocol,
      family: s.family,
      scheduler: s.scheduler,
      ring: { kind: s.ring, size: s.ringSize },
      onEmpty: s.onEmpty,
      backends,
    };
  });
  return { services, withoutMac };
}
