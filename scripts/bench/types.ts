// Result types of the benchmark suite. Pure: imported by every section, the
// report writer and the CLI; imports nothing.

export type SectionName = 'testrun' | 'pktrate' | 'mysql' | 'maglev' | 'failover' | 'scale';
export const SECTION_NAMES: readonly SectionName[] = ['testrun', 'pktrate', 'mysql', 'maglev', 'failover', 'scale'];

/** A section (or one comparison inside it) that could not run here, with the exact reason found by trying. */
export interface Skipped {
  status: 'skipped';
  reason: string;
  /** Command that makes it possible (e.g. "apt-get install -y haproxy"), when there is one. */
  install?: string;
}

export interface Failed {
  status: 'error';
  code?: string;
  error: string;
}

export interface Done<T> {
  status: 'ok';
  durationMs: number;
  data: T;
}

export type SectionOutcome<T> = Done<T> | Skipped | Failed;

/** Median and spread of a list of samples. */
export interface Spread {
  n: number;
  median: number;
  min: number;
  max: number;
  /** 25th and 75th percentile (linear interpolation). */
  p25: number;
  p75: number;
}

// ---- 1. BPF_PROG_TEST_RUN ns/packet ----

export interface TestRunCase {
  name: string;
  description: string;
  /** XDP verdict the director returned (2 = XDP_PASS, 3 = XDP_TX). */
  verdict: number;
  verdictName: string;
  /** Verdict reason (enum xd_reason) every timed run was counted under, checked per round. */
  reason: string;
  /** ns/packet per round (kernel-reported average over `repeat`). */
  rounds: number[];
  ns: Spread;
  /** Median of (case − no-op) over rounds, each round against the no-op run right before it. */
  deltaOverNoop: Spread;
  /**
   * bpf_stats: the kernel's own ns per run of the director over each timed run (Δrun_time_ns /
   * Δrun_cnt, one count per repeat), and that minus the no-op's in the same round.
   */
  bpfNs?: Spread;
  bpfOverNoop?: Spread;
}

/** One packet class of the forwarding comparison (DR vs tunnel), timed one run per call. */
export interface ForwardingCostCase {
  name: string;
  forwarding: 'dr' | 'tunnel/ipip' | 'tunnel/gue' | 'nat';
  /**
   * 'new flow': a SYN reusing the 5-tuple of a proved flow (rescheduled in place); 'fresh SYN': a
   * SYN from a client never seen, every call (the embryonic insert); 'reply': NAT out, a backend's
   * reply to the client of an established flow (compared with DR established).
   */
  packet: 'new flow' | 'fresh SYN' | 'established' | 'reply';
  verdictName: string;
  /** Verdict reason every timed call was counted under, checked per round. */
  reason: string;
  /** Mean kernel-reported ns per call, per round. */
  rounds: number[];
  ns: Spread;
  /** Median over rounds of (this − the no-op timed the same way in the same round). */
  overNoop: Spread;
  /** overNoop median / DR's overNoop median for the same packet class, established for a reply (1 for DR). */
  vsDr?: number;
  /** bpf_stats: the kernel's ns per run of the director over each round's calls, and that minus the no-op's in the same round. */
  bpfNs?: Spread;
  bpfOverNoop?: Spread;
}

/**
 * DR and tunnel services side by side, every class timed the same way: BPF_PROG_TEST_RUN with
 * repeat=1 per call (a tunnel packet cannot be repeated on one buffer: bpf_xdp_adjust_head
 * moves its start for good), the kernel's ns of each call averaged over `calls` calls.
 */
export interface ForwardingCostData {
  method: string;
  calls: number;
  rounds: number;
  noop: { program: string; rounds: number[]; ns: Spread; bpfNs?: Spread };
  cases: ForwardingCostCase[];
}

export interface TestRunData {
  repeat: number;
  rounds: number;
  object: string;
  calibration: { program: string; rounds: number[]; ns: Spread; bpfNs?: Spread };
  cases: TestRunCase[];
  /** DR vs tunnel, repeat=1 per call for both (see ForwardingCostData); absent when the caller left it out. */
  forwarding?: ForwardingCostData;
  /** Whether the kernel counted the test runs (bpf_stats) and how. */
  bpfStats?: { enabled: boolean; detail: string };
}

// ---- 2. packet rate through veth ----

/**
 * What runs at the director's eth0 in one cell:
 *   xdp-native / xdp-generic     xdirector (DR service) in that XDP mode
 *   xdp-tx-noop / xdp-tx-noop-generic   the no-op XDP_TX program (MAC rewrite only) in that mode: the ceiling
 *   tunnel-ipip / tunnel-gue     xdirector, native, the same service with `forwarding: tunnel`
 *   kernel-forward               XDP_PASS + kernel IPv4 forwarding
 *   ipvs                         IPVS direct routing (where the kernel has it)
 */
export type PktMode =
  | 'xdp-native'
  | 'xdp-generic'
  | 'xdp-tx-noop'
  | 'xdp-tx-noop-generic'
  | 'tunnel-ipip'
  | 'tunnel-gue'
  | 'kernel-forward'
  | 'ipvs'
  | 'syn-flood'
  | 'xdp-tx-noop-flood';

export interface PktRound {
  offered: number;
  delivered: number;
  /** offered − delivered */
  drops: number;
  seconds: number;
  mppsOffered: number;
  mppsDelivered: number;
  /** CPU time of the generator's context during the run (the whole inline path, see genworker.ts). */
  cpuSeconds: number;
  /** delivered / cpuSeconds / 1e6: robust against other load on the machine. */
  mppsPerCpu: number;
  /**
   * CPU time of all ksoftirqd threads during the run: softirq work deferred out of the
   * generator's context (not in cpuSeconds); it includes other work on the machine, so it
   * is an upper bound that shows whether mppsPerCpu missed part of the path.
   */
  ksoftirqdSeconds: number;
  perReceiver: number[];
  /** Mean length of the delivered frames (a tunnel's are longer by its outer headers). */
  bytesPerFrame: number;
  /** xdirector modes: packets per verdict reason during the timed run (e.g. all tx_flow_hit). */
  directorReasons?: Record<string, number>;
  /**
   * The kernel's own accounting of the program at the director's eth0 during the timed run
   * (bpf_stats: run_cnt and run_time_ns of bpf_prog_info, kernel.bpf_stats_enabled=1 for the
   * section): independent of how fast the generator is. Absent if the kernel counted no run.
   */
  bpfStats?: { runs: number; runTimeNs: number; nsPerRun: number };
  /** Flood cells: of the frames offered, the established ACKs (the rest are spoofed SYNs). */
  floodEstablished?: number;
}

/** What the director did with the established flows inside a SYN flood (syn-flood cell). */
export interface FloodOutcome {
  /** Distinct spoofed SYNs in the stream, established flows, one frame in `every` established. */
  syns: number;
  established: number;
  every: number;
  /** Established ACKs offered over all rounds, and those the director counted as flow hits (per-backend flow_hits). */
  establishedSent: number;
  flowHits: number;
  /** Reasons counted over all rounds (all frames, flood and established). */
  reasons: Record<string, number>;
  /** Flow-table entries (IPv4 + IPv6) after the warm-up, before the first flood round, and after the last. */
  flowEntriesBefore: number;
  flowEntriesAfter: number;
}

/** One cell of the run: a path, a flow count and what runs at the director's eth0. */
export interface PktCell {
  mode: PktMode;
  /** Distinct flows the generator cycles through (source port, and source address past the port range). */
  flows: number;
  description: string;
  status: 'ok' | 'skipped' | 'error';
  reason?: string;
  install?: string;
  rounds: PktRound[];
  mppsDelivered?: Spread;
  mppsPerCpu?: Spread;
  dropsTotal?: number;
  offeredTotal?: number;
  deliveredTotal?: number;
  /** xdirector cells: timed packets counted as flow-table hits / timed packets offered, all rounds. */
  flowHitRate?: number;
  /** xdirector cells: entries in the director's flow tables after the run, counted by the product's status(). */
  flowTableEntries?: number;
  /** bpf_stats ns per run of the program at the director's eth0, over rounds (see PktRound.bpfStats). */
  nsPerPacket?: Spread;
  /** syn-flood cell: what became of the established flows inside the flood. */
  flood?: FloodOutcome;
}

/** Ratios of medians at the path's base flow count, when both sides ran. */
export interface PktRatios {
  nativeVsCeiling?: number;
  nativeVsKernel?: number;
  genericVsKernel?: number;
}

/** Director against the no-op XDP_TX ceiling in the same XDP mode, at one flow count. */
export interface CeilingRatio {
  flows: number;
  xdp: 'native' | 'generic';
  /** Medians over rounds (Mpps delivered). */
  director?: number;
  ceiling?: number;
  /** director / ceiling, medians (wall clock). */
  ratio?: number;
  /** The same on Mpps per CPU-second. */
  ratioPerCpu?: number;
  /** Median over rounds of director / ceiling measured in the same round. */
  pairedRatio?: number;
  /** The director cell's flow-table hit rate and table entries (see PktCell). */
  flowHitRate?: number;
  flowTableEntries?: number;
  /** bpf_stats, medians over rounds: ns per packet of the director program and of the no-op program, and director − no-op. */
  directorNs?: number;
  ceilingNs?: number;
  nsOverCeiling?: number;
  /** Median over rounds of director ns − no-op ns measured in the same round. */
  pairedNsOverCeiling?: number;
}

/** A forwarding method against DR, the same service on the same path (native XDP). */
export interface ForwardingRatio {
  forwarding: 'dr' | 'tunnel/ipip' | 'tunnel/gue' | 'nat';
  mode: PktMode;
  flows: number;
  /** Median Mpps delivered. */
  mpps?: number;
  /** mpps / DR's mpps (medians, wall clock). */
  ratioToDr?: number;
  ratioToDrPerCpu?: number;
  /** Median over rounds of this / DR in the same round. */
  pairedRatioToDr?: number;
}

/**
 * One path the generator drives:
 *   dr-bridge  gen ─ bridge ─ director ─ bridge ─ real servers (the full one-armed DR path;
 *              bridge and veth hops dominate the cost)
 *   isolated   gen eth0 ⇄ director eth0 on one veth pair, the director sends straight back
 *              to the generator (where a counter drops): the director's own cost
 */
export type PktScenarioName = 'dr-bridge' | 'isolated';

export interface PktScenario {
  name: PktScenarioName;
  description: string;
  /** Interfaces counting delivered frames (real servers, or the generator's own eth0). */
  receivers: number;
  cells: PktCell[];
  /** At the base flow count. */
  ratios: PktRatios;
  /** The same ratios on Mpps per CPU-second. */
  ratiosPerCpu: PktRatios;
  /** Per flow count and XDP mode where both the director and the no-op ran. */
  ceiling: CeilingRatio[];
  /** DR and the tunnel encapsulations, where they ran (isolated path). */
  forwarding: ForwardingRatio[];
  /** syn-flood against xdp-tx-noop-flood on the same flood stream (isolated path, when run; flows: the established flows in it). */
  flood?: CeilingRatio;
}

export interface PktRateData {
  generator: {
    /** What sent the frames: BPF_PROG_RUN live frames where the kernel allows it, else an AF_PACKET TX ring. */
    kind: 'pktgen' | 'live-frames' | 'af-packet';
    detail: string;
    pktgen: string;
    /** Whether live frames ran here, or the kernel's refusal found by trying ("refused by this kernel: EPERM …"). */
    liveFrames: string;
    /** Generator processes per flow count, each pinned to its own CPU. */
    processes: number;
  };
  /** How the ns-per-packet figures were taken: kernel.bpf_stats_enabled during the section and its value before. */
  bpfStats: { enabled: boolean; detail: string };
  frameBytes: number;
  /** Flow counts of the ceiling matrix (isolated path). */
  flows: number[];
  /** Flow count of the DR path, the kernel path and the forwarding comparison. */
  baseFlows: number;
  /** Entries of each director's flow table (IPv4 and IPv6 each), as configured through XdpDataplane.open(). */
  flowTableSize: number;
  packetsPerRound: number;
  batchSize: number;
  rounds: number;
  /** Scenarios measured in the same run, rounds interleaved across every cell of every scenario. */
  scenarios: PktScenario[];
}

// ---- 3. MySQL through the VIP ----

export type MysqlTarget = 'xdp' | 'direct' | 'haproxy';

export interface MysqlPoint {
  clients: number;
  /** Median over rounds. */
  connectsPerSec: number;
  /** Median over rounds. */
  queriesPerSec: number;
  /** Failed connects/queries during the timed windows (should be 0). */
  errors: number;
  /** Which backends answered (server_id → count) in the connect phase. */
  backends: Record<string, number>;
}

export interface MysqlTargetResult {
  target: MysqlTarget;
  description: string;
  status: 'ok' | 'skipped' | 'error';
  reason?: string;
  install?: string;
  points: MysqlPoint[];
}

export interface MysqlData {
  loader: string;
  /** Seconds per measurement window. */
  seconds: number;
  /** Rounds per point (median reported). */
  rounds: number;
  clients: number[];
  backends: number;
  targets: MysqlTargetResult[];
}

// ---- 4. Maglev ----

export interface MaglevBuild {
  backends: number;
  ringSize: number;
  ms: Spread;
}

export interface MaglevBalance {
  backends: number;
  ringSize: number;
  weights: string;
  /** max over backends of (share / weight share), and min. */
  maxOverExpected: number;
  minOverExpected: number;
  /** max share / min share, each normalised by its weight. */
  maxMinRatio: number;
}

export interface MaglevDisruption {
  backends: number;
  ringSize: number;
  change: 'remove-one' | 'add-one';
  movedSlots: number;
  minimumSlots: number;
  /** movedSlots / minimumSlots */
  factor: number;
}

/** Ring apply through the real XDP dataplane (measureApply, src/dataplane/xdp/measure.ts). */
export interface RingApplyData {
  status: 'ok' | 'skipped' | 'error';
  reason?: string;
  ringSize: number;
  backends: number;
  samples: number;
  /** The goal (issue 2): build and apply a new ring in under this many ms. */
  goalMs: number;
  /** Ring build only (Maglev table), wall clock and process CPU. */
  ringBuildMs?: Spread;
  ringBuildCpuMs?: Spread;
  /** Whole XdpDataplane.apply() of one backend's weight change (plan, changed slots, flip). */
  applyMs?: Spread;
  applyCpuMs?: Spread;
  slotsWritten?: Spread;
  /** First apply of the whole state (every slot written). */
  firstApplyMs?: number;
  loadavgBefore?: number[];
  loadavgAfter?: number[];
}

export interface MaglevData {
  builds: MaglevBuild[];
  /** Absent when not selected; skipped without root/bpffs. */
  apply?: RingApplyData;
  balance: MaglevBalance[];
  disruption: MaglevDisruption[];
}

// ---- 5. failover / health detection ----

export interface FailoverItem {
  name: string;
  status: 'ok' | 'not-available';
  reason?: string;
  ms?: Spread;
  detail?: Record<string, unknown>;
}

export interface FailoverData {
  items: FailoverItem[];
}

// ---- 6. packet path at scale ----

/** One row of the "packet path at scale" table: a value, or the reason it has none. */
export interface ScaleRow {
  id: 'flows-large' | 'flows-base' | 'syn' | 'flood' | 'tunnel-ipip' | 'tunnel-gue' | 'memory';
  /** The case as the table names it (with the flow count used). */
  case: string;
  goal: string;
  /** The value in the row's unit (ratio, ns, bytes) and as the table shows it. */
  value?: number;
  today?: string;
  /** Whether the value meets the goal (the flood: and the established flows were untouched). */
  met?: boolean;
  /** Flood: every established frame inside it was a flow hit and no flow left the table. */
  untouched?: boolean;
  /** The no-op's numbers of the same run. */
  noop?: string;
  /** The director's bpf_stats ns per packet. */
  bpfStats?: string;
  /** The other ratios (wall clock, per CPU-second) and what the value was made from. */
  detail?: string;
  /** Why the row has no value. */
  skipped?: string;
}

/** One flow-tracking map's memory as the kernel accounts it. */
export interface ScaleMemoryTable {
  role: string;
  map: string;
  type: string;
  keyType: string;
  valueType: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  /** Flows the table holds: max_entries × flows per entry. */
  capacity: number;
  /** Bytes (memlock in /proc/self/fdinfo: the kernel's memory-usage accounting of the map). */
  memlock: number;
  bytesPerFlow: number;
  /** A per-CPU cache of the flow table rather than where a flow is tracked. */
  cache: boolean;
}

export interface ScaleData {
  method: string;
  rows: ScaleRow[];
  /** The isolated path's packet-rate run the rate rows come from. */
  pktrate: PktRateData;
  /** The test run the SYN row comes from. */
  syn: TestRunData;
  memory: ScaleMemoryTable[];
}

// ---- whole run ----

export interface MachineInfo {
  /** 1-minute load average at the start of the run (other work on the machine makes rates noisy). */
  loadAvg1: number;
  kernel: string;
  cpuModel: string;
  cpus: number;
  memoryMiB: number;
  node: string;
  hostname: string;
}

export interface BenchResult {
  version: 1;
  tool: 'xdirector bench';
  startedAt: string;
  finishedAt: string;
  quick: boolean;
  machine: MachineInfo;
  sections: {
    testrun?: SectionOutcome<TestRunData>;
    pktrate?: SectionOutcome<PktRateData>;
    mysql?: SectionOutcome<MysqlData>;
    maglev?: SectionOutcome<MaglevData>;
    failover?: SectionOutcome<FailoverData>;
    scale?: SectionOutcome<ScaleData>;
  };
  /** Files written by the report (absolute paths). */
  files: string[];
}
