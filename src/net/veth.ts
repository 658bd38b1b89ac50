// The peer of a veth interface and the XDP program on it, over rtnetlink.
//
// Why: on veth, a frame sent with XDP_TX (or redirected) in native mode is
// delivered only if the peer runs a native XDP program (veth_xdp_xmit needs the
// peer's XDP receive path; measured on 6.18: GRO on the peer is not enough).
// Without one, the driver drops every forwarded frame and counts it in
// rx_queue_<n>_xdp_tx_errors: a silent black hole.
//
// The peer is IFLA_LINK (its ifindex) in the namespace IFLA_LINK_NETNSID names
// (absent: the same namespace). RTM_GETLINK with IFLA_TARGET_NETNSID (Linux
// 4.20) reads a link in another namespace by that id, so the peer can be
// checked without entering its namespace.
import { createRtNetlink, type RtNetlinkSocket } from 'netlink';
import { XdError, wrap } from '../errors';

/** IFLA_INFO_KIND inside IFLA_LINKINFO (linux/if_link.h). */
const IFLA_INFO_KIND = 1;

export interface VethPeer {
  /** The peer's ifindex in its own namespace. */
  ifindex: number;
  /** Its name, when the kernel told us. */
  name?: string;
  /** Namespace id of the peer as seen from ours; undefined: the same namespace. */
  netnsid?: number;
  /** Id of the native (driver mode) XDP program on the peer; 0: none. */
  nativeProgId: number;
  /** Id of a generic (skb mode) XDP program on the peer; 0: none (it does not make XDP_TX deliver). */
  genericProgId: number;
}

/** IFLA_INFO_KIND from an IFLA_LINKINFO payload ("veth", "bridge", ...), or undefined. */
export function linkKind(linkinfo: Buffer | undefined): string | undefined {
  if (!linkinfo) return undefined;
  for (let off = 0; off + 4 <= linkinfo.length;) {
    const len = linkinfo.readUInt16LE(off);
    const type = linkinfo.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4 || off + len > linkinfo.length) return undefined;
    if (type === IFLA_INFO_KIND) return linkinfo.toString('latin1', off + 4, off + len).replace(/\0+$/, '');
    off += (len + 3) & ~3;
  }
  return undefined;
}

type Xdp = { attached?: unknown; drvProgId?: Buffer; skbProgId?: Buffer; progId?: Buffer } | undefined;

function progIds(x: Xdp): { native: number; generic: number } {
  const id = (b?: Buffer) => (b && b.length >= 4 ? b.readUInt32LE(0) : 0);
  const mode = x?.attached;
  // A single program reports IFLA_XDP_PROG_ID only; several (MULTI) report one id per mode.
  if (mode === 'DRV' || mode === 1) return { native: id(x?.drvProgId) || id(x?.progId), generic: 0 };
  if (mode === 'SKB' || mode === 2) return { native: 0, generic: id(x?.skbProgId) || id(x?.progId) };
  return { native: id(x?.drvProgId), generic: id(x?.skbProgId) };
}

/**
 * The veth peer of `ifname` and its XDP programs, or undefined when `ifname`
 * is not a veth. Throws XD_ERR_INTERFACE when `ifname` does not exist.
 */
export async function vethPeer(ifname: string): Promise<VethPeer | undefined> {
  const rt: RtNetlinkSocket = createRtNetlink();
  try {
    let links;
    try {
      links = await rt.getLinks();
    } catch (err) {
      throw wrap('XD_ERR_NETLINK', 'list links', err);
    }
    const l = links.find((x) => x.attrs.ifname === ifname);
    if (!l)
      throw new XdError(
        'XD_ERR_INTERFACE',
        `interface ${ifname} not found: check the interface name in the config (ip link shows the interfaces of this network namespace)`,
        { detail: { interface: ifname } },
      );
    if (linkKind(l.attrs.linkinfo) !== 'veth') return undefined;
    const peerIndex = l.attrs.link && l.attrs.link.length >= 4 ? l.attrs.link.readUInt32LE(0) : 0;
    if (!peerIndex) return undefined; // a veth whose peer is gone (its namespace was deleted)
    const netnsid = l.attrs.linkNetnsid;
    let peer;
    try {
      [peer] = await rt.getLink({ index: peerIndex }, netnsid === undefined ? {} : { targetNetnsid: netnsid });
    } catch (err) {
      throw wrap(
        'XD_ERR_NETLINK',
        `read the veth peer of ${ifname} (ifindex ${peerIndex}${netnsid === undefined ? '' : `, netnsid ${netnsid}`})`,
        err,
        { interface: ifname },
      );
    }
    const ids = progIds(peer?.attrs.xdp as Xdp);
    return {
      ifindex: peerIndex,
      name: peer?.attrs.ifname,
      netnsid,
      nativeProgId: ids.native,
      genericProgId: ids.generic,
    };
  } finally {
    rt.socket.close();
  }
}
