// The native addon (native/, binding.gyp), loaded once per process, and the one declaration of
// what it exports (NativeAddon below: BPF objects, maps, XDP, test runs, ethtool counters, the
// systemd notify datagram, VRRP raw sockets). Its users take the part they call through their
// own wrapper (bpf/native.ts, vrrp/sockets.ts, net/ethtool.ts, systemd/notify.ts), none through
// another's; test/addon.test.ts checks this declaration against what the built addon exports.
//
// Loading: node-gyp-build from the package root, so a compiled build/Release/xdirector.node
// (building from source: npm run build:native) is used when present, and otherwise
// prebuilds/linux-x64/*.node shipped in the package (npm run prebuild). Set PREBUILDS_ONLY=1
// to force the prebuild.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { XdError } from './errors';

/** The package root: the nearest ancestor of this file holding binding.gyp. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'binding.gyp')) && fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir)
      throw new XdError(
        'XD_ERR_NATIVE_MISSING',
        `cannot find the xdirector package root (binding.gyp) above ${__dirname}`,
      );
    dir = up;
  }
}

// ---- BPF objects, maps, XDP, test runs (native/bpf_*.cc) -------------------------------------

/** Errors thrown by the addon look like Node's SystemError. */
export interface NativeSystemError extends Error {
  /** Negative errno, as Node reports it (-1 for EPERM). */
  errno: number;
  /** Errno name: 'EPERM', 'ENOENT', ... */
  code: string;
  /** The libbpf function or syscall that failed: 'bpf_prog_load', 'bpf_xdp_attach', ... */
  syscall: string;
  /** On load failures: everything libbpf printed while loading. */
  libbpfLog?: string;
  /** On program load failures: the kernel verifier log. */
  verifierLog?: string;
  /** On reuse failures: the map and the property that differs. */
  map?: string;
  property?: string;
  existing?: number;
  expected?: number;
  /** On batch failures: elements processed before the error. */
  processed?: number;
  path?: string;
  interface?: string;
}

export function isNativeSystemError(e: unknown): e is NativeSystemError {
  return (
    e instanceof Error &&
    typeof (e as NativeSystemError).syscall === 'string' &&
    typeof (e as NativeSystemError).code === 'string'
  );
}

/** A map's definition as the kernel and libbpf both describe it. */
export interface NativeMapShape {
  name: string;
  type: number;
  typeName: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

export interface NativeMapDesc extends NativeMapShape {
  /** -1 before load. */
  fd: number;
  /** libbpf internal map (.rodata, .data, .bss). */
  internal: boolean;
}

export interface NativeProgDesc {
  name: string;
  section: string;
  /** Negative before load. */
  fd: number;
  type: number;
  typeName: string;
  /** After load, when opened with verifierStats: the verifier's summary log (BPF_LOG_STATS). */
  verifierLog?: string;
}

export interface NativeGlobalDesc {
  name: string;
  section: string;
  offset: number;
  size: number;
}

export interface NativeMapInfo extends NativeMapShape {
  id: number;
}

export interface NativeProgInfo {
  id: number;
  name: string;
  type: number;
  typeName: string;
  /** 16 hex digits, as bpftool shows it. */
  tag: string;
  /** bpf_stats: total run time and runs of the program; they only grow while kernel.bpf_stats_enabled is 1. */
  runTimeNs: bigint;
  runCnt: bigint;
  /** Runs skipped because the program was already running on that CPU. */
  recursionMisses: bigint;
  /** The verifier's processed-instruction count (kernel >= 5.16; 0 before). */
  verifiedInsns: number;
}

export type NativeAttachMode = 'none' | 'native' | 'generic' | 'offload' | 'multi';

export interface NativeXdpQuery {
  attachMode: NativeAttachMode;
  /** The attached program when exactly one mode is attached, else 0. */
  progId: number;
  drvProgId: number;
  skbProgId: number;
  hwProgId: number;
}

export interface NativeTestRunOptions {
  data?: Buffer;
  /** Room for the output packet; default data.length + 256. */
  dataSizeOut?: number;
  ctx?: Buffer;
  ctxSizeOut?: number;
  repeat?: number;
  flags?: number;
  cpu?: number;
  /** Live-frames mode: frames per batch. */
  batchSize?: number;
}

export interface NativeTestRunResult {
  retval: number;
  /** Average ns per run as reported by the kernel. */
  duration: number;
  dataOut: Buffer;
  ctxOut?: Buffer;
}

export interface NativeConstants {
  XDP_FLAGS_UPDATE_IF_NOEXIST: number;
  XDP_FLAGS_SKB_MODE: number;
  XDP_FLAGS_DRV_MODE: number;
  XDP_FLAGS_HW_MODE: number;
  XDP_FLAGS_REPLACE: number;
  BPF_ANY: number;
  BPF_NOEXIST: number;
  BPF_EXIST: number;
  BPF_F_LOCK: number;
  BPF_F_TEST_RUN_ON_CPU: number;
  BPF_F_TEST_XDP_LIVE_FRAMES: number;
  XDP_ABORTED: number;
  XDP_DROP: number;
  XDP_PASS: number;
  XDP_TX: number;
  XDP_REDIRECT: number;
}

export interface NativeAddon {
  // objects (handles are small integers, valid until objectClose)
  objectOpen(path: string, opts?: { pinRoot?: string; name?: string; verifierStats?: boolean }): number;
  objectClose(handle: number): void;
  objectMaps(handle: number): NativeMapDesc[];
  objectPrograms(handle: number): NativeProgDesc[];
  objectGlobals(handle: number): NativeGlobalDesc[];
  objectSetMaxEntries(handle: number, mapName: string, maxEntries: number): void;
  objectSetGlobal(handle: number, name: string, value: Buffer): void;
  objectSetSectionData(handle: number, section: string, data: Buffer): void;
  objectReuseMap(handle: number, mapName: string, fd: number): void;
  objectLoad(handle: number): Promise<void>;
  // fds
  objPin(fd: number, path: string): void;
  objGet(path: string): number;
  close(fd: number): void;
  mapInfo(fd: number): NativeMapInfo;
  progInfo(fd: number): NativeProgInfo;
  mapFdById(id: number): number;
  progFdById(id: number): number;
  ifNameToIndex(name: string): number;
  // maps
  mapLookup(fd: number, key: Buffer, valueOut: Buffer, flags?: number): boolean;
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags?: number): void;
  mapDelete(fd: number, key: Buffer): boolean;
  mapGetNextKey(fd: number, key: Buffer | null, nextKeyOut: Buffer): boolean;
  mapLookupBatch(
    fd: number,
    inBatch: Buffer | null,
    outBatch: Buffer,
    keysOut: Buffer,
    valuesOut: Buffer,
    count: number,
  ): { count: number; done: boolean };
  /**
   * For each of `count` keys (packed in `keys`), the first map of `fds` (one key size, none
   * per-CPU) that holds it: foundOut[i] = its position in `fds` + 1, or 0; its value at
   * valuesOut[i * stride], stride the largest value size of the maps. Returns the keys found.
   */
  mapLookupFirst(fds: readonly number[], keys: Buffer, count: number, valuesOut: Buffer, foundOut: Buffer): number;
  mapUpdateBatch(fd: number, keys: Buffer, values: Buffer, count: number, elemFlags?: number): number;
  mapUpdateBatchAsync(fd: number, keys: Buffer, values: Buffer, count: number, elemFlags?: number): Promise<number>;
  mapDeleteBatch(fd: number, keys: Buffer, count: number): number;
  /** Bytes of one value as user space sees it (per-CPU: round_up(value_size, 8) * possible CPUs). */
  mapValueSize(fd: number): number;
  numPossibleCpus(): number;
  // xdp
  xdpAttach(ifindex: number, progFd: number, flags: number, expectedFd?: number): void;
  xdpDetach(ifindex: number, flags: number, expectedFd?: number): void;
  xdpQuery(ifindex: number, flags?: number): NativeXdpQuery;
  // test run
  progTestRun(fd: number, opts: NativeTestRunOptions): NativeTestRunResult;
  progTestRunAsync(fd: number, opts: NativeTestRunOptions): Promise<NativeTestRunResult>;
  /** BPF_ENABLE_STATS(BPF_STATS_RUN_TIME): run_time_ns/run_cnt are counted while the returned fd is open (close it with close()). */
  enableRunTimeStats(): number;
  constants: NativeConstants;
  // BPF ring buffer reader (native/ringbuf.cc): the handle is an opaque external, freed by ringbufClose or GC
  ringbufOpen(mapFd: number): object;
  ringbufRead(handle: object, maxBytes: number): Buffer;
  ringbufClose(handle: object): void;
  // ethtool (native/ethtool.cc): the driver's statistics, ETHTOOL_GSTATS
  ethtoolStats(ifname: string): { driver: string; names: string[]; values: bigint[] };
  // systemd notify (native/notify.cc): Node's dgram has no AF_UNIX
  unixDatagramSend(path: string, message: Buffer): number;
  // VRRP raw sockets (native/sockets.cc)
  VrrpSocket: NativeVrrpSocketCtor;
  sendFrame(ifindex: number, frame: Buffer): number;
  // AF_PACKET TX ring (native/packet_tx.cc): the benchmarks' packet generator
  PacketTx: NativePacketTxCtor;
}

// ---- VRRP raw sockets (native/sockets.cc) -----------------------------------------------------

export interface NativeVrrpSocket {
  send(data: Buffer, dst: string, src?: string): number;
  close(): void;
  readonly ifindex: number;
  readonly queueDrops: number;
}

export interface NativeVrrpSocketCtor {
  new (opts: {
    family: number;
    ifname: string;
    multicast: boolean;
    onPacket: (data: Buffer, info: { src: string; dst?: string; ttl?: number }) => void;
  }): NativeVrrpSocket;
}

// ---- AF_PACKET TX ring (native/packet_tx.cc) --------------------------------------------------

export interface NativePacketTx {
  setFrames(frames: Buffer, frameLen: number): void;
  send(count: number, batch: number): Promise<{ sent: number; seconds: number }>;
  close(): void;
  readonly ringFrames: number;
}

export type NativePacketTxCtor = new (o: {
  ifindex: number;
  frames: Buffer;
  frameLen: number;
  ringFrames?: number;
  qdiscBypass?: boolean;
}) => NativePacketTx;

let cached: NativeAddon | undefined;

/** The addon's exports, loaded once; throws XD_ERR_NATIVE_MISSING with the fix. */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const root = packageRoot();
  try {
    const load = require('node-gyp-build') as (dir: string) => NativeAddon;
    cached = load(root);
  } catch (err) {
    const inner = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new XdError(
      'XD_ERR_NATIVE_MISSING',
      `load native addon from ${root}: ${inner}; fix: run npm run build:native (needs libbpf-dev, a C++ compiler), or install a package with prebuilds/`,
      { cause: err },
    );
  }
  return cached;
}
