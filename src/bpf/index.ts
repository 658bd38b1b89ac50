// src/bpf: the typed BPF wrapper over the native addon.
// Pure parts (codec.ts, btf.ts, layouts.generated.ts) never load the addon.
export { getNative, isNativeSystemError } from './native';
export type { NativeSystemError, NativeAddon } from './native';
export { BpfObject, openPinnedProgram } from './object';
export { checkRemovable, removePinDir, securePinDir, BPF_FS_MAGIC } from './pins';
export type { LoadOptions, ProgramRef, GlobalValue } from './object';
export { BpfMap } from './map';
export type { UpdateMode } from './map';
export * as xdp from './xdp';
export { testRun, testRunAsync, liveFramesFlag } from './testrun';
export type { TestRunOptions, TestRunResult } from './testrun';
export { u32, u64, raw, structCodec, sumPerCpu, none } from './codec';
export { RingbufReader } from './ringbuf';
export type { Codec } from './codec';
export { xdMap, openPinnedXdMap, pinPath, cpuSizedMaxEntries } from './maps';
export type { XdMap, XdMapKey, XdMapValue } from './maps';
export * from './layouts.generated';
export {
  FlowTable,
  FLOW_WAYS,
  flowTableEntries,
  flowHash,
  flowBucketFirst,
  mapMemlock,
  randomFlowSeed,
} from './flowtable';
