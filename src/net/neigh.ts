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
  new XdError('XD_ERR_INTERFACE', `interface ${ifname} not found: check the interface name in the config (ip link shows the interfaces of this network namespace)`, { detail: { interface: ifname } });

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
    if (!mac || mac.length !== 6) throw new XdError('XD_ERR_INTERFACE', `interface ${ifname} has no Ethernet address: XDP DR needs an Ethernet interface`, { detail: { interface: ifname } });
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
   * mtu metric, else the egress interface's MTU).
   */
  async route(address: string): Promise<{ hop: string; ifindex: number; mtu?: number }> {
    const v6 = addressFamily(address) === 6;
    let msgs;
    try {
      msgs = await this.rt.getRoute({ family: v6 ? AF_INET6 : AF_INET, dstLen: v6 ? 128 : 32 }, { dst: addressToBytes(address) });
    } catch (err) {
      throw wrap('XD_ERR_NETLINK', `route to ${address}`, err);
    }
    const r = msgs[0];
    if (!r || !r.attrs.oif) throw new XdError('XD_ERR_NEIGHBOUR', `no route to ${address}: add one (ip route) towards the tunnel real server`, { detail: { address } });
    const hop = r.attrs.gateway ? addressFromBytes(r.attrs.gateway, v6 ? 6 : 4) : address;
    let mtu: number | undefined;
    const m = r.attrs.metrics?.mtu;
    if (m && m.length >= 4) mtu = m.readUInt32LE(0);
    if (!mtu) {
      const links = await this.rt.getLinks();
      mtu = links.find((l) => l.data.index === r.attrs.oif)?.attrs.mtu;
    }
    return { hop, ifindex: r.attrs.oif, ...(mtu ? { mtu } : {}) };
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
        if (r.ifindex !== ifindex) routes.set(a, { error: `the route to ${a} leaves by ifindex ${r.ifindex}, not ${ifname}: tunnel packets go out of the director's interface, so route the real servers' subnets via ${ifname}` });
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
    const deadline = Date.now() + timeoutMs;
    let left = pending.filter((a) => !triggerErrors.has(a));
    while (left.length > 0 && Date.now() < deadline) {
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
      const why = triggerErrors.get(a) ?? `no ${addressFamily(a) === 6 ? 'neighbour advertisement' : 'ARP reply'} from ${a} on ${ifname} within ${timeoutMs} ms (is the real server up and on this link?)`;
      out.set(a, { address: a, error: why });
    }
    return addresses.map((a) => out.get(a)!);
  }
}
