// `xdirector resign` (the unit's ExecStopPost): after the daemon has stopped, however it stopped
// (a crash, a watchdog kill, SIGKILL, a failed start or restart), remove the VRRP VIPs of the
// config's instances that are still on their interfaces. A clean stop has already removed them
// (each instance's graceful stop); a dead daemon left them, and this director would keep answering
// ARP for them while the other director takes over. The XDP program and its pins are not touched:
// the next start adopts them. Idempotent: an address or an interface that is gone is not an error.
import { Rtnl } from '../net/address';
import { canonicalAddress } from '../net/inet';
import type { ResolvedVrrpInstanceConfig } from '../config';

/** One line per VIP: what was removed, or why nothing was done. */
export async function resignVips(instances: readonly ResolvedVrrpInstanceConfig[]): Promise<string[]> {
  if (instances.length === 0) return ['no vrrp section: no VIP to remove'];
  const rt = new Rtnl();
  const out: string[] = [];
  try {
    const links = new Set((await rt.links()).map((l) => l.name));
    for (const inst of instances) {
      // Each VIP on its own interface: the instance's, or its dev (a NAT gateway that moves with the VIP).
      for (const v of inst.vips) {
        const itf = v.dev ?? inst.interface;
        if (!links.has(itf)) {
          out.push(`${inst.name}: interface ${itf} does not exist: ${v.address} not removed`);
          continue;
        }
        const present = new Set((await rt.listAddresses(itf)).map((a) => `${a.address}/${a.prefix}`));
        const key = `${canonicalAddress(v.address)}/${v.prefix}`;
        if (!present.has(key)) {
          out.push(`${inst.name}: ${key} is not on ${itf}`);
          continue;
        }
        await rt.removeAddress(itf, v.address, v.prefix);
        out.push(`${inst.name}: removed ${key} from ${itf}`);
      }
    }
  } finally {
    rt.close();
  }
  return out;
}
