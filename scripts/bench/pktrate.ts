// Section 2: packet rate through veth, measured on the receive side, on two
// paths (scenarios), in one run whose rounds cycle through every cell of both:
//
// dr-bridge (the full one-armed DR path; bridge and veth hops dominate):
//   gen ns ──veth── bridge ns (br0) ──veth── director ns ──(XDP_TX / forward)── br0 ── rN ns
//
// isolated (the director's own cost, without the bridge and veth hops that dominate dr-bridge):
//   gen ns eth0 ⇄ director ns eth0 (one veth pair); the director sends every
//   frame straight back to the generator, whose eth0 counts and drops it
//   (xdp_count). The director program's backends all carry the generator's
//   MAC (a tunnel service's next hop is the generator too); the kernel path
//   forwards back out of eth0 via the generator.
//
// The generator (xdp_gen on BPF_PROG_RUN live frames where the kernel allows them,
// else an AF_PACKET TX ring from the addon: director.ts pickGenerator(); in its own
// process(es) inside the client namespace, per flow count) sends TCP frames to VIP:3306 via the
// director's MAC over N distinct flows: the source port cycles, and past the port
// range the source address's low 16 bits too, so 1M flows are 1M 5-tuples.
// Each real server counts what reaches its eth0 with xdp_count (per-CPU counter,
// XDP_DROP). A cell is (path, flows, mode); the modes at the director's eth0:
//   xdp-native / xdp-generic    xdirector (a DR service) in native / generic mode
//   xdp-tx-noop[-generic]       xdp_tx_noop: MAC rewrite + XDP_TX only, the ceiling of that mode
//   tunnel-ipip / tunnel-gue    xdirector, native, the same service with forwarding: tunnel
//   kernel-forward              XDP_PASS (xdp_count pass) + kernel forwarding
//   ipvs                        where the kernel has IPVS (skipped here with the reason)
// On the isolated path the ceiling matrix is flows (e.g. 16, 4096, 1M) × {native,
// generic} × {director, no-op}, each flow count with its own director (same table
// size), so a small-flow cell never walks a table a large one filled. The DR path,
// the kernel path and the tunnels run at the base flow count; the tunnels against
// the DR director of that count. Every round visits every cell in the same order,
// so machine noise hits all alike; reported: per-cell median over rounds, ratios,
// and the kernel's own accounting of the program at the director's eth0 (bpf_stats
// run_time_ns / run_cnt, kernel.bpf_stats_enabled=1 for the section): ns per packet
// of the director and of the no-op, which stays honest when the generator, not
// the director, is what limits the packet rate.
// Bridge-side peers of the generator and the director carry xdp_count in pass
// mode: native XDP_TX / ndo_xdp_xmit on veth needs an XDP program on the peer
// (on the isolated path the generator's counter is that peer; for generic mode
// the director's eth0 gets GRO on, which gives its veth the NAPI the
// generator's ndo_xdp_xmit needs).
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as readline from 'node:readline';
import * as path from 'node:path';
import { wrap } from '../../src/errors';
import { runIn, waitChildExit, sleep } from '../lab/exec';
import type { Logger } from '../../src/log';
import {
  BENCH_DIRECTOR_LIMITS,
  FLOOD_DIRECTOR_LIMITS,
  PROVE_WAIT_MS,
  floodProblem,
  floodShape,
  generatorProblem,
  loadCounter,
  loadDirector,
  loadNoopTx,
  pickGenerator,
  type BenchDirector,
  type BenchService,
  type CounterProg,
  type GeneratorKind,
  type PinnedProg,
} from './director';
import { getNative } from '../../src/bpf/native';
import { buildFrame, TCP_ACK, TCP_SYN, type Frame } from './packet';
import { spread, round, roundSpread } from './stats';
import {
  createIsolated,
  createTopology,
  setKernelEcmp,
  xdpAttachPinned,
  xdpDetach,
  type IsolatedTopology,
  type Topology,
} from './topology';
import type {
  CeilingRatio,
  PktCell,
  PktMode,
  PktRateData,
  PktRatios,
  PktRound,
  PktScenario,
  PktScenarioName,
} from './types';
import { ToolError } from '../errors';
import { enableBpfStats } from './bpfstats';

export interface PktRateOptions {
  prefix: string;
  packets: number;
  rounds: number;
  /** Flow counts of the ceiling matrix on the isolated path. */
  flows: number[];
  /** Flow count of the DR path, the kernel path and the tunnel comparison. */
  baseFlows: number;
  batch: number;
  receivers: number;
  /** Modes to run (default all). */
  modes?: PktMode[];
  /** Paths to drive (default both). */
  scenarios?: PktScenarioName[];
  /** dr-bridge: destination MAC the no-op XDP_TX program writes (default: the first real server's). */
  ceilingMac?: string;
  /** Generator to use (default: live frames where the kernel runs them, else af-packet; see pickGenerator). */
  generator?: GeneratorKind;
  /** AF_PACKET generator: processes per flow count, each pinned to its own CPU (default GEN_PROCS; live frames: always 1). */
  genProcs?: number;
  /**
   * The syn-flood cells' stream (isolated path): `syns` spoofed SYNs from random sources with the
   * base flow count's established flows inside it, one frame in `every` (default FLOOD_DEFAULT).
   */
  flood?: { syns: number; every: number };
  /** Flow-table entries of every director (default BENCH_DIRECTOR_LIMITS.flows, 2^20: room for the 1M cell). */
  flowTableSize?: number;
  log: Logger;
  progress?: (msg: string) => void;
}

const FLOW_MATRIX = [16, 4096, 1_000_000];
export const PKTRATE_FULL = {
  packets: 2_000_000,
  rounds: 5,
  flows: FLOW_MATRIX,
  baseFlows: 4096,
  batch: 64,
  receivers: 2,
};
export const PKTRATE_QUICK = {
  packets: 50_000,
  rounds: 1,
  flows: FLOW_MATRIX,
  baseFlows: 4096,
  batch: 64,
  receivers: 2,
};

const ALL_MODES: PktMode[] = [
  'xdp-native',
  'xdp-tx-noop',
  'xdp-generic',
  'xdp-tx-noop-generic',
  'tunnel-ipip',
  'tunnel-gue',
  'kernel-forward',
  'ipvs',
];
/** The flood stream unless the caller sizes it: a million spoofed SYNs, one established frame in 8. */
export const FLOOD_DEFAULT = { syns: 1_000_000, every: 8 };
/** Seed of the flood's random sources: the same flood every run. */
const FLOOD_SEED = 26;
const FLOOD_MODES: ReadonlySet<PktMode> = new Set(['syn-flood', 'xdp-tx-noop-flood']);
const ALL_SCENARIOS: PktScenarioName[] = ['dr-bridge', 'isolated'];
/** Director modes: the ones whose verdict reasons and flow table are read. */
const DIRECTOR_MODES: ReadonlySet<PktMode> = new Set([
  'xdp-native',
  'xdp-generic',
  'tunnel-ipip',
  'tunnel-gue',
  'syn-flood',
]);
/** Modes each path runs, and at which flow counts ('matrix': every flow count; 'base': the base count only). */
const PATH_MODES: Record<PktScenarioName, [PktMode, 'matrix' | 'base'][]> = {
  'dr-bridge': [
    ['xdp-native', 'base'],
    ['xdp-generic', 'base'],
    ['xdp-tx-noop', 'base'],
    ['kernel-forward', 'base'],
    ['ipvs', 'base'],
  ],
  isolated: [
    ['xdp-native', 'matrix'],
    ['xdp-tx-noop', 'matrix'],
    ['xdp-generic', 'matrix'],
    ['xdp-tx-noop-generic', 'matrix'],
    ['tunnel-ipip', 'base'],
    ['tunnel-gue', 'base'],
    ['kernel-forward', 'base'],
    ['ipvs', 'base'],
    ['syn-flood', 'base'],
    ['xdp-tx-noop-flood', 'base'],
  ],
};
const SCENARIO_DESCRIPTIONS: Record<PktScenarioName, string> = {
  'dr-bridge':
    'full one-armed DR path: generator → bridge → director → bridge → real servers (counted on the real servers)',
  isolated:
    'isolated director: generator eth0 ⇄ director eth0 on one veth pair, sent straight back to the generator (counted on its eth0)',
};
const DESCRIPTIONS: Record<PktScenarioName, Partial<Record<PktMode, string>>> = {
  'dr-bridge': {
    'xdp-native': 'xdirector in native (driver) XDP mode, DR via XDP_TX',
    'xdp-generic': 'xdirector in generic (skb) XDP mode, DR via XDP_TX',
    'xdp-tx-noop': 'no-op XDP_TX (MAC rewrite only) on the same path: the ceiling',
    'kernel-forward': 'XDP_PASS + kernel IPv4 forwarding, ECMP route over the real servers',
    ipvs: 'IPVS direct routing (mh scheduler)',
  },
  isolated: {
    'xdp-native':
      'xdirector in native (driver) XDP mode, DR service, XDP_TX back to the generator (every backend has its MAC)',
    'xdp-generic': 'xdirector in generic (skb) XDP mode, DR service, XDP_TX back to the generator',
    'xdp-tx-noop': 'no-op XDP_TX (MAC rewrite only), native, back to the generator: the native ceiling',
    'xdp-tx-noop-generic': 'no-op XDP_TX (MAC rewrite only), generic, back to the generator: the generic ceiling',
    'tunnel-ipip': 'xdirector, native, the same service with forwarding: tunnel, encap ipip (next hop: the generator)',
    'tunnel-gue':
      'xdirector, native, the same service with forwarding: tunnel, encap gue (UDP 6080; next hop: the generator)',
    'kernel-forward':
      'XDP_PASS + kernel IPv4 forwarding back out of eth0 (route for the VIP via the generator, static neighbour)',
    ipvs: 'IPVS direct routing (mh scheduler)',
    'syn-flood':
      'xdirector, native, DR, its own director (the product default embryonic and takeover table sizes): a spoofed-SYN flood from random sources with the base count of established flows inside it',
    'xdp-tx-noop-flood': 'no-op XDP_TX (MAC rewrite only), native, on the same flood stream: the ceiling of the flood',
  },
};
const BASE_PORT = 10000;
/** Source ports per source address: all of BASE_PORT..65535; more flows vary the address as well. */
const MAX_PORTS = 65536 - BASE_PORT;
/** The isolated path's tunnel backends: on another subnet, reached through the generator as next hop. */
const TUNNEL_BACKENDS = [
  '10.203.1.11',
  '10.203.1.12',
  '10.203.1.13',
  '10.203.1.14',
  '10.203.1.15',
  '10.203.1.16',
  '10.203.1.17',
  '10.203.1.18',
];

/** Why kernel pktgen cannot be used, or null if /proc/net/pktgen exists. */
export function pktgenUnavailable(): string | null {
  if (fs.existsSync('/proc/net/pktgen/pgctrl')) return null;
  return '/proc/net/pktgen/pgctrl does not exist (kernel built without CONFIG_NET_PKTGEN, and it cannot load modules)';
}

/** Why IPVS cannot be used in namespace ns, found by asking the kernel, or null if it can. */
export async function ipvsUnavailable(ns: string): Promise<string | null> {
  const r = await runIn(ns, 'ipvsadm', ['-Ln'], { allowFail: true }).catch((e: unknown) => ({
    code: -1,
    stdout: '',
    stderr: e instanceof Error ? e.message : String(e),
  }));
  if (r.code === 0) return null;
  const why = (r.stderr || r.stdout).trim().split('\n')[0];
  const proc = fs.existsSync('/proc/net/ip_vs')
    ? ''
    : '; /proc/net/ip_vs does not exist (CONFIG_IP_VS not built in, no loadable modules)';
  return `ipvsadm -Ln failed: ${why}${proc}`;
}

/** The CPUs this process may use, highest first: generators are pinned from the top (none on a one-CPU machine). */
const GEN_CPUS: number[] = (() => {
  // Cpus_allowed_list: "0-1", "0,2-3".
  const m = /^Cpus_allowed_list:\s*(.+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  const cpus: number[] = [];
  for (const r of m ? m[1]!.trim().split(',') : []) {
    const [a, b] = r.split('-').map(Number);
    for (let c = a!; c <= (b ?? a!); c++) if (Number.isInteger(c)) cpus.push(c);
  }
  return os.availableParallelism() > 1 ? cpus.reverse() : [];
})();

/**
 * AF_PACKET generator processes per flow count. Measured on this 2-vCPU VM (2026-12-07, load
 * average 4–5 from other runs): into an XDP_DROP sink (4096 flows, 1M frames, 2 rounds) one pinned
 * process sent 0.57 Mpps, two (one per CPU) 0.63–0.79, netsniff-ng's trafgen --cpus 1 0.53–0.55
 * and --cpus 2 0.61–0.75; through the isolated path (director and no-op, 400k frames, 2 runs
 * each) two processes were no faster (0.32–0.48 against 0.28–0.48 Mpps), used more CPU per
 * packet (0.35–0.43 against 0.38–0.49 Mpps per CPU-second) and once lost frames at the veth
 * (398786 of 400000). One process: the fastest where it counts, and the second CPU stays free.
 */
export const GEN_PROCS = 1;

/** Client side of genworker.js running inside the client namespace. */
class GenClient {
  private lines: AsyncIterator<string>;
  private stderr = '';
  private constructor(readonly child: ChildProcess) {
    this.lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    child.on('error', (err) => (this.stderr += `${err.message}\n`));
  }

  static start(ns: string, cpu: number | undefined): GenClient {
    const script = path.join(__dirname, 'genworker.js');
    // nsenter --net keeps the mount namespace: bpffs and the addon stay visible. Pinned to one CPU:
    // the whole packet path runs in the sending CPU's softirq, and a generator the scheduler
    // moved between CPUs made rounds bimodal (~12 vs ~8 Mpps in one run).
    const cmd = ['nsenter', `--net=/run/netns/${ns}`, '--', process.execPath, script];
    const child =
      cpu === undefined
        ? spawn(cmd[0]!, cmd.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] })
        : spawn('taskset', ['-c', String(cpu), ...cmd], { stdio: ['pipe', 'pipe', 'pipe'] });
    return new GenClient(child);
  }

  /** Send one request and wait for its answer (at most timeoutMs; then the worker is killed). */
  async call(msg: Record<string, unknown>, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    this.child.stdin!.write(JSON.stringify(msg) + '\n');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        reject(
          new ToolError(
            'XD_ERR_BENCH',
            `generator ${String(msg.op)}: no answer within ${timeoutMs} ms (worker killed): ${this.stderr.trim()}`,
          ),
        );
      }, timeoutMs);
    });
    const r = await Promise.race([this.lines.next(), timeout]).finally(() => clearTimeout(timer));
    if (r.done)
      throw new ToolError(
        'XD_ERR_BENCH',
        `generator process exited (code ${this.child.exitCode}): ${this.stderr.trim()}`,
      );
    const o = JSON.parse(r.value) as Record<string, unknown>;
    if (o.ok !== true) throw new ToolError('XD_ERR_BENCH', `generator ${String(msg.op)}: ${String(o.error)}`);
    return o;
  }

  async stop(): Promise<void> {
    this.child.stdin!.end();
    if (!(await waitChildExit(this.child, 5000))) this.child.kill('SIGKILL');
  }
}

/** The generator processes of one flow count: a run is split between them and its results summed (wall time: the longest). */
class GenGroup {
  constructor(readonly procs: GenClient[]) {}

  async template(frame: Buffer): Promise<void> {
    await Promise.all(this.procs.map((g) => g.call({ op: 'template', frame: frame.toString('hex') })));
  }

  async run(
    packets: number,
    batch: number,
  ): Promise<{ sent: number; seconds: number; cpuSeconds: number; aborted: number }> {
    const n = this.procs.length;
    const rs = await Promise.all(
      this.procs.map((g, i) => {
        const share = Math.floor(packets / n) + (i < packets % n ? 1 : 0);
        return g.call({ op: 'run', packets: share, batch }, runBudget(share));
      }),
    );
    const sum = (k: string): number => rs.reduce((a, r) => a + Number(r[k]), 0);
    return {
      sent: sum('sent'),
      seconds: Math.max(...rs.map((r) => Number(r.seconds))),
      cpuSeconds: sum('cpuSeconds'),
      aborted: sum('aborted'),
    };
  }

  async stop(): Promise<void> {
    for (const g of this.procs) await g.stop().catch(() => undefined);
  }
}

/** Time allowed for a generator run: 60 s plus 100 µs per packet (a path slower than 10 kpps is broken). */
function runBudget(packets: number): number {
  return 60_000 + packets / 10;
}

/** CPU seconds used so far by the ksoftirqd threads (softirq work deferred out of the generator's context). */
export function ksoftirqdSeconds(): number {
  let ticks = 0;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (!fs.readFileSync(`/proc/${d}/comm`, 'utf8').startsWith('ksoftirqd/')) continue;
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
    } catch {
      /* exited meanwhile */
    }
  }
  return ticks / 100; // USER_HZ: 100 on Linux/x86-64 and arm64
}

/** Wait until a counter stops moving (frames still in flight in veth/bridge queues when the generator returns). */
async function settle(read: () => bigint): Promise<bigint> {
  let last = read();
  for (let i = 0; i < 40; i++) {
    await sleep(25);
    const now = read();
    if (now === last) return now;
    last = now;
  }
  return last;
}

/** One path the generator drives, set up and ready for attach(cell). */
interface Path {
  scenario: PktScenario;
  frameBytes: number;
  syn: Buffer;
  ack: Buffer;
  /** The generator of each flow count the path's cells use, and the flood stream's (genKey). */
  gens: Map<string, GenGroup>;
  /** Frames per period of the flood stream (one established ACK each), when the path has one. */
  floodEvery?: number;
  /** Flow-table entries of the flood director after its warm-up. */
  floodEntriesBefore?: number;
  /** The program a cell attaches to the director's eth0 (its bpf_stats are read around each run). */
  progFd(cell: PktCell): number | undefined;
  /** The xdirector a cell runs (undefined for the no-op and kernel cells). */
  director(cell: PktCell): BenchDirector | undefined;
  attach(cell: PktCell): Promise<void>;
  detach(): Promise<void>;
  /** Frames and bytes counted so far per receiving interface. */
  counts(): { packets: bigint; bytes: bigint }[];
}

interface Owned {
  progs: { close(): Promise<void> }[];
  gens: GenGroup[];
  teardown: (() => Promise<void>)[];
}

/** The programs a path attaches to its director's eth0, loaded once per run. */
interface PathProgs {
  /** xdirector per key: `dr:<flows>`, `ipip`, `gue`. */
  directors: Map<string, BenchDirector>;
  noop?: PinnedProg;
  dirPass: PinnedProg;
}

function directorKey(cell: Pick<PktCell, 'mode' | 'flows'>): string | undefined {
  if (cell.mode === 'xdp-native' || cell.mode === 'xdp-generic') return `dr:${cell.flows}`;
  if (cell.mode === 'tunnel-ipip') return 'ipip';
  if (cell.mode === 'tunnel-gue') return 'gue';
  if (cell.mode === 'syn-flood') return 'flood';
  return undefined;
}

/** The generator a cell sends with: the flood stream's own, else the one of its flow count. */
function genKey(cell: Pick<PktCell, 'mode' | 'flows'>): string {
  return FLOOD_MODES.has(cell.mode) ? 'flood' : String(cell.flows);
}

/** Attach the program a cell runs to the director's eth0 (pinned programs of this run). */
function attachCell(ns: string, cell: PktCell, p: PathProgs): Promise<void> {
  const key = directorKey(cell);
  switch (cell.mode) {
    case 'xdp-native':
    case 'tunnel-ipip':
    case 'tunnel-gue':
    case 'syn-flood':
      return xdpAttachPinned(ns, 'eth0', 'native', p.directors.get(key!)!.pinPath);
    case 'xdp-generic':
      return xdpAttachPinned(ns, 'eth0', 'generic', p.directors.get(key!)!.pinPath);
    case 'xdp-tx-noop':
    case 'xdp-tx-noop-flood':
      return xdpAttachPinned(ns, 'eth0', 'native', p.noop!.pinPath);
    case 'xdp-tx-noop-generic':
      return xdpAttachPinned(ns, 'eth0', 'generic', p.noop!.pinPath);
    case 'kernel-forward':
      return xdpAttachPinned(ns, 'eth0', 'native', p.dirPass.pinPath);
    default:
      throw new ToolError('XD_ERR_BENCH', `mode ${cell.mode} cannot be attached`);
  }
}

/** The cells of a path in round order: the matrix flow by flow (director, then its no-op, native then generic), then the base-count cells. */
function pathCells(name: PktScenarioName, o: PktRateOptions, modes: PktMode[]): PktCell[] {
  const want = PATH_MODES[name].filter(([m]) => modes.includes(m));
  const cell = (mode: PktMode, flows: number): PktCell => ({
    mode,
    flows,
    description: DESCRIPTIONS[name][mode] ?? mode,
    status: 'ok',
    rounds: [],
  });
  const matrix = [...new Set([...o.flows, o.baseFlows])].sort((a, b) => a - b);
  const cells: PktCell[] = [];
  for (const f of matrix) for (const [m, scope] of want) if (scope === 'matrix') cells.push(cell(m, f));
  for (const [m, scope] of want) if (scope === 'base') cells.push(cell(m, o.baseFlows));
  return cells;
}

/** Load the programs a path's cells need: one xdirector per flow count (DR) and per tunnel encapsulation, the no-op, the pass program. */
async function loadPathProgs(
  cells: PktCell[],
  pinDir: string,
  own: Owned,
  log: Logger,
  d: {
    mac: string;
    noopMac: string;
    service: (tunnel?: BenchService['tunnel']) => BenchService;
    tunnelSource: string;
    flowTableSize: number;
  },
): Promise<PathProgs> {
  fs.mkdirSync(pinDir, { recursive: true });
  const dirPass = await loadCounter({ pinDir, name: 'dir-pass', verdict: 'pass' });
  own.progs.push(dirPass);
  const p: PathProgs = { directors: new Map(), dirPass };
  for (const c of cells) {
    const key = directorKey(c);
    if (key === undefined || p.directors.has(key)) continue;
    const director = await loadDirector({
      pinDir: path.join(pinDir, key.replace(':', '-')),
      log,
      mac: d.mac,
      limits: { ...(key === 'flood' ? FLOOD_DIRECTOR_LIMITS : BENCH_DIRECTOR_LIMITS), flows: d.flowTableSize },
    });
    own.progs.push(director);
    const encap = c.mode === 'tunnel-ipip' ? 'ipip' : c.mode === 'tunnel-gue' ? 'gue' : undefined;
    await director.setService(d.service(encap ? { encap, source: d.tunnelSource } : undefined));
    p.directors.set(key, director);
  }
  if (
    cells.some((c) => c.mode === 'xdp-tx-noop' || c.mode === 'xdp-tx-noop-generic' || c.mode === 'xdp-tx-noop-flood')
  ) {
    p.noop = await loadNoopTx({ pinDir, mac: d.noopMac });
    own.progs.push(p.noop);
  }
  return p;
}

/**
 * The end both paths share: SYN and ACK frames from the generator to the VIP via the director's
 * MAC, one generator process per flow count the cells use, and the Path handle.
 */
async function finishPath(
  o: PktRateOptions,
  own: Owned,
  scenario: PktScenario,
  progs: PathProgs,
  g: { ns: string; mac: string; ip: string; directorMac: string; vip: string },
  ops: Pick<Path, 'attach' | 'detach' | 'counts'>,
  gk: GenChoice,
): Promise<Path> {
  const frameOf = (flags: number): Frame =>
    buildFrame({
      srcMac: g.mac,
      dstMac: g.directorMac,
      family: 4,
      src: g.ip,
      dst: g.vip,
      proto: 'tcp',
      sport: BASE_PORT,
      dport: 3306,
      flags,
      minLength: 60,
      multipleOf: 8,
    });
  const syn = frameOf(TCP_SYN);
  const ack = frameOf(TCP_ACK);
  const gens = new Map<string, GenGroup>();
  // A flood cell's director is warmed up by the generator of its flow count: started for it too.
  for (const flows of new Set(scenario.cells.map((c) => c.flows))) {
    const gen = await startGen(g.ns, syn, flows, gk);
    own.gens.push(gen);
    gens.set(String(flows), gen);
  }
  const flood = o.flood ?? FLOOD_DEFAULT;
  const floodCells = scenario.cells.filter((c) => FLOOD_MODES.has(c.mode));
  if (floodCells.length) {
    const gen = await startFloodGen(g.ns, syn, ack, floodCells[0]!.flows, flood);
    own.gens.push(gen);
    gens.set('flood', gen);
  }
  return {
    scenario,
    frameBytes: ack.bytes.length,
    syn: syn.bytes,
    ack: ack.bytes,
    gens,
    ...(floodCells.length ? { floodEvery: flood.every } : {}),
    director: (cell) => {
      const key = directorKey(cell);
      return key === undefined ? undefined : progs.directors.get(key);
    },
    progFd: (cell) => {
      const key = directorKey(cell);
      if (key !== undefined) return progs.directors.get(key)?.fd;
      if (cell.mode === 'xdp-tx-noop' || cell.mode === 'xdp-tx-noop-generic' || cell.mode === 'xdp-tx-noop-flood')
        return progs.noop?.fd;
      if (cell.mode === 'kernel-forward') return progs.dirPass.fd;
      return undefined;
    },
    ...ops,
  };
}

/** The generator a run uses: its kind and processes per flow count. */
interface GenChoice {
  kind: GeneratorKind;
  procs: number;
}

async function startGen(ns: string, syn: Frame, flows: number, gk: GenChoice): Promise<GenGroup> {
  const ports = Math.min(flows, MAX_PORTS);
  const spec = { flows, basePort: BASE_PORT, ports, saddrOff: syn.saddrOff, ipCsumOff: syn.ipCsumOff };
  const why = generatorProblem(spec);
  if (why) throw new ToolError('XD_ERR_BENCH', `generator for ${flows} flows: ${why}`);
  // Process i starts at flow i·flows/procs: a run of `flows` frames split between them covers every flow once.
  const group = new GenGroup(Array.from({ length: gk.procs }, (_, i) => GenClient.start(ns, GEN_CPUS[i])));
  try {
    await Promise.all(
      group.procs.map((g, i) =>
        g.call({
          op: 'init',
          kind: gk.kind,
          ifname: 'eth0',
          frame: syn.bytes.toString('hex'),
          sportOff: syn.sportOff,
          csumOff: syn.csumOff,
          ...spec,
          ...(gk.kind === 'af-packet' ? { firstFlow: Math.floor((i * flows) / gk.procs) } : {}),
        }),
      ),
    );
  } catch (err) {
    await group.stop();
    throw err;
  }
  return group;
}

/**
 * The flood stream's generator (always the AF_PACKET ring, one process: the stream is built in
 * user space, and one process keeps the established frames' share of each round exact).
 */
async function startFloodGen(
  ns: string,
  syn: Frame,
  ack: Frame,
  established: number,
  f: { syns: number; every: number },
): Promise<GenGroup> {
  const spec = { ack: ack.bytes, established, every: f.every, syns: f.syns, seed: FLOOD_SEED };
  const why = floodProblem(spec, syn.bytes);
  if (why) throw new ToolError('XD_ERR_BENCH', why);
  const group = new GenGroup([GenClient.start(ns, GEN_CPUS[0])]);
  try {
    await group.procs[0]!.call({
      op: 'init',
      kind: 'af-packet',
      ifname: 'eth0',
      frame: syn.bytes.toString('hex'),
      sportOff: syn.sportOff,
      csumOff: syn.csumOff,
      flows: established,
      basePort: BASE_PORT,
      ports: Math.min(established, MAX_PORTS),
      saddrOff: syn.saddrOff,
      ipCsumOff: syn.ipCsumOff,
      flood: { ...spec, ack: ack.bytes.toString('hex') },
    });
  } catch (err) {
    await group.stop();
    throw err;
  }
  return group;
}

async function bridgePath(
  o: PktRateOptions,
  cells: PktCell[],
  pinDir: string,
  own: Owned,
  log: Logger,
  gk: GenChoice,
): Promise<Path> {
  const scenario = newScenario('dr-bridge', o.receivers, cells);
  const t: Topology = await createTopology(`${o.prefix}p`, o.receivers);
  own.teardown.push(() => t.destroy());
  fs.mkdirSync(pinDir, { recursive: true });
  // Receivers: count + drop. Bridge-side peers of gen and director: count + pass (veth NAPI for XDP_TX).
  const rcv: CounterProg[] = [];
  for (let i = 0; i < t.receivers.length; i++) {
    const c = await loadCounter({ pinDir, name: `r${i + 1}`, verdict: 'drop' });
    own.progs.push(c);
    rcv.push(c);
    await xdpAttachPinned(t.receivers[i].ns, 'eth0', 'native', c.pinPath);
  }
  const peerGen = await loadCounter({ pinDir, name: 'peer-gen', verdict: 'pass' });
  own.progs.push(peerGen);
  const peerDir = await loadCounter({ pinDir, name: 'peer-dir', verdict: 'pass' });
  own.progs.push(peerDir);
  await xdpAttachPinned(t.bridgeNs, t.client.port, 'native', peerGen.pinPath);
  await xdpAttachPinned(t.bridgeNs, t.director.port, 'native', peerDir.pinPath);
  const progs = await loadPathProgs(cells, pinDir, own, log, {
    flowTableSize: o.flowTableSize ?? BENCH_DIRECTOR_LIMITS.flows,
    mac: t.director.mac,
    noopMac: o.ceilingMac ?? t.receivers[0].mac,
    tunnelSource: t.director.ip,
    service: () => ({
      vip: t.vip,
      port: 3306,
      proto: 'tcp',
      backends: t.receivers.map((r) => ({ address: r.ip, port: 3306, mac: r.mac })),
    }),
  });
  await setKernelEcmp(t, true);
  return finishPath(
    o,
    own,
    scenario,
    progs,
    { ns: t.client.ns, mac: t.client.mac, ip: t.client.ip, directorMac: t.director.mac, vip: t.vip },
    {
      async attach(cell) {
        await xdpDetach(t.director.ns, 'eth0');
        return attachCell(t.director.ns, cell, progs);
      },
      detach: () => xdpDetach(t.director.ns, 'eth0'),
      counts: () => rcv.map((c) => c.read()),
    },
    gk,
  );
}

async function isolatedPath(
  o: PktRateOptions,
  cells: PktCell[],
  pinDir: string,
  own: Owned,
  log: Logger,
  gk: GenChoice,
): Promise<Path> {
  const scenario = newScenario('isolated', 1, cells);
  const t: IsolatedTopology = await createIsolated(`${o.prefix}p`);
  own.teardown.push(() => t.destroy());
  fs.mkdirSync(pinDir, { recursive: true });
  // The generator's own eth0 counts and drops what the director sends back (and is the XDP peer native XDP_TX needs).
  const back = await loadCounter({ pinDir, name: 'gen-back', verdict: 'drop' });
  own.progs.push(back);
  await xdpAttachPinned(t.gen.ns, 'eth0', 'native', back.pinPath);
  const n = Math.max(1, Math.min(o.receivers, TUNNEL_BACKENDS.length));
  const progs = await loadPathProgs(cells, pinDir, own, log, {
    flowTableSize: o.flowTableSize ?? BENCH_DIRECTOR_LIMITS.flows,
    mac: t.director.mac,
    noopMac: t.gen.mac,
    tunnelSource: t.director.ip,
    // The same shape as the DR path (two backends), every backend (or tunnel next hop) at the generator's MAC;
    // a tunnel service's backends are on another subnet.
    service: (tunnel) => ({
      vip: t.vip,
      port: 3306,
      proto: 'tcp',
      tunnel,
      backends: Array.from({ length: n }, (_, i) => ({
        address: tunnel ? TUNNEL_BACKENDS[i] : `10.202.0.${11 + i}`,
        port: 3306,
        mac: t.gen.mac,
      })),
    }),
  });
  const gro = (on: boolean): Promise<unknown> =>
    runIn(t.director.ns, 'ethtool', ['-K', 'eth0', 'gro', on ? 'on' : 'off']);
  return finishPath(
    o,
    own,
    scenario,
    progs,
    { ns: t.gen.ns, mac: t.gen.mac, ip: t.gen.ip, directorMac: t.director.mac, vip: t.vip },
    {
      async attach(cell) {
        await xdpDetach(t.director.ns, 'eth0');
        // Generic mode: no native program on the director's veth, so GRO on gives it the NAPI
        // the generator's ndo_xdp_xmit needs; off for the others (their native program does that).
        await gro(cell.mode === 'xdp-generic' || cell.mode === 'xdp-tx-noop-generic');
        return attachCell(t.director.ns, cell, progs);
      },
      detach: () => xdpDetach(t.director.ns, 'eth0'),
      counts: () => [back.read()],
    },
    gk,
  );
}

function newScenario(name: PktScenarioName, receivers: number, cells: PktCell[]): PktScenario {
  return {
    name,
    description: SCENARIO_DESCRIPTIONS[name],
    receivers,
    cells,
    ratios: {},
    ratiosPerCpu: {},
    ceiling: [],
    forwarding: [],
  };
}

async function measureRound(p: Path, m: PktCell, o: PktRateOptions, warmed: Set<BenchDirector>): Promise<PktRound> {
  const delivered = (): bigint => p.counts().reduce((a, b) => a + b.packets, 0n);
  const isFlood = FLOOD_MODES.has(m.mode);
  const gen = p.gens.get(genKey(m))!;
  // The warm-up's handshakes come from the flow count's generator (a flood cell's established flows are those).
  const warmGen = p.gens.get(String(m.flows))!;
  const director = p.director(m);
  await p.attach(m);
  // Warm-up, once per director (its flows stay in the table for the later rounds): one handshake
  // per flow (a SYN enters the embryonic table, the first ACK moves it to the probation table),
  // then, PROVE_WAIT_MS later, an ACK pass that proves each flow into the flow table; then
  // established ACKs are timed. The bench director's embryonic and probation tables are as large
  // as its flow table, so no warm-up flow is pushed out on the way. A frame lost on the way (a
  // full veth ring on a loaded machine) leaves its flow out, so each ACK pass repeats until one
  // arrives whole (at most 3). The ACK template stays for the no-op and kernel cells too.
  if (director && !warmed.has(director)) {
    await warmGen.template(p.syn);
    await warmGen.run(m.flows, o.batch);
    await settle(delivered);
    await warmGen.template(p.ack);
    for (const wait of [0, PROVE_WAIT_MS]) {
      await sleep(wait);
      for (let pass = 0; pass < 3; pass++) {
        const start = await settle(delivered);
        await warmGen.run(m.flows, o.batch);
        if ((await settle(delivered)) - start >= BigInt(m.flows)) break;
      }
    }
    warmed.add(director);
    if (isFlood) p.floodEntriesBefore = await director.flowEntries();
  } else if (!isFlood) {
    await gen.template(p.ack);
  }
  // A flood round is whole periods of the stream: exactly packets / every established frames in it.
  const every = p.floodEvery ?? 1;
  const packets = isFlood ? Math.ceil(o.packets / every) * every : o.packets;
  const progFd = p.progFd(m);
  const before = p.counts();
  const reasonsBefore = director?.reasons() ?? {};
  const softBefore = ksoftirqdSeconds();
  const statsBefore = progFd === undefined ? undefined : getNative().progInfo(progFd);
  const g = await gen.run(packets, o.batch);
  await settle(delivered);
  const statsAfter = progFd === undefined ? undefined : getNative().progInfo(progFd);
  const now = p.counts();
  const per = now.map((c, i) => Number(c.packets - before[i].packets));
  const bytes = now.reduce((a, c, i) => a + Number(c.bytes - before[i].bytes), 0);
  const softSeconds = ksoftirqdSeconds() - softBefore;
  const got = per.reduce((a, b) => a + b, 0);
  const seconds = Number(g.seconds);
  const cpuSeconds = Number(g.cpuSeconds);
  const sent = Number(g.sent);
  if (Number(g.aborted) > 0)
    throw new ToolError('XD_ERR_BENCH', `generator aborted ${String(g.aborted)} frames (template/length mismatch)`);
  // Nothing (or a stray handful: under 0.1% of what was offered) arriving means a broken path,
  // reported as an error rather than as a rate.
  if (got * 1000 < sent || got === 0) {
    const none = got === 0 ? 'none' : `only ${got}`;
    const where =
      p.scenario.name === 'isolated'
        ? `the generator's eth0 received ${none} back`
        : `the real servers received ${none}`;
    throw new ToolError(
      'XD_ERR_BENCH_NO_TRAFFIC',
      `${m.mode}: the generator offered ${sent} frames in ${seconds.toFixed(3)} s and ${where}; the path is broken (check the director program and the veth XDP peers)`,
    );
  }
  const r: PktRound = {
    offered: sent,
    delivered: got,
    drops: sent - got,
    seconds: round(seconds, 4),
    mppsOffered: round(sent / seconds / 1e6, 3),
    mppsDelivered: round(got / seconds / 1e6, 3),
    cpuSeconds: round(cpuSeconds, 4),
    mppsPerCpu: round(got / Math.max(cpuSeconds, 1e-6) / 1e6, 3),
    ksoftirqdSeconds: round(softSeconds, 2),
    perReceiver: per,
    bytesPerFrame: round(bytes / got, 2),
  };
  if (director) {
    const after = director.reasons();
    r.directorReasons = Object.fromEntries(
      Object.entries(after)
        .map(([k, v]) => [k, v - (reasonsBefore[k] ?? 0)])
        .filter(([, v]) => Number(v) > 0),
    );
  }
  if (statsBefore && statsAfter) {
    const runs = Number(statsAfter.runCnt - statsBefore.runCnt);
    const ns = Number(statsAfter.runTimeNs - statsBefore.runTimeNs);
    if (runs > 0) r.bpfStats = { runs, runTimeNs: ns, nsPerRun: round(ns / runs, 2) };
  }
  if (isFlood) r.floodEstablished = packets / every;
  return r;
}

const ratio = (a?: number, b?: number): number | undefined =>
  a !== undefined && b !== undefined && b > 0 ? round(a / b, 3) : undefined;

/** Median over rounds of a / b measured in the same round. */
function pairedRatio(a: PktCell | undefined, b: PktCell | undefined): number | undefined {
  if (a?.status !== 'ok' || b?.status !== 'ok') return undefined;
  const n = Math.min(a.rounds.length, b.rounds.length);
  const xs: number[] = [];
  for (let i = 0; i < n; i++)
    if (b.rounds[i].mppsDelivered > 0) xs.push(a.rounds[i].mppsDelivered / b.rounds[i].mppsDelivered);
  return xs.length ? round(spread(xs).median, 3) : undefined;
}

/** Median over rounds of a's bpf_stats ns per packet − b's, measured in the same round. */
function pairedNsDiff(a: PktCell, b: PktCell): number | undefined {
  if (a.status !== 'ok' || b.status !== 'ok') return undefined;
  const xs: number[] = [];
  for (let i = 0; i < Math.min(a.rounds.length, b.rounds.length); i++) {
    const x = a.rounds[i].bpfStats?.nsPerRun;
    const y = b.rounds[i].bpfStats?.nsPerRun;
    if (x !== undefined && y !== undefined) xs.push(x - y);
  }
  return xs.length ? round(spread(xs).median, 2) : undefined;
}

function summarise(sc: PktScenario, o: PktRateOptions): void {
  const cell = (mode: PktMode, flows: number): PktCell | undefined =>
    sc.cells.find((c) => c.mode === mode && c.flows === flows);
  const med = (c: PktCell | undefined, key: 'mppsDelivered' | 'mppsPerCpu'): number | undefined =>
    c?.status === 'ok' ? c[key]?.median : undefined;
  for (const key of ['mppsDelivered', 'mppsPerCpu'] as const) {
    const at = (mode: PktMode): number | undefined => med(cell(mode, o.baseFlows), key);
    const r: PktRatios = {
      nativeVsCeiling: ratio(at('xdp-native'), at('xdp-tx-noop')),
      nativeVsKernel: ratio(at('xdp-native'), at('kernel-forward')),
      genericVsKernel: ratio(at('xdp-generic'), at('kernel-forward')),
    };
    if (key === 'mppsDelivered') sc.ratios = r;
    else sc.ratiosPerCpu = r;
  }
  const flows = [...new Set(sc.cells.map((c) => c.flows))].sort((a, b) => a - b);
  for (const f of flows) {
    for (const [xdp, dm, nm] of [
      ['native', 'xdp-native', 'xdp-tx-noop'],
      ['generic', 'xdp-generic', 'xdp-tx-noop-generic'],
    ] as const) {
      const d = cell(dm, f);
      const n = cell(nm, f);
      if (!d || !n) continue;
      const row: CeilingRatio = {
        flows: f,
        xdp,
        director: med(d, 'mppsDelivered'),
        ceiling: med(n, 'mppsDelivered'),
        ratio: ratio(med(d, 'mppsDelivered'), med(n, 'mppsDelivered')),
        ratioPerCpu: ratio(med(d, 'mppsPerCpu'), med(n, 'mppsPerCpu')),
        pairedRatio: pairedRatio(d, n),
      };
      if (d.flowHitRate !== undefined) row.flowHitRate = d.flowHitRate;
      if (d.flowTableEntries !== undefined) row.flowTableEntries = d.flowTableEntries;
      const dn = d.status === 'ok' ? d.nsPerPacket?.median : undefined;
      const nn = n.status === 'ok' ? n.nsPerPacket?.median : undefined;
      if (dn !== undefined) row.directorNs = dn;
      if (nn !== undefined) row.ceilingNs = nn;
      if (dn !== undefined && nn !== undefined) row.nsOverCeiling = round(dn - nn, 2);
      const paired = pairedNsDiff(d, n);
      if (paired !== undefined) row.pairedNsOverCeiling = paired;
      sc.ceiling.push(row);
    }
  }
  const fd = cell('syn-flood', o.baseFlows);
  const fn = cell('xdp-tx-noop-flood', o.baseFlows);
  if (fd && fn) {
    const row: CeilingRatio = {
      flows: o.baseFlows,
      xdp: 'native',
      director: med(fd, 'mppsDelivered'),
      ceiling: med(fn, 'mppsDelivered'),
      ratio: ratio(med(fd, 'mppsDelivered'), med(fn, 'mppsDelivered')),
      ratioPerCpu: ratio(med(fd, 'mppsPerCpu'), med(fn, 'mppsPerCpu')),
      pairedRatio: pairedRatio(fd, fn),
    };
    const dn = fd.status === 'ok' ? fd.nsPerPacket?.median : undefined;
    const nn = fn.status === 'ok' ? fn.nsPerPacket?.median : undefined;
    if (dn !== undefined) row.directorNs = dn;
    if (nn !== undefined) row.ceilingNs = nn;
    if (dn !== undefined && nn !== undefined) row.nsOverCeiling = round(dn - nn, 2);
    const paired = pairedNsDiff(fd, fn);
    if (paired !== undefined) row.pairedNsOverCeiling = paired;
    sc.flood = row;
  }
  const dr = cell('xdp-native', o.baseFlows);
  const tunnels = (['tunnel-ipip', 'tunnel-gue'] as const)
    .map((m) => cell(m, o.baseFlows))
    .filter((c): c is PktCell => c !== undefined);
  if (dr && tunnels.length) {
    for (const c of [dr, ...tunnels]) {
      sc.forwarding.push({
        forwarding: c.mode === 'tunnel-ipip' ? 'tunnel/ipip' : c.mode === 'tunnel-gue' ? 'tunnel/gue' : 'dr',
        mode: c.mode,
        flows: c.flows,
        mpps: med(c, 'mppsDelivered'),
        ratioToDr: ratio(med(c, 'mppsDelivered'), med(dr, 'mppsDelivered')),
        ratioToDrPerCpu: ratio(med(c, 'mppsPerCpu'), med(dr, 'mppsPerCpu')),
        pairedRatioToDr: pairedRatio(c, dr),
      });
    }
  }
}

export async function runPktRate(o: PktRateOptions): Promise<PktRateData> {
  const log = o.log.child({ component: 'bench-pktrate' });
  const modes = o.modes ?? ALL_MODES;
  const names = o.scenarios ?? ALL_SCENARIOS;
  const pinRoot = `/sys/fs/bpf/${o.prefix}p`;
  const own: Owned = { progs: [], gens: [], teardown: [] };
  // Live frames where this kernel runs them (found by trying once), else the AF_PACKET ring.
  const picked = await pickGenerator();
  const kind = o.generator ?? picked.kind;
  if (kind === 'live-frames' && picked.refusal)
    throw new ToolError(
      'XD_ERR_BENCH',
      `live-frames generator asked for, but BPF_F_TEST_XDP_LIVE_FRAMES refused by this kernel: ${picked.refusal.code} (${picked.refusal.message})`,
    );
  const procs =
    kind === 'live-frames' ? 1 : Math.max(1, Math.min(o.genProcs ?? GEN_PROCS, Math.max(1, GEN_CPUS.length)));
  const gk: GenChoice = { kind, procs };
  const liveFrames = picked.refusal
    ? `BPF_F_TEST_XDP_LIVE_FRAMES refused by this kernel: ${picked.refusal.code} (${picked.refusal.message})`
    : 'BPF_F_TEST_XDP_LIVE_FRAMES runs on this kernel';
  // bpf_stats for the section: the kernel's run time and count of the programs at the director's eth0.
  const stats = enableBpfStats(log);
  try {
    const paths: Path[] = [];
    for (const name of names) {
      const cells = pathCells(name, o, modes);
      const p =
        name === 'dr-bridge'
          ? await bridgePath(o, cells, path.join(pinRoot, 'bridge'), own, log, gk)
          : await isolatedPath(o, cells, path.join(pinRoot, 'isolated'), own, log, gk);
      paths.push(p);
    }
    if (modes.includes('ipvs')) {
      const why = await ipvsUnavailable(`${o.prefix}p-${names[0] === 'dr-bridge' ? 'dir' : 'id'}`);
      for (const p of paths) {
        for (const r of p.scenario.cells.filter((c) => c.mode === 'ipvs')) {
          if (why)
            Object.assign(r, {
              status: 'skipped',
              reason: `kernel has no IPVS: ${why}`,
              install: 'boot a kernel with CONFIG_IP_VS (e.g. Debian linux-image-amd64) and modprobe ip_vs ip_vs_mh',
            });
          else
            Object.assign(r, {
              status: 'skipped',
              reason: 'IPVS is present, but this suite does not drive IPVS for the packet-rate comparison yet',
            });
        }
      }
    }

    // Interleaved: every round visits every cell of every path in the same order, so slow drifts of the machine hit all alike.
    const warmed = new Set<BenchDirector>();
    for (let r = 0; r < o.rounds; r++) {
      for (const p of paths) {
        for (const m of p.scenario.cells) {
          if (m.status !== 'ok') continue;
          try {
            const x = await measureRound(p, m, o, warmed);
            m.rounds.push(x);
            o.progress?.(
              `pktrate round ${r + 1}/${o.rounds} ${p.scenario.name} ${m.flows} flows ${m.mode}: ${x.mppsDelivered} Mpps delivered (${x.delivered}/${x.offered}), ${x.mppsPerCpu} Mpps per CPU-second${x.bpfStats ? `, ${x.bpfStats.nsPerRun} ns per packet at eth0 (bpf_stats)` : ''}`,
            );
          } catch (err) {
            m.status = 'error';
            m.reason = err instanceof Error ? err.message : String(err);
            log.error({ err, scenario: p.scenario.name, flows: m.flows }, `pktrate ${m.mode}`);
          }
        }
      }
    }
    for (const p of paths) {
      await p.detach();
      const entries = new Map<BenchDirector, number>();
      for (const m of p.scenario.cells) {
        if (m.status !== 'ok' || m.rounds.length === 0) continue;
        m.mppsDelivered = roundSpread(spread(m.rounds.map((x) => x.mppsDelivered)), 3);
        m.mppsPerCpu = roundSpread(spread(m.rounds.map((x) => x.mppsPerCpu)), 3);
        const ns = m.rounds.flatMap((x) => (x.bpfStats ? [x.bpfStats.nsPerRun] : []));
        if (ns.length) m.nsPerPacket = roundSpread(spread(ns), 2);
        m.offeredTotal = m.rounds.reduce((s, x) => s + x.offered, 0);
        m.deliveredTotal = m.rounds.reduce((s, x) => s + x.delivered, 0);
        m.dropsTotal = m.offeredTotal - m.deliveredTotal;
        const director = p.director(m);
        if (director && DIRECTOR_MODES.has(m.mode)) {
          m.flowHitRate = round(
            m.rounds.reduce((s, x) => s + (x.directorReasons?.tx_flow_hit ?? 0), 0) / m.offeredTotal,
            4,
          );
          if (!entries.has(director)) entries.set(director, await director.flowEntries());
          m.flowTableEntries = entries.get(director);
        }
        if (director && m.mode === 'syn-flood') {
          const f = o.flood ?? FLOOD_DEFAULT;
          const reasons: Record<string, number> = {};
          for (const x of m.rounds)
            for (const [k, v] of Object.entries(x.directorReasons ?? {})) reasons[k] = (reasons[k] ?? 0) + v;
          m.flood = {
            syns: floodShape(f).syns,
            established: m.flows,
            every: f.every,
            establishedSent: m.rounds.reduce((s, x) => s + (x.floodEstablished ?? 0), 0),
            flowHits: reasons.tx_flow_hit ?? 0,
            reasons,
            flowEntriesBefore: p.floodEntriesBefore ?? 0,
            flowEntriesAfter: entries.get(director)!,
          };
        }
      }
      summarise(p.scenario, o);
    }
    const pktgen = pktgenUnavailable();
    const flowsText = `flow i of N: source port ${BASE_PORT} + i mod ${MAX_PORTS}, past ${MAX_PORTS} flows the source address's low 16 bits + ⌊i / ${MAX_PORTS}⌋; incremental checksums`;
    const cpus = GEN_CPUS.slice(0, procs);
    const where = `${procs === 1 ? 'one generator process' : `${procs} generator processes`} per flow count in the generator's namespace of each path${cpus.length ? `, pinned to CPU ${cpus.join(' and ')} (taskset; the packet path runs in the sender's softirq)` : ''}`;
    return {
      generator: {
        kind,
        detail:
          kind === 'live-frames'
            ? `xdp_gen on BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (template restored every run; ${flowsText}), ${where}`
            : `AF_PACKET TX ring (TPACKET_V2, PACKET_QDISC_BYPASS, native/packet_tx.cc) cycling through one pre-built frame per flow (${flowsText}), ${where}; ${liveFrames}`,
        pktgen:
          pktgen === null
            ? `present, not used: every mode is driven by the same ${kind} generator for a like-for-like comparison`
            : `not available: ${pktgen}`,
        liveFrames,
        processes: procs,
      },
      bpfStats: { enabled: stats.enabled, detail: stats.detail },
      frameBytes: paths[0]?.frameBytes ?? 0,
      flows: [...o.flows],
      baseFlows: o.baseFlows,
      flowTableSize: o.flowTableSize ?? BENCH_DIRECTOR_LIMITS.flows,
      packetsPerRound: o.packets,
      batchSize: o.batch,
      rounds: o.rounds,
      scenarios: paths.map((p) => p.scenario),
    };
  } finally {
    stats.restore();
    for (const g of own.gens) await g.stop().catch(() => undefined);
    for (const t of own.teardown) await t().catch((err: unknown) => log.warn({ err }, 'remove topology'));
    for (const p of own.progs) await p.close().catch(() => undefined);
    try {
      if (fs.existsSync(pinRoot)) fs.rmSync(pinRoot, { recursive: true, force: true });
    } catch (err) {
      log.warn({ err: wrap('XD_ERR_BPF_PIN', `remove ${pinRoot}`, err) }, 'cleanup');
    }
  }
}
