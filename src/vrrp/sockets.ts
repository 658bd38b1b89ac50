// Typed wrapper over the addon's VRRP sockets (native/sockets.cc): adds context
// to errors and normalises what a received packet says about itself, so the
// rest of src/vrrp sees (VRRP message, RxMeta) pairs.

import { loadAddon, type NativeAddon, type NativeVrrpSocket } from '../addon';
import { wrap } from '../errors';
import { splitIPv4, type DropReason, type Family, type RxMeta } from './codec';

/** The addon's raw-socket part (native/sockets.cc; declared in src/addon.ts). */
export type VrrpAddon = Pick<NativeAddon, 'VrrpSocket' | 'sendFrame'>;

/** The addon's VRRP sockets (loaded once per process); throws XD_ERR_NATIVE_MISSING with the fix. */
export function vrrpAddon(): VrrpAddon {
  return loadAddon();
}

export type PacketHandler = (payload: Buffer, meta: RxMeta) => void;
/** Datagrams that never reach the VRRP decoder (not even an IPv4 header). */
export type RawDropHandler = (reason: DropReason, message: string) => void;

export interface VrrpSocketOptions {
  family: Family;
  ifname: string;
  /** Join 224.0.0.18 / ff02::12 (false with unicast peers). */
  multicast: boolean;
  onPacket: PacketHandler;
  onDrop?: RawDropHandler;
}

export class VrrpSocket {
  private sock: NativeVrrpSocket;
  readonly family: Family;
  readonly ifname: string;

  constructor(opts: VrrpSocketOptions) {
    this.family = opts.family;
    this.ifname = opts.ifname;
    const native = vrrpAddon();
    const onRaw = (data: Buffer, info: { src: string; dst?: string; ttl?: number }) => {
      if (opts.family === 4) {
        const r = splitIPv4(data);
        if (!r.ok) return opts.onDrop?.(r.reason, r.message);
        opts.onPacket(r.payload, r.meta);
      } else {
        opts.onPacket(data, { family: 6, src: info.src, dst: info.dst ?? '::', ttl: info.ttl ?? -1 });
      }
    };
    try {
      this.sock = new native.VrrpSocket({
        family: opts.family,
        ifname: opts.ifname,
        multicast: opts.multicast,
        onPacket: onRaw,
      });
    } catch (err) {
      throw wrap('XD_ERR_VRRP', `open VRRP socket (IPv${opts.family}, protocol 112) on ${opts.ifname}`, err, {
        interface: opts.ifname,
      });
    }
  }

  get ifindex(): number {
    return this.sock.ifindex;
  }

  /** Datagrams the reader thread dropped because the JS thread fell behind. */
  get queueDrops(): number {
    return this.sock.queueDrops;
  }

  send(message: Buffer, dst: string, src?: string): void {
    try {
      this.sock.send(message, dst, src);
    } catch (err) {
      throw wrap('XD_ERR_VRRP', `send VRRP advert on ${this.ifname} to ${dst}`, err, { interface: this.ifname });
    }
  }

  close(): void {
    this.sock.close();
  }
}

/** One Ethernet frame out of `ifindex` (gratuitous ARP, unsolicited NA). */
export function sendFrame(ifindex: number, frame: Buffer, ifname = `ifindex ${ifindex}`): void {
  try {
    vrrpAddon().sendFrame(ifindex, frame);
  } catch (err) {
    throw wrap('XD_ERR_VRRP', `send announcement frame on ${ifname}`, err, { interface: ifname });
  }
}
