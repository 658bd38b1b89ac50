// How status shows forwarding, one label per backend and per service; the dataplanes and the
// config share it. Pure.
import type { Forwarding, TunnelSpec } from './types';

/** "dr", "tunnel/ipip", "tunnel/gue:6080", "nat": how status shows one backend's forwarding. */
export function forwardingLabel(b: { forwarding?: Forwarding; tunnel?: TunnelSpec }): string {
  if (b.forwarding === 'nat') return 'nat';
  if (b.forwarding !== 'tunnel' || !b.tunnel) return 'dr';
  return b.tunnel.encap === 'gue' ? `tunnel/gue:${b.tunnel.guePort}` : 'tunnel/ipip';
}

/** A service's forwarding for status: its backends' labels, distinct, joined by "+" (default: the service's own). */
export function serviceForwardingLabel(
  backends: readonly { forwarding?: Forwarding; tunnel?: TunnelSpec }[],
  fallback: string,
): string {
  const labels = [...new Set(backends.map(forwardingLabel))];
  return labels.length ? labels.join('+') : fallback;
}
