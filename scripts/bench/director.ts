// The BPF programs the benchmarks load, through src/bpf: the xdirector
// program with one service configured in its maps, the calibration programs
// (xdp_pass, xdp_tx_noop), the receive-side counter (xdp_count) and the
// live-frames generator (xdp_gen). Each loader returns a handle that owns its
// fds and its pin (bpffs path, for `ip link set … xdp pinned` inside a
// namespace) and removes both on close().
import * as fs from 'node:fs';
import * as path from 'node:path';
import { raw, u32, u64 } from '../../src/bpf/codec';
import { BpfObject } from '../../src/bpf/object';
import { getNative, packageRoot } from '../../src/bpf/native';
import { liveFramesFlag, testRunAsync } from '../../src/bpf/testrun';
import type { BpfMap } from '../../src/bpf/map';
import type { NativePacketTx } from '../../src/addon';
import { openPinnedProgram } from '../../src/bpf/object';
import { openPinnedXdMap } from '../../src/bpf/maps';
import { XdReason } from '../../src/bpf/layouts.generated';
import type { Logger } from '../../src/log';
import { addressFamily, parseMac } from '../../src/net/inet';
import { backendKey } from '../../src/net/inet';
import { XdpDataplane, instancePinDir } from '../../src/dataplane/xdp/dataplane';
import type { DesiredState } from '../../src/state/types';
import { execFileSync } from 'node:child_process';
import { DEFAULT_EMBRYONIC_TABLE_SIZE, DEFAULT_TAKEOVER_TABLE_SIZE } from '../../src/defaults';
import { ToolError, toolWrap } from '../errors';

/** Path of a compiled program: the product's dist/bpf/xdirector.bpf.o, a tool's dist/bpf/tools/<name>.bpf.o. */
export function objectPath(name: string): string {
  return name === 'xdirector'
    ? path.join(packageRoot(), 'dist', 'bpf', `${name}.bpf.o`)
    : path.join(packageRoot(), 'dist', 'bpf', 'tools', `${name}.bpf.o`);
}

export interface PinnedProg {
  /** Program fd (valid until close). */
  fd: number;
  /** bpffs path of the pinned program. */
  pinPath: string;
  close(): Promise<void>;
}

function unpin(p: string): void {
  try {
    fs.unlinkSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

async function loadPinned(
  objName: string,
  pinDir: string,
  pinName: string,
  globals?: Record<string, number>,
): Promise<{ obj: BpfObject; prog: PinnedProg }> {
  const obj = await BpfObject.load(objectPath(objName), { globals });
  const pinPath = path.join(pinDir, pinName);
  try {
    const ref = obj.program();
    obj.pinProgram(ref.name, pinPath);
    return {
      obj,
      prog: {
        fd: ref.fd,
        pinPath,
        close: async () => {
          unpin(pinPath);
          obj.close();
        },
      },
    };
  } catch (err) {
    obj.close();
    throw err;
  }
}

// ---- xdp_count: per-CPU receive counter ----

/** Must match struct xc_stats in bpf/xdp_count.bpf.c (two __u64). */
const XC_STATS_SIZE = 16;
/** Map and verdict names of bpf/xdp_count.bpf.c. */
const COUNT_MAP = 'count_stats';

export interface CounterProg extends PinnedProg {
  /** Frames and bytes counted so far (all CPUs). */
  read(): { packets: bigint; bytes: bigint };
}

export async function loadCounter(o: { pinDir: string; name: string; verdict: 'drop' | 'pass' }): Promise<CounterProg> {
  const c = getNative().constants;
  const { obj, prog } = await loadPinned('xdp_count', o.pinDir, `count-${o.name}`, {
    verdict: o.verdict === 'drop' ? c.XDP_DROP : c.XDP_PASS,
  });
  const map: BpfMap<number, Buffer> = obj.map(COUNT_MAP, u32, raw(XC_STATS_SIZE));
  return {
    ...prog,
    read() {
      const per = map.lookupPerCpu(0) ?? [];
      let packets = 0n;
      let bytes = 0n;
      for (const v of per) {
        packets += u64.decode(v, 0);
        bytes += u64.decode(v, 8);
      }
      return { packets, bytes };
    },
  };
}

// ---- calibration programs (bpf/xdp_pass.bpf.c, bpf/xdp_tx_noop.bpf.c) ----

export async function loadPass(o: { pinDir: string }): Promise<PinnedProg> {
  return (await loadPinned('xdp_pass', o.pinDir, 'pass')).prog;
}

/** Map of bpf/xdp_tx_noop.bpf.c: slot 0 holds the destination MAC (6 bytes + 2 zero). */
const NOOP_MAC_MAP = 'xd_txmac';

/** The no-op XDP_TX ceiling: swap in `mac` as destination, XDP_TX. */
export async function loadNoopTx(o: { pinDir: string; mac: string }): Promise<PinnedProg> {
  const { obj, prog } = await loadPinned('xdp_tx_noop', o.pinDir, 'tx-noop');
  try {
    const v = Buffer.alloc(8);
    parseMac(o.mac).copy(v, 0);
    obj.map(NOOP_MAC_MAP, u32, raw(8)).update(0, v);
  } catch (err) {
    await prog.close();
    throw err;
  }
  return prog;
}

// ---- xdp_gen: live-frames generator ----

/** bpf/xdp_gen.bpf.c: template map, per-CPU state map and their sizes. */
const GEN_TMPL_MAP = 'gen_tmpl';
const GEN_STATE_MAP = 'gen_state';
const GEN_TMPL_MAX = 128;
const GEN_STATE_SIZE = 16;

export interface Generator {
  /** Replace the frame (same length). */
  setTemplate(frame: Buffer): void;
  /** Transmit `packets` frames out of the ifindex (BPF_PROG_RUN live frames). */
  run(packets: number, batch: number): Promise<void>;
  /** Runs that could not build a frame so far. */
  aborted(): number;
  close(): void;
}

export interface GeneratorOptions {
  frame: Buffer;
  sportOff: number;
  csumOff: number;
  /** Distinct flows: flow i has source port basePort + i % ports and source-address word + ⌊i / ports⌋. */
  flows: number;
  basePort: number;
  /** Source ports per source address (default: flows, i.e. only the port varies). */
  ports?: number;
  /** Offset of the source address's low 16-bit word (needed when flows > ports). */
  saddrOff?: number;
  /** Offset of the IPv4 header checksum (IPv4 frames whose source address varies). */
  ipCsumOff?: number;
  ifindex: number;
  /** AF_PACKET generator: the flow it sends first (default 0), then on in order, wrapping. */
  firstFlow?: number;
  /** AF_PACKET generator: send a SYN flood with established flows in it instead (buildFloodFrames); `frame` is the SYN. */
  flood?: FloodSpec;
}

/**
 * A spoofed-SYN flood with established flows inside it (buildFloodFrames): `every`-th frame is an
 * established ACK (flow j of 0..established-1, made as buildFlowFrames makes flows from `ack`), the
 * others SYNs (the generator's `frame`) each from its own random source address in
 * 198.18.0.0/15 (RFC 2544's benchmarking range) and random source port, from a seeded generator.
 */
export interface FloodSpec {
  /** The established flows' ACK: same length and offsets as the SYN. */
  ack: Buffer;
  /** Established flows in the stream (flow i as in buildFlowFrames: port basePort + i % ports, then the address word). */
  established: number;
  /** One frame in `every` is established (2 or more); the stream's length is a multiple of it. */
  every: number;
  /** Distinct spoofed SYNs at least (rounded up to whole periods of `every`). */
  syns: number;
  /** Seed of the random sources (the same seed, the same flood). */
  seed: number;
}

/** The shape of a flood stream: frames in all, and of those SYNs and established ACKs. */
export function floodShape(f: Pick<FloodSpec, 'every' | 'syns'>): {
  frames: number;
  syns: number;
  established: number;
} {
  const periods = Math.ceil(f.syns / (f.every - 1));
  return { frames: periods * f.every, syns: periods * (f.every - 1), established: periods };
}

/** Why a flood spec cannot be built, or null. */
export function floodProblem(f: FloodSpec, syn: Buffer): string | null {
  if (!Number.isInteger(f.every) || f.every < 2) return `flood: every must be an integer of 2 or more, got ${f.every}`;
  if (!Number.isInteger(f.syns) || f.syns < 1) return `flood: syns must be a positive integer, got ${f.syns}`;
  if (!Number.isInteger(f.established) || f.established < 1)
    return `flood: established must be a positive integer, got ${f.established}`;
  if (f.ack.length !== syn.length)
    return `flood: the ACK frame has ${f.ack.length} bytes and the SYN ${syn.length}: they must match`;
  return null;
}

/**
 * The frames of a flood stream back to back (FloodSpec): frame j is established flow
 * (j / every) mod established when j % every is 0, else a SYN from a random source. Checksums
 * (IPv4 header and TCP, whose pseudo-header holds the address) fixed incrementally (RFC 1624).
 * IPv4 only: the source address is rewritten whole at saddrOff - 2.
 */
export function buildFloodFrames(
  syn: Buffer,
  o: Pick<GeneratorOptions, 'sportOff' | 'csumOff' | 'basePort' | 'saddrOff' | 'ipCsumOff'> & { flood: FloodSpec },
): Buffer {
  const f = o.flood;
  const why = floodProblem(f, syn);
  if (why) throw new ToolError('XD_ERR_BENCH', `generator: ${why}`);
  if (o.saddrOff === undefined || o.ipCsumOff === undefined)
    throw new ToolError('XD_ERR_BENCH', 'generator: a flood needs an IPv4 frame (saddrOff and ipCsumOff)');
  const len = syn.length;
  const shape = floodShape(f);
  const ports = Math.min(f.established, 65536 - o.basePort);
  const est = buildFlowFrames(f.ack, { ...o, flows: f.established, ports });
  const out = Buffer.allocUnsafe(len * shape.frames);
  const fold = (s: number): number => {
    s = (s & 0xffff) + (s >>> 16);
    return (s & 0xffff) + (s >>> 16);
  };
  const replace = (check: number, old: number, now: number): number =>
    ~fold((~check & 0xffff) + (~old & 0xffff) + now) & 0xffff;
  const hiOff = o.saddrOff - 2;
  const hi0 = syn.readUInt16BE(hiOff);
  const lo0 = syn.readUInt16BE(o.saddrOff);
  const port0 = syn.readUInt16BE(o.sportOff);
  const csum0 = syn.readUInt16BE(o.csumOff);
  const ipc0 = syn.readUInt16BE(o.ipCsumOff);
  // xorshift32: cheap, seeded, and the same flood for the same seed.
  let x = f.seed >>> 0 || 0x9e3779b9;
  const next = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  for (let j = 0; j < shape.frames; j++) {
    const at = j * len;
    if (j % f.every === 0) {
      const i = (j / f.every) % f.established;
      est.copy(out, at, i * len, (i + 1) * len);
      continue;
    }
    syn.copy(out, at);
    const r = next();
    const hi = 0xc612 | ((r >>> 31) & 1); // 198.18 or 198.19
    const lo = r & 0xffff;
    const port = 1024 + ((r >>> 16) & 0x7fff); // 1024..33791
    out.writeUInt16BE(hi, at + hiOff);
    out.writeUInt16BE(lo, at + o.saddrOff);
    out.writeUInt16BE(port, at + o.sportOff);
    out.writeUInt16BE(replace(replace(ipc0, hi0, hi), lo0, lo), at + o.ipCsumOff);
    out.writeUInt16BE(replace(replace(replace(csum0, hi0, hi), lo0, lo), port0, port), at + o.csumOff);
  }
  return out;
}

/** Why the generator cannot make `flows` distinct flows with these settings, or null. */
export function generatorProblem(
  o: Pick<GeneratorOptions, 'flows' | 'basePort' | 'ports' | 'saddrOff'>,
): string | null {
  const ports = o.ports ?? o.flows;
  if (!Number.isInteger(o.flows) || o.flows < 1) return `flows must be a positive integer, got ${o.flows}`;
  if (!Number.isInteger(ports) || ports < 1 || ports > o.flows)
    return `ports per address must be 1..flows (${o.flows}), got ${ports}`;
  if (o.basePort < 1 || o.basePort + ports > 65536) return `${ports} ports from ${o.basePort} leave 1..65535`;
  if (ports < o.flows && !o.saddrOff)
    return `${o.flows} flows over ${ports} ports need a varying source address (saddrOff)`;
  if (Math.ceil(o.flows / ports) > 65536)
    return `${o.flows} flows over ${ports} ports need more than the 65536 values of a 16-bit address word`;
  return null;
}

/** How the generator sends: BPF_PROG_RUN live frames (preferred), or an AF_PACKET TX ring where the kernel refuses those. */
export type GeneratorKind = 'live-frames' | 'af-packet';

/** Why this kernel refuses live frames, found by trying once: errno, code and the kernel's message. */
export interface LiveFramesRefusal {
  errno: number;
  code: string;
  message: string;
}

/** Errors that mean "this kernel will not do live frames" (refused by policy, or a kernel without the flag); any other is a failure. */
const LIVE_FRAMES_REFUSED = new Set(['EPERM', 'EOPNOTSUPP', 'ENOTSUPP']);

let liveFramesProbe: Promise<LiveFramesRefusal | null> | undefined;

/**
 * Whether BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES works here: one live-frames run of a counting
 * XDP_DROP program (nothing leaves the host), once per process, cached. Null if it ran (and the
 * program counted the frame); the refusal if the kernel answered EPERM/EOPNOTSUPP (this kernel:
 * EPERM as root; DESIGN "Kernel and lab facts"). Any other error is thrown, not cached as a refusal.
 */
export function liveFramesRefusal(): Promise<LiveFramesRefusal | null> {
  liveFramesProbe ??= (async () => {
    // xdh<pid>…: the bench's per-run prefix, so cleanup.ts removes it if this process dies meanwhile.
    const dir = fs.mkdtempSync(path.join('/sys/fs/bpf', `xdh${process.pid}lf-`));
    let c: CounterProg | undefined;
    try {
      c = await loadCounter({ pinDir: dir, name: 'probe', verdict: 'drop' });
      try {
        await testRunAsync(c.fd, { data: Buffer.alloc(64), repeat: 1, flags: liveFramesFlag(), batchSize: 1 });
      } catch (err) {
        const d = (err as { detail?: { errno?: number; code?: string } }).detail;
        if (d?.code && LIVE_FRAMES_REFUSED.has(d.code))
          return { errno: d.errno ?? 0, code: d.code, message: err instanceof Error ? err.message : String(err) };
        throw err;
      }
      const n = c.read().packets;
      if (n !== 1n) throw new ToolError('XD_ERR_BENCH', `live-frames probe: the program ran ${n} times for 1 frame`);
      return null;
    } finally {
      await c?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  })();
  // A failed probe (not a refusal) is not cached: the next caller tries again.
  liveFramesProbe.catch(() => (liveFramesProbe = undefined));
  return liveFramesProbe;
}

/** The generator this kernel allows: live frames where it runs them, else the AF_PACKET ring; with the refusal that decided it. */
export async function pickGenerator(): Promise<{ kind: GeneratorKind; refusal?: LiveFramesRefusal }> {
  const refusal = await liveFramesRefusal();
  return refusal ? { kind: 'af-packet', refusal } : { kind: 'live-frames' };
}

/**
 * The frames of flows 0..flows-1 back to back, as xdp_gen makes them (bpf/tools/xdp_gen.bpf.c): flow i
 * has source port basePort + i % ports and, past the ports, the source-address word at saddrOff plus
 * ⌊i / ports⌋; the L4 checksum and the IPv4 header checksum fixed incrementally (RFC 1624).
 */
export function buildFlowFrames(
  frame: Buffer,
  o: Pick<GeneratorOptions, 'sportOff' | 'csumOff' | 'flows' | 'basePort' | 'ports' | 'saddrOff' | 'ipCsumOff'>,
): Buffer {
  const len = frame.length;
  const ports = o.ports ?? o.flows;
  const out = Buffer.allocUnsafe(len * o.flows);
  const fold = (s: number): number => {
    s = (s & 0xffff) + (s >>> 16);
    return (s & 0xffff) + (s >>> 16);
  };
  // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), 16-bit values as read from the wire.
  const replace = (check: number, old: number, now: number): number =>
    ~fold((~check & 0xffff) + (~old & 0xffff) + now) & 0xffff;
  const port0 = frame.readUInt16BE(o.sportOff);
  const csum0 = frame.readUInt16BE(o.csumOff);
  const varyAddr = ports < o.flows && o.saddrOff !== undefined;
  const addr0 = varyAddr ? frame.readUInt16BE(o.saddrOff!) : 0;
  const ipc0 = varyAddr && o.ipCsumOff ? frame.readUInt16BE(o.ipCsumOff) : 0;
  for (let i = 0; i < o.flows; i++) {
    const at = i * len;
    frame.copy(out, at);
    const port = (o.basePort + (i % ports)) & 0xffff;
    let csum = replace(csum0, port0, port);
    out.writeUInt16BE(port, at + o.sportOff);
    if (varyAddr) {
      const addr = (addr0 + Math.floor(i / ports)) & 0xffff;
      out.writeUInt16BE(addr, at + o.saddrOff!);
      csum = replace(csum, addr0, addr);
      if (o.ipCsumOff) out.writeUInt16BE(replace(ipc0, addr0, addr), at + o.ipCsumOff);
    }
    out.writeUInt16BE(csum, at + o.csumOff);
  }
  return out;
}

/**
 * The generator on an AF_PACKET TX ring (TPACKET_V2, PACKET_QDISC_BYPASS) out of `ifindex` of this
 * process's network namespace: the frames of every flow built here once per template, the send loop
 * in the addon. Each frame goes through the kernel's transmit path as an skb (veth_xmit), where a
 * live frame is handed to ndo_xdp_xmit: slower per packet, the same frames and flows.
 */
export function openPacketGenerator(o: GeneratorOptions): Generator {
  const why = generatorProblem(o);
  if (why) throw new ToolError('XD_ERR_BENCH', `generator: ${why}`);
  const first = o.firstFlow ?? 0;
  if (!Number.isInteger(first) || first < 0 || first >= o.flows)
    throw new ToolError('XD_ERR_BENCH', `generator: firstFlow must be 0..${o.flows - 1}, got ${first}`);
  // The frames from flow `first` on, wrapping: the ring sends them in this order.
  const frames = (f: Buffer): Buffer => {
    const all = o.flood ? buildFloodFrames(f, { ...o, flood: o.flood }) : buildFlowFrames(f, o);
    return first === 0 ? all : Buffer.concat([all.subarray(first * f.length), all.subarray(0, first * f.length)]);
  };
  const Ctor = getNative().PacketTx;
  let frame = o.frame;
  let tx: NativePacketTx;
  try {
    tx = new Ctor({ ifindex: o.ifindex, frames: frames(frame), frameLen: frame.length, qdiscBypass: true });
  } catch (err) {
    throw toolWrap('XD_ERR_BENCH', `generator: AF_PACKET TX ring on ifindex ${o.ifindex}`, err);
  }
  return {
    setTemplate(f) {
      if (f.length !== o.frame.length)
        throw new ToolError(
          'XD_ERR_BENCH',
          `generator template of ${f.length} bytes: the generator was opened for ${o.frame.length}`,
        );
      if (f.equals(frame)) return;
      if (o.flood)
        throw new ToolError('XD_ERR_BENCH', 'generator: a flood stream keeps its frames (no template change)');
      tx.setFrames(frames(f), f.length);
      frame = f;
    },
    async run(packets, batch) {
      try {
        await tx.send(packets, batch);
      } catch (err) {
        throw toolWrap(
          'XD_ERR_BENCH',
          `generator: AF_PACKET TX ring (${packets} packets, batch ${batch}, ifindex ${o.ifindex})`,
          err,
        );
      }
    },
    // Every frame is built whole in user space: none can fail to build.
    aborted: () => 0,
    close() {
      tx.close();
    },
  };
}

export async function openGenerator(o: GeneratorOptions): Promise<Generator> {
  const len = o.frame.length;
  if (len % 8 !== 0 || len < 64 || len > GEN_TMPL_MAX) {
    throw new ToolError(
      'XD_ERR_BENCH',
      `generator frame of ${len} bytes: must be a multiple of 8 from 64 to ${GEN_TMPL_MAX} (the program restores whole 8-byte chunks)`,
    );
  }
  const why = generatorProblem(o);
  if (why) throw new ToolError('XD_ERR_BENCH', `generator: ${why}`);
  const ports = o.ports ?? o.flows;
  const obj = await BpfObject.load(objectPath('xdp_gen'), {
    globals: {
      tmpl_chunks: len / 8,
      sport_off: o.sportOff,
      csum_off: o.csumOff,
      nflows: o.flows,
      nports: ports,
      base_port: o.basePort,
      saddr_off: ports < o.flows ? o.saddrOff! : 0,
      ipcsum_off: ports < o.flows ? (o.ipCsumOff ?? 0) : 0,
    },
  });
  const tmpl = obj.map(GEN_TMPL_MAP, u32, raw(GEN_TMPL_MAX));
  const state = obj.map(GEN_STATE_MAP, u32, raw(GEN_STATE_SIZE));
  const fd = obj.program().fd;
  let frame = o.frame;
  const setTemplate = (f: Buffer): void => {
    if (f.length !== len)
      throw new ToolError('XD_ERR_BENCH', `generator template of ${f.length} bytes: the program was loaded for ${len}`);
    const v = Buffer.alloc(GEN_TMPL_MAX);
    f.copy(v);
    tmpl.update(0, v);
    frame = f;
  };
  setTemplate(o.frame);
  // struct xdp_md as ctx_in: only ingress_ifindex (offset 12) may be set; data/data_end describe the frame.
  const ctx = Buffer.alloc(24);
  ctx.writeUInt32LE(len, 4); // data_end
  ctx.writeUInt32LE(o.ifindex, 12); // ingress_ifindex
  return {
    setTemplate,
    async run(packets, batch) {
      try {
        await testRunAsync(fd, { data: frame, ctx, repeat: packets, flags: liveFramesFlag(), batchSize: batch });
      } catch (err) {
        throw toolWrap(
          'XD_ERR_BENCH',
          `generator: BPF_PROG_RUN live frames (${packets} packets, batch ${batch}, ifindex ${o.ifindex})`,
          err,
        );
      }
    },
    aborted() {
      const v = state.lookup(0);
      return v ? Number(u64.decode(v, 8)) : 0;
    },
    close() {
      obj.close();
    },
  };
}

// ---- xdirector: the director itself, one service per setService() ----
// Layouts, map names and enums come from the generated layouts
// (src/bpf/layouts.generated.ts, from the object's BTF) via src/bpf/maps.ts.

export interface BenchBackend {
  address: string;
  port: number;
  mac: string;
}

export interface BenchService {
  vip: string;
  port: number;
  proto: 'tcp' | 'udp';
  backends: BenchBackend[];
  /** Default DR. Tunnel: every backend is reached through `encap` from `source` (the director's address); its mac is the next hop's. */
  tunnel?: { encap: 'ipip' | 'gue'; source: string; guePort?: number };
  /** NAT: VIP:port -> each backend's own port (one-armed: XDP_TX). */
  nat?: boolean;
}

/** enum xd_reason names by value, from the generated enum (XD_R_TX_FLOW_HIT -> tx_flow_hit). */
export const XD_REASONS: readonly string[] = (() => {
  const out: string[] = [];
  for (const [name, v] of Object.entries(XdReason))
    if (name !== 'XD_R_MAX') out[v] = name.replace(/^XD_R_/, '').toLowerCase();
  return out;
})();

export interface BenchDirector extends PinnedProg {
  /** Add a service with its backends (maglev): the whole desired state so far goes through XdpDataplane.apply(). */
  setService(s: BenchService): Promise<void>;
  /** Packets counted per verdict reason so far (all CPUs), by reason name, as the product reads them. */
  reasons(): Record<string, number>;
  /** Entries in the flow tables now (IPv4 + IPv6), counted by the product's status() walk. */
  flowEntries(): Promise<number>;
  /**
   * NAT out: the reverse entry of the IPv4 client:cport's NAT flow marked routed, now, out of the
   * test run's ingress (this namespace's loopback, its ifindex looked up, XDP_TX) with `mac` on both sides, as the out path leaves it after
   * its bpf_fib_lookup(): a test run has no route to the client, and a routed flow's replies reuse
   * that route for XD_NAT_ROUTE_NS (1 s; call again before each round). Returns the backend address
   * the replies come from, or undefined when the flow has no reverse entry.
   */
  natRouted(client: string, cport: number, mac: string): string | undefined;
}

export interface DirectorLimits {
  maxServices: number;
  maxBackends: number;
  ringMax: number;
  flows: number;
  /** Flows per second (all CPUs) that may enter the flow table (0: no limit; the bench measures the table, not the guard). */
  newFlowRate: number;
  /**
   * A SYN reusing a tracked 5-tuple reschedules it only after this long idle (the product's
   * default is 2 s): 0 makes every such SYN reschedule in place, so a repeated test-run SYN is a
   * new flow every time (the bench measures the new-flow path, not the flood protection).
   */
  synReuseIdleMs: number;
  /** Embryonic and takeover/probation table sizes (default: `flows`, so no warm-up flow is pushed out). */
  embryonic?: number;
  takeover?: number;
}

/** Small maps: the benchmarks configure at most a few services; room for 1M flows (2^20 entries, above the 1,000,000 flows of the largest cell). */
export const BENCH_DIRECTOR_LIMITS: DirectorLimits = {
  maxServices: 8,
  maxBackends: 64,
  ringMax: 65537,
  flows: 1 << 20,
  newFlowRate: 0,
  synReuseIdleMs: 0,
};

/**
 * How long after its handshake a flow must send again to leave the probation table for the flow
 * table (XD_PROVE_NS in bpf/flow.h), with a margin: warm-ups wait this long before the
 * pass that proves their flows.
 */
/**
 * The SYN-flood director: the bench's flow table, but the product's default embryonic and
 * takeover/probation tables (sized for floods), which a spoofed SYN enters and cycles through.
 */
export const FLOOD_DIRECTOR_LIMITS: DirectorLimits = {
  ...BENCH_DIRECTOR_LIMITS,
  embryonic: DEFAULT_EMBRYONIC_TABLE_SIZE,
  takeover: DEFAULT_TAKEOVER_TABLE_SIZE,
};

export const PROVE_WAIT_MS = 1050;

let placeholderSeq = 0;

/**
 * Name of the n-th placeholder veth of process `pid`: xdb<pid>-<n>a (its peer ends in b). The pid
 * is whole so that cleanup.ts can tell a dead run's leftover from a live one's; n stays below
 * 1000 so the name fits IFNAMSIZ (15 characters with a 7-digit pid).
 */
export function placeholderName(pid: number, n: number): string {
  return `xdb${pid}-${n % 1000}a`;
}

function ipLink(args: string[]): void {
  try {
    execFileSync('ip', ['link', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw toolWrap('XD_ERR_BENCH', `ip link ${args.join(' ')}`, err);
  }
}

/**
 * The product's director: XdpDataplane.open() loads, sizes and pins the program and its maps
 * exactly as `xdirector run` does, and every setService() goes through apply() with the desired
 * state so far. open() attaches the program (generic mode) to a placeholder veth in this
 * namespace whose MAC is `mac`, the address the bench's frames are sent to (the program forwards
 * only frames for its interface's MAC); the benchmarks then attach the same pinned program to the
 * director's eth0 inside their namespaces.
 */
export async function loadDirector(o: {
  pinDir: string;
  log: Logger;
  mac: string;
  limits?: DirectorLimits;
  objectPath?: string;
  instance?: string;
  syncExport?: boolean;
}): Promise<BenchDirector> {
  const lim = o.limits ?? BENCH_DIRECTOR_LIMITS;
  const ifname = placeholderName(process.pid, placeholderSeq++);
  const peer = `${ifname.slice(0, -1)}b`;
  ipLink(['add', ifname, 'address', o.mac, 'type', 'veth', 'peer', 'name', peer]);
  let dp: XdpDataplane | undefined;
  let prog: ReturnType<typeof openPinnedProgram> | undefined;
  try {
    // Silent: without IPv6 on it the kernel sends nothing through the pair (router solicitations,
    // MLD reports, DAD), which the program would count beside the test-run packets and the
    // test-run section's exact reason counts would fail on.
    for (const i of [ifname, peer]) fs.writeFileSync(`/proc/sys/net/ipv6/conf/${i}/disable_ipv6`, '1');
    ipLink(['set', ifname, 'up']);
    ipLink(['set', peer, 'up']);
    dp = await XdpDataplane.open({
      instance: o.instance ?? 'director',
      ifname,
      mode: 'generic',
      pinDir: o.pinDir,
      ringMax: lim.ringMax,
      objectPath: o.objectPath,
      syncExport: o.syncExport,
      maxServices: lim.maxServices,
      maxBackends: lim.maxBackends,
      flowTableSize: lim.flows,
      newFlowRate: lim.newFlowRate,
      // Every warm-up flow must get through the embryonic and probation tables to the flow table:
      // they are as large as the flow table here (the product sizes them for floods, not for this).
      embryonicTableSize: lim.embryonic ?? lim.flows,
      takeoverTableSize: lim.takeover ?? lim.flows,
      synReuseIdleMs: lim.synReuseIdleMs,
      log: o.log.child({ component: 'bench-director' }),
    });
    const pinPath = path.join(instancePinDir(o.pinDir, o.instance ?? 'director'), 'prog');
    prog = openPinnedProgram(pinPath);
    const state: DesiredState = { services: [] };
    const d = dp;
    const p = prog;
    return {
      fd: p.fd,
      pinPath,
      async setService(s) {
        const family = addressFamily(s.vip);
        if (family === undefined) throw new ToolError('XD_ERR_BENCH', `"${s.vip}" is not an IP address`);
        state.services.push({
          name: `bench${state.services.length}`,
          vip: s.vip,
          port: s.port,
          proto: s.proto,
          family,
          scheduler: 'maglev',
          ring: { kind: 'maglev', size: lim.ringMax },
          onEmpty: 'pass',
          backends: s.backends.map((b) => ({
            key: backendKey(b.address, b.port),
            name: `${b.address}:${b.port}`,
            address: b.address,
            port: b.port,
            family,
            weight: 1,
            state: 'active' as const,
            mac: b.mac,
            ...(s.tunnel
              ? {
                  forwarding: 'tunnel' as const,
                  tunnel: { encap: s.tunnel.encap, guePort: s.tunnel.guePort ?? 6080, source: s.tunnel.source },
                }
              : {}),
            ...(s.nat ? { forwarding: 'nat' as const } : {}),
          })),
        });
        await d.apply(state);
      },
      async flowEntries() {
        // The first status() waits for a walk; a later one returns the last count and, when that is
        // older than 2 s, starts a new walk: wait for it and ask again.
        await d.status();
        await d.flowCountsSettled();
        return (await d.status()).detail.flowCounts.entries;
      },
      reasons() {
        return Object.fromEntries(Object.entries(d.reasons()).filter(([, n]) => n > 0));
      },
      natRouted(client, cport, mac) {
        const m = openPinnedXdMap(instancePinDir(o.pinDir, o.instance ?? 'director'), 'nrev4');
        try {
          const c = Buffer.from(client.split('.').map(Number)).readUInt32BE(0);
          const k = m.keys().find((x) => x.daddr === c && x.dport === cport);
          const v = k && m.lookup(k);
          if (!k || !v) return undefined;
          // bpf_ktime_get_coarse_ns() lags CLOCK_MONOTONIC by up to a tick (10 ms at HZ=100): 100 ms back
          // stays in its past, and the route stays fresh for the 900 ms a round takes at most.
          const now = process.hrtime.bigint() - 100_000_000n;
          // last_seen_ns too: a client packet that takes the full path (a CPU without its cache slot)
          // rewrites an entry not refreshed for a second, and that one has no route yet.
          m.update(k, {
            ...v,
            // The test run's ingress: the loopback of the namespace the test run is made from (this one).
            ifindex: getNative().ifNameToIndex('lo'),
            route_ns: now,
            last_seen_ns: now,
            self_mac: parseMac(mac),
            peer_mac: parseMac(mac),
          });
          return [24, 16, 8, 0].map((s) => (k.saddr >>> s) & 255).join('.');
        } finally {
          m.close();
        }
      },
      close: async () => {
        p.close();
        await d.close({ keepState: false });
        try {
          ipLink(['del', ifname]);
        } catch {
          /* already gone */
        }
      },
    };
  } catch (err) {
    prog?.close();
    if (dp) await dp.close({ keepState: false }).catch(() => undefined);
    try {
      ipLink(['del', ifname]);
    } catch {
      /* already gone */
    }
    throw err;
  }
}
