// NAT's side of the XDP dataplane (bpf/nat.h is the datapath):
// - NatSide: two-armed NAT (config nat.interface): the same program, over the same pinned maps,
//   attached to the server-side interface too, because the real servers' replies arrive there
//   and the program sends NAT'ed requests out of it (bpf_redirect_map on xd_tx_v1).
//   Native mode where the driver allows it; when the native attach fails (a driver without
//   XDP, or a veth whose peer runs no XDP program) the generic fallback is used and logged:
//   generic XDP runs after the kernel has built an skb, so it costs more per packet but works
//   on any interface.
// - The forwarding sysctl NAT needs: bpf_fib_lookup() refuses (BPF_FIB_LKUP_RET_FWD_DISABLED)
//   to route a reply arriving on an interface that does not forward; the director is the real
//   servers' gateway, so NAT turns it on there, as the IPVS dataplane sets what it needs.
// - natAlert(): a NAT backend whose replies never come back through the director.
import fs from 'node:fs';
import type { Logger } from 'pino';
import { BpfObject, xdp, type GlobalValue } from '../../bpf';
import { readLinkMac } from '../../net/neigh';
import { macBytes } from './layout';
import { XdError, wrap } from '../../errors';
import type { DesiredBackend } from '../../state/types';

type Attach = (
  dir: string,
  ifc: { ifindex: number; ifname: string },
  prog: { fd: number; id: number; name: string },
  mode: 'native' | 'generic',
  log: Logger,
  pinName?: string,
) => void;

export interface NatSideOptions {
  /** The instance's pin directory (the maps are pinned there already). */
  dir: string;
  ifname: string;
  mode: 'native' | 'generic';
  objectPath: string;
  maxEntries: Record<string, number>;
  globals: Record<string, GlobalValue>;
  pinName: string;
  attach: Attach;
  log: Logger;
}

export class NatSide {
  private constructor(
    readonly ifname: string,
    readonly ifindex: number,
    private readonly obj: BpfObject,
    readonly programId: number,
  ) {}

  static async open(o: NatSideOptions): Promise<NatSide> {
    const ifc = xdp.resolveInterface(o.ifname);
    const mac = await readLinkMac(o.ifname);
    const obj = await BpfObject.load(o.objectPath, {
      maxEntries: o.maxEntries,
      globals: { ...o.globals, self_mac: macBytes(mac) },
      reusePinnedDir: o.dir,
    });
    try {
      const prog = obj.program();
      let mode = o.mode;
      try {
        o.attach(o.dir, ifc, prog, mode, o.log, o.pinName);
      } catch (err) {
        if (
          mode !== 'native' ||
          (err instanceof XdError && err.code === 'XD_ERR_XDP_ATTACH' && /another XDP program/.test(err.message))
        )
          throw err;
        o.log.warn(
          { interface: o.ifname, err },
          `NAT server side ${o.ifname}: native XDP attach failed (${(err as Error).message}); attaching in generic mode instead (slower: the kernel builds an skb first)`,
        );
        mode = 'generic';
        o.attach(o.dir, ifc, prog, mode, o.log, o.pinName);
      }
      o.log.info(
        { interface: o.ifname, mode, programId: prog.id },
        'XDP program attached to the NAT server-side interface',
      );
      return new NatSide(o.ifname, ifc.ifindex, obj, prog.id);
    } catch (err) {
      obj.close();
      throw err;
    }
  }

  /** 'native' | 'generic' | 'detached': how our program is attached to the server side now. */
  attachedMode(): 'native' | 'generic' | 'detached' {
    try {
      return xdp.modeOf(xdp.query(this.ifindex), this.programId);
    } catch {
      return 'detached';
    }
  }

  close(): void {
    this.obj.close();
  }

  /** The MTU of an interface (0 when unreadable: then no size check). */
  static mtuOf(ifname: string): number {
    try {
      return Number(fs.readFileSync(`/sys/class/net/${ifname}/mtu`, 'utf8').trim()) || 0;
    } catch {
      return 0;
    }
  }

  /** Set a forwarding sysctl (/proc/sys/<key>) to 1 when it is not. */
  static enableSysctl(key: string, log: Logger): void {
    const file = `/proc/sys/${key}`;
    let cur: string;
    try {
      cur = fs.readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw wrap(
        'XD_ERR_INTERFACE',
        `read ${key.replace(/\//g, '.')} (NAT routes replies through this interface)`,
        err,
      );
    }
    if (cur === '1') return;
    try {
      fs.writeFileSync(file, '1');
    } catch (err) {
      throw wrap(
        'XD_ERR_INTERFACE',
        `set ${key.replace(/\//g, '.')}=1 (NAT routes the real servers' replies: bpf_fib_lookup refuses an interface that does not forward)`,
        err,
      );
    }
    log.info(
      { sysctl: key.replace(/\//g, '.') },
      `${key.replace(/\//g, '.')} set to 1: NAT routes the real servers' replies through this interface`,
    );
  }
}

/** One reading of a NAT backend's counters. */
export interface NatSample {
  at: number;
  newFlows: number;
  outPackets: number;
}

/** New connections a backend must have been given, without one reply, before the alert. */
export const NAT_ALERT_MIN_FLOWS = 3;
/** ... over at least this long (a SYN-ACK is normally back within milliseconds; SYN retries take 1 s, 3 s). */
export const NAT_ALERT_WINDOW_MS = 10_000;

/**
 * Compare two readings of a NAT backend: new connections went to it but no packet came back
 * through the director (not one SYN-ACK) over NAT_ALERT_WINDOW_MS: its replies take another
 * route (its default route is not the director), so clients see no answer. resample: start a new
 * window from `now`; clear: replies came back.
 */
export function natAlert(
  service: string,
  b: Pick<DesiredBackend, 'name' | 'key' | 'address'>,
  prev: NatSample,
  now: NatSample,
  natIfname: string,
): { alert?: string; clear?: boolean; resample: boolean } {
  const flows = now.newFlows - prev.newFlows;
  const replies = now.outPackets - prev.outPackets;
  if (replies > 0) return { clear: true, resample: true };
  if (now.at - prev.at < NAT_ALERT_WINDOW_MS) return { resample: false };
  if (flows < NAT_ALERT_MIN_FLOWS) return { resample: true };
  const seconds = Math.round((now.at - prev.at) / 1000);
  return {
    resample: true,
    alert: `NAT backend ${b.name} (${b.key}) of service ${service}: ${flows} new connections were forwarded to it in ${seconds} s and not one reply came back through the director (no SYN-ACK seen on ${natIfname}): its replies bypass the director, so its clients get no answer; fix: make the director's inner address its only route out (on the real server: xdirector realserver setup --nat --gateway <the director's address on ${natIfname}>; check with xdirector realserver check --nat)`,
  };
}
