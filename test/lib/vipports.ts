// The VIP ports map (xd_vport_v1) of a loaded xdirector object, for fixtures
// that write services straight into xd_svc_v1 instead of through apply(): the
// program passes a packet whose port bit is clear without looking the service
// up, so each service's port and protocol must be marked here too.
import { MAPS } from '../../src/bpf/layouts.generated';
import { u32, u64 } from '../../src/bpf/codec';
import type { BpfObject } from '../../src/bpf/object';
import { vportBit } from '../../src/dataplane/xdp/layout';

/** Sets the bit of a port and protocol (IPPROTO_TCP 6 or IPPROTO_UDP 17). */
export function markVipPort(obj: BpfObject, port: number, proto: number): void {
  const map = obj.map(MAPS.vport.name, u32, u64);
  const { word, bit } = vportBit(port, proto === 17 ? 'udp' : 'tcp');
  map.update(word, (map.lookup(word) ?? 0n) | bit);
}

/** Clears every bit. */
export function clearVipPorts(obj: BpfObject): void {
  const map = obj.map(MAPS.vport.name, u32, u64);
  map.updateBatch(Array.from({ length: MAPS.vport.maxEntries }, (_, i) => [i, 0n] as const));
}
