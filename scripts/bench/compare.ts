// Builds of the director side by side under BPF_PROG_TEST_RUN, interleaved:
//
//   node dist/scripts/bench/compare.js A.bpf.o B.bpf.o … [--rounds 9] [--repeat 100000] [--flows N]
//
// For profiling the packet path by program variants (bpftool prog profile is refused under
// lockdown): build a variant (e.g. clang with a -D that returns early after one section, or
// another cache size), then compare it with dist/bpf/xdirector.bpf.o in one run. Each build
// is loaded and programmed like the product (XdpDataplane.open + apply(), via loadDirector)
// with the testrun section's services; every round runs, per case and per build, the no-op
// program and then the build on the same packet, so a load spike hits all builds alike.
// Printed: median and minimum over rounds of (ns per run - no-op ns per run), and the verdict.
// A variant must keep the map layout of the generated TypeScript (same maps and sizes).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { testRunAsync } from '../../src/bpf/testrun';
import { silentLogger } from '../../src/log';
import { BENCH_DIRECTOR_LIMITS, loadDirector, loadPass, type BenchDirector, type PinnedProg } from './director';
import { buildFrame, TCP_ACK, TCP_SYN, type FrameSpec } from './packet';

const CLIENT_MAC = '02:00:00:00:00:10';
const DIRECTOR_MAC = '02:00:00:00:00:02';
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
    }
    const frames = CASES.map(([name, p, prime]) => ({
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
