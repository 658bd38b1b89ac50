// Pure parts of the benchmark suite: frame builder, statistics, SVG writer and
// the markdown report. No kernel, no addon.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildFrame, TCP_SYN } from '../../scripts/bench/packet';
import { inetChecksum, pseudoHeader } from '../../src/net/inet';
import { spread } from '../../scripts/bench/stats';
import { barChartSvg, esc, lineChartSvg, niceAxis } from '../../scripts/bench/svg';
import { markdown, runStem } from '../../scripts/bench/report';
import type { BenchResult } from '../../scripts/bench/types';

/** A correct L4 checksum makes the checksum over pseudo-header + segment 0. */
function l4Verifies(frame: Buffer, family: 4 | 6, l4: number, end: number, proto: number): boolean {
  const [src, dst] = family === 4 ? [frame.subarray(26, 30), frame.subarray(30, 34)] : [frame.subarray(22, 38), frame.subarray(38, 54)];
  return inetChecksum(pseudoHeader(src, dst, proto, end - l4), frame.subarray(l4, end)) === 0;
}

const mac = { srcMac: '02:00:00:00:00:10', dstMac: '02:00:00:00:00:02' };

describe('bench frame builder', () => {
  it('builds an IPv4 TCP frame whose IP and TCP checksums verify', () => {
    const f = buildFrame({ ...mac, family: 4, src: '10.0.0.1', dst: '10.0.0.100', proto: 'tcp', sport: 40000, dport: 3306, flags: TCP_SYN, minLength: 60, multipleOf: 8 });
    assert.equal(f.bytes.length, 64);
    assert.equal(inetChecksum(f.bytes.subarray(14, 34)), 0);
    assert.ok(l4Verifies(f.bytes, 4, 34, f.ipEnd, 6));
    assert.equal(f.sportOff, 34);
    assert.equal(f.csumOff, 50);
  });

  it('builds an IPv6 UDP frame whose checksum verifies', () => {
    const f = buildFrame({ ...mac, family: 6, src: 'fd00::1', dst: 'fd00::100', proto: 'udp', sport: 5000, dport: 3306 });
    assert.equal(f.bytes.readUInt16BE(12), 0x86dd);
    assert.ok(l4Verifies(f.bytes, 6, 54, f.ipEnd, 17));
    assert.equal(f.csumOff, 60);
  });

  it('rejects a malformed MAC address with the expected form in the message', () => {
    assert.throws(() => buildFrame({ ...mac, dstMac: '02:00:00', family: 4, src: '10.0.0.1', dst: '10.0.0.2', proto: 'tcp', sport: 1, dport: 2 }), /expected a MAC address like "02:00:00:00:00:11", received "02:00:00"/);
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
    const svg = lineChartSvg({ title: 't', xLabel: 'clients', yLabel: 'q/s', x: ['1', '8', '32'], series: [{ name: 'a', values: [1, 2, 3] }, { name: 'b', values: [1, null, null] }] });
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
    machine: { loadAvg1: 0.5, kernel: '6.18', cpuModel: 'Test CPU', cpus: 2, memoryMiB: 1024, node: 'v20', hostname: 'h' },
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

  it('names the files of a run after its start time without colons', () => {
    assert.equal(runStem(base.startedAt), '2026-11-25T15-04-05Z');
  });
});
