// The sync socket: UDP, unicast to each configured peer or to one multicast group, bound to
// the director's sync source address. Datagrams only: authentication and everything else is
// the codec's (codec.ts) and the daemon's (index.ts).
import * as dgram from 'node:dgram';
import * as os from 'node:os';
import type { SyncConfig } from '../config';
import { XdError, wrap } from '../errors';
import { hostPort } from '../net/inet';

export interface SyncSocket {
  send(msgs: readonly Buffer[]): void;
  close(): Promise<void>;
}

/** This host's addresses (every interface): a peer that is one of them is this director. */
function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}

/** `peersMayBeLocal`: two directors in one namespace (the sync benchmark), never the daemon. */
export async function openSyncSocket(
  cfg: SyncConfig,
  interfaceName: string,
  onMessage: (msg: Buffer, from: string) => void,
  onError: (err: Error) => void,
  peersMayBeLocal = false,
): Promise<SyncSocket> {
  const local = localAddresses();
  const self = peersMayBeLocal ? undefined : cfg.peers.find((p) => local.has(p));
  if (self)
    throw new XdError(
      'XD_ERR_CONFIG_INVALID',
      `sync.peers lists ${self}, an address of this host: list only the other directors' sync addresses`,
    );
  if (!local.has(cfg.source))
    throw new XdError(
      'XD_ERR_CONFIG_INVALID',
      `sync.source ${cfg.source} is not an address of this host: give this director's own address on the sync network`,
    );
  // A receive buffer for a burst of a few thousand datagrams (a peer's export after a stall):
  // the kernel caps it at net.core.rmem_max.
  const sock = dgram.createSocket({
    type: cfg.family === 4 ? 'udp4' : 'udp6',
    reuseAddr: true,
    recvBufferSize: 8 << 20,
    sendBufferSize: 4 << 20,
  });
  sock.on('message', (msg, rinfo) => onMessage(msg, rinfo.address));
  sock.on('error', onError);
  // Multicast: bound to the port on any address (the group's datagrams are addressed to the
  // group), joined on the source address's interface; unicast: bound to the source address.
  const bindAddress = cfg.multicast ? (cfg.family === 4 ? '0.0.0.0' : '::') : cfg.source;
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: bindAddress, port: cfg.port, exclusive: true }, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    if (cfg.multicast) {
      sock.addMembership(cfg.multicast, cfg.family === 4 ? cfg.source : `${cfg.source}%${interfaceName}`);
      sock.setMulticastInterface(cfg.family === 4 ? cfg.source : `::%${interfaceName}`);
      sock.setMulticastLoopback(false);
      sock.setMulticastTTL(1);
    }
  } catch (e) {
    sock.close();
    throw wrap(
      'XD_ERR_SYNC',
      `open the sync socket on ${hostPort(bindAddress, cfg.port)}${cfg.multicast ? ` (group ${cfg.multicast})` : ''}`,
      e,
    );
  }
  const targets = cfg.multicast ? [cfg.multicast] : cfg.peers;
  return {
    send(msgs) {
      for (const m of msgs) for (const t of targets) sock.send(m, cfg.port, t);
    },
    close: () =>
      new Promise<void>((resolve) => {
        try {
          sock.close(() => resolve());
        } catch {
          resolve();
        }
      }),
  };
}
