// Which VIPs this director may announce: only those it can serve. Pure.
//
// A VIP is servable when the control plane is alive (it is running this), the XDP program is
// the one attached to the interface (or the dataplane is IPVS), the director is not drained,
// and every service on that VIP has at least one usable backend (active, weight > 0, MAC
// known): a /32 draws every port of the VIP, so a director that cannot serve one of them
// leaves the whole VIP to the directors that can.
// A service with an active backend whose MAC is not resolved yet is not servable either: the
// ring leaves that backend out, so it would differ from the other directors' rings, and
// mid-stream flows that ECMP moves here (no flow entry, hashed on the ring) would land on
// another backend and be reset. This is what holds a starting director back until its ring
// is the same as everyone else's.
import type { DesiredService } from '../state/types';
import { servableBackend, takesNewFlows } from '../state/backend';

export interface ServableInput {
  /** VIPs configured for announcement (canonical text). */
  announce: readonly string[];
  /** This director cannot serve at all (stale health snapshot, stalled reconcile, XDP TX errors rising): why. Withdraws every VIP. */
  cannotServe?: string;
  services: readonly Pick<DesiredService, 'name' | 'vip' | 'backends'>[];
  /** The dataplane forwards: our XDP program is attached (always true for IPVS). */
  dataplaneReady: boolean;
  /** Why the dataplane is not ready, for the reason text. */
  dataplaneReason?: string;
  /** Health checks have finished their first round (or there are none): backend states are real, not start-up defaults. */
  healthReady?: boolean;
  /**
   * A hold-down in force (its reason): backend states changed too recently for this ring to
   * match the other directors'. It keeps back every VIP not in `announced` (a starting
   * director, or one whose pool emptied and is refilling one backend at a time); a VIP
   * announced now stays announced.
   */
  holdDown?: string;
  /** VIPs this director announces now. */
  announced?: ReadonlySet<string>;
}

export interface Servable {
  servable: Set<string>;
  /** VIP → why it is withdrawn. */
  reasons: Record<string, string>;
}

export function servableVips(i: ServableInput): Servable {
  const servable = new Set<string>();
  const reasons: Record<string, string> = {};
  for (const vip of i.announce) {
    if (i.cannotServe !== undefined) {
      reasons[vip] = `this director cannot serve: ${i.cannotServe}`;
      continue;
    }
    if (!i.dataplaneReady) {
      reasons[vip] = i.dataplaneReason ?? 'the dataplane is not forwarding';
      continue;
    }
    if (i.healthReady === false) {
      reasons[vip] =
        "health checks have not finished their first round: the ring would differ from the other directors'";
      continue;
    }
    const svcs = i.services.filter((s) => s.vip === vip);
    if (svcs.length === 0) {
      reasons[vip] = 'no service with this VIP is programmed yet';
      continue;
    }
    const empty = svcs.filter((s) => !s.backends.some(servableBackend));
    if (empty.length > 0) {
      reasons[vip] = `no usable backend in ${empty.map((s) => s.name).join(', ')}`;
      continue;
    }
    const noMac = svcs.flatMap((s) =>
      s.backends.filter((b) => takesNewFlows(b) && !servableBackend(b)).map((b) => `${s.name}/${b.name}`),
    );
    if (noMac.length > 0) {
      reasons[vip] = `MAC of ${noMac.join(', ')} not resolved yet: the ring would differ from the other directors'`;
      continue;
    }
    // Last: the hold-down only holds back a VIP that could otherwise be announced, so a
    // withdrawn VIP keeps its real reason (no usable backend, ...) until that one is gone.
    if (i.holdDown !== undefined && !i.announced?.has(vip)) {
      reasons[vip] = i.holdDown;
      continue;
    }
    servable.add(vip);
  }
  return { servable, reasons };
}
