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
import * as fs from 'node:fs';
import { testRunAsync } from '../../src/bpf/testrun';
import { getNative } from '../../src/bpf/native';
import { XdError } from '../../src/errors';
import type { Logger } from '../../src/log';
import { loadDirector, loadPass, type BenchDirector, type PinnedProg } from './director';
import { buildFrame, TCP_ACK, TCP_SYN, type FrameSpec } from './packet';
import { formatMac } from '../../src/net/inet';
import { round, roundSpread, spread } from './stats';
import type { TestRunCase, TestRunData } from './types';
import { ToolError } from '../errors';

export interface TestRunBenchOptions {
  prefix: string;
  repeat: number;
  rounds: number;
  log: Logger;
  progress?: (msg: string) => void;
}

export const TESTRUN_FULL = { repeat: 1_000_000, rounds: 9 };
export const TESTRUN_QUICK = { repeat: 100_000, rounds: 3 };

const CLIENT_MAC = '02:00:00:00:00:10';
const DIRECTOR_MAC = '02:00:00:00:00:02';
const V4 = { client: '10.200.0.10', vip: '10.200.0.100', other: '10.200.0.200', rs: ['10.200.0.11', '10.200.0.12'] };
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
  return { srcMac: CLIENT_MAC, dstMac: DIRECTOR_MAC, family: 4, src: V4.client, dst, proto, sport: 40000, dport, flags, minLength: 60 };
}
function v6(flags: number): FrameSpec {
  return { srcMac: CLIENT_MAC, dstMac: DIRECTOR_MAC, family: 6, src: V6.client, dst: V6.vip, proto: 'tcp', sport: 40000, dport: 3306, flags };
}

const CASES: CaseDef[] = [
  { name: 'non-VIP pass', description: 'IPv4 TCP to a port that is no service: XDP_PASS untouched', packet: v4('tcp', V4.other, 22, TCP_ACK), expect: 'XDP_PASS', reason: 'pass_non_vip' },
  { name: 'VIP SYN (new flow)', prime: [v4('tcp', V4.vip, 3306, TCP_SYN), v4('tcp', V4.vip, 3306, TCP_ACK)], description: 'IPv4 TCP SYN to VIP:3306 reusing a 5-tuple of the flow table (one buffer is repeated, so the same 5-tuple): flow lookup, service lookup, Maglev hash, ring and backend lookups, entry rewritten, MAC rewrite, XDP_TX', packet: v4('tcp', V4.vip, 3306, TCP_SYN), expect: 'XDP_TX', reason: 'tx_new_flow' },
  {
    name: 'VIP established (flow hit)',
    description: 'IPv4 TCP ACK of a known flow: flow lookup, MAC rewrite, XDP_TX',
    prime: [v4('tcp', V4.vip, 3306, TCP_SYN), v4('tcp', V4.vip, 3306, TCP_ACK)],
    packet: v4('tcp', V4.vip, 3306, TCP_ACK),
    expect: 'XDP_TX',
    reason: 'tx_flow_hit',
  },
  { name: 'IPv6 established (flow hit)', description: 'IPv6 TCP ACK of a known flow', prime: [v6(TCP_SYN), v6(TCP_ACK)], packet: v6(TCP_ACK), expect: 'XDP_TX', reason: 'tx_flow_hit' },
  { name: 'UDP (flow hit)', description: 'IPv4 UDP to VIP:3306/udp after its first two datagrams made it a flow', prime: [v4('udp', V4.vip, 3306), v4('udp', V4.vip, 3306)], packet: v4('udp', V4.vip, 3306), expect: 'XDP_TX', reason: 'tx_flow_hit' },
];

export async function runTestRunBench(o: TestRunBenchOptions): Promise<TestRunData> {
  const log = o.log.child({ component: 'bench-testrun' });
  const c = getNative().constants;
  const verdicts: Record<number, string> = { [c.XDP_ABORTED]: 'XDP_ABORTED', [c.XDP_DROP]: 'XDP_DROP', [c.XDP_PASS]: 'XDP_PASS', [c.XDP_TX]: 'XDP_TX', [c.XDP_REDIRECT]: 'XDP_REDIRECT' };
  const pinDir = `/sys/fs/bpf/${o.prefix}t`;
  let director: BenchDirector | undefined;
  let noop: PinnedProg | undefined;
  try {
    director = await loadDirector({ pinDir, log, mac: DIRECTOR_MAC });
    const backends = (addrs: string[]) => addrs.map((address, i) => ({ address, port: 3306, mac: RS_MACS[i] }));
    await director.setService({ vip: V4.vip, port: 3306, proto: 'tcp', backends: backends(V4.rs) });
    await director.setService({ vip: V4.vip, port: 3306, proto: 'udp', backends: backends(V4.rs) });
    await director.setService({ vip: V6.vip, port: 3306, proto: 'tcp', backends: backends(V6.rs) });
    noop = await loadPass({ pinDir });

    const frames = CASES.map((k) => ({ k, data: buildFrame(k.packet).bytes, prime: (k.prime ?? []).map((p) => buildFrame(p).bytes) }));
    const samples = CASES.map(() => ({ ns: [] as number[], delta: [] as number[], verdict: -1 }));
    const calib: number[] = [];
    // Warm-up and checks: each case once, with the expected verdict and a rewritten MAC on XDP_TX.
    for (const f of frames) {
      for (const p of f.prime) await testRunAsync(director, { data: p, repeat: 1 });
      const r = await testRunAsync(director, { data: f.data, repeat: 1 });
      const got = verdicts[r.retval] ?? String(r.retval);
      if (got !== f.k.expect) throw new ToolError('XD_ERR_BENCH', `test run "${f.k.name}": the director returned ${got}, expected ${f.k.expect} (is the service configured?)`);
      if (f.k.expect === 'XDP_TX') {
        const dst = formatMac(r.dataOut.subarray(0, 6));
        if (!RS_MACS.includes(dst)) throw new ToolError('XD_ERR_BENCH', `test run "${f.k.name}": XDP_TX with destination MAC ${dst}, not a backend's`);
      }
    }
    for (let r = 0; r < o.rounds; r++) {
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i];
        const n = await testRunAsync(noop, { data: f.data, repeat: o.repeat });
        for (const p of f.prime) await testRunAsync(director, { data: p, repeat: 1 });
        const before = director.reasons();
        const d = await testRunAsync(director, { data: f.data, repeat: o.repeat });
        const after = director.reasons();
        const counted = (after[f.k.reason] ?? 0) - (before[f.k.reason] ?? 0);
        if (counted !== o.repeat) {
          throw new ToolError('XD_ERR_BENCH', `test run "${f.k.name}": ${counted} of ${o.repeat} runs counted as ${f.k.reason} (reasons now ${JSON.stringify(after)}): the case does not measure what it says`);
        }
        calib.push(n.duration);
        samples[i].ns.push(d.duration);
        samples[i].delta.push(d.duration - n.duration);
        samples[i].verdict = d.retval;
      }
      o.progress?.(`testrun round ${r + 1}/${o.rounds}: ${frames.map((f, i) => `${f.k.name} ${samples[i].ns[r]} ns`).join(', ')}`);
    }
    const cases: TestRunCase[] = frames.map((f, i) => ({
      name: f.k.name,
      description: f.k.description,
      verdict: samples[i].verdict,
      verdictName: verdicts[samples[i].verdict] ?? String(samples[i].verdict),
      reason: f.k.reason,
      rounds: samples[i].ns,
      ns: roundSpread(spread(samples[i].ns), 2),
      deltaOverNoop: roundSpread(spread(samples[i].delta), 2),
    }));
    return {
      repeat: o.repeat,
      rounds: o.rounds,
      object: 'dist/bpf/xdirector.bpf.o',
      calibration: { program: 'xdp_pass (return XDP_PASS)', rounds: calib.map((x) => round(x, 2)), ns: roundSpread(spread(calib), 2) },
      cases,
    };
  } finally {
    await noop?.close().catch(() => undefined);
    await director?.close().catch((err: unknown) => log.warn({ err }, 'close director'));
    fs.rmSync(pinDir, { recursive: true, force: true });
  }
}
