// Section 1: per-packet cost of the director under BPF_PROG_TEST_RUN.
//
// The xdirector object is loaded with an IPv4 TCP, an IPv4 UDP and an IPv6 TCP
// service (two backends each). Every round runs, for each packet class, the
// no-op program (xdp_pass) and then the director on the same packet with the
// same repeat count, so the calibration sees the same machine state as the
// case it calibrates; the kernel reports the average ns per run.
//
// Repeat runs reuse one buffer: the director rewrites only the MAC addresses,
// which it never reads back, so every iteration takes the same path (a SYN
// hashes anew on every run, an established packet hits its flow every run).
//
// A tunnel packet cannot be repeated that way (bpf_xdp_adjust_head moves the
// reused buffer's start for good), so the forwarding comparison (forwardingCost)
// times DR, IPIP and GUE services of the same director alike, one run per call, with a DR SYN
// from a client never seen on every call beside them (the embryonic insert a repeated SYN, which
// reuses one 5-tuple, never pays).
import * as fs from 'node:fs';
import { testRun, testRunAsync } from '../../src/bpf/testrun';
import { getNative } from '../../src/bpf/native';
import type { Logger } from '../../src/log';
import { loadDirector, loadPass, PROVE_WAIT_MS, type BenchDirector, type PinnedProg } from './director';
import { buildFrame, TCP_ACK, TCP_SYN, type FrameSpec } from './packet';
import { formatMac } from '../../src/net/inet';
import { round, roundSpread, spread } from './stats';
import type { ForwardingCostCase, ForwardingCostData, TestRunCase, TestRunData } from './types';
import { ToolError } from '../errors';
import { enableBpfStats, nsPerRun, progStats } from './bpfstats';

export interface TestRunBenchOptions {
  prefix: string;
  repeat: number;
  rounds: number;
  /** Forwarding comparison: repeat=1 calls per class per round. */
  calls: number;
  log: Logger;
  progress?: (msg: string) => void;
  /** The director object to time (default dist/bpf/xdirector.bpf.o): e.g. a build of another commit, for an A/B run. */
  objectPath?: string;
  /** The packet classes to time, by name (default all of TESTRUN_CASES). */
  cases?: string[];
  /** Time the forwarding comparison (DR, tunnel, NAT at repeat=1) as well (default true). */
  forwarding?: boolean;
}

export const TESTRUN_FULL = { repeat: 1_000_000, rounds: 9, calls: 20_000 };
export const TESTRUN_QUICK = { repeat: 100_000, rounds: 3, calls: 2_000 };

const CLIENT_MAC = '02:00:00:00:00:10';
const DIRECTOR_MAC = '02:00:00:00:00:02';
const V4 = {
  client: '10.200.0.10',
  vip: '10.200.0.100',
  other: '10.200.0.200',
  rs: ['10.200.0.11', '10.200.0.12'],
  director: '10.200.0.2',
};
/** Forwarding comparison: the DR service above and the same service, tunnelled, on its own VIP per encapsulation. */
const TUNNEL = {
  ipip: '10.200.0.101',
  gue: '10.200.0.102',
  rs: ['10.210.1.11', '10.210.1.12'],
  nextHop: '02:00:00:00:00:fe',
};
/** Forwarding comparison: the same service again with NAT, VIP:3307 -> backends:3306, one-armed (XDP_TX). */
const NAT = { vip: '10.200.0.103', port: 3307 };
const V6 = { client: 'fd00:200::10', vip: 'fd00:200::100', rs: ['fd00:200::11', 'fd00:200::12'] };
// The backends carry the director's own MAC: a repeat run reuses one buffer, and the director
// forwards only frames addressed to its interface (match_dst_mac), so a rewrite to another MAC
// would turn every later iteration into pass_other_host. The rewrite costs the same either way.
const RS_MACS = [DIRECTOR_MAC, DIRECTOR_MAC];

interface CaseDef {
  name: string;
  description: string;
  /** Sent once (repeat 1) before timing: creates the flow the timed packet hits. */
  /** Sent once each (repeat 1) before timing: create the flow the timed packet hits. */
  prime?: FrameSpec[];
  packet: FrameSpec;
  expect: 'XDP_PASS' | 'XDP_TX';
  /** The verdict reason every timed run must be counted under. */
  reason: string;
}

function v4(proto: 'tcp' | 'udp', dst: string, dport: number, flags?: number): FrameSpec {
  return {
    srcMac: CLIENT_MAC,
    dstMac: DIRECTOR_MAC,
    family: 4,
    src: V4.client,
    dst,
    proto,
    sport: 40000,
    dport,
    flags,
    minLength: 60,
  };
}
function v6(flags: number): FrameSpec {
  return {
    srcMac: CLIENT_MAC,
    dstMac: DIRECTOR_MAC,
    family: 6,
    src: V6.client,
    dst: V6.vip,
    proto: 'tcp',
    sport: 40000,
    dport: 3306,
    flags,
  };
}

const CASES: CaseDef[] = [
  {
    name: 'non-VIP pass',
    description: 'IPv4 TCP to a port that is no service: XDP_PASS untouched',
    packet: v4('tcp', V4.other, 22, TCP_ACK),
    expect: 'XDP_PASS',
    reason: 'pass_non_vip',
  },
  {
    name: 'VIP SYN (new flow)',
    prime: [v4('tcp', V4.vip, 3306, TCP_SYN), v4('tcp', V4.vip, 3306, TCP_ACK)],
    description:
      'IPv4 TCP SYN to VIP:3306 reusing a 5-tuple of the flow table (one buffer is repeated, so the same 5-tuple; the bench director reschedules a reused 5-tuple at once, syn_reuse_idle 0): flow lookup, service lookup, Maglev hash, ring and backend lookups, entry rewritten, MAC rewrite, XDP_TX',
    packet: v4('tcp', V4.vip, 3306, TCP_SYN),
    expect: 'XDP_TX',
    reason: 'tx_new_flow',
  },
  {
    name: 'VIP established (flow hit)',
    description: 'IPv4 TCP ACK of a known flow: flow lookup, MAC rewrite, XDP_TX',
    prime: [v4('tcp', V4.vip, 3306, TCP_SYN), v4('tcp', V4.vip, 3306, TCP_ACK)],
    packet: v4('tcp', V4.vip, 3306, TCP_ACK),
    expect: 'XDP_TX',
    reason: 'tx_flow_hit',
  },
  {
    name: 'IPv6 established (flow hit)',
    description: 'IPv6 TCP ACK of a known flow',
    prime: [v6(TCP_SYN), v6(TCP_ACK)],
    packet: v6(TCP_ACK),
    expect: 'XDP_TX',
    reason: 'tx_flow_hit',
  },
  {
    name: 'UDP (flow hit)',
    description: 'IPv4 UDP to VIP:3306/udp after its first two datagrams made it a flow',
    prime: [v4('udp', V4.vip, 3306), v4('udp', V4.vip, 3306)],
    packet: v4('udp', V4.vip, 3306),
    expect: 'XDP_TX',
    reason: 'tx_flow_hit',
  },
];

/** The packet classes of the repeat runs, by name (TestRunBenchOptions.cases picks among them). */
export const TESTRUN_CASES: readonly string[] = CASES.map((k) => k.name);

export async function runTestRunBench(o: TestRunBenchOptions): Promise<TestRunData> {
  const log = o.log.child({ component: 'bench-testrun' });
  for (const name of o.cases ?? [])
    if (!TESTRUN_CASES.includes(name))
      throw new ToolError(
        'XD_ERR_BENCH',
        `test run case "${name}" does not exist: use one of ${TESTRUN_CASES.join(', ')}`,
      );
  const chosen = o.cases ? CASES.filter((k) => o.cases!.includes(k.name)) : CASES;
  const c = getNative().constants;
  const verdicts: Record<number, string> = {
    [c.XDP_ABORTED]: 'XDP_ABORTED',
    [c.XDP_DROP]: 'XDP_DROP',
    [c.XDP_PASS]: 'XDP_PASS',
    [c.XDP_TX]: 'XDP_TX',
    [c.XDP_REDIRECT]: 'XDP_REDIRECT',
  };
  const pinDir = `/sys/fs/bpf/${o.prefix}t`;
  let director: BenchDirector | undefined;
  let noop: PinnedProg | undefined;
  // bpf_stats: the kernel counts every test run of a program (one per repeat) while it is on.
  const stats = enableBpfStats(log);
  try {
    director = await loadDirector({ pinDir, log, mac: DIRECTOR_MAC, objectPath: o.objectPath });
    const backends = (addrs: string[]) => addrs.map((address, i) => ({ address, port: 3306, mac: RS_MACS[i] }));
    await director.setService({ vip: V4.vip, port: 3306, proto: 'tcp', backends: backends(V4.rs) });
    await director.setService({ vip: V4.vip, port: 3306, proto: 'udp', backends: backends(V4.rs) });
    await director.setService({ vip: V6.vip, port: 3306, proto: 'tcp', backends: backends(V6.rs) });
    for (const encap of ['ipip', 'gue'] as const) {
      await director.setService({
        vip: TUNNEL[encap],
        port: 3306,
        proto: 'tcp',
        tunnel: { encap, source: V4.director },
        backends: TUNNEL.rs.map((address) => ({ address, port: 3306, mac: TUNNEL.nextHop })),
      });
    }
    await director.setService({ vip: NAT.vip, port: NAT.port, proto: 'tcp', nat: true, backends: backends(V4.rs) });
    noop = await loadPass({ pinDir });

    const frames = chosen.map((k) => ({
      k,
      data: buildFrame(k.packet).bytes,
      prime: (k.prime ?? []).map((p) => buildFrame(p).bytes),
    }));
    const samples = chosen.map(() => ({
      ns: [] as number[],
      delta: [] as number[],
      bpf: [] as number[],
      bpfDelta: [] as number[],
      verdict: -1,
    }));
    const calib: number[] = [];
    const calibBpf: number[] = [];
    // Warm-up and checks: each case once, with the expected verdict and a rewritten MAC on XDP_TX.
    for (const f of frames) {
      for (const p of f.prime) await testRunAsync(director, { data: p, repeat: 1 });
      const r = await testRunAsync(director, { data: f.data, repeat: 1 });
      const got = verdicts[r.retval] ?? String(r.retval);
      if (got !== f.k.expect)
        throw new ToolError(
          'XD_ERR_BENCH',
          `test run "${f.k.name}": the director returned ${got}, expected ${f.k.expect} (is the service configured?)`,
        );
      if (f.k.expect === 'XDP_TX') {
        const dst = formatMac(r.dataOut.subarray(0, 6));
        if (!RS_MACS.includes(dst))
          throw new ToolError(
            'XD_ERR_BENCH',
            `test run "${f.k.name}": XDP_TX with destination MAC ${dst}, not a backend's`,
          );
      }
    }
    // The handshakes above left their flows on probation: a packet PROVE_WAIT_MS later moves each to
    // the flow table, where the timed packets find it (and a repeated SYN reschedules it in place).
    await proveFlows(
      director,
      frames.map((f) => f.prime),
    );
    for (let r = 0; r < o.rounds; r++) {
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i];
        const nStats = progStats(noop.fd);
        const n = await testRunAsync(noop, { data: f.data, repeat: o.repeat });
        const nBpf = nsPerRun(nStats, progStats(noop.fd));
        for (const p of f.prime) await testRunAsync(director, { data: p, repeat: 1 });
        const before = director.reasons();
        const dStats = progStats(director.fd);
        const d = await testRunAsync(director, { data: f.data, repeat: o.repeat });
        const dBpf = nsPerRun(dStats, progStats(director.fd));
        const after = director.reasons();
        const counted = (after[f.k.reason] ?? 0) - (before[f.k.reason] ?? 0);
        if (counted !== o.repeat) {
          throw new ToolError(
            'XD_ERR_BENCH',
            `test run "${f.k.name}": ${counted} of ${o.repeat} runs counted as ${f.k.reason} (reasons now ${JSON.stringify(after)}): the case does not measure what it says`,
          );
        }
        calib.push(n.duration);
        samples[i].ns.push(d.duration);
        samples[i].delta.push(d.duration - n.duration);
        samples[i].verdict = d.retval;
        if (nBpf) calibBpf.push(nBpf.nsPerRun);
        if (dBpf) samples[i].bpf.push(dBpf.nsPerRun);
        if (nBpf && dBpf) samples[i].bpfDelta.push(dBpf.nsPerRun - nBpf.nsPerRun);
      }
      o.progress?.(
        `testrun round ${r + 1}/${o.rounds}: ${frames.map((f, i) => `${f.k.name} ${samples[i].ns[r]} ns`).join(', ')}`,
      );
    }
    const forwarding = o.forwarding === false ? undefined : await forwardingCost(director, noop, o, verdicts);
    const cases: TestRunCase[] = frames.map((f, i) => ({
      name: f.k.name,
      description: f.k.description,
      verdict: samples[i].verdict,
      verdictName: verdicts[samples[i].verdict] ?? String(samples[i].verdict),
      reason: f.k.reason,
      rounds: samples[i].ns,
      ns: roundSpread(spread(samples[i].ns), 2),
      deltaOverNoop: roundSpread(spread(samples[i].delta), 2),
      ...(samples[i].bpf.length ? { bpfNs: roundSpread(spread(samples[i].bpf), 2) } : {}),
      ...(samples[i].bpfDelta.length ? { bpfOverNoop: roundSpread(spread(samples[i].bpfDelta), 2) } : {}),
    }));
    return {
      repeat: o.repeat,
      rounds: o.rounds,
      object: o.objectPath ?? 'dist/bpf/xdirector.bpf.o',
      calibration: {
        program: 'xdp_pass (return XDP_PASS)',
        rounds: calib.map((x) => round(x, 2)),
        ns: roundSpread(spread(calib), 2),
        ...(calibBpf.length ? { bpfNs: roundSpread(spread(calibBpf), 2) } : {}),
      },
      cases,
      ...(forwarding ? { forwarding } : {}),
      bpfStats: { enabled: stats.enabled, detail: stats.detail },
    };
  } finally {
    stats.restore();
    await noop?.close().catch(() => undefined);
    await director?.close().catch((err: unknown) => log.warn({ err }, 'close director'));
    fs.rmSync(pinDir, { recursive: true, force: true });
  }
}

/**
 * DR vs tunnel (IPIP, GUE) on the same director, every class timed one run per call: a tunnel
 * packet grows with bpf_xdp_adjust_head, which on a repeated (non-live) test run moves the one
 * reused buffer for good, so its second repeat would see the encapsulated frame. Timing DR the
 * same way keeps the comparison honest; the kernel's ns of each call includes its timer's own
 * cost, which the no-op (xdp_pass, same method, same round) measures.
 */
/**
 * Sends each flow's priming packets (a handshake), waits PROVE_WAIT_MS, then each flow's last
 * priming packet again: the flows leave the probation table for the flow table (TX_PROVEN).
 * Fixtures that share a 5-tuple are proved once. A flow whose proving packet did not count as
 * proven (e.g. served from a CPU's flow-cache slot instead) is primed and proved again, at most
 * three times; the timed runs' reason check reports any flow still not in the flow table.
 */
async function proveFlows(director: BenchDirector, primes: Buffer[][]): Promise<void> {
  let todo = [
    ...new Map(primes.filter((p) => p.length > 0).map((p) => [p[p.length - 1]!.toString('hex'), p])).values(),
  ];
  for (let attempt = 0; attempt < 3 && todo.length > 0; attempt++) {
    for (const p of todo) for (const pkt of p) await testRunAsync(director, { data: pkt, repeat: 1 });
    await new Promise((r) => setTimeout(r, PROVE_WAIT_MS));
    const left: Buffer[][] = [];
    for (const p of todo) {
      const before = director.reasons().tx_proven ?? 0;
      await testRunAsync(director, { data: p[p.length - 1]!, repeat: 1 });
      if ((director.reasons().tx_proven ?? 0) === before) left.push(p);
    }
    todo = left;
  }
}

async function forwardingCost(
  director: BenchDirector,
  noop: PinnedProg,
  o: TestRunBenchOptions,
  verdicts: Record<number, string>,
): Promise<ForwardingCostData> {
  const tx = getNative().constants.XDP_TX;
  const ack = (vip: string, sport: number, flags: number): Buffer =>
    buildFrame({ ...v4('tcp', vip, vip === NAT.vip ? NAT.port : 3306, flags), sport }).bytes;
  const classes: {
    name: string;
    forwarding: ForwardingCostCase['forwarding'];
    packet: ForwardingCostCase['packet'];
    prime: Buffer[];
    data: Buffer;
    /** Each call's packet when it is not `data` every time (a fresh SYN). */
    next?: () => Buffer;
    reason: string;
    verdict: number;
    ns: number[];
    delta: number[];
    bpf: number[];
    bpfDelta: number[];
  }[] = (
    [
      ['dr', V4.vip],
      ['tunnel/ipip', TUNNEL.ipip],
      ['tunnel/gue', TUNNEL.gue],
      ['nat', NAT.vip],
    ] as const
  ).flatMap(([forwarding, vip], k) =>
    (['new flow', 'established'] as const).map((packet, j) => {
      const sport = 41000 + k * 2 + j;
      return {
        name: `${forwarding === 'dr' ? 'DR' : forwarding === 'tunnel/ipip' ? 'IPIP' : forwarding === 'nat' ? 'NAT in' : 'GUE'} ${packet === 'new flow' ? 'new flow (SYN)' : 'established'}`,
        forwarding,
        packet,
        // Both primed with a handshake and proved: with synReuseIdleMs 0 a SYN reusing the 5-tuple of a
        // known flow is rescheduled in place, a new flow every call.
        prime: [ack(vip, sport, TCP_SYN), ack(vip, sport, TCP_ACK)],
        data: ack(vip, sport, packet === 'new flow' ? TCP_SYN : TCP_ACK),
        reason: packet === 'new flow' ? 'tx_new_flow' : 'tx_flow_hit',
        verdict: -1,
        ns: [] as number[],
        delta: [] as number[],
        bpf: [] as number[],
        bpfDelta: [] as number[],
      };
    }),
  );
  // A SYN from a client address no earlier call used (10.64.0.0/10): the new-flow path with its
  // embryonic insert every call, where the SYN above reuses a proved flow's 5-tuple.
  let fresh = 0;
  const freshSyn = (): Buffer => {
    const n = fresh++;
    const src = `10.${64 + ((n >> 16) & 63)}.${(n >> 8) & 255}.${n & 255}`;
    return buildFrame({ ...v4('tcp', V4.vip, 3306, TCP_SYN), src }).bytes;
  };
  classes.splice(1, 0, {
    name: 'DR new flow (fresh SYN)',
    forwarding: 'dr',
    packet: 'fresh SYN',
    prime: [],
    data: freshSyn(),
    next: freshSyn,
    reason: 'tx_new_flow',
    verdict: -1,
    ns: [],
    delta: [],
    bpf: [],
    bpfDelta: [],
  });
  const noopFrame = ack(V4.vip, 41999, TCP_ACK);
  // A fresh SYN's packets are built before the timed calls, so building them does not stir the
  // caches between two calls. Returns the mean test-run ns per call and the kernel's bpf_stats ns
  // per run over the same calls.
  const mean = (prog: { fd: number }, data: Buffer, next?: () => Buffer): { ns: number; bpf?: number } => {
    const packets = next ? Array.from({ length: o.calls }, next) : undefined;
    let total = 0;
    const s0 = progStats(prog.fd);
    for (let k = 0; k < o.calls; k++) total += testRun(prog, { data: packets?.[k] ?? data, repeat: 1 }).duration;
    const b = nsPerRun(s0, progStats(prog.fd));
    return { ns: total / o.calls, ...(b ? { bpf: b.nsPerRun } : {}) };
  };
  for (const c of classes) {
    for (const p of c.prime) testRun(director, { data: p, repeat: 1 });
    const r = testRun(director, { data: c.data, repeat: 1 });
    if (r.retval !== tx)
      throw new ToolError(
        'XD_ERR_BENCH',
        `test run "${c.name}": the director returned ${verdicts[r.retval] ?? r.retval}, expected XDP_TX (is the service configured?)`,
      );
    c.verdict = r.retval;
  }
  await proveFlows(
    director,
    classes.map((c) => c.prime),
  );
  // NAT out: the established NAT flow's reply, backend:3306 -> client, through the out path with
  // the flow's route cached (as it is for a second after each bpf_fib_lookup()).
  const natFlow = classes.find((c) => c.forwarding === 'nat' && c.packet === 'established')!;
  const natSport = natFlow.data.readUInt16BE(14 + 20);
  const natRouted = (): string => {
    const rs = director.natRouted(V4.client, natSport, DIRECTOR_MAC);
    if (!rs)
      throw new ToolError(
        'XD_ERR_BENCH',
        `test run "NAT out": the NAT flow from port ${natSport} has no reverse entry`,
      );
    return rs;
  };
  const backend = natRouted();
  const reply = buildFrame({ ...v4('tcp', V4.client, natSport, TCP_ACK), src: backend, sport: 3306 }).bytes;
  {
    const r = testRun(director, { data: reply, repeat: 1 });
    if (r.retval !== tx)
      throw new ToolError(
        'XD_ERR_BENCH',
        `test run "NAT out reply": the director returned ${verdicts[r.retval] ?? r.retval}, expected XDP_TX`,
      );
    classes.push({
      ...natFlow,
      name: 'NAT out reply',
      packet: 'reply',
      prime: [],
      data: reply,
      reason: 'tx_nat_out',
      verdict: r.retval,
      ns: [],
      delta: [],
      bpf: [],
      bpfDelta: [],
    });
  }
  const noopRounds: number[] = [];
  const noopBpf: number[] = [];
  for (let round = 0; round < o.rounds; round++) {
    const nm = mean(noop, noopFrame);
    const n = nm.ns;
    noopRounds.push(n);
    if (nm.bpf !== undefined) noopBpf.push(nm.bpf);
    for (const c of classes) {
      if (c.packet === 'reply') natRouted(); // fresh for this class's calls (they take well under 0.9 s)
      const before = director.reasons();
      const dm = mean(director, c.data, c.next);
      const ns = dm.ns;
      if (dm.bpf !== undefined) c.bpf.push(dm.bpf);
      if (dm.bpf !== undefined && nm.bpf !== undefined) c.bpfDelta.push(dm.bpf - nm.bpf);
      const counted = (director.reasons()[c.reason] ?? 0) - (before[c.reason] ?? 0);
      if (counted !== o.calls) {
        throw new ToolError(
          'XD_ERR_BENCH',
          `test run "${c.name}": ${counted} of ${o.calls} calls counted as ${c.reason}: the case does not measure what it says`,
        );
      }
      c.ns.push(ns);
      c.delta.push(ns - n);
    }
    o.progress?.(
      `testrun forwarding round ${round + 1}/${o.rounds}: no-op ${n.toFixed(1)} ns, ${classes.map((c) => `${c.name} ${c.ns[round].toFixed(1)} ns`).join(', ')}`,
    );
  }
  const cases: ForwardingCostCase[] = classes.map((c) => ({
    name: c.name,
    forwarding: c.forwarding,
    packet: c.packet,
    verdictName: verdicts[c.verdict] ?? String(c.verdict),
    reason: c.reason,
    rounds: c.ns.map((x) => round(x, 2)),
    ns: roundSpread(spread(c.ns), 2),
    overNoop: roundSpread(spread(c.delta), 2),
    ...(c.bpf.length ? { bpfNs: roundSpread(spread(c.bpf), 2) } : {}),
    ...(c.bpfDelta.length ? { bpfOverNoop: roundSpread(spread(c.bpfDelta), 2) } : {}),
  }));
  for (const c of cases) {
    const dr = cases.find(
      (x) => x.forwarding === 'dr' && x.packet === (c.packet === 'reply' ? 'established' : c.packet),
    )!;
    // DR is its own baseline (1 by definition); a tunnel's ratio needs DR above the no-op, which
    // a noisy round can deny it at repeat=1 (then no ratio rather than a meaningless one).
    if (c.forwarding === 'dr') c.vsDr = 1;
    else if (dr.overNoop.median > 0) c.vsDr = round(c.overNoop.median / dr.overNoop.median, 3);
  }
  return {
    method:
      'BPF_PROG_TEST_RUN repeat=1 per call for every class (DR, tunnel and NAT alike), kernel-timed, mean over the calls of a round, median over interleaved rounds',
    calls: o.calls,
    rounds: o.rounds,
    noop: {
      program: 'xdp_pass (return XDP_PASS), timed the same way',
      rounds: noopRounds.map((x) => round(x, 2)),
      ns: roundSpread(spread(noopRounds), 2),
      ...(noopBpf.length ? { bpfNs: roundSpread(spread(noopBpf), 2) } : {}),
    },
    cases,
  };
}
