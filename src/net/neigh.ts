// Backend MAC discovery from the kernel neighbour table (rtnetlink).
// DR forwarding needs the real server's MAC on the director's link. We read the
// neighbour table; when an entry is missing we ask the kernel to resolve it
// (RTM_NEWNEIGH with NTF_USE, what `ip neigh add … use` does) and poll until it
// is reachable or the timeout passes. A backend that cannot be resolved is
// reported, never guessed.
import { createRtNetlink, RtNetlinkSocket } from 'netlink';
import { XdError, wrap } from '../errors';
import { addressFamily, addressFromBytes, addressToBytes, formatMac } from './inet';

const AF_INET = 2;
const AF_INET6 = 10;
const NLM_F_REPLACE = 0x100;
const NLM_F_CREATE = 0x400;
const RTM_NEWROUTE = 24;
const RTM_GETROUTE = 26;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_METRICS = 8;
const RTA_VIA = 18;
const RTAX_MTU = 2;

export interface NeighbourResult {
  address: string;
  mac?: string;
  /** Tunnel backends (resolveNextHops): the next hop whose MAC this is, and the path MTU. */
  via?: string;
  mtu?: number;
  /** Why the MAC is missing ("no ARP reply from 10.0.0.11 on eth0 within 1000 ms"). */
  error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const interfaceNotFound = (ifname: string) =>
  new XdError(
    'XD_ERR_INTERFACE',
    `interface ${ifname} not found: check the interface name in the config (ip link shows the interfaces of this network namespace)`,
    { detail: { interface: ifname } },
  );

export class Neighbours {
  private rt: RtNetlinkSocket;
  constructor() {
    this.rt = createRtNetlink();
  }

  close(): void {
    this.rt.socket.close();
  }

  /** The link named `ifname`, or undefined when this network namespace has none. */
  private async findLink(ifname: string) {
    let links;
    try {
      links = await this.rt.getLinks();
    } catch (err) {
      throw wrap('XD_ERR_NETLINK', 'list links', err);
    }
    return links.find((x) => x.attrs.ifname === ifname);
  }

  async ifindex(ifname: string): Promise<number> {
    const l = await this.findLink(ifname);
    if (!l || !l.data.index) throw interfaceNotFound(ifname);
    return l.data.index;
  }

  /** The interface's own MAC address. */
  async linkMac(ifname: string): Promise<string> {
    const l = await this.findLink(ifname);
    if (!l) throw interfaceNotFound(ifname);
    const mac = l.attrs.address;
    if (!mac || mac.length !== 6)
      throw new XdError(
        'XD_ERR_INTERFACE',
        `interface ${ifname} has no Ethernet address: XDP DR needs an Ethernet interface`,
        { detail: { interface: ifname } },
      );
    return formatMac(mac);
  }

  /** The current MAC of `address` on `ifindex`, if the kernel has a usable entry. */
  async lookup(ifindex: number, address: string): Promise<string | undefined> {
    const family = addressFamily(address) === 6 ? AF_INET6 : AF_INET;
    const dst = addressToBytes(address);
    let entries;
    try {
      entries = await this.rt.getNeighbors({ family });
    } catch (err) {
      throw wrap('XD_ERR_NETLINK', 'list neighbours', err);
    }
    for (const e of entries) {
      if (e.data.ifindex !== ifindex || !e.attrs.dst || !e.attrs.lladdr) continue;
      if (!dst.equals(e.attrs.dst)) continue;
      const st = e.data.state ?? {};
      if (st.failed || st.incomplete) return undefined;
      if (e.attrs.lladdr.length !== 6) return undefined;
      return formatMac(e.attrs.lladdr);
    }
    return undefined;
  }

  /** Ask the kernel to resolve `address` (NTF_USE kicks off ARP / neighbour solicitation). */
  async trigger(ifindex: number, address: string): Promise<void> {
    const family = addressFamily(address) === 6 ? AF_INET6 : AF_INET;
    try {
      await this.rt.newNeighbor(
        { family, ifindex, state: {}, flags: { use: true } },
        { dst: addressToBytes(address) },
        { flags: NLM_F_CREATE | NLM_F_REPLACE },
      );
    } catch (err) {
      throw wrap('XD_ERR_NEIGHBOUR', `resolve ${address} (ifindex ${ifindex})`, err);
    }
  }

  /**
   * The kernel's route to `address` (RTM_GETROUTE, what `ip route get` asks): the gateway, or
   * the address itself when it is on-link; the egress interface; the path MTU (the route's
   * mtu metric, else the egress interface's MTU). The gateway may be of the other family: an
   * IPv4 route via an IPv6 next hop (RFC 5549, `ip route add … via inet6 fe80::1`, what BGP
   * unnumbered fabrics install) comes as RTA_VIA, which the netlink package cannot parse, so
   * the reply is read here.
   */
  async route(address: string): Promise<{ hop: string; ifindex: number; mtu?: number }> {
    const v6 = addressFamily(address) === 6;
    const dst = addressToBytes(address);
    // struct rtmsg (12 bytes: family, dst_len, …) + RTA_DST.
    const req = Buffer.alloc(12 + 4 + dst.length);
    req[0] = v6 ? AF_INET6 : AF_INET;
    req[1] = dst.length * 8;
    req.writeUInt16LE(4 + dst.length, 12);
    req.writeUInt16LE(RTA_DST, 14);
    dst.copy(req, 16);
    let reply;
    try {
      [reply] = await this.rt.socket.request(RTM_GETROUTE, [req]);
    } catch (err) {
      throw wrap('XD_ERR_NETLINK', `route to ${address}`, err);
    }
    const msg = reply.find((m) => m.type === RTM_NEWROUTE);
    const r = msg ? parseRouteReply(msg.data) : undefined;
    if (!r || !r.oif)
      throw new XdError(
        'XD_ERR_NEIGHBOUR',
        `no route to ${address}: add one (ip route) towards the tunnel real server`,
        { detail: { address } },
      );
    const hop = r.gateway ?? address;
    let mtu = r.mtu;
    if (!mtu) {
      const links = await this.rt.getLinks();
      mtu = links.find((l) => l.data.index === r.oif)?.attrs.mtu;
    }
    return { hop, ifindex: r.oif, ...(mtu ? { mtu } : {}) };
  }

  /**
   * For tunnel backends: each address's next hop (its router, or itself when on-link) and that
   * hop's MAC on `ifname`, plus the path MTU. A route leaving by another interface is an error:
   * the XDP program sends the encapsulated packet back out of the interface it came in on.
   */
  async resolveNextHops(ifname: string, addresses: string[], timeoutMs = 1000): Promise<NeighbourResult[]> {
    const ifindex = await this.ifindex(ifname);
    const routes = new Map<string, { hop: string; mtu?: number } | { error: string }>();
    for (const a of new Set(addresses)) {
      try {
        const r = await this.route(a);
        if (r.ifindex !== ifindex)
          routes.set(a, {
            error: `the route to ${a} leaves by ifindex ${r.ifindex}, not ${ifname}: the director sends these backends' packets out of ${ifname}, so route the real servers' subnets via ${ifname}`,
          });
        else routes.set(a, { hop: r.hop, ...(r.mtu ? { mtu: r.mtu } : {}) });
      } catch (err) {
        routes.set(a, { error: (err as Error).message });
      }
    }
    const hops = [...new Set([...routes.values()].flatMap((r) => ('hop' in r ? [r.hop] : [])))];
    const macs = new Map((hops.length ? await this.resolve(ifname, hops, timeoutMs) : []).map((r) => [r.address, r]));
    return addresses.map((a): NeighbourResult => {
      const r = routes.get(a)!;
      if ('error' in r) return { address: a, error: r.error };
      const n = macs.get(r.hop)!;
      if (!n.mac) return { address: a, via: r.hop, error: `next hop ${r.hop} towards ${a}: ${n.error}` };
      return { address: a, mac: n.mac, via: r.hop, ...(r.mtu ? { mtu: r.mtu } : {}) };
    });
  }

  /** Resolve many addresses at once; each result has a MAC or an error. */
  async resolve(ifname: string, addresses: string[], timeoutMs = 1000): Promise<NeighbourResult[]> {
    const ifindex = await this.ifindex(ifname);
    const out = new Map<string, NeighbourResult>();
    const pending: string[] = [];
    for (const a of new Set(addresses)) {
      const mac = await this.lookup(ifindex, a);
      if (mac) out.set(a, { address: a, mac });
      else pending.push(a);
    }
    const triggerErrors = new Map<string, string>();
    for (const a of pending) {
      try {
        await this.trigger(ifindex, a);
      } catch (err) {
        triggerErrors.set(a, (err as Error).message);
      }
    }
    const deadline = performance.now() + timeoutMs;
    let left = pending.filter((a) => !triggerErrors.has(a));
    while (left.length > 0 && performance.now() < deadline) {
      await sleep(20);
      const still: string[] = [];
      for (const a of left) {
        const mac = await this.lookup(ifindex, a);
        if (mac) out.set(a, { address: a, mac });
        else still.push(a);
      }
      left = still;
    }
    for (const a of pending) {
      if (out.has(a)) continue;
      const why =
        triggerErrors.get(a) ??
        `no ${addressFamily(a) === 6 ? 'neighbour advertisement' : 'ARP reply'} from ${a} on ${ifname} within ${timeoutMs} ms (is the real server up and on this link?)`;
      out.set(a, { address: a, error: why });
    }
    return addresses.map((a) => out.get(a)!);
  }
}

/**
 * The attributes of an RTM_NEWROUTE reply that name the next hop (linux/rtnetlink.h): RTA_OIF,
 * RTA_GATEWAY (same family as the route) or RTA_VIA (struct rtvia: a 16-bit family, then the
 * address), and RTAX_MTU inside RTA_METRICS. Undefined when the message is cut short.
 */
/** An interface's own MAC address, read on a netlink socket of its own that is closed again. */
export async function readLinkMac(ifname: string): Promise<string> {
  const nl = new Neighbours();
  try {
    return await nl.linkMac(ifname);
  } finally {
    nl.close();
  }
}

export function parseRouteReply(data: Buffer): { oif?: number; gateway?: string; mtu?: number } | undefined {
  if (data.length < 12) return undefined;
  const family = data[0] === AF_INET6 ? 6 : 4;
  const out: { oif?: number; gateway?: string; mtu?: number } = {};
  const attrs = (buf: Buffer, from: number, each: (type: number, v: Buffer) => void): void => {
    for (let off = from; off + 4 <= buf.length;) {
      const len = buf.readUInt16LE(off);
      if (len < 4 || off + len > buf.length) return;
      each(buf.readUInt16LE(off + 2) & 0x3fff, buf.subarray(off + 4, off + len));
      off += (len + 3) & ~3;
    }
  };
  attrs(data, 12, (type, v) => {
    if (type === RTA_OIF && v.length >= 4) out.oif = v.readUInt32LE(0);
    else if (type === RTA_GATEWAY && v.length === (family === 6 ? 16 : 4)) out.gateway = addressFromBytes(v, family);
    else if (type === RTA_VIA && v.length >= 2) {
      const f = v.readUInt16LE(0) === AF_INET6 ? 6 : 4;
      const a = v.subarray(2);
      if (a.length === (f === 6 ? 16 : 4)) out.gateway = addressFromBytes(a, f);
    } else if (type === RTA_METRICS) {
      attrs(v, 0, (t, m) => {
        if (t === RTAX_MTU && m.length >= 4 && m.readUInt32LE(0)) out.mtu = m.readUInt32LE(0);
      });
    }
  });
  return out;
}
