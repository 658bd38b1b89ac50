// Builds of the director side by side under BPF_PROG_TEST_RUN, interleaved:
//
//   node dist/scripts/bench/compare.js A.bpf.o B.bpf.o … [--rounds 9] [--repeat 100000] [--flows N]
//                                      [--calls 2000] [--only CASE,…]
//
// For profiling the packet path by program variants (bpftool prog profile is refused under
// lockdown): build a variant (e.g. clang with a -D that returns early after one section, or
// another cache size), then compare it with dist/bpf/xdirector.bpf.o in one run. Each build
// is loaded and programmed like the product (XdpDataplane.open + apply(), via loadDirector)
// with the testrun section's services; every round runs, per case and per build, the no-op
// program and then the build on the same packet, so a load spike hits all builds alike.
// Printed: median and minimum over rounds of (ns per run - no-op ns per run), and the verdict.
// The per-call cases ("… (call)") run repeat=1, `--calls` calls per round, and give the mean ns per
// call over the no-op timed the same way: a fresh SYN (every call a 5-tuple never seen, so the
// embryonic insert is paid each time, where the repeated SYN above reuses one tracked 5-tuple) and
// a tunnel backend's established flow (bpf_xdp_adjust_head moves a repeated buffer's start for good).
// bpf/prof.h says how to build the stage variants.
// A variant must keep the map layout of the generated TypeScript (same maps and sizes).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { testRun, testRunAsync } from '../../src/bpf/testrun';
import { silentLogger } from '../../src/log';
import { BENCH_DIRECTOR_LIMITS, loadDirector, loadPass, type BenchDirector, type PinnedProg } from './director';
import { buildFrame, TCP_ACK, TCP_SYN, type FrameSpec } from './packet';

const CLIENT_MAC = '02:00:00:00:00:10';
const DIRECTOR_MAC = '02:00:00:00:00:02';
/** The same service tunnelled (IPIP, GUE over IPv4; IPIP over IPv6), each on its own VIP. */
const TUN = {
  ipip: '10.200.0.101',
  gue: '10.200.0.102',
  ipip6: '10.200.0.104',
  rs: ['10.210.1.11', '10.210.1.12'],
  rs6: ['fd00:210::11', 'fd00:210::12'],
  source: '10.200.0.2',
  source6: 'fd00:200::2',
  nextHop: '02:00:00:00:00:fe',
};
const V4 = { client: '10.200.0.10', vip: '10.200.0.100', other: '10.200.0.200', rs: ['10.200.0.11', '10.200.0.12'] };
const V6 = {
  client: 'fd00:200::10',
  vip: 'fd00:200::100',
  other: 'fd00:200::200',
  rs: ['fd00:200::11', 'fd00:200::12'],
};

const v4 = (proto: 'tcp' | 'udp', dst: string, dport: number, flags?: number): FrameSpec => ({
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
});
const v6 = (dst: string, dport: number, flags: number): FrameSpec => ({
  srcMac: CLIENT_MAC,
  dstMac: DIRECTOR_MAC,
  family: 6,
  src: V6.client,
  dst,
  proto: 'tcp',
  sport: 40000,
  dport,
  flags,
});

/** name, timed packet, packets sent once before timing (they create the flow the timed one hits). */
const CASES: [string, FrameSpec, FrameSpec[]][] = [
  ['non-VIP v4', v4('tcp', V4.other, 22, TCP_ACK), []],
  ['non-VIP v6', v6(V6.other, 22, TCP_ACK), []],
  ['SYN v4', v4('tcp', V4.vip, 3306, TCP_SYN), [v4('tcp', V4.vip, 3306, TCP_SYN), v4('tcp', V4.vip, 3306, TCP_ACK)]],
  [
    'established v4',
    v4('tcp', V4.vip, 3306, TCP_ACK),
    [v4('tcp', V4.vip, 3306, TCP_SYN), v4('tcp', V4.vip, 3306, TCP_ACK)],
  ],
  ['established v6', v6(V6.vip, 3306, TCP_ACK), [v6(V6.vip, 3306, TCP_SYN), v6(V6.vip, 3306, TCP_ACK)]],
  ['UDP hit v4', v4('udp', V4.vip, 3306), [v4('udp', V4.vip, 3306), v4('udp', V4.vip, 3306)]],
  // Repeated tunnel cases: only a build with -DXD_PROF_TUN_REPEAT (bpf/prof.h) undoes each run's
  // encapsulation, so that every run sees the same frame; the product's second run would not.
  ...(
    [
      ['rep DR est', V4.vip],
      ['rep IPIP est', TUN.ipip],
      ['rep GUE est', TUN.gue],
      ['rep IPIP6 est', TUN.ipip6],
    ] as const
  ).map(([name, vip]): [string, FrameSpec, FrameSpec[]] => [
    name,
    { ...v4('tcp', vip, 3306, TCP_ACK), sport: 41000 },
    // The third packet fills this CPU's flow-cache slot: the timed runs take the fast path, which
    // is where the undo is.
    [
      { ...v4('tcp', vip, 3306, TCP_SYN), sport: 41000 },
      { ...v4('tcp', vip, 3306, TCP_ACK), sport: 41000 },
      { ...v4('tcp', vip, 3306, TCP_ACK), sport: 41000 },
    ],
  ]),
];

/** A client address no earlier call used: 10.64.0.0/10, one per fresh SYN. */
let freshSeq = 0;
const freshClient = (): string => {
  const n = freshSeq++;
  return `10.${64 + ((n >> 16) & 63)}.${(n >> 8) & 255}.${n & 255}`;
};

/** name, the packet of each call, packets sent once before timing. */
const CALL_CASES: [string, () => Buffer, FrameSpec[]][] = [
  ['SYN fresh (call)', () => buildFrame({ ...v4('tcp', V4.vip, 3306, TCP_SYN), src: freshClient() }).bytes, []],
  ...(
    [
      ['DR est (call)', V4.vip],
      ['IPIP est (call)', TUN.ipip],
      ['GUE est (call)', TUN.gue],
      ['IPIP6 est (call)', TUN.ipip6],
    ] as const
  ).map(([name, vip]): [string, () => Buffer, FrameSpec[]] => {
    const ack = buildFrame({ ...v4('tcp', vip, 3306, TCP_ACK), sport: 41000 }).bytes;
    return [
      name,
      () => ack,
      [
        { ...v4('tcp', vip, 3306, TCP_SYN), sport: 41000 },
        { ...v4('tcp', vip, 3306, TCP_ACK), sport: 41000 },
        { ...v4('tcp', vip, 3306, TCP_ACK), sport: 41000 },
      ],
    ];
  }),
];

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (k: string, d: number): number => {
    const i = args.indexOf(k);
    return i >= 0 ? Number(args[i + 1]) : d;
  };
  const rounds = opt('--rounds', 9);
  const repeat = opt('--repeat', 100_000);
  const flows = opt('--flows', BENCH_DIRECTOR_LIMITS.flows);
  const calls = opt('--calls', 2000);
  const onlyAt = args.indexOf('--only');
  const only = onlyAt >= 0 ? args[onlyAt + 1]!.split(',') : undefined;
  const picked = (name: string): boolean => !only || only.some((o) => name.startsWith(o));
  const objects = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1]!.startsWith('--')));
  if (!objects.length)
    throw new Error('usage: compare.js A.bpf.o [B.bpf.o …] [--rounds 9] [--repeat 100000] [--flows N]');
  const prefix = `/sys/fs/bpf/xdcmp${process.pid}`;
  const log = silentLogger();
  const dirs: BenchDirector[] = [];
  let noop: PinnedProg | undefined;
  try {
    noop = await loadPass({ pinDir: `${prefix}n` });
    for (const [i, objectPath] of objects.entries()) {
      const d = await loadDirector({
        pinDir: `${prefix}v${i}`,
        log,
        mac: DIRECTOR_MAC,
        objectPath: path.resolve(objectPath),
        limits: { ...BENCH_DIRECTOR_LIMITS, flows },
      });
      dirs.push(d);
      const backends = (addrs: string[]) => addrs.map((address) => ({ address, port: 3306, mac: DIRECTOR_MAC }));
      await d.setService({ vip: V4.vip, port: 3306, proto: 'tcp', backends: backends(V4.rs) });
      await d.setService({ vip: V4.vip, port: 3306, proto: 'udp', backends: backends(V4.rs) });
      await d.setService({ vip: V6.vip, port: 3306, proto: 'tcp', backends: backends(V6.rs) });
      for (const [vip, encap, rs, source] of [
        [TUN.ipip, 'ipip', TUN.rs, TUN.source],
        [TUN.gue, 'gue', TUN.rs, TUN.source],
        [TUN.ipip6, 'ipip', TUN.rs6, TUN.source6],
      ] as const) {
        await d.setService({
          vip,
          port: 3306,
          proto: 'tcp',
          tunnel: { encap, source },
          backends: rs.map((address) => ({ address, port: 3306, mac: TUN.nextHop })),
        });
      }
    }
    const frames = CASES.filter(([name]) => picked(name)).map(([name, p, prime]) => ({
      name,
      data: buildFrame(p).bytes,
      prime: prime.map((x) => buildFrame(x).bytes),
    }));
    const delta = frames.map(() => dirs.map(() => [] as number[]));
    const verdict = frames.map(() => dirs.map(() => -1));
    const calib: number[] = [];
    for (let r = 0; r < rounds; r++) {
      for (const [c, f] of frames.entries()) {
        for (const [v, d] of dirs.entries()) {
          const n = await testRunAsync(noop, { data: f.data, repeat });
          for (const p of f.prime) await testRunAsync(d, { data: p, repeat: 1 });
          const t = await testRunAsync(d, { data: f.data, repeat });
          calib.push(n.duration);
          delta[c]![v]!.push(t.duration - n.duration);
          verdict[c]![v] = t.retval;
        }
      }
    }
    const callCases = CALL_CASES.filter(([name]) => picked(name)).map(([name, next, prime]) => ({
      name,
      next,
      prime: prime.map((x) => buildFrame(x).bytes),
    }));
    const callDelta = callCases.map(() => dirs.map(() => [] as number[]));
    const callVerdict = callCases.map(() => dirs.map(() => -1));
    const noopFrame = buildFrame({ ...v4('tcp', V4.vip, 3306, TCP_ACK), sport: 41999 }).bytes;
    // Each call's packet is built before the round's timed calls, so building it does not stir the
    // caches between two calls.
    const mean = (prog: { fd: number }, next: () => Buffer, v?: { retval: number }): number => {
      const packets = Array.from({ length: calls }, next);
      let total = 0;
      for (const data of packets) {
        const r = testRun(prog, { data, repeat: 1 });
        total += r.duration;
        if (v) v.retval = r.retval;
      }
      return total / calls;
    };
    for (const c of callCases) for (const d of dirs) for (const p of c.prime) testRun(d, { data: p, repeat: 1 });
    for (let r = 0; r < (callCases.length ? rounds : 0); r++) {
      for (const [c, k] of callCases.entries()) {
        for (const [v, d] of dirs.entries()) {
          const n = mean(noop, () => noopFrame);
          const got = { retval: -1 };
          const t = mean(d, k.next, got);
          callDelta[c]![v]!.push(Math.round((t - n) * 10) / 10);
          callVerdict[c]![v] = got.retval;
        }
      }
    }
    const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
    const med = (xs: number[]): number => sorted(xs)[Math.floor(xs.length / 2)]!;
    console.log(
      `${rounds} rounds x ${repeat} runs, no-op ${med(calib)} ns (median), load average ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
    console.log(`ns over the no-op, median (min) [verdict]`);
    console.log(['case'.padEnd(16), ...objects.map((o) => path.basename(o).padStart(22))].join(''));
    for (const [c, f] of frames.entries()) {
      console.log(
        [
          f.name.padEnd(16),
          ...dirs.map((_, v) => `${med(delta[c]![v]!)} (${sorted(delta[c]![v]!)[0]}) [${verdict[c]![v]}]`.padStart(22)),
        ].join(''),
      );
    }
    for (const [c, k] of callCases.entries()) {
      console.log(
        [
          k.name.padEnd(16),
          ...dirs.map((_, v) =>
            `${med(callDelta[c]![v]!)} (${sorted(callDelta[c]![v]!)[0]}) [${callVerdict[c]![v]}]`.padStart(22),
          ),
        ].join(''),
      );
    }
    if (callCases.length)
      console.log(`(call) cases: ${calls} calls of repeat=1 per round, mean ns per call over the no-op's`);
  } finally {
    for (const d of dirs) await d.close().catch(() => undefined);
    await noop?.close().catch(() => undefined);
    for (const dir of [`${prefix}n`, ...objects.map((_, i) => `${prefix}v${i}`)])
      fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
