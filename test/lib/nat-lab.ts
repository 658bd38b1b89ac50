// The NAT lab: a client network and a private server network on different subnets, the
// director between them (two-armed), three real servers whose only route out is the director's
// inner address, and a fourth behind a router whose link to it has a smaller MTU (path MTU
// discovery through NAT needs an ICMP error from a router on the server side, translated by the
// director). Every name carries the caller's per-run prefix; destroy() removes exactly those.
//
//   client c ── eth0 ═ eth0 ── director d ── eth1 ═ sd ┐ bridge sw0 (ns s)
//   10.93.0.10      10.93.0.2          10.94.0.1        ├ b1 10.94.0.11  (default via 10.94.0.1)
//   fd93::10        fd93::2            fd94::1          ├ b2 10.94.0.12
//                                                       ├ b3 10.94.0.13
//                                                       └ r  10.94.0.254 ── eth1 (MTU 1400) ═ b4 10.95.0.14 (MTU 1500)
//
// The client reaches the VIPs through the director (a route per VIP, as an upstream router or
// VRRP would send them there). Peers of the director's interfaces carry xdp_pass in native mode
// (a native XDP_TX or redirect into a veth is delivered only if the peer runs an XDP program),
// and hosts that send through the director have TX checksum offload off (a veth from a local
// stack leaves checksums partial, which a native XDP forward does not complete).
//
// With `directors: 2` (test/daemon/nat-vrrp.test.ts) the client side is a bridge too (sw1 in ns s)
// with the client and both directors on it, each director has its own outer and inner address
// (NAT_ADDR.pair), and the inner gateway 10.94.0.1 belongs to neither: it is the address VRRP
// moves with the VIP. The VIPs are then on the client's subnet (the Master answers ARP for
// them), so the client has no route per VIP.
//
//   client c ── eth0 ═ sc ┐ bridge sw1 (ns s)       bridge sw0 (ns s)
//                         ├ od0 ═ eth0 d1 eth1 ═ sd0 ┤
//                         └ od1 ═ eth0 d2 eth1 ═ sd1 ┤ b1 b2 b3 (default via the gateway)
//
// Used by test/daemon/nat-xdp.test.ts and test/daemon/nat-vrrp.test.ts; the IPVS side can build
// the same topology with it.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export const NAT_ADDR = {
  client: { v4: '10.93.0.10', v6: 'fd93::10' },
  dirOuter: { v4: '10.93.0.2', v6: 'fd93::2' },
  dirInner: { v4: '10.94.0.1', v6: 'fd94::1' },
  backends: [
    { name: 'b1', v4: '10.94.0.11', v6: 'fd94::11' },
    { name: 'b2', v4: '10.94.0.12', v6: 'fd94::12' },
    { name: 'b3', v4: '10.94.0.13', v6: 'fd94::13' },
  ],
  router: { v4: '10.94.0.254', behind: '10.95.0.1' },
  /** The real server behind the router, on a link of MTU `pmtu`. */
  far: { name: 'b4', v4: '10.95.0.14' },
  pmtu: 1400,
  /** With two directors: each one's own outer and inner address (the gateway is dirInner, held by VRRP). */
  pair: { outer: ['10.93.0.2', '10.93.0.3'], inner: ['10.94.0.2', '10.94.0.3'] },
} as const;

export interface NatLabOptions {
  /** Per-run prefix (letters and digits, at most 9 characters): every namespace is named from it. */
  prefix: string;
  /** XDP_PASS object for the director's peers (native mode). */
  xdpPass: string;
  /** VIPs the client routes through the director. */
  vips: { v4: string[]; v6: string[] };
  /** Build the router and the fourth real server behind it (default true; never with two directors). */
  far?: boolean;
  /** Two directors side by side (default 1): see the second picture above. */
  directors?: 1 | 2;
  /**
   * Give the real servers their default route via the gateway (default true); false leaves it to
   * the caller (`xdirector realserver setup --nat`, as an operator would).
   */
  gatewayRoute?: boolean;
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export class NatLab {
  /** d: the (first) director; ds: every director. */
  readonly ns: { c: string; d: string; ds: string[]; s: string; r: string; b: string[]; far: string };
  private made: string[] = [];

  constructor(readonly o: NatLabOptions) {
    const p = o.prefix;
    const ds = o.directors === 2 ? [`${p}d1`, `${p}d2`] : [`${p}d`];
    this.ns = {
      c: `${p}c`,
      d: ds[0]!,
      ds,
      s: `${p}s`,
      r: `${p}r`,
      b: NAT_ADDR.backends.map((b) => `${p}${b.name}`),
      far: `${p}b4`,
    };
  }

  ip(ns: string, ...args: string[]): string {
    return sh('ip', ['-n', ns, ...args]);
  }

  exec(ns: string, cmd: string, ...args: string[]): string {
    return sh('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  private addNs(ns: string): void {
    sh('ip', ['netns', 'add', ns]);
    this.made.push(ns);
    this.ip(ns, 'link', 'set', 'lo', 'up');
  }

  private link(a: string, an: string, b: string, bn: string): void {
    const p = this.o.prefix;
    sh('ip', ['link', 'add', `${p}x`, 'netns', a, 'type', 'veth', 'peer', 'name', `${p}y`, 'netns', b]);
    this.ip(a, 'link', 'set', `${p}x`, 'name', an);
    this.ip(b, 'link', 'set', `${p}y`, 'name', bn);
    this.ip(a, 'link', 'set', an, 'up');
    this.ip(b, 'link', 'set', bn, 'up');
  }

  private addr(ns: string, dev: string, a4: string, a6?: string): void {
    this.ip(ns, 'addr', 'add', a4, 'dev', dev);
    if (a6) this.ip(ns, '-6', 'addr', 'add', a6, 'dev', dev, 'nodad');
  }

  create(): void {
    const A = NAT_ADDR;
    const pair = this.o.directors === 2;
    const far = this.o.far !== false && !pair;
    const ds = this.ns.ds;
    for (const ns of [this.ns.c, ...ds, this.ns.s, ...this.ns.b, ...(far ? [this.ns.r, this.ns.far] : [])])
      this.addNs(ns);
    for (const br of pair ? ['sw0', 'sw1'] : ['sw0']) {
      this.ip(this.ns.s, 'link', 'add', 'name', br, 'type', 'bridge', 'mcast_snooping', '0');
      this.ip(this.ns.s, 'link', 'set', br, 'up');
    }
    // Client side: one veth client to director, or with two directors a bridge.
    if (pair) {
      this.link(this.ns.c, 'eth0', this.ns.s, 'sc');
      this.ip(this.ns.s, 'link', 'set', 'sc', 'master', 'sw1');
      ds.forEach((d, i) => {
        this.link(d, 'eth0', this.ns.s, `od${i}`);
        this.ip(this.ns.s, 'link', 'set', `od${i}`, 'master', 'sw1');
        this.ip(d, 'addr', 'add', `${A.pair.outer[i]}/24`, 'dev', 'eth0');
      });
      this.addr(this.ns.c, 'eth0', `${A.client.v4}/24`);
    } else {
      this.link(this.ns.c, 'eth0', this.ns.d, 'eth0');
      this.addr(this.ns.c, 'eth0', `${A.client.v4}/24`, `${A.client.v6}/64`);
      this.addr(this.ns.d, 'eth0', `${A.dirOuter.v4}/24`, `${A.dirOuter.v6}/64`);
      for (const v of this.o.vips.v4) this.ip(this.ns.c, 'route', 'add', `${v}/32`, 'via', A.dirOuter.v4);
      for (const v of this.o.vips.v6) this.ip(this.ns.c, '-6', 'route', 'add', `${v}/128`, 'via', A.dirOuter.v6);
    }
    // Server side: each director's eth1 on the bridge with the real servers.
    ds.forEach((d, i) => {
      this.link(d, 'eth1', this.ns.s, `sd${i}`);
      this.ip(this.ns.s, 'link', 'set', `sd${i}`, 'master', 'sw0');
      if (pair) this.ip(d, 'addr', 'add', `${A.pair.inner[i]}/24`, 'dev', 'eth1');
      else this.addr(d, 'eth1', `${A.dirInner.v4}/24`, `${A.dirInner.v6}/64`);
    });
    A.backends.forEach((b, i) => {
      const ns = this.ns.b[i]!;
      this.link(ns, 'eth0', this.ns.s, `s${b.name}`);
      this.ip(this.ns.s, 'link', 'set', `s${b.name}`, 'master', 'sw0');
      this.addr(ns, 'eth0', `${b.v4}/24`, `${b.v6}/64`);
      // The director's inner address is their only route out.
      if (this.o.gatewayRoute !== false) {
        this.ip(ns, 'route', 'add', 'default', 'via', A.dirInner.v4);
        this.ip(ns, '-6', 'route', 'add', 'default', 'via', A.dirInner.v6);
      }
      this.exec(ns, 'ethtool', '-K', 'eth0', 'tx', 'off');
    });
    if (far) {
      this.link(this.ns.r, 'eth0', this.ns.s, 'sr');
      this.ip(this.ns.s, 'link', 'set', 'sr', 'master', 'sw0');
      this.addr(this.ns.r, 'eth0', `${A.router.v4}/24`);
      this.link(this.ns.r, 'eth1', this.ns.far, 'eth0');
      // The far link is narrower than what the far server advertises (an MSS for 1500), so the
      // client's full-size segments meet the 1400 link at the router, which answers them with
      // frag needed (to the client: the source it sees).
      this.ip(this.ns.r, 'link', 'set', 'eth1', 'mtu', String(A.pmtu));
      this.addr(this.ns.r, 'eth1', `${A.router.behind}/24`);
      this.addr(this.ns.far, 'eth0', `${A.far.v4}/24`);
      // Its own packets fit the narrow link (route mtu, as a veth drops a frame above the
      // receiver's MTU without a word), while it advertises the MSS of its 1500-byte interface.
      this.ip(this.ns.far, 'route', 'add', 'default', 'via', A.router.behind, 'mtu', String(A.pmtu), 'advmss', '1460');
      this.ip(this.ns.r, 'route', 'add', 'default', 'via', A.dirInner.v4);
      this.exec(this.ns.r, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
      this.exec(this.ns.far, 'ethtool', '-K', 'eth0', 'tx', 'off');
      this.ip(this.ns.d, 'route', 'add', '10.95.0.0/24', 'via', A.router.v4);
    }
    this.exec(this.ns.c, 'ethtool', '-K', 'eth0', 'tx', 'off');
    // Native XDP on the director: its forwarded frames reach a veth only if the peer has a program.
    if (pair)
      ds.forEach((_, i) =>
        this.ip(this.ns.s, 'link', 'set', 'dev', `od${i}`, 'xdpdrv', 'obj', this.o.xdpPass, 'sec', 'xdp'),
      );
    else this.ip(this.ns.c, 'link', 'set', 'dev', 'eth0', 'xdpdrv', 'obj', this.o.xdpPass, 'sec', 'xdp');
    ds.forEach((_, i) =>
      this.ip(this.ns.s, 'link', 'set', 'dev', `sd${i}`, 'xdpdrv', 'obj', this.o.xdpPass, 'sec', 'xdp'),
    );
  }

  /** Remove this lab's namespaces (their veths and bridge go with them). */
  destroy(): void {
    for (const ns of this.made.reverse()) {
      try {
        sh('ip', ['netns', 'del', ns]);
      } catch {
        /* already gone */
      }
    }
    this.made = [];
  }
}

export function xdpPassObject(root: string): string {
  return path.join(root, 'dist', 'bpf', 'tools', 'xdp_pass.bpf.o');
}
