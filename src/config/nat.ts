// NAT forwarding in the config: the rules that tie a backend's forwarding and port to its
// service's, the default health check of a translated port, and the nat section's warning. Pure.
//
// NAT is a service-level choice, as keepalived's lb_kind is per virtual_server: the director
// rewrites VIP:port to backend:port and the replies back, so every backend of the service must
// send its replies through the director (its gateway), and none of them can be DR or tunnel.

import type { Config } from './schema';
import type { Family } from '../state/types';

type PathItem = string | number;
interface Problem {
  path: PathItem[];
  message: string;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A backend's own forwarding that differs from its service's across the nat line (to or from nat). */
export function natOverrideProblem(
  s: Record<string, unknown>,
  b: Record<string, unknown>,
  bp: PathItem[],
): Problem | undefined {
  if (typeof b.forwarding !== 'string') return undefined;
  const svc = typeof s.forwarding === 'string' ? s.forwarding : 'dr';
  const name = typeof s.name === 'string' ? `service ${s.name}` : 'the service';
  if (b.forwarding === 'nat' && svc !== 'nat') {
    return {
      path: [...bp, 'forwarding'],
      message: `is nat but ${name} forwards with ${svc}: NAT is chosen per service (as keepalived's lb_kind is per virtual_server), because every backend's replies must come back through the director: set forwarding: nat on the service, or remove forwarding from this backend`,
    };
  }
  if (svc === 'nat' && b.forwarding !== 'nat') {
    return {
      path: [...bp, 'forwarding'],
      message: `is ${b.forwarding} but ${name} forwards with nat: NAT is chosen per service, so a backend cannot leave it: remove forwarding from this backend, or give it a service of its own with forwarding: ${b.forwarding}`,
    };
  }
  return undefined;
}

/** NAT rewrites addresses within one family (no NAT64): a backend has the VIP's family. */
export function natFamilyProblem(
  vip: { text: string; family: Family },
  a: { family: Family },
  bp: PathItem[],
): Problem {
  return {
    path: [...bp, 'address'],
    message: `is IPv${a.family} but the service VIP ${vip.text} is IPv${vip.family}: NAT rewrites the addresses within one family (no NAT64): use an IPv${vip.family} address of this real server`,
  };
}

/**
 * The default check of a service: mysql when the port the real servers listen on is 3306 (the
 * service port; with nat, every backend's own port, as VIP:3307 -> backend:3306), else tcp.
 */
export function defaultCheck(s: Record<string, unknown>): 'mysql' | 'tcp' {
  if (s.port === 3306) return 'mysql';
  if (s.forwarding !== 'nat' || !Array.isArray(s.backends) || s.backends.length === 0) return 'tcp';
  return s.backends.every((b) => isObj(b) && b.port === 3306) ? 'mysql' : 'tcp';
}

/** nat.interface set while no service forwards with nat: probably a forgotten forwarding: nat. */
export function natWarnings(c: Pick<Config, 'services' | 'nat'>): string[] {
  if (!c.nat.twoArmed || c.services.some((s) => s.forwarding === 'nat')) return [];
  return [
    `nat.interface ${c.nat.interface} is set but no service forwards with nat: it is not used; set forwarding: nat on the services behind it, or remove the nat section`,
  ];
}
