// Interface addresses and links over rtnetlink (the `netlink` package): add and
// remove an address (the VIPs VRRP takes and releases), list addresses, link
// index / MAC / operational state by name. Errors name the interface and the
// errno ("add 10.0.0.10/24 to eth0: EPERM").

import { createRtNetlink, type RtNetlinkSocket } from 'netlink';
import { XdError } from '../errors';
import { addressFamily, addressFromBytes, addressToBytes, canonicalAddress } from './inet';

const AF_INET = 2;
const AF_INET6 = 10;
const NLM_F_CREATE = 0x400;
const NLM_F_EXCL = 0x200;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_HOST = 254;
const RT_TABLE_LOCAL = 255;
const RTN_LOCAL = 2;
/**
 * Routing protocol number on the routes xdirector installs (`ip route show table local proto 88`):
 * unassigned in iproute2's rt_protos, so a removal never touches a route someone else made.
 */
export const RTPROT_XDIRECTOR = 88;
const IF_OPER_UP = 6;

export interface InterfaceAddress {
  ifindex: number;
  address: string;
  prefix: number;
  family: 4 | 6;
  /** Kernel address scope (0 universe, 253 link, 254 host). */
  scope: number;
  secondary: boolean;
  tentative: boolean;
}

export interface LinkInfo {
  index: number;
  name: string;
  /** Hardware address (6 bytes on Ethernet; empty on links without one). */
  mac: Buffer;
  /** IFF_UP administratively. */
  adminUp: boolean;
  /** operstate UP (carrier and everything below it up). */
  operUp: boolean;
}

/** errno name from the netlink package's "Request rejected: EEXIST" errors. */
export function netlinkErrno(err: unknown): string | undefined {
  const m = /Request rejected: (\w+)/.exec(err instanceof Error ? err.message : String(err));
  return m?.[1];
}

function nlError(context: string, err: unknown, detail: Record<string, unknown>): XdError {
  const code = netlinkErrno(err);
  const inner = err instanceof Error ? err.message : String(err);
  return new XdError('XD_ERR_NETLINK', `${context}: ${code ?? inner}`, {
    cause: err,
    detail: { ...detail, errno: code },
  });
}

export class Rtnl {
  private rt: RtNetlinkSocket;
  private closed = false;
  /** The netlink package cannot run two dumps at once on one socket (EBUSY): requests go one at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor() {
    this.rt = createRtNetlink();
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.rt.socket.close();
  }

  async links(): Promise<LinkInfo[]> {
    let links;
    try {
      links = await this.serial(() => this.rt.getLinks());
    } catch (err) {
      throw nlError('list links', err, {});
    }
    return links.map((l) => ({
      index: l.data.index ?? 0,
      name: l.attrs.ifname ?? '',
      mac: l.attrs.address ?? Buffer.alloc(0),
      adminUp: !!l.data.flags?.up,
      operUp: l.attrs.operstate === IF_OPER_UP,
    }));
  }

  /** The link called `ifname`; XD_ERR_INTERFACE naming it when there is none. */
  async link(ifname: string): Promise<LinkInfo> {
    const l = (await this.links()).find((x) => x.name === ifname);
    if (!l || !l.index) {
      throw new XdError(
        'XD_ERR_INTERFACE',
        `interface ${ifname} not found: check the interface name in the config (ip link shows the interfaces of this network namespace)`,
        { detail: { interface: ifname } },
      );
    }
    return l;
  }

  async linkIndex(ifname: string): Promise<number> {
    return (await this.link(ifname)).index;
  }

  /** Addresses of one interface (by name), or of every interface. */
  async listAddresses(ifname?: string): Promise<InterfaceAddress[]> {
    const index = ifname === undefined ? undefined : await this.linkIndex(ifname);
    let msgs;
    try {
      msgs = await this.serial(() => this.rt.getAddresses());
    } catch (err) {
      throw nlError(`list addresses${ifname ? ` of ${ifname}` : ''}`, err, { interface: ifname });
    }
    const out: InterfaceAddress[] = [];
    for (const m of msgs) {
      if (index !== undefined && m.data.index !== index) continue;
      const raw = m.attrs.local ?? m.attrs.address;
      if (!raw || (raw.length !== 4 && raw.length !== 16)) continue;
      const flags = m.attrs.flags ?? m.data.flags ?? {};
      out.push({
        ifindex: m.data.index ?? 0,
        address: addressFromBytes(raw),
        prefix: m.data.prefixlen ?? 0,
        family: raw.length === 4 ? 4 : 6,
        scope: m.data.scope ?? 0,
        secondary: !!flags.secondary,
        tentative: !!flags.tentative,
      });
    }
    return out;
  }

  /**
   * Add `address/prefix` to `ifname`. Idempotent: an address already there is
   * not an error. IPv6 addresses skip duplicate address detection (nodad), as
   * a VIP must work the moment VRRP takes it. Pass `ifindex` when known to save
   * a link dump (failover latency).
   */
  async addAddress(ifname: string, address: string, prefix: number, ifindex?: number): Promise<void> {
    const fam = addressFamily(address);
    if (fam === undefined) throw new TypeError(`not an IP address: ${JSON.stringify(address)}`);
    const index = ifindex ?? (await this.linkIndex(ifname));
    const bytes = addressToBytes(address);
    try {
      await this.serial(() =>
        this.rt.newAddress(
          {
            family: fam === 4 ? AF_INET : AF_INET6,
            prefixlen: prefix,
            index,
            scope: RT_SCOPE_UNIVERSE,
            flags: fam === 6 ? { nodad: true } : {},
          },
          // IPv6 VIPs are deprecated (preferred lifetime 0, valid forever): still answered and
          // accepted, but never chosen as the source of the director's own connections. A /128
          // VIP would otherwise win source selection over the /64 address, and the real servers,
          // which hold the VIP on lo, would keep the replies to health checks for themselves.
          fam === 4
            ? { local: bytes, address: bytes }
            : {
                address: bytes,
                flags: { nodad: true },
                cacheInfo: { ifaPrefered: 0, ifaValid: 0xffffffff, cstamp: 0, tstamp: 0 },
              },
          { flags: NLM_F_CREATE | NLM_F_EXCL },
        ),
      );
    } catch (err) {
      if (netlinkErrno(err) === 'EEXIST') return;
      throw nlError(`add ${address}/${prefix} to ${ifname}`, err, { interface: ifname, address });
    }
  }

  /** Remove `address/prefix` from `ifname` (or `ifindex` when known). Idempotent: an address not there is not an error. */
  async removeAddress(ifname: string, address: string, prefix: number, ifindex?: number): Promise<void> {
    const fam = addressFamily(address);
    if (fam === undefined) throw new TypeError(`not an IP address: ${JSON.stringify(address)}`);
    const index = ifindex ?? (await this.linkIndex(ifname));
    const bytes = addressToBytes(address);
    try {
      await this.serial(() =>
        this.rt.delAddress(
          { family: fam === 4 ? AF_INET : AF_INET6, prefixlen: prefix, index },
          fam === 4 ? { local: bytes, address: bytes } : { address: bytes },
        ),
      );
    } catch (err) {
      const code = netlinkErrno(err);
      if (code === 'EADDRNOTAVAIL' || code === 'ENOENT' || code === 'ESRCH') return;
      throw nlError(`remove ${address}/${prefix} from ${ifname}`, err, { interface: ifname, address });
    }
  }

  /**
   * `local ADDRESS/32 (/128) dev lo table local proto 88`: the kernel accepts packets to ADDRESS as
   * its own (answers ICMP echo, resets a closed TCP port) without ADDRESS being an interface
   * address (nothing to pick as a source, no `ip addr` entry). Idempotent: a route already
   * there is not an error.
   */
  async addLocalRoute(address: string): Promise<void> {
    const r = localRoute(address);
    const lo = await this.linkIndex('lo');
    try {
      await this.serial(() =>
        this.rt.newRoute(
          { ...r.data, scope: RT_SCOPE_HOST as never },
          { ...r.attrs, oif: lo },
          { flags: NLM_F_CREATE | NLM_F_EXCL },
        ),
      );
    } catch (err) {
      if (netlinkErrno(err) === 'EEXIST') return;
      throw nlError(`add local route ${address} dev lo table local`, err, { address });
    }
  }

  /** Remove a route addLocalRoute() made (proto 88 only: a kernel or operator route for ADDRESS stays). Idempotent. */
  async removeLocalRoute(address: string): Promise<void> {
    const r = localRoute(address);
    try {
      await this.serial(() => this.rt.delRoute(r.data, r.attrs));
    } catch (err) {
      const code = netlinkErrno(err);
      if (code === 'ESRCH' || code === 'ENOENT') return;
      throw nlError(`remove local route ${address} table local`, err, { address });
    }
  }

  /** Destinations of the local-table routes addLocalRoute() made (proto 88), canonical text. */
  async localRoutes(): Promise<string[]> {
    let msgs;
    try {
      msgs = await this.serial(() => this.rt.getRoutes());
    } catch (err) {
      throw nlError('list routes', err, {});
    }
    const out: string[] = [];
    for (const m of msgs) {
      const table = m.attrs.table ?? m.data.table;
      const proto = m.data.protocol as unknown;
      if (table !== RT_TABLE_LOCAL || (proto !== RTPROT_XDIRECTOR && proto !== String(RTPROT_XDIRECTOR))) continue;
      if (m.attrs.dst) out.push(addressFromBytes(m.attrs.dst));
    }
    return out;
  }

  /** Whether `address` is on `ifname` now. */
  async hasAddress(ifname: string, address: string): Promise<boolean> {
    const want = canonicalAddress(address);
    return (await this.listAddresses(ifname)).some((a) => a.address === want);
  }
}

/** The RTM_NEWROUTE / RTM_DELROUTE header and attributes of `local ADDRESS/32 (/128) table local proto 88`. */
function localRoute(address: string) {
  const fam = addressFamily(address);
  if (fam === undefined) throw new TypeError(`not an IP address: ${JSON.stringify(address)}`);
  return {
    data: {
      family: fam === 4 ? AF_INET : AF_INET6,
      dstLen: fam === 4 ? 32 : 128,
      table: RT_TABLE_LOCAL,
      protocol: RTPROT_XDIRECTOR as never,
      type: RTN_LOCAL as never,
    },
    attrs: { dst: addressToBytes(address), table: RT_TABLE_LOCAL },
  };
}

/** One-shot helpers for callers that do not keep a socket. */
export async function withRtnl<T>(fn: (rt: Rtnl) => Promise<T>): Promise<T> {
  const rt = new Rtnl();
  try {
    return await fn(rt);
  } finally {
    rt.close();
  }
}
