// Turns config + health + drains + resolved MACs into the DesiredState.
// Pure: no I/O.
import type { DesiredBackend, DesiredService, DesiredState, Family, BackendState } from '../state/types';
import type { HealthSnapshot } from '../health/types';
import { computeBackends } from '../health/pools';
import { backendForwarding } from '../config/forwarding';
import type { TunnelConfig } from '../config/schema';

/** The subset of a config service this needs (structurally the config's service). */
export interface ServiceCfg {
  name: string;
  vip: string;
  port: number;
  protocol: 'tcp' | 'udp';
  scheduler: DesiredService['scheduler'];
  ring: DesiredService['ring']['kind'];
  onEmpty: DesiredService['onEmpty'];
  check: 'mysql' | 'tcp' | 'none';
  pool: 'static' | 'writer' | 'readers';
  readersIncludeWriter: boolean;
  encap?: 'ipip' | 'gue';
  guePort?: number;
  backends: { address: string; port: number; weight: number; mac?: string; name: string; key: string; forwarding?: 'dr' | 'tunnel' }[];
}

export interface DesiredInputs {
  services: ServiceCfg[];
  ringSize: number;
  ipvsRingSize: number;
  /** address -> MAC from the neighbour table (static config MACs win). */
  macs: ReadonlyMap<string, string>;
  /** null: no health monitor (every backend with check none, or health disabled). */
  health: HealthSnapshot | null;
  drained: ReadonlySet<string>;
  /** The director's tunnel addresses (config tunnel section). */
  tunnel?: TunnelConfig;
  /** Path MTU per tunnel backend address, from the route towards it. */
  mtus?: ReadonlyMap<string, number>;
}

export interface DesiredOutput {
  state: DesiredState;
  writers: Record<string, string | null>;
  alerts: string[];
  unresolved: { service: string; backend: string; error?: string }[];
}

function familyOf(address: string): Family {
  return address.includes(':') ? 6 : 4;
}

export function buildDesired(inp: DesiredInputs): DesiredOutput {
  const out: DesiredOutput = { state: { services: [] }, writers: {}, alerts: [], unresolved: [] };
  for (const s of inp.services) {
    let computed: Map<string, { weight: number; state: BackendState }>;
    if (inp.health && s.check !== 'none') {
      const c = computeBackends(s, inp.health, inp.drained, inp.health.writers[s.name] ?? undefined);
      computed = new Map(c.backends.map((b) => [b.key, { weight: b.weight, state: b.state }]));
      if (c.writer !== undefined || s.pool === 'writer') out.writers[s.name] = c.writer ?? null;
      out.alerts.push(...c.alerts);
    } else {
      computed = new Map(
        s.backends.map((b) => {
          const drained = inp.drained.has(b.name) || inp.drained.has(b.key);
          return [b.key, { weight: drained ? 0 : b.weight, state: drained ? 'draining' : b.weight > 0 ? 'active' : 'draining' } as const];
        }),
      );
    }
    const backends: DesiredBackend[] = s.backends.map((b) => {
      const c = computed.get(b.key) ?? { weight: 0, state: 'down' as BackendState };
      const mac = b.mac ?? inp.macs.get(b.address);
      if (!mac) out.unresolved.push({ service: s.name, backend: b.name });
      return { key: b.key, name: b.name, address: b.address, port: b.port, family: familyOf(b.address), weight: c.weight, configWeight: b.weight, state: c.state, ...(mac ? { mac } : {}), ...backendForwarding(b, s, inp.tunnel, inp.mtus?.get(b.address)) };
    });
    out.state.services.push({
      name: s.name,
      vip: s.vip,
      port: s.port,
      proto: s.protocol,
      family: familyOf(s.vip),
      scheduler: s.scheduler,
      ring: { kind: s.ring, size: s.ring === 'ipvs-mh' ? inp.ipvsRingSize : inp.ringSize },
      onEmpty: s.onEmpty,
      backends,
    });
  }
  return out;
}
