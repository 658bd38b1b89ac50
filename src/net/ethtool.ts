// A network driver's own statistics (`ethtool -S`), and the ones that say XDP
// forwarding is failing. The addon hands back names and values (SIOCETHTOOL
// ETHTOOL_GSTRINGS / ETHTOOL_GSTATS); which counters mean "an XDP_TX or
// redirected frame was dropped by the driver" is decided here.
//
// Drivers name these counters differently: veth has rx_queue_<n>_xdp_tx_errors
// (XDP_TX from its own program) and tx_queue_<n>_xdp_xmit_errors (frames
// redirected into it); mlx5 has rx_xdp_tx_err and tx_xdp_err; virtio_net has
// rx_queue_<n>_xdp_tx / xdp_tx_drops. Any counter whose name mentions xdp and
// tx/xmit and err/drop is summed.
import { getNative, isNativeSystemError } from '../bpf';
import { wrap } from '../errors';

export interface DriverStats {
  /** Driver name (ETHTOOL_GDRVINFO), e.g. "veth", "mlx5_core". */
  driver: string;
  /** Every counter the driver reports, by its name. */
  counters: Map<string, bigint>;
}

/** The driver's statistics; undefined when the driver has none (lo: EOPNOTSUPP). */
export function driverStats(ifname: string): DriverStats | undefined {
  let r;
  try {
    r = getNative().ethtoolStats(ifname);
  } catch (err) {
    if (isNativeSystemError(err) && (err.code === 'EOPNOTSUPP' || err.code === 'ENOTSUP')) return undefined;
    throw wrap('XD_ERR_INTERFACE', `read the driver statistics of ${ifname}`, err, { interface: ifname });
  }
  const counters = new Map<string, bigint>();
  r.names.forEach((n, i) => counters.set(n, (counters.get(n) ?? 0n) + r.values[i]!));
  return { driver: r.driver, counters };
}

/** Frames the driver dropped on XDP transmit: XDP_TX from this interface's program, and frames redirected into it. */
export interface XdpTxErrors {
  /** Sum of the XDP_TX error counters (veth: rx_queue_*_xdp_tx_errors). */
  txErrors: number;
  /** Sum of the XDP redirect-transmit error counters (veth: tx_queue_*_xdp_xmit_errors). */
  xmitErrors: number;
  /** The counter names summed, so an operator can find them in `ethtool -S`. */
  counters: string[];
}

const XDP_TX_ERR = /xdp.*tx.*(err|drop)|tx.*xdp.*(err|drop)/i;
const XDP_XMIT_ERR = /xdp.*xmit.*(err|drop)|xmit.*xdp.*(err|drop)/i;

export function xdpTxErrors(stats: DriverStats): XdpTxErrors {
  let txErrors = 0;
  let xmitErrors = 0;
  const counters: string[] = [];
  for (const [name, v] of stats.counters) {
    if (XDP_XMIT_ERR.test(name)) {
      xmitErrors += Number(v);
      counters.push(name);
    } else if (XDP_TX_ERR.test(name)) {
      txErrors += Number(v);
      counters.push(name);
    }
  }
  return { txErrors, xmitErrors, counters };
}
