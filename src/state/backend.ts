// What the desired state says of one backend, asked in one place.
import type { DesiredBackend } from './types';

/**
 * The backend takes new flows: active with a weight above 0 (desiredState() has already turned
 * health, drains, maint and weights into these two). The XDP ring needs its MAC as well
 * (servableBackend).
 */
export function takesNewFlows(b: Pick<DesiredBackend, 'state' | 'weight'>): boolean {
  return b.state === 'active' && b.weight > 0;
}

/** The "usable backend": takes new flows and its MAC is known, so every dataplane can forward to it. */
export function servableBackend(b: Pick<DesiredBackend, 'state' | 'weight' | 'mac'>): boolean {
  return takesNewFlows(b) && b.mac !== undefined && b.mac !== '';
}
