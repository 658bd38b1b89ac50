// The BPF programs the benchmarks load, through src/bpf: the xdirector
// program with one service configured in its maps, the calibration programs
// (xdp_pass, xdp_tx_noop), the receive-side counter (xdp_count) and the
// live-frames generator (xdp_gen). Each loader returns a handle that owns its
// fds and its pin (bpffs path, for `ip link set … xdp pinned` inside a
// namespace) and removes both on close().
import * as fs from 'node:fs';
import * as path from 'node:path';
import { XdError, wrap } from '../errors';
import { raw, u32, u64 } from '../bpf/codec';
import { BpfObject } from '../bpf/object';
import { getNative, packageRoot } from '../bpf/native';
import { liveFramesFlag, testRunAsync } from '../bpf/testrun';
import type { BpfMap } from '../bpf/map';
import { isIPv4, isIPv6 } from 'node:net';
import { buildMaglev, type MaglevBackend } from '../maglev';
import type { Logger } from '../log';
import { ipv4Bytes, ipv6Bytes, parseMac } from './packet';

/** Path of a compiled program: dist/bpf/<name>.bpf.o under the package root. */
export function objectPath(name: string): string {
  return path.join(packageRoot(), 'dist', 'bpf', `${name}.bpf.o`);
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

async function loadPinned(objName: string, pinDir: string, pinName: string, globals?: Record<string, number>): Promise<{ obj: BpfObject; prog: PinnedProg }> {
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
  const { obj, prog } = await loadPinned('xdp_count', o.pinDir, `count-${o.name}`, { verdict: o.verdict === 'drop' ? c.XDP_DROP : c.XDP_PASS });
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
  /** Runs that could not build a frame so far (all CPUs). */
  aborted(): number;
  close(): void;
}

export async function openGenerator(o: { frame: Buffer; sportOff: number; csumOff: number; flows: number; basePort: number; ifindex: number }): Promise<Generator> {
  const len = o.frame.length;
  if (len % 8 !== 0 || len < 64 || len > GEN_TMPL_MAX) {
    throw new XdError('XD_ERR_BENCH', `generator frame of ${len} bytes: must be a multiple of 8 from 64 to ${GEN_TMPL_MAX} (the program restores whole 8-byte chunks)`);
  }
  if (o.flows < 1 || o.basePort + o.flows > 65536) throw new XdError('XD_ERR_BENCH', `generator flows ${o.flows} from port ${o.basePort}: ports must stay within 1..65535`);
  const obj = await BpfObject.load(objectPath('xdp_gen'), {
    globals: { tmpl_chunks: len / 8, sport_off: o.sportOff, csum_off: o.csumOff, nflows: o.flows, base_port: o.basePort },
  });
  const tmpl = obj.map(GEN_TMPL_MAP, u32, raw(GEN_TMPL_MAX));
  const state = obj.map(GEN_STATE_MAP, u32, raw(GEN_STATE_SIZE));
  const fd = obj.program().fd;
  let frame = o.frame;
  const setTemplate = (f: Buffer): void => {
    if (f.length !== len) throw new XdError('XD_ERR_BENCH', `generator template of ${f.length} bytes: the program was loaded for ${len}`);
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
        throw wrap('XD_ERR_BENCH', `generator: BPF_PROG_RUN live frames (${packets} packets, batch ${batch}, ifindex ${o.ifindex})`, err);
      }
    },
    aborted() {
      return (state.lookupPerCpu(0) ?? []).reduce((s, v) => s + Number(u64.decode(v, 8)), 0);
    },
    close() {
      obj.close();
    },
  };
}

// ---- xdirector: the director itself, one service per setService() ----

/**
 * Map names and value layouts of bpf/xdirector.bpf.c used here. The layouts
 * follow bpf/include/xdirector.h; every encoder is checked against the key and
 * value sizes of the map the kernel really created, so a layout change fails
 * loudly here instead of writing garbage.
 */
const XD = {
  svc: 'xd_svc_v1',
  svcst: 'xd_svcst_v1',
  rr: 'xd_rr_v1',
  be: 'xd_be_v1',
  best: 'xd_best_v1',
  ring: 'xd_ring_v1',
  flow: 'xd_flow_v1',
  rsn: 'xd_rsnst_v1',
  svcKeySize: 20,
  svcSize: 16,
  beSize: 36,
  beFlagActive: 1,
  schedMaglev: 0,
} as const;

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
}

/** enum xd_reason of bpf/include/xdirector.h, by value. */
export const XD_REASONS = [
  'pass_non_ip',
  'pass_non_vip',
  'pass_malformed',
  'tx_new_flow',
  'tx_flow_hit',
  'tx_rehash',
  'tx_no_track',
  'tx_icmp',
  'no_backend_pass',
  'no_backend_drop',
  'drop_fragment',
  'pass_icmp',
  'aborted',
] as const;

export interface BenchDirector extends PinnedProg {
  /** Add a service with its backends and a full Maglev ring (generation 0 live). */
  setService(s: BenchService): Promise<void>;
  /** Packets counted per verdict reason so far (all CPUs), by reason name. */
  reasons(): Record<string, number>;
}

export interface DirectorLimits {
  maxServices: number;
  maxBackends: number;
  ringMax: number;
  flows: number;
}

/** Small maps: the benchmarks configure at most a few services. */
export const BENCH_DIRECTOR_LIMITS: DirectorLimits = { maxServices: 4, maxBackends: 64, ringMax: 65537, flows: 262144 };

function addrBytes(address: string): { family: 4 | 6; bytes: Buffer } {
  if (isIPv4(address)) return { family: 4, bytes: Buffer.concat([ipv4Bytes(address), Buffer.alloc(12)]) };
  if (isIPv6(address)) return { family: 6, bytes: ipv6Bytes(address) };
  throw new XdError('XD_ERR_BENCH', `"${address}" is not an IP address`);
}

export async function loadDirector(o: { pinDir: string; log: Logger; limits?: DirectorLimits }): Promise<BenchDirector> {
  const lim = o.limits ?? BENCH_DIRECTOR_LIMITS;
  const obj = await BpfObject.load(objectPath('xdirector'), {
    maxEntries: {
      [XD.svc]: lim.maxServices,
      [XD.svcst]: lim.maxServices,
      [XD.rr]: lim.maxServices,
      [XD.be]: lim.maxBackends,
      [XD.best]: lim.maxBackends,
      [XD.ring]: lim.maxServices * 2 * lim.ringMax,
      [XD.flow]: lim.flows,
    },
    globals: { ring_max: lim.ringMax },
  });
  const pinPath = path.join(o.pinDir, 'director');
  try {
    for (const [name, k, v] of [
      [XD.svc, XD.svcKeySize, XD.svcSize],
      [XD.be, 4, XD.beSize],
      [XD.ring, 4, 4],
    ] as const) {
      const d = obj.maps().find((m) => m.name === name);
      if (!d || d.keySize !== k || d.valueSize !== v) {
        throw new XdError('XD_ERR_LAYOUT_MISMATCH', `bench director: map ${name} has key/value size ${d ? `${d.keySize}/${d.valueSize}` : 'missing'}, this code writes ${k}/${v}: update src/bench/director.ts to bpf/include/xdirector.h`);
      }
    }
    const prog = obj.program();
    obj.pinProgram(prog.name, pinPath);
    const svcMap = obj.map(XD.svc, raw(XD.svcKeySize), raw(XD.svcSize));
    const beMap = obj.map(XD.be, u32, raw(XD.beSize));
    const ringMap = obj.map(XD.ring, u32, u32);
    const rsnMap = obj.map(XD.rsn, u32, raw(16));
    let nextService = 0;
    let nextBackend = 1;
    const log = o.log.child({ component: 'bench-director' });
    return {
      fd: prog.fd,
      pinPath,
      async setService(s) {
        const sid = nextService++;
        if (sid >= lim.maxServices) throw new XdError('XD_ERR_CAPACITY', `bench director: more than ${lim.maxServices} services`);
        const vip = addrBytes(s.vip);
        const members: MaglevBackend[] = [];
        for (const b of s.backends) {
          const idx = nextBackend++;
          if (idx >= lim.maxBackends) throw new XdError('XD_ERR_CAPACITY', `bench director: more than ${lim.maxBackends - 1} backends`);
          const a = addrBytes(b.address);
          const v = Buffer.alloc(XD.beSize);
          parseMac(b.mac).copy(v, 0);
          v[6] = a.family;
          v[7] = XD.beFlagActive;
          v.writeUInt32LE(1, 8); // generation
          v.writeUInt32LE(0, 12); // ifindex 0: XDP_TX out of the receiving interface
          v.writeUInt32LE(sid, 16); // owning service
          a.bytes.copy(v, 20);
          beMap.update(idx, v);
          members.push({ id: idx, key: `${b.address}:${b.port}`, weight: 1 });
        }
        const ring = buildMaglev(members, lim.ringMax);
        const base = sid * 2 * lim.ringMax; // generation 0
        await ringMap.updateBatchAsync(Array.from(ring, (id, i) => [base + i, id] as const));
        const key = Buffer.alloc(XD.svcKeySize);
        vip.bytes.copy(key, 0);
        key.writeUInt16BE(s.port, 16);
        key[18] = s.proto === 'tcp' ? 6 : 17;
        key[19] = vip.family;
        const val = Buffer.alloc(XD.svcSize);
        val.writeUInt32LE(sid, 0);
        val.writeUInt32LE(lim.ringMax, 4);
        val.writeUInt32LE(0, 8);
        val[12] = XD.schedMaglev;
        val[13] = 0; // active generation
        svcMap.update(key, val);
        log.debug({ service: `${s.proto}/${s.vip}:${s.port}`, id: sid, backends: members.length }, 'bench service configured');
      },
      reasons() {
        const out: Record<string, number> = {};
        XD_REASONS.forEach((name, i) => {
          const n = (rsnMap.lookupPerCpu(i) ?? []).reduce((a, v) => a + Number(u64.decode(v, 0)), 0);
          if (n > 0) out[name] = n;
        });
        return out;
      },
      close: async () => {
        unpin(pinPath);
        obj.close();
      },
    };
  } catch (err) {
    unpin(pinPath);
    obj.close();
    throw err;
  }
}
