// The kernel's view of the announced VIPs: one `local VIP dev lo table local` route each.
//
// A VIP announced over BGP is routed to the director. What XDP does not forward (ICMP echo, a
// port no service uses, a service with on_empty: pass and no backend) goes up to the kernel,
// which without a route of its own would forward it by its routing table: with ip_forward=1
// straight back to the router, which sends it here again, until the TTL runs out. A local
// route makes the kernel take these packets as its own: it answers ping and resets a closed
// port at once (what LVS operators get with the VIP on lo), and nothing loops. A blackhole
// would stop the loop too but leave clients waiting for a timeout.
// It is a route, not an address: it is never chosen as a source and `ip addr` does not show it.
import type { Logger } from 'pino';
import { Rtnl } from '../net/address';

export class VipRoutes {
  constructor(
    private readonly vips: readonly string[],
    private readonly log: Logger,
  ) {}

  /**
   * Install the route of every VIP that lacks one (idempotent: at start, and on reload to put
   * back one that was deleted). Routes of VIPs not in this config are left alone: another
   * instance in this namespace may own them.
   */
  async reconcile(): Promise<void> {
    const rt = new Rtnl();
    try {
      const have = new Set(await rt.localRoutes());
      for (const v of this.vips) {
        if (have.has(v)) continue;
        await rt.addLocalRoute(v);
        this.log.info(
          { vip: v },
          `local route for ${v} on lo (table local): packets XDP passes to the kernel are answered here, not routed back to the router`,
        );
      }
    } finally {
      rt.close();
    }
  }

  /** Remove the route of every VIP (at stop, after the withdrawal). */
  async remove(): Promise<void> {
    const rt = new Rtnl();
    try {
      for (const v of this.vips) await rt.removeLocalRoute(v);
    } finally {
      rt.close();
    }
  }
}
