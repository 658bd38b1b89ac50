// Forwarding per backend for the desired state: DR, NAT (the backend's port is the desired
// backend's port), or a tunnel with its encapsulation, the director's outer source address of the
// real server's family and the path MTU. Pure.
import type { Forwarding, TunnelSpec } from '../state/types';
import type { Encap, TunnelConfig } from './schema';
import { DEFAULT_GUE_PORT } from '../defaults';

export interface ForwardingInput {
  /** The backend's effective forwarding (config: its own, else its service's). */
  forwarding?: Forwarding;
  address: string;
}

export interface ServiceTunnel {
  encap?: Encap;
  guePort?: number;
}

/**
 * The forwarding fields of a DesiredBackend. A tunnel backend whose family has no source
 * address cannot be encapsulated: check-config refuses that config, so this only throws on a
 * config that skipped validation.
 */
export function backendForwarding(
  b: ForwardingInput,
  svc: ServiceTunnel,
  tunnel: TunnelConfig | undefined,
  pathMtu?: number,
): { forwarding: Forwarding; tunnel?: TunnelSpec; natMtu?: number } {
  if (b.forwarding === 'nat') return { forwarding: 'nat', ...(pathMtu ? { natMtu: pathMtu } : {}) };
  if (b.forwarding !== 'tunnel') return { forwarding: 'dr' };
  const v6 = b.address.includes(':');
  const source = v6 ? tunnel?.sourceV6 : tunnel?.sourceV4;
  if (!source)
    throw new TypeError(
      `tunnel backend ${b.address} needs tunnel.${v6 ? 'source_v6' : 'source_v4'} (check-config reports this)`,
    );
  const mtu = tunnel?.mtu ?? pathMtu;
  return {
    forwarding: 'tunnel',
    tunnel: { encap: svc.encap ?? 'ipip', guePort: svc.guePort ?? DEFAULT_GUE_PORT, source, ...(mtu ? { mtu } : {}) },
  };
}

// The status labels (forwardingLabel, serviceForwardingLabel) live in state/forwarding.ts: the
// dataplanes show them and do not import the config.
export { forwardingLabel, serviceForwardingLabel } from '../state/forwarding';
