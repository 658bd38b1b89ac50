// Smoke test of the benchmark suite: one `--quick` run of every section, then
// checks that results were produced, are internally consistent and that the
// run cleaned up after itself. Never checks that a number beats a threshold.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { runBench, type BenchResult } from '../../scripts/bench';
import { main, parseArgs } from '../../scripts/bench/cli';
import { liveFramesRefusal } from '../../scripts/bench/director';
import type { ForwardingCostData } from '../../scripts/bench/types';

const prefix = `xdh${process.pid}`;
let out: string;
let r: BenchResult;
let statsSysctlBefore: string;

function ok<T>(o: { status: string; data?: T } | undefined, name: string): T {
  assert.ok(o, `${name} missing`);
  assert.equal(o.status, 'ok', `${name}: ${JSON.stringify(o)}`);
  return (o as { data: T }).data;
}

describe('xdirector bench --quick', { timeout: 240_000 }, () => {
  before(async () => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-bench-`));
    statsSysctlBefore = fs.readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8');
    r = await runBench({ quick: true, outDir: out, prefix });
  });

  after(() => {
    fs.rmSync(out, { recursive: true, force: true });
  });

  it('writes the JSON, the markdown and an SVG chart per measured section', () => {
    const names = fs.readdirSync(out);
    assert.ok(names.some((n) => n.endsWith('.json')));
    assert.ok(names.some((n) => n.endsWith('.md')));
    for (const chart of ['testrun', 'pktrate', 'mysqlConnects', 'mysqlQueries']) {
      const f = names.find((n) => n.endsWith(`-${chart}.svg`));
      assert.ok(f, `chart ${chart} missing in ${names.join(', ')}`);
      const svg = fs.readFileSync(path.join(out, f), 'utf8');
      assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      assert.match(svg.trim(), /<\/svg>$/);
    }
  });

  it('stores in the JSON file exactly the result it returned', () => {
    const json = r.files.find((f) => f.endsWith('.json'))!;
    assert.deepEqual(JSON.parse(fs.readFileSync(json, 'utf8')), JSON.parse(JSON.stringify(r)));
  });

  it('measures every packet class with the verdict the director must return', () => {
    const d = ok(r.sections.testrun, 'testrun');
    const want: Record<string, string> = {
      'non-VIP pass': 'XDP_PASS',
      'VIP SYN (new flow)': 'XDP_TX',
      'VIP established (flow hit)': 'XDP_TX',
      'IPv6 established (flow hit)': 'XDP_TX',
      'UDP (flow hit)': 'XDP_TX',
    };
    assert.deepEqual(Object.fromEntries(d.cases.map((c) => [c.name, c.verdictName])), want);
    for (const c of d.cases) {
      assert.equal(c.rounds.length, d.rounds);
      assert.ok(
        c.ns.min > 0 && c.ns.min <= c.ns.median && c.ns.median <= c.ns.max,
        `${c.name}: ${JSON.stringify(c.ns)}`,
      );
    }
    assert.ok(d.calibration.ns.median > 0);
  });

  it('times DR, tunnel and NAT packets the same way (repeat=1 per call) and relates each class to DR', () => {
    const d = ok(r.sections.testrun, 'testrun');
    assert.ok(d.forwarding, 'the full test-run section times the forwarding comparison');
    const w: ForwardingCostData = d.forwarding;
    assert.deepEqual(
      w.cases.map((c) => `${c.name}: ${c.verdictName} (${c.reason})`),
      [
        'DR new flow (SYN): XDP_TX (tx_new_flow)',
        'DR new flow (fresh SYN): XDP_TX (tx_new_flow)',
        'DR established: XDP_TX (tx_flow_hit)',
        'IPIP new flow (SYN): XDP_TX (tx_new_flow)',
        'IPIP established: XDP_TX (tx_flow_hit)',
        'GUE new flow (SYN): XDP_TX (tx_new_flow)',
        'GUE established: XDP_TX (tx_flow_hit)',
        'NAT in new flow (SYN): XDP_TX (tx_new_flow)',
        'NAT in established: XDP_TX (tx_flow_hit)',
        'NAT out reply: XDP_TX (tx_nat_out)',
      ],
    );
    assert.ok(w.noop.ns.median > 0 && w.noop.rounds.length === w.rounds);
    for (const c of w.cases) {
      assert.equal(c.rounds.length, w.rounds);
      assert.ok(c.ns.median > 0, `${c.name}: ${JSON.stringify(c.ns)}`);
      if (c.forwarding === 'dr') assert.equal(c.vsDr, 1);
      else {
        // A tunnel or NAT class is related to DR unless DR's own median came out at or below the
        // no-op's; NAT's reply is related to DR established.
        const packet = c.packet === 'reply' ? 'established' : c.packet;
        const dr = w.cases.find((x) => x.forwarding === 'dr' && x.packet === packet)!;
        if (dr.overNoop.median > 0) assert.ok(c.vsDr! > 0, `${c.name}: ${c.vsDr}`);
        else assert.equal(c.vsDr, undefined, `${c.name}: DR ${JSON.stringify(dr.overNoop)}`);
      }
    }
  });

  it('delivers generated packets in every runnable cell of both paths and accounts for every offered packet', () => {
    const d = ok(r.sections.pktrate, 'pktrate');
    assert.deepEqual(
      d.scenarios.map((sc) => sc.name),
      ['dr-bridge', 'isolated'],
    );
    const want: Record<string, string[]> = {
      'dr-bridge': ['xdp-native', 'xdp-generic', 'xdp-tx-noop', 'kernel-forward'],
      isolated: [
        'xdp-native',
        'xdp-tx-noop',
        'xdp-generic',
        'xdp-tx-noop-generic',
        'tunnel-ipip',
        'tunnel-gue',
        'kernel-forward',
      ],
    };
    for (const sc of d.scenarios) {
      const runnable = sc.cells.filter((c) => c.mode !== 'ipvs');
      assert.deepEqual([...new Set(runnable.map((c) => c.mode))], want[sc.name], sc.name);
      for (const m of runnable) {
        assert.equal(m.status, 'ok', `${sc.name} ${m.flows} ${m.mode}: ${m.reason}`);
        assert.equal(m.rounds.length, d.rounds);
        for (const round of m.rounds) {
          assert.ok(round.delivered > 0);
          assert.equal(round.offered, d.packetsPerRound);
          assert.equal(round.drops, round.offered - round.delivered);
          assert.equal(round.perReceiver.length, sc.receivers);
          assert.equal(
            round.perReceiver.reduce((a, b) => a + b, 0),
            round.delivered,
          );
        }
      }
    }
  });

  it('spreads the director and the kernel path over both real servers on the DR path', () => {
    const d = ok(r.sections.pktrate, 'pktrate');
    const sc = d.scenarios.find((x) => x.name === 'dr-bridge')!;
    for (const mode of ['xdp-native', 'xdp-generic', 'kernel-forward']) {
      const round = sc.cells.find((x) => x.mode === mode)!.rounds[0];
      assert.ok(
        round.perReceiver.every((n) => n > 0),
        `${mode}: ${round.perReceiver.join('/')}`,
      );
    }
  });

  it('runs every director cell on the isolated path through its flow table, not past it', () => {
    const d = ok(r.sections.pktrate, 'pktrate');
    const sc = d.scenarios.find((x) => x.name === 'isolated')!;
    const directors = sc.cells.filter((c) =>
      ['xdp-native', 'xdp-generic', 'tunnel-ipip', 'tunnel-gue'].includes(c.mode),
    );
    assert.equal(directors.length, 2 * 3 + 2);
    // The flow tables are 2-way buckets, one per configured flow: a flow that finds its bucket full
    // at warm-up is served from the takeover table (tx_new_flow when it is placed there), ~10% of
    // random flows at the configured count (bpf/maps.h), so the 1M cell holds >= 85% in the table;
    // a few thousand flows in 2^21 entries all but never collide.
    for (const c of directors) {
      // (At 1M flows the ~7% that found their bucket full outnumber the takeover table and churn
      // through it, so the timed packets hit the flow table less often than its fill: 76% measured.)
      const least = c.flows > 4096 ? 0.7 : 0.99;
      for (const round of c.rounds) {
        const r = round.directorReasons ?? {};
        const tx = Object.entries(r)
          .filter(([k]) => k.startsWith('tx_'))
          .reduce((a, [, n]) => a + n, 0);
        const why = `${c.flows} ${c.mode}: ${JSON.stringify(r)}`;
        assert.equal(tx, round.offered, why);
        assert.ok((r.tx_flow_hit ?? 0) >= least * round.offered, why);
      }
      assert.ok(c.flowHitRate! >= least, `${c.flows} ${c.mode}: ${c.flowHitRate}`);
    }
  });

  it('reports the director against the no-op ceiling for 16, 4096 and 1M flows, native and generic, in one run', () => {
    const d = ok(r.sections.pktrate, 'pktrate');
    assert.deepEqual(d.flows, [16, 4096, 1_000_000]);
    const sc = d.scenarios.find((x) => x.name === 'isolated')!;
    assert.deepEqual(
      sc.ceiling.map((c) => `${c.flows} ${c.xdp}`),
      ['16 native', '16 generic', '4096 native', '4096 generic', '1000000 native', '1000000 generic'],
    );
    for (const c of sc.ceiling) {
      assert.ok(c.director! > 0 && c.ceiling! > 0, JSON.stringify(c));
      assert.ok(c.ratio! > 0 && c.pairedRatio! > 0 && c.ratioPerCpu! > 0, JSON.stringify(c));
      assert.equal(c.ratio, Math.round((c.director! / c.ceiling!) * 1000) / 1000);
    }
  });

  it('sends with live frames where the kernel runs them, else with the AF_PACKET ring, and says which and why', async () => {
    const d = ok(r.sections.pktrate, 'pktrate');
    const refusal = await liveFramesRefusal();
    assert.equal(d.generator.kind, refusal ? 'af-packet' : 'live-frames');
    if (refusal)
      assert.ok(
        d.generator.liveFrames.startsWith(`BPF_F_TEST_XDP_LIVE_FRAMES refused by this kernel: ${refusal.code}`),
        d.generator.liveFrames,
      );
    const md = fs.readFileSync(
      r.files.find((f) => f.endsWith('.md'))!,
      'utf8',
    );
    assert.ok(md.includes(`Generator: **${d.generator.kind}**`), 'markdown does not name the generator');
  });

  it("reports the kernel's ns per packet (bpf_stats) of the director and of the no-op beside each ratio, and restores the sysctl", () => {
    const d = ok(r.sections.pktrate, 'pktrate');
    assert.equal(d.bpfStats.enabled, true, d.bpfStats.detail);
    assert.equal(fs.readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8'), statsSysctlBefore);
    const sc = d.scenarios.find((x) => x.name === 'isolated')!;
    for (const c of sc.cells.filter((x) => x.mode !== 'ipvs')) {
      // The program at the director's eth0 ran at least once per offered frame (every one reaches it on this path).
      for (const round of c.rounds)
        assert.ok(
          round.bpfStats && round.bpfStats.runs >= round.offered && round.bpfStats.nsPerRun > 0,
          `${c.flows} ${c.mode}: ${JSON.stringify(round.bpfStats)} for ${round.offered} offered`,
        );
      assert.ok(c.nsPerPacket!.median > 0);
    }
    assert.equal(sc.ceiling.length, 6);
    for (const c of sc.ceiling) {
      assert.ok(c.directorNs! > 0 && c.ceilingNs! > 0, JSON.stringify(c));
      assert.equal(c.nsOverCeiling, Math.round((c.directorNs! - c.ceilingNs!) * 100) / 100);
      assert.equal(typeof c.pairedNsOverCeiling, 'number');
    }
    const md = fs.readFileSync(
      r.files.find((f) => f.endsWith('.md'))!,
      'utf8',
    );
    assert.match(md, /\| director ns\/pkt \(bpf_stats\) \| no-op ns\/pkt \(bpf_stats\) \| director − no-op ns \|/);
  });

  it('drives as many distinct flows as each cell says: the director of the 1M cell holds at least 1M flow-table entries', () => {
    const d = ok(r.sections.pktrate, 'pktrate');
    assert.ok(d.flowTableSize >= 1_000_000, `flow table of ${d.flowTableSize} entries`);
    const sc = d.scenarios.find((x) => x.name === 'isolated')!;
    const entries = (flows: number): number | undefined =>
      sc.cells.find((c) => c.mode === 'xdp-native' && c.flows === flows)?.flowTableEntries;
    // 2-way buckets: the flows that found their bucket full are in the takeover table (see above).
    assert.equal(entries(16), 16);
    assert.ok(entries(4096)! >= 0.99 * 4096 && entries(4096)! <= 4096, `4096 cell: ${entries(4096)} entries`);
    assert.ok(entries(1_000_000)! >= 850_000, `1M cell: ${entries(1_000_000)} entries`);
  });

  it('compares IPIP and GUE tunnels with DR on the same path and sends them encapsulated', () => {
    const d = ok(r.sections.pktrate, 'pktrate');
    const sc = d.scenarios.find((x) => x.name === 'isolated')!;
    assert.deepEqual(
      sc.forwarding.map((x) => x.forwarding),
      ['dr', 'tunnel/ipip', 'tunnel/gue'],
    );
    for (const x of sc.forwarding)
      assert.ok(x.mpps! > 0 && x.ratioToDr! > 0 && x.pairedRatioToDr! > 0, JSON.stringify(x));
    assert.equal(sc.forwarding[0].ratioToDr, 1);
    const size = (mode: string): number =>
      sc.cells.find((c) => c.mode === mode && c.flows === d.baseFlows)!.rounds[0].bytesPerFrame;
    // The generator's 64-byte frame comes back as is (DR), behind a 20-byte outer IPv4 header
    // (IPIP), or behind outer IPv4 + UDP + the 4-byte GUE header (GUE).
    assert.equal(size('xdp-native'), d.frameBytes);
    assert.equal(size('tunnel-ipip'), d.frameBytes + 20);
    assert.equal(size('tunnel-gue'), d.frameBytes + 20 + 8 + 4);
  });

  it('reports IPVS and pktgen as unavailable here with the reason found by trying', () => {
    const d = ok(r.sections.pktrate, 'pktrate');
    if (fs.existsSync('/proc/net/ip_vs')) return;
    for (const sc of d.scenarios) {
      const ipvs = sc.cells.find((x) => x.mode === 'ipvs')!;
      assert.equal(ipvs.status, 'skipped');
      assert.match(ipvs.reason ?? '', /ipvsadm -Ln failed/);
    }
    if (!fs.existsSync('/proc/net/pktgen')) assert.match(d.generator.pktgen, /^not available: /);
  });

  it('measures the ring apply of M=65537 N=1000 through the real dataplane', () => {
    const d = ok(r.sections.maglev, 'maglev');
    const a = d.apply;
    assert.ok(a, 'ring apply missing');
    assert.equal(a.status, 'ok', a.reason);
    assert.equal(a.ringSize, 65537);
    assert.equal(a.backends, 1000);
    assert.equal(a.applyMs!.n, a.samples);
    assert.ok(a.applyMs!.median > 0 && a.applyCpuMs!.median > 0 && a.ringBuildMs!.median > 0);
    assert.ok(a.slotsWritten!.median > 0 && a.slotsWritten!.median < 65537, `slots ${JSON.stringify(a.slotsWritten)}`);
  });

  it('measures MySQL through the XDP VIP, directly and through HAProxy for every client count', () => {
    const d = ok(r.sections.mysql, 'mysql');
    for (const t of d.targets) {
      assert.equal(t.status, 'ok', `${t.target}: ${t.reason}`);
      assert.deepEqual(
        t.points.map((p) => p.clients),
        d.clients,
      );
      for (const p of t.points)
        assert.ok(p.connectsPerSec > 0 && p.queriesPerSec > 0, `${t.target}: ${JSON.stringify(p)}`);
    }
    const direct = d.targets.find((t) => t.target === 'direct')!;
    assert.deepEqual(Object.keys(Object.assign({}, ...direct.points.map((p) => p.backends))), ['1']);
  });

  it('reports Maglev build times, balance near the weights and disruption at or above the minimum', () => {
    const d = ok(r.sections.maglev, 'maglev');
    assert.ok(d.builds.length > 0 && d.builds.every((b) => b.ms.median > 0));
    for (const b of d.balance) assert.ok(b.minOverExpected > 0.9 && b.maxOverExpected < 1.1, JSON.stringify(b));
    for (const x of d.disruption) assert.ok(x.factor >= 1, JSON.stringify(x));
  });

  it('measures health detection and marks VRRP failover as not available with a reason', () => {
    const d = ok(r.sections.failover, 'failover');
    const det = d.items.filter((i) => i.name.startsWith('health detection'));
    assert.equal(det.length, 2);
    for (const i of det) assert.ok(i.status === 'ok' && i.ms && i.ms.median > 0, JSON.stringify(i));
    const vrrp = d.items.find((i) => i.name.startsWith('VRRP'))!;
    assert.equal(vrrp.status, 'not-available');
    assert.ok((vrrp.reason ?? '').length > 0);
  });

  it("gives every test-run case, the no-op and every forwarding class the kernel's own ns per run (bpf_stats)", () => {
    const d = ok(r.sections.testrun, 'testrun');
    assert.equal(d.bpfStats?.enabled, true, d.bpfStats?.detail);
    assert.ok(d.calibration.bpfNs!.median > 0);
    for (const c of d.cases) {
      assert.equal(c.bpfNs?.n, d.rounds, c.name);
      assert.ok(c.bpfNs!.median > 0 && c.bpfOverNoop !== undefined, `${c.name}: ${JSON.stringify(c.bpfNs)}`);
    }
    assert.ok(d.forwarding!.noop.bpfNs!.median > 0);
    for (const c of d.forwarding!.cases)
      assert.ok(c.bpfNs!.median > 0 && c.bpfOverNoop !== undefined, `${c.name}: ${JSON.stringify(c.bpfNs)}`);
  });

  it('measures every row of the packet path at scale against the no-op in one run: a value, or the reason it has none', () => {
    const d = ok(r.sections.scale, 'scale');
    assert.deepEqual(
      d.rows.map((x) => x.id),
      ['flows-large', 'flows-base', 'syn', 'flood', 'tunnel-ipip', 'tunnel-gue', 'memory'],
    );
    for (const row of d.rows) {
      assert.ok(row.value !== undefined || (row.skipped ?? '').length > 0, JSON.stringify(row));
      // Here every row is measurable: root, bpf_stats, the isolated path.
      assert.ok(row.value! > 0 && row.today, JSON.stringify(row));
      if (row.id !== 'memory') assert.ok(row.noop && row.bpfStats, JSON.stringify(row));
    }
    const sc = d.pktrate.scenarios;
    assert.deepEqual(
      sc.map((x) => x.name),
      ['isolated'],
    );
    for (const c of sc[0].cells) {
      assert.equal(c.status, 'ok', `${c.flows} ${c.mode}: ${c.reason}`);
      assert.equal(c.rounds.length, d.pktrate.rounds);
      for (const round of c.rounds) assert.ok(round.bpfStats && round.bpfStats.runs >= round.offered, c.mode);
    }
    const md = fs.readFileSync(
      r.files.find((f) => f.endsWith('.md'))!,
      'utf8',
    );
    assert.match(md, /## 6\. Packet path at scale/);
    assert.match(
      md,
      /\| case \(native, isolated path\) \| today \| goal \| same-run no-op \| bpf_stats ns \(director\) \|/,
    );
  });

  it('floods spoofed SYNs from random sources with established flows inside: every established frame a flow hit, none evicted', () => {
    const d = ok(r.sections.scale, 'scale');
    const c = d.pktrate.scenarios[0].cells.find((x) => x.mode === 'syn-flood')!;
    const f = c.flood!;
    assert.ok(f, JSON.stringify(c));
    assert.equal(
      f.establishedSent,
      c.rounds.reduce((a, x) => a + x.offered / f.every, 0),
    );
    // Every frame arrived (nothing lost on the veth here): each established one hit its flow, each SYN was a new flow.
    assert.equal(c.dropsTotal, 0);
    // Established frames hit their flows as often as those flows were in the table before the flood
    // (a few of 4096 find their 2-way bucket full at warm-up and are takeover flows from the start).
    assert.ok(f.flowHits / f.establishedSent >= f.flowEntriesBefore / f.established - 0.01, JSON.stringify(f));
    // A spoofed SYN is a new flow; one the stream sends again while its first is still embryonic is a
    // retransmit (tx_embryonic): nothing else.
    const syns = c.offeredTotal! - f.establishedSent;
    // (An established frame of a flow not in the table counts as the takeover table's new flow.)
    const misses = f.establishedSent - f.flowHits;
    assert.equal(f.reasons.tx_new_flow + (f.reasons.tx_embryonic ?? 0), syns + misses, JSON.stringify(f.reasons));
    assert.ok(f.reasons.tx_new_flow >= Math.min(syns, f.syns), JSON.stringify(f.reasons));
    assert.deepEqual(
      Object.keys(f.reasons).filter((k) => !['tx_new_flow', 'tx_embryonic', 'tx_flow_hit'].includes(k)),
      [],
    );
    assert.ok(f.flowEntriesBefore >= 0.98 * f.established && f.flowEntriesBefore <= f.established, JSON.stringify(f));
    assert.equal(f.flowEntriesAfter, f.flowEntriesBefore, 'the flood evicted no established flow');
    assert.equal(d.rows.find((x) => x.id === 'flood')!.untouched, true);
  });

  it("reports each flow-tracking table's memory from the kernel's accounting, over its capacity", () => {
    const d = ok(r.sections.scale, 'scale');
    const roles = d.memory.map((m) => m.role);
    for (const role of ['flow4', 'flow6', 'emb4', 'tko4', 'prb4', 'nrev4'])
      assert.ok(roles.includes(role), roles.join(', '));
    for (const m of d.memory) {
      assert.ok(m.capacity >= m.maxEntries && m.maxEntries > 0, JSON.stringify(m));
      // The kernel holds at least the key and value of every entry.
      // (An array stores no key: the flow tables of our own are arrays.)
      const held = (m.type === 'array' ? 0 : m.keySize) + m.valueSize;
      assert.ok(m.memlock >= m.maxEntries * held || m.cache, JSON.stringify(m));
      assert.equal(m.bytesPerFlow, Math.round((m.memlock / m.capacity) * 10) / 10);
    }
    const flow4 = d.memory.find((m) => m.role === 'flow4')!;
    assert.equal(d.rows.find((x) => x.id === 'memory')!.value, flow4.bytesPerFlow);
  });

  it('leaves no namespace, interface, pin directory or temp directory of the run behind', () => {
    const ns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    assert.ok(!ns.includes(`${prefix}`), ns);
    const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
    assert.ok(!links.includes(`${prefix}`), links);
    assert.ok(!links.includes(`xdb${process.pid}-`), links);
    assert.deepEqual(
      fs.readdirSync('/sys/fs/bpf').filter((n) => n.startsWith(prefix)),
      [],
    );
    assert.deepEqual(
      fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(prefix) && !n.includes('-bench-')),
      [],
    );
  });
});

describe('xdirector bench command line', () => {
  it('rejects an unknown section with the list of valid ones', () => {
    assert.throws(
      () => parseArgs(['--only', 'pktrate,nope']),
      /unknown section "nope": use testrun, pktrate, mysql, maglev, failover, scale/,
    );
  });

  it('exits with 2 on a bad argument without running anything', async () => {
    const write = process.stderr.write;
    let err = '';
    process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
    try {
      assert.equal(await main(['--bogus']), 2);
    } finally {
      process.stderr.write = write;
    }
    assert.match(err, /unknown argument "--bogus"/);
  });
});

describe('bench packet rate on a broken path', { timeout: 120_000 }, () => {
  it('reports a path that delivered nothing as an error naming the cause, not as zero Mpps', async () => {
    const { runPktRate } = await import('../../scripts/bench/pktrate');
    const { silentLogger } = await import('../../src/log');
    // The ceiling program sends every frame back to the director's own MAC: the bridge
    // never forwards a frame out of the port it came in on, so nothing reaches a receiver.
    const d = await runPktRate({
      prefix: `xdh${process.pid}e`,
      packets: 20_000,
      rounds: 1,
      flows: [16],
      baseFlows: 16,
      batch: 64,
      receivers: 1,
      modes: ['xdp-tx-noop'],
      scenarios: ['dr-bridge'],
      ceilingMac: '02:00:0a:c9:00:02',
      log: silentLogger(),
    });
    const m = d.scenarios[0].cells[0];
    assert.equal(m.status, 'error');
    assert.match(m.reason ?? '', /offered 20000 frames .* and the real servers received (none|only \d+);/);
    assert.equal(m.mppsDelivered, undefined);
  });
});
