// The per-CPU flow caches (MAPS.fc4, MAPS.fc6: plain arrays, CPU-major) of a loaded xdirector object,
// and the NAT reply caches laid out alike (MAPS.noc4, MAPS.noc6): a test that rewrites or empties the
// flow tables or the NAT reverse tables from user space empties these too, as the caches would
// otherwise serve their copies until the slots expire (XD_FLOW_CACHE_JIFFIES, XD_NAT_OUT_CACHE_JIFFIES).
import { MAPS } from '../../src/bpf/layouts.generated';
import type { BpfObject } from '../../src/bpf/object';

export function clearFlowCaches(obj: BpfObject): void {
  for (const m of [MAPS.fc4, MAPS.fc6, MAPS.noc4, MAPS.noc6]) {
    const raw = { size: 0, encode: (b: Buffer) => b, decode: (b: Buffer) => Buffer.from(b) };
    const map = obj.map(m.name, { ...raw, size: m.keySize }, { ...raw, size: m.valueSize });
    const n = map.maxEntries; // as loaded: sized by the CPU count (cpuSizedMaxEntries)
    const keys = Buffer.alloc(n * 4);
    for (let i = 0; i < n; i++) keys.writeUInt32LE(i, i * 4);
    map.updateBatchRawSync(keys, Buffer.alloc(n * m.valueSize));
  }
}
