// Backend MACs from the kernel neighbour table, for the desired state: a DR backend's own MAC,
// a tunnel backend's next hop's MAC (and the path MTU towards it), a NAT backend's next hop's
// MAC and path MTU on NAT's server-side interface (nat.interface, else the top-level one). A backend that stops
// answering keeps its last MAC: health decides whether it is usable; the error is kept for
// `status` (why a backend is left out).
import type { Logger } from 'pino';
import type { ServiceConfig } from '../config';
import { Neighbours } from '../net/neigh';

export class BackendMacs {
  private readonly neigh = new Neighbours();
  /** Canonical address -> MAC (tunnel backends: the next hop's). */
  readonly macs = new Map<string, string>();
  /** Tunnel backend address -> path MTU (route metric or egress interface MTU). */
  readonly mtus = new Map<string, number>();
  /** Canonical address -> why it is not resolved (last attempt). */
  private readonly errors = new Map<string, string>();

  constructor(private readonly log: Logger) {}

  /**
   * Resolve the MACs of the backends without a static `mac:`. all=false: only the unresolved
   * ones (a quick retry). Returns whether any MAC changed.
   */
  async refresh(
    ifname: string,
    services: readonly ServiceConfig[],
    all: boolean,
    natIfname = ifname,
  ): Promise<boolean> {
    const need = new Set<string>();
    const tunnelled = new Set<string>();
    const natted = new Set<string>();
    for (const s of services)
      for (const b of s.backends)
        if (!b.mac) (b.forwarding === 'tunnel' ? tunnelled : b.forwarding === 'nat' ? natted : need).add(b.address);
    const addrs = [...need].filter((a) => all || !this.macs.has(a));
    const viaRoute = [...tunnelled].filter((a) => all || !this.macs.has(a));
    const viaNat = [...natted].filter((a) => all || !this.macs.has(a));
    if (addrs.length === 0 && viaRoute.length === 0 && viaNat.length === 0) return false;
    let changed = false;
    try {
      // DR backends: their own MAC; tunnel backends: the next hop's towards them.
      const res = [
        ...(addrs.length ? await this.neigh.resolve(ifname, addrs, all ? 1000 : 300) : []),
        ...(viaRoute.length ? await this.neigh.resolveNextHops(ifname, viaRoute, all ? 1000 : 300) : []),
        // NAT backends: the next hop towards them on the server side (themselves when on its subnet).
        ...(viaNat.length ? await this.neigh.resolveNextHops(natIfname, viaNat, all ? 1000 : 300) : []),
      ];
      for (const r of res) {
        if (r.mtu && this.mtus.get(r.address) !== r.mtu) {
          this.mtus.set(r.address, r.mtu);
          changed = true;
        }
        if (r.mac) {
          const was = this.macs.get(r.address);
          if (was === r.mac) continue;
          if (was) this.log.warn({ backend: r.address, from: was, to: r.mac }, 'backend MAC changed');
          else this.log.info({ backend: r.address, mac: r.mac }, 'backend MAC resolved');
          this.macs.set(r.address, r.mac);
          this.errors.delete(r.address);
          changed = true;
        } else if (r.error) {
          if (this.errors.get(r.address) !== r.error)
            this.log.warn({ backend: r.address }, `backend left out: ${r.error}`);
          this.errors.set(r.address, r.error);
        }
      }
    } catch (err) {
      this.log.error({ err }, 'neighbour resolution failed');
    }
    return changed;
  }

  /** Why `address` has no MAC, for status. */
  errorOf(address: string): string {
    return this.errors.get(address) ?? 'not resolved yet';
  }

  close(): void {
    this.neigh.close();
  }
}
