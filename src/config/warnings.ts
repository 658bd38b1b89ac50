// Config warnings: a config that is valid but probably not what was meant. check-config prints
// them and the daemon logs them at start and on reload; they never refuse a config. Pure.
//
// With VRRP configured, a VIP is only answered on this director while an instance holds it:
//   - a VRRP VIP that is no service VIP makes the director take an address it forwards nothing for;
//   - a service VIP that no instance holds (and BGP does not announce) is never on the interface,
//     so the service is unreachable through this director unless something else adds the address.

import type { Config } from './schema';

export function configWarnings(c: Pick<Config, 'services' | 'vrrp' | 'bgp'>): string[] {
  if (c.vrrp.length === 0) return [];
  const out: string[] = [];
  // Config addresses are canonical text (finish()), so equal addresses compare equal as strings.
  const serviceVips = new Map<string, string[]>();
  for (const s of c.services) serviceVips.set(s.vip, [...(serviceVips.get(s.vip) ?? []), s.name]);
  const held = new Set<string>();
  c.vrrp.forEach((inst, i) => {
    for (const v of inst.vips) {
      held.add(v.address);
      // An address on another interface (dev) is a gateway that moves with the VIP (NAT), not a service VIP.
      if (!serviceVips.has(v.address) && !v.dev) {
        out.push(
          `vrrp[${i}] (${inst.name}): VIP ${v.address} is no service's VIP: the director takes it on becoming Master but forwards nothing for it; add a service on ${v.address} or remove it from vrrp[${i}].vips`,
        );
      }
    }
  });
  // A VIP announced over BGP is routed to this director without VRRP holding it.
  const announced = new Set((c.bgp?.announce ?? []).map((a) => a.vip));
  for (const [vip, names] of serviceVips) {
    if (held.has(vip) || announced.has(vip)) continue;
    const which = names.length === 1 ? `service ${names[0]}` : `services ${names.join(', ')}`;
    out.push(
      `${which}: VIP ${vip} is held by no VRRP instance${c.bgp ? ' and not announced over BGP' : ''}: no director adds it to its interface, so clients cannot reach ${names.length === 1 ? 'it' : 'them'} here; add ${vip} to a vrrp instance's vips${c.bgp ? ' or to bgp.announce' : ''} (or hold the address some other way)`,
    );
  }
  return out;
}
