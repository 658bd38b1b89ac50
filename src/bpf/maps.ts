// maps.ts: xdirector's maps by role, typed with the generated codecs.
//   const svc = xdMap(obj, 'svc');            // BpfMap<XdServiceKey, XdService>
//   const st = openPinnedXdMap(dir, 'rsnst'); // per-CPU: st.lookupPerCpu(i)
// Map names come from MAPS (layouts.generated.ts) only.
import * as path from 'node:path';
import { Codec } from './codec';
import { DEFINES, MAP_CODECS, MAPS, MapRole } from './layouts.generated';
import { getNative } from './native';
import { BpfMap } from './map';
import { BpfObject } from './object';

type CodecsOf<R extends MapRole> = (typeof MAP_CODECS)[R];
export type XdMapKey<R extends MapRole> = CodecsOf<R>['key'] extends Codec<infer K> ? K : never;
export type XdMapValue<R extends MapRole> = CodecsOf<R>['value'] extends Codec<infer V> ? V : never;
export type XdMap<R extends MapRole> = BpfMap<XdMapKey<R>, XdMapValue<R>>;

/** The map of a loaded object by role, typed (borrows the object's fd). */
export function xdMap<R extends MapRole>(obj: BpfObject, role: R): XdMap<R> {
  const c = MAP_CODECS[role] as unknown as { key: Codec<XdMapKey<R>>; value: Codec<XdMapValue<R>> };
  return obj.map(MAPS[role].name, c.key, c.value);
}

/** A map pinned as <dir>/<map name> by role, typed (owns its fd: close() it). */
export function openPinnedXdMap<R extends MapRole>(dir: string, role: R): XdMap<R> {
  const c = MAP_CODECS[role] as unknown as { key: Codec<XdMapKey<R>>; value: Codec<XdMapValue<R>> };
  return BpfMap.openPinned(path.join(dir, MAPS[role].name), c.key, c.value);
}

/** The pin path of a map by role under an instance directory. */
export function pinPath(dir: string, role: MapRole): string {
  return path.join(dir, MAPS[role].name);
}

/**
 * max_entries of the maps sized by the number of CPUs, for BpfObject.load(): each flow cache is one
 * CPU-major array of XD_FLOW_CACHE4 / XD_FLOW_CACHE6 slots per possible CPU (bpf/maps.h), and each
 * NAT reply cache one of XD_NAT_OUT_CACHE4 / XD_NAT_OUT_CACHE6. Without it a map keeps its one-CPU
 * default and the other CPUs cache nothing.
 */
export function cpuSizedMaxEntries(): Record<string, number> {
  const cpus = getNative().numPossibleCpus();
  return {
    [MAPS.fc4.name]: DEFINES.XD_FLOW_CACHE4 * cpus,
    [MAPS.fc6.name]: DEFINES.XD_FLOW_CACHE6 * cpus,
    [MAPS.noc4.name]: DEFINES.XD_NAT_OUT_CACHE4 * cpus,
    [MAPS.noc6.name]: DEFINES.XD_NAT_OUT_CACHE6 * cpus,
  };
}
