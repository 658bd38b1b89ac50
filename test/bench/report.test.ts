// Pure parts of the benchmark suite: frame builder, statistics, SVG writer and
// the markdown report. No kernel, no addon.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildFrame, TCP_SYN } from '../../scripts/bench/packet';
import { inetChecksum, pseudoHeader } from '../../src/net/inet';
import { spread } from '../../scripts/bench/stats';
import { barChartSvg, esc, lineChartSvg, niceAxis } from '../../scripts/bench/svg';
import { flowsLabel, markdown, runStem } from '../../scripts/bench/report';
import type { BenchResult, PktRateData, ScaleData } from '../../scripts/bench/types';

/** A correct L4 checksum makes the checksum over pseudo-header + segment 0. */
function l4Verifies(frame: Buffer, family: 4 | 6, l4: number, end: number, proto: number): boolean {
  const [src, dst] =
    family === 4 ? [frame.subarray(26, 30), frame.subarray(30, 34)] : [frame.subarray(22, 38), frame.subarray(38, 54)];
  return inetChecksum(pseudoHeader(src, dst, proto, end - l4), frame.subarray(l4, end)) === 0;
}

const mac = { srcMac: '02:00:00:00:00:10', dstMac: '02:00:00:00:00:02' };

describe('bench frame builder', () => {
  it('builds an IPv4 TCP frame whose IP and TCP checksums verify', () => {
    const f = buildFrame({
      ...mac,
      family: 4,
      src: '10.0.0.1',
      dst: '10.0.0.100',
      proto: 'tcp',
      sport: 40000,
      dport: 3306,
      flags: TCP_SYN,
      minLength: 60,
      multipleOf: 8,
    });
    assert.equal(f.bytes.length, 64);
    assert.equal(inetChecksum(f.bytes.subarray(14, 34)), 0);
    assert.ok(l4Verifies(f.bytes, 4, 34, f.ipEnd, 6));
    assert.equal(f.sportOff, 34);
    assert.equal(f.csumOff, 50);
  });

  it('gives the offsets of the source address word and the IPv4 header checksum the generator varies', () => {
    const f4 = buildFrame({
      ...mac,
      family: 4,
      src: '10.0.0.1',
      dst: '10.0.0.100',
      proto: 'tcp',
      sport: 40000,
      dport: 3306,
    });
    assert.equal(f4.bytes.readUInt16BE(f4.saddrOff), 0x0001);
    assert.equal(f4.ipCsumOff, 24);
    const f6 = buildFrame({
      ...mac,
      family: 6,
      src: 'fd00::1:2',
      dst: 'fd00::100',
      proto: 'tcp',
      sport: 40000,
      dport: 3306,
    });
    assert.equal(f6.bytes.readUInt16BE(f6.saddrOff), 0x0002);
    assert.equal(f6.ipCsumOff, undefined);
  });

  it('builds an IPv6 UDP frame whose checksum verifies', () => {
    const f = buildFrame({
      ...mac,
      family: 6,
      src: 'fd00::1',
      dst: 'fd00::100',
      proto: 'udp',
      sport: 5000,
      dport: 3306,
    });
    assert.equal(f.bytes.readUInt16BE(12), 0x86dd);
    assert.ok(l4Verifies(f.bytes, 6, 54, f.ipEnd, 17));
    assert.equal(f.csumOff, 60);
  });

  it('rejects a malformed MAC address with the expected form in the message', () => {
    assert.throws(
      () =>
        buildFrame({
          ...mac,
          dstMac: '02:00:00',
          family: 4,
          src: '10.0.0.1',
          dst: '10.0.0.2',
          proto: 'tcp',
          sport: 1,
          dport: 2,
        }),
      /expected a MAC address like "02:00:00:00:00:11", received "02:00:00"/,
    );
  });
});

describe('bench statistics', () => {
  it('gives the median and quartiles of an even number of samples by interpolation', () => {
    assert.deepEqual(spread([4, 1, 3, 2]), { n: 4, median: 2.5, min: 1, max: 4, p25: 1.75, p75: 3.25 });
  });

  it('refuses an empty sample list instead of reporting a zero', () => {
    assert.throws(() => spread([]), /no samples/);
  });
});

describe('bench SVG writer', () => {
  it('picks a round axis maximum at or above the data', () => {
    assert.deepEqual(niceAxis(0.46), { max: 0.5, step: 0.1 });
    assert.deepEqual(niceAxis(59), { max: 60, step: 20 });
  });

  it('escapes labels so that any text yields well-formed XML', () => {
    const svg = barChartSvg({ title: 'a<b & "c"', unit: 'ns', bars: [{ label: '<x>', value: 1 }] });
    assert.ok(!svg.includes('<x>'));
    assert.ok(svg.includes(esc('<x>')));
    assert.match(svg.trim(), /<\/svg>$/);
  });

  it('draws one polyline per series with more than one point', () => {
    const svg = lineChartSvg({
      title: 't',
      xLabel: 'clients',
      yLabel: 'q/s',
      x: ['1', '8', '32'],
      series: [
        { name: 'a', values: [1, 2, 3] },
        { name: 'b', values: [1, null, null] },
      ],
    });
    assert.equal(svg.match(/<polyline/g)?.length, 1);
    assert.equal(svg.match(/<circle/g)?.length, 4);
  });
});

describe('bench markdown report', () => {
  const base: BenchResult = {
    version: 1,
    tool: 'xdirector bench',
    startedAt: '2026-11-25T15:04:05.123Z',
    finishedAt: '2026-11-25T15:05:00.000Z',
    quick: true,
    machine: {
      loadAvg1: 0.5,
      kernel: '6.18',
      cpuModel: 'Test CPU',
      cpus: 2,
      memoryMiB: 1024,
      node: 'v20',
      hostname: 'h',
    },
    sections: {
      mysql: { status: 'skipped', reason: 'haproxy is not installed', install: 'apt-get install -y haproxy' },
      pktrate: { status: 'error', code: 'XD_ERR_BENCH_NO_TRAFFIC', error: 'nothing delivered' },
    },
    files: [],
  };

  it('names a skipped section with its reason and the install command', () => {
    assert.match(markdown(base), /skipped: haproxy is not installed \(install: `apt-get install -y haproxy`\)/);
  });

  it('shows a failed section as an error with its code, never as a zero', () => {
    assert.match(markdown(base), /error XD_ERR_BENCH_NO_TRAFFIC: nothing delivered/);
  });

  it('shows the director against the ceiling per flow count and mode, and the tunnels against DR', () => {
    const spreadOf = (x: number) => ({ n: 1, median: x, min: x, max: x, p25: x, p75: x });
    const data: PktRateData = {
      generator: {
        kind: 'af-packet',
        detail: 'g',
        pktgen: 'p',
        liveFrames: 'BPF_F_TEST_XDP_LIVE_FRAMES refused by this kernel: EPERM (x)',
        processes: 1,
      },
      bpfStats: { enabled: true, detail: 'kernel.bpf_stats_enabled set to 1' },
      frameBytes: 64,
      flows: [16, 1_000_000],
      baseFlows: 16,
      flowTableSize: 1 << 20,
      packetsPerRound: 10,
      batchSize: 64,
      rounds: 1,
      scenarios: [
        {
          name: 'isolated',
          description: 'd',
          receivers: 1,
          ratios: {},
          ratiosPerCpu: {},
          cells: [
            {
              mode: 'xdp-native',
              flows: 1_000_000,
              description: 'x',
              status: 'ok',
              rounds: [],
              mppsDelivered: spreadOf(2),
              mppsPerCpu: spreadOf(3),
            },
          ],
          ceiling: [
            {
              flows: 1_000_000,
              xdp: 'native',
              director: 2,
              ceiling: 4,
              ratio: 0.5,
              pairedRatio: 0.52,
              ratioPerCpu: 0.6,
              directorNs: 61.25,
              ceilingNs: 9.5,
              nsOverCeiling: 51.75,
              flowHitRate: 0.9991,
              flowTableEntries: 1_000_000,
            },
          ],
          forwarding: [
            {
              forwarding: 'dr',
              mode: 'xdp-native',
              flows: 16,
              mpps: 2,
              ratioToDr: 1,
              pairedRatioToDr: 1,
              ratioToDrPerCpu: 1,
            },
            {
              forwarding: 'tunnel/gue',
              mode: 'tunnel-gue',
              flows: 16,
              mpps: 1.5,
              ratioToDr: 0.75,
              pairedRatioToDr: 0.7,
              ratioToDrPerCpu: 0.8,
            },
          ],
        },
      ],
    };
    const md = markdown({ ...base, sections: { pktrate: { status: 'ok', durationMs: 1, data } } });
    assert.match(
      md,
      /\| 1M \| native \| 2\.00 \| 4\.00 \| 50% \| 52% \| 60% \| 61\.3 \| 9\.5 \| 51\.8 \| 99\.9% \| 1000000 \|/,
    );
    assert.match(
      md,
      /Generator: \*\*af-packet\*\*: g\. Live frames: BPF_F_TEST_XDP_LIVE_FRAMES refused by this kernel: EPERM/,
    );
    assert.match(md, /\| tunnel\/gue \| 1\.50 \| 0\.75× \| 0\.70× \| 0\.80× \|/);
  });

  it("shows the packet path at scale in the issue's shape, a row without a value with its reason", () => {
    const data: ScaleData = {
      method: 'm',
      rows: [
        {
          id: 'flows-large',
          case: '1M flows, packet rate vs no-op',
          goal: '≥ 0.5×',
          value: 0.084,
          today: '0.08×',
          met: false,
          noop: '45.7 ns; 0.250 Mpps',
          bpfStats: '541.7 ns',
          detail: 'wall-clock Mpps 0.81×',
        },
        { id: 'syn', case: 'new flow (SYN), test run, ns over no-op', goal: '≤ 25 ns', skipped: 'not run here' },
      ],
      pktrate: {
        generator: { kind: 'af-packet', detail: 'g', pktgen: 'p', liveFrames: 'l', processes: 1 },
        bpfStats: { enabled: true, detail: 'on' },
        frameBytes: 64,
        flows: [4096, 1_000_000],
        baseFlows: 4096,
        flowTableSize: 1 << 20,
        packetsPerRound: 10,
        batchSize: 64,
        rounds: 1,
        scenarios: [],
      },
      syn: {
        repeat: 1,
        rounds: 1,
        object: 'o',
        calibration: { program: 'p', rounds: [1], ns: { n: 1, median: 1, min: 1, max: 1, p25: 1, p75: 1 } },
        cases: [],
      },
      memory: [],
    };
    const md = markdown({ ...base, sections: { scale: { status: 'ok', durationMs: 1, data } } });
    assert.match(md, /## 6\. Packet path at scale/);
    assert.match(
      md,
      /\| case \(native, isolated path\) \| today \| goal \| same-run no-op \| bpf_stats ns \(director\) \|/,
    );
    assert.match(md, /\| 1M flows, packet rate vs no-op \| 0\.08× \| ≥ 0\.5× \| 45\.7 ns; 0\.250 Mpps \| 541\.7 ns \|/);
    assert.match(md, /\| new flow \(SYN\), test run, ns over no-op \| no value: not run here \| ≤ 25 ns \| – \| – \|/);
    assert.match(md, /- 1M flows, packet rate vs no-op: wall-clock Mpps 0\.81×/);
  });

  it('writes flow counts of whole millions as M', () => {
    assert.deepEqual([16, 4096, 1_000_000, 1_048_576].map(flowsLabel), ['16', '4096', '1M', '1048576']);
  });

  it('names the files of a run after its start time without colons', () => {
    assert.equal(runStem(base.startedAt), '2026-11-25T15-04-05Z');
  });
});
