// A routed VIP must not be an address of the director: the kernel would answer ARP/NS for it
// (drawing traffic meant for the other directors) and take its packets whenever XDP passes them.
import os from 'node:os';
import { XdError } from '../errors';

export function assertVipsNotLocal(vips: readonly string[]): void {
  const ifs = os.networkInterfaces();
  for (const [name, addrs] of Object.entries(ifs)) {
    for (const a of addrs ?? []) {
      if (vips.includes(a.address)) {
        throw new XdError(
          'XD_ERR_BGP',
          `VIP ${a.address} is an address on ${name}: a VIP announced over BGP is routed to the director and must not be local (it would answer ARP/NS and take the VIP's packets); remove it (ip addr del ${a.address}/${a.family === 'IPv4' ? 32 : 128} dev ${name})`,
        );
      }
    }
  }
}
