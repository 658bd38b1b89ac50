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

/**
 * nat.interface set while no service forwards with nat: probably a forgotten forwarding: nat.
 * A NAT service announced over BGP while no VRRP instance holds the real servers' gateway: the
 * gateway is one address on the servers' network, so every director announcing the VIP cannot
 * hold it too (the servers would see it on several hosts); one director holds it by VRRP, whose
 * built-in director tracker gives it up exactly when this director cannot serve, the rule by
 * which BGP withdraws every VIP. A warning, not an error: the replies may reach the directors by
 * a route of the operator's own (an inner router).
 */
export function natWarnings(c: Pick<Config, 'services' | 'nat' | 'vrrp' | 'bgp'>): string[] {
  const out: string[] = [];
  const nat = c.services.filter((s) => s.forwarding === 'nat');
  if (c.nat.twoArmed && nat.length === 0)
    out.push(
      `nat.interface ${c.nat.interface} is set but no service forwards with nat: it is not used; set forwarding: nat on the services behind it, or remove the nat section`,
    );
  const announced = new Set((c.bgp?.announce ?? []).map((a) => a.vip));
  const routed = nat.filter((s) => announced.has(s.vip));
  const gateway = c.vrrp.some((inst) => inst.vips.some((v) => v.dev !== undefined));
  if (routed.length > 0 && !gateway)
    out.push(
      `${routed.length === 1 ? `service ${routed[0]!.name} forwards` : `services ${routed.map((s) => s.name).join(', ')} forward`} with nat and ${routed.length === 1 ? 'is' : 'are'} announced over BGP, but no VRRP instance holds the real servers' gateway: every director announces the VIP, but the gateway is one address that one director at a time must hold; add a VRRP instance of its own for it, vips: ["GATEWAY/PREFIX dev ${c.nat.interface}"] (its built-in director tracker gives the gateway up exactly when this director cannot serve, when BGP withdraws the VIPs), or route the real servers' replies to the directors another way`,
    );
  return out;
}
