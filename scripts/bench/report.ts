// Report writer: one JSON file per run, a markdown summary and SVG charts, all
// named after the run's start time in the output directory.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { barChartSvg, lineChartSvg, type Bar } from './svg';
import { fmt } from './svg';
import type { BenchResult, MysqlData, PktRateData, ScaleData, SectionOutcome, Spread, TestRunData } from './types';

/** File-name stem for a run: 2026-11-25T15-04-05Z (colons are awkward in file names). */
export function runStem(startedAt: string): string {
  return startedAt.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

function machineLine(r: BenchResult): string {
  const m = r.machine;
  return `${m.cpuModel}, ${m.cpus} vCPU, ${m.memoryMiB} MiB, Linux ${m.kernel}, Node ${m.node}; load average ${m.loadAvg1} at the start`;
}

function outcomeLine<T>(o: SectionOutcome<T> | undefined): string | null {
  if (!o) return 'not run (not selected)';
  if (o.status === 'skipped') return `skipped: ${o.reason}${o.install ? ` (install: \`${o.install}\`)` : ''}`;
  if (o.status === 'error') return `error${o.code ? ` ${o.code}` : ''}: ${o.error}`;
  return null;
}

function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]): string =>
    `| ${cells.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(head), `|${head.map(() => ' --- ').join('|')}|`, ...rows.map(line)].join('\n');
}

/** 1000000 -> 1M, 4096 -> 4096. */
export function flowsLabel(n: number): string {
  return n >= 1_000_000 && n % 1_000_000 === 0 ? `${n / 1_000_000}M` : String(n);
}

function f(x: number | undefined, digits = 2): string {
  return x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

function settingsNote(d: Record<string, unknown> | undefined): string {
  if (!d || d.interval === undefined) return '';
  return `; checks every ${String(d.interval)} ms, timeout ${String(d.timeout)} ms, fall ${String(d.fall)}${d.defaults ? ' (defaults)' : ' (quick-mode settings, not the defaults)'}`;
}

/** "12.0 (+3.0)": the kernel's bpf_stats ns per run and, in brackets, over the no-op's in the same round. */
function bpfCell(ns: Spread | undefined, over: Spread | undefined): string {
  if (!ns) return '–';
  return over ? `${f(ns.median, 1)} (+${f(over.median, 1)})` : f(ns.median, 1);
}

/** The test-run tables (section 1, and the scale section's SYN row's source). */
function testRunTables(d: TestRunData): string[] {
  const out: string[] = [];
  out.push(
    `repeat ${d.repeat} × ${d.rounds} interleaved rounds; calibration \`${d.calibration.program}\`: ${f(d.calibration.ns.median, 1)} ns/packet (${f(d.calibration.ns.min, 1)}–${f(d.calibration.ns.max, 1)})${d.calibration.bpfNs ? `, ${f(d.calibration.bpfNs.median, 1)} ns per run by bpf_stats` : ''}.`,
    '',
  );
  if (d.bpfStats)
    out.push(
      d.bpfStats.enabled
        ? `bpf_stats column: the kernel's own run_time_ns / run_cnt of the program over each timed run (every repeat counts), median over rounds, and over the no-op's in the same round in brackets. ${d.bpfStats.detail}.`
        : `bpf_stats: not available (${d.bpfStats.detail}).`,
      '',
    );
  out.push(
    table(
      ['case', 'verdict (reason)', 'ns/packet median', 'min–max', 'over no-op (median)', 'bpf_stats ns (over no-op)'],
      d.cases.map((c) => [
        c.name,
        `${c.verdictName} (${c.reason})`,
        f(c.ns.median, 1),
        `${f(c.ns.min, 1)}–${f(c.ns.max, 1)}`,
        f(c.deltaOverNoop.median, 1),
        bpfCell(c.bpfNs, c.bpfOverNoop),
      ]),
    ),
    '',
  );
  const w = d.forwarding;
  if (!w) return out;
  out.push(`### DR vs tunnel (${w.method}; ${w.calls} calls × ${w.rounds} rounds)`, '');
  out.push(
    `No-op \`${w.noop.program}\`: ${f(w.noop.ns.median, 1)} ns per call (${f(w.noop.ns.min, 1)}–${f(w.noop.ns.max, 1)})${w.noop.bpfNs ? `, ${f(w.noop.bpfNs.median, 1)} ns per run by bpf_stats` : ''}.`,
    '',
  );
  out.push(
    table(
      [
        'case',
        'verdict (reason)',
        'ns/call median',
        'min–max',
        'over no-op (median)',
        'over no-op vs DR',
        'bpf_stats ns (over no-op)',
      ],
      w.cases.map((c) => [
        c.name,
        `${c.verdictName} (${c.reason})`,
        f(c.ns.median, 1),
        `${f(c.ns.min, 1)}–${f(c.ns.max, 1)}`,
        f(c.overNoop.median, 1),
        c.vsDr === undefined ? '–' : `${c.vsDr.toFixed(2)}×`,
        bpfCell(c.bpfNs, c.bpfOverNoop),
      ]),
    ),
    '',
  );
  return out;
}

/** Section 6: the issue's table (case, today, goal, same-run no-op, bpf_stats), then what each row was made of. */
function scaleTables(d: ScaleData): string[] {
  const out: string[] = [];
  const p = d.pktrate;
  out.push(
    `Method: ${d.method}. Generator: **${p.generator.kind}** (${p.generator.processes} process${p.generator.processes === 1 ? '' : 'es'}), ${p.packetsPerRound} frames per cell × ${p.rounds} rounds, ${p.frameBytes}-byte TCP frames, flow tables of ${p.flowTableSize} entries; bpf_stats ${p.bpfStats.enabled ? 'on' : `off (${p.bpfStats.detail})`}.`,
    '',
  );
  out.push(
    table(
      ['case (native, isolated path)', 'today', 'goal', 'same-run no-op', 'bpf_stats ns (director)'],
      d.rows.map((r) => [
        r.case,
        r.skipped !== undefined && r.today === undefined ? `no value: ${r.skipped}` : (r.today ?? '–'),
        r.goal,
        r.noop ?? '–',
        r.bpfStats ?? '–',
      ]),
    ),
    '',
  );
  out.push(
    'Today: packet-rate rows are the no-op’s bpf_stats ns per packet over the director’s (the program’s own rate ratio, paired round by round): the generator, not the program, limits the wall-clock rate of both; the wall-clock and per-CPU-second ratios are in the details below.',
    '',
  );
  out.push(...d.rows.filter((r) => r.detail).map((r) => `- ${r.case}: ${r.detail}`), '');
  const iso = p.scenarios.find((x) => x.name === 'isolated');
  if (iso) {
    out.push(
      table(
        [
          'cell',
          'flows',
          'Mpps (median)',
          'Mpps per CPU-second',
          'bpf_stats ns/packet (median, min–max)',
          'frames lost',
        ],
        iso.cells.map((c) => [
          c.mode,
          flowsLabel(c.flows),
          c.status === 'ok' ? f(c.mppsDelivered?.median, 3) : `${c.status}: ${c.reason ?? ''}`,
          f(c.mppsPerCpu?.median, 3),
          c.nsPerPacket ? `${f(c.nsPerPacket.median, 1)} (${f(c.nsPerPacket.min, 1)}–${f(c.nsPerPacket.max, 1)})` : '–',
          c.dropsTotal ?? '–',
        ]),
      ),
      '',
    );
  }
  if (d.memory.length)
    out.push(
      'Memory of each flow-tracking table (the kernel’s memlock from /proc/self/fdinfo, over its capacity; the headline row is the IPv4 flow table):',
      '',
      table(
        ['table', 'map', 'type', 'key + value bytes', 'capacity', 'memlock MiB', 'bytes per flow'],
        d.memory.map((m) => [
          `${m.role}${m.cache ? ' (per-CPU cache)' : ''}`,
          m.map,
          m.type,
          `${m.keySize} + ${m.valueSize}`,
          m.capacity,
          f(m.memlock / 1048576, 1),
          f(m.bytesPerFlow, 1),
        ]),
      ),
      '',
    );
  return out;
}

/** The markdown summary of a run (also printed by the CLI). */
export function markdown(r: BenchResult, charts: Record<string, string> = {}): string {
  const out: string[] = [];
  out.push(`# xdirector bench: ${r.startedAt}${r.quick ? ' (--quick smoke run: short, noisy)' : ''}`, '');
  out.push(`Machine: ${machineLine(r)}.`, '');
  const s = r.sections;

  out.push('## 1. Per-packet cost (BPF_PROG_TEST_RUN)', '');
  const t = outcomeLine(s.testrun);
  if (t) out.push(t, '');
  else if (s.testrun?.status === 'ok') {
    const d = s.testrun.data;
    out.push(...testRunTables(d));
    if (charts.testrun) out.push(`![ns/packet](${charts.testrun})`, '');
  }

  out.push('## 2. Packet rate through veth (received side)', '');
  const p = outcomeLine(s.pktrate);
  if (p) out.push(p, '');
  else if (s.pktrate?.status === 'ok') {
    const d = s.pktrate.data;
    out.push(
      `Generator: **${d.generator.kind}**: ${d.generator.detail}. Live frames: ${d.generator.liveFrames}. pktgen: ${d.generator.pktgen}. ${d.frameBytes}-byte TCP frames; ceiling matrix over ${d.flows.map(flowsLabel).join(', ')} flows, the DR path, the kernel path and the tunnels at ${flowsLabel(d.baseFlows)} flows; ${d.packetsPerRound} packets per cell × ${d.rounds} rounds, every round cycling through every cell of both paths, batch ${d.batchSize}. Each flow count has its own director, programmed through XdpDataplane.open() + apply(), flow tables of ${d.flowTableSize} entries.`,
      '',
    );
    out.push(
      `Per-packet cost (ns columns): ${d.bpfStats.enabled ? d.bpfStats.detail : `not measured: ${d.bpfStats.detail}`}. It does not depend on the generator's speed; the Mpps columns do (generator: ${d.generator.kind}).`,
      '',
    );
    const pct = (x?: number): string => (x === undefined ? '–' : `${(x * 100).toFixed(0)}%`);
    const ns = (x?: number): string => (x === undefined ? '–' : x.toFixed(1));
    const times = (x?: number): string => (x === undefined ? '–' : `${x.toFixed(2)}×`);
    for (const sc of d.scenarios) {
      out.push(`### ${sc.name}: ${sc.description}`, '');
      if (sc.ceiling.length) {
        out.push(
          `Director against the no-op XDP_TX ceiling in the same XDP mode (medians over rounds; flow hits: timed packets that hit the flow table; table: entries after the run):`,
          '',
        );
        out.push(
          table(
            [
              'flows',
              'XDP mode',
              'director Mpps',
              'no-op Mpps',
              'director / ceiling',
              'same-round ratio (median)',
              'per CPU-second',
              'director ns/pkt (bpf_stats)',
              'no-op ns/pkt (bpf_stats)',
              'director − no-op ns',
              'flow hits',
              'flow table entries',
            ],
            sc.ceiling.map((c) => [
              flowsLabel(c.flows),
              c.xdp,
              f(c.director),
              f(c.ceiling),
              pct(c.ratio),
              pct(c.pairedRatio),
              pct(c.ratioPerCpu),
              ns(c.directorNs),
              ns(c.ceilingNs),
              ns(c.nsOverCeiling),
              c.flowHitRate === undefined ? '–' : `${(c.flowHitRate * 100).toFixed(1)}%`,
              c.flowTableEntries ?? '–',
            ]),
          ),
          '',
        );
      }
      if (sc.forwarding.length) {
        out.push(
          `Tunnel against DR, the same service on the same path (native XDP, ${flowsLabel(sc.forwarding[0].flows)} flows):`,
          '',
        );
        out.push(
          table(
            ['forwarding', 'Mpps (median)', 'vs DR', 'same-round vs DR (median)', 'vs DR per CPU-second'],
            sc.forwarding.map((x) => [
              x.forwarding,
              f(x.mpps),
              times(x.ratioToDr),
              times(x.pairedRatioToDr),
              times(x.ratioToDrPerCpu),
            ]),
          ),
          '',
        );
      }
      out.push(
        table(
          [
            'flows',
            'mode',
            'Mpps delivered (median)',
            'min–max',
            'Mpps per CPU-second (median)',
            'ns/pkt at eth0 (bpf_stats, median)',
            'offered',
            'delivered',
            'drops',
          ],
          sc.cells.map((m) =>
            m.status === 'ok'
              ? [
                  flowsLabel(m.flows),
                  m.mode,
                  f(m.mppsDelivered?.median),
                  `${f(m.mppsDelivered?.min)}–${f(m.mppsDelivered?.max)}`,
                  f(m.mppsPerCpu?.median),
                  ns(m.nsPerPacket?.median),
                  m.offeredTotal ?? '–',
                  m.deliveredTotal ?? '–',
                  m.dropsTotal ?? '–',
                ]
              : [
                  flowsLabel(m.flows),
                  m.mode,
                  `${m.status}: ${m.reason ?? ''}${m.install ? ` (\`${m.install}\`)` : ''}`,
                  '',
                  '',
                  '',
                  '',
                  '',
                  '',
                ],
          ),
        ),
        '',
      );
      for (const [label, r2] of [
        ['wall clock', sc.ratios],
        ['per CPU-second', sc.ratiosPerCpu],
      ] as const) {
        out.push(
          `Ratios, ${sc.name} at ${flowsLabel(d.baseFlows)} flows (${label}): native XDP vs no-op XDP_TX ceiling ${pct(r2.nativeVsCeiling)}; native XDP vs kernel path ${times(r2.nativeVsKernel)}; generic XDP vs kernel path ${times(r2.genericVsKernel)}.`,
          '',
        );
      }
    }
    const rounds = d.scenarios.flatMap((sc) => sc.cells.flatMap((m) => m.rounds));
    const genCpu = rounds.reduce((a, x) => a + x.cpuSeconds, 0);
    const soft = rounds.reduce((a, x) => a + (x.ksoftirqdSeconds ?? 0), 0);
    out.push(
      `Mpps delivered is wall clock (shares the CPUs with whatever else runs); Mpps per CPU-second divides by the CPU time of the generator context, where the whole path runs inline (ksoftirqd, which would run deferred softirq work outside it, used ${soft.toFixed(2)} s against ${genCpu.toFixed(2)} s in the generator context, including unrelated work). The isolated path measures the director's own cost; on the DR path the bridge and veth hops dominate.`,
      '',
    );
    if (charts.pktrate) out.push(`![packet rate](${charts.pktrate})`, '');
    if (charts.pktrateCpu) out.push(`![packet rate per CPU-second](${charts.pktrateCpu})`, '');
  }

  out.push('## 3. MySQL through the VIP', '');
  const q = outcomeLine(s.mysql);
  if (q) out.push(q, '');
  else if (s.mysql?.status === 'ok') {
    const d = s.mysql.data;
    out.push(
      `Loader: ${d.loader}; ${d.seconds} s per measurement, median of ${d.rounds} interleaved rounds per point; ${d.backends} MariaDB backends.`,
      '',
    );
    const rows: (string | number)[][] = [];
    for (const tg of d.targets) {
      if (tg.status !== 'ok') {
        rows.push([
          tg.target,
          '–',
          `${tg.status}: ${tg.reason ?? ''}${tg.install ? ` (\`${tg.install}\`)` : ''}`,
          '',
          '',
        ]);
        continue;
      }
      for (const pt of tg.points)
        rows.push([tg.target, pt.clients, fmt(pt.connectsPerSec), fmt(pt.queriesPerSec), pt.errors]);
    }
    out.push(table(['path', 'clients', 'new connections/s', 'queries/s', 'errors'], rows), '');
    if (charts.mysqlConnects) out.push(`![connections/s](${charts.mysqlConnects})`, '');
    if (charts.mysqlQueries) out.push(`![queries/s](${charts.mysqlQueries})`, '');
  }

  out.push('## 4. Maglev', '');
  const g = outcomeLine(s.maglev);
  if (g) out.push(g, '');
  else if (s.maglev?.status === 'ok') {
    const d = s.maglev.data;
    out.push(
      table(
        ['backends N', 'table size M', 'build ms (median)', 'min–max'],
        d.builds.map((b) => [b.backends, b.ringSize, f(b.ms.median, 2), `${f(b.ms.min, 2)}–${f(b.ms.max, 2)}`]),
      ),
      '',
    );
    out.push(
      table(
        ['N', 'M', 'weights', 'max share / expected', 'min share / expected', 'max/min'],
        d.balance.map((b) => [
          b.backends,
          b.ringSize,
          b.weights,
          f(b.maxOverExpected, 4),
          f(b.minOverExpected, 4),
          f(b.maxMinRatio, 4),
        ]),
      ),
      '',
    );
    out.push(
      table(
        ['N', 'M', 'change', 'slots moved', 'theoretical minimum', 'factor'],
        d.disruption.map((x) => [x.backends, x.ringSize, x.change, x.movedSlots, x.minimumSlots, f(x.factor, 3)]),
      ),
      '',
    );
    const a = d.apply;
    if (a) {
      out.push(
        `### Ring apply through the XDP dataplane (M=${a.ringSize}, N=${a.backends}; goal: under ${a.goalMs} ms)`,
        '',
      );
      if (a.status !== 'ok') out.push(`${a.status === 'skipped' ? 'skipped' : 'error'}: ${a.reason ?? ''}`, '');
      else {
        const row = (name: string, wall?: Spread, cpu?: Spread): string[] => [
          name,
          f(wall?.median, 2),
          `${f(wall?.min, 2)}–${f(wall?.max, 2)}`,
          f(cpu?.median, 2),
          wall && cpu
            ? wall.median < a.goalMs
              ? 'met'
              : cpu.median < a.goalMs
                ? 'met on CPU time only'
                : 'missed'
            : '–',
        ];
        out.push(
          table(
            ['step', 'wall ms (median)', 'min–max', 'CPU ms (median)', `goal < ${a.goalMs} ms`],
            [
              row('ring build (Maglev table)', a.ringBuildMs, a.ringBuildCpuMs),
              row('apply: one weight change (plan, changed slots, flip)', a.applyMs, a.applyCpuMs),
            ],
          ),
          '',
        );
        out.push(
          `${a.samples} samples after one warm-up (measureApply, generic XDP on its own veth); ring slots written per apply: median ${f(a.slotsWritten?.median, 0)}; first apply of the whole state (every slot written): ${f(a.firstApplyMs, 1)} ms; load average ${(a.loadavgBefore ?? []).join('/')} before, ${(a.loadavgAfter ?? []).join('/')} after.`,
          '',
        );
      }
    }
  }

  out.push('## 5. Failover and health detection', '');
  const v = outcomeLine(s.failover);
  if (v) out.push(v, '');
  else if (s.failover?.status === 'ok') {
    out.push(
      table(
        ['measurement', 'result'],
        s.failover.data.items.map((i) =>
          i.status === 'ok' && i.ms
            ? [
                i.name,
                `${f(i.ms.median, 0)} ms median (${f(i.ms.min, 0)}–${f(i.ms.max, 0)}, n=${i.ms.n})${settingsNote(i.detail)}`,
              ]
            : [i.name, `not available: ${i.reason ?? ''}`],
        ),
      ),
      '',
    );
  }
  out.push('## 6. Packet path at scale', '');
  const sc = outcomeLine(s.scale);
  if (sc) out.push(sc, '');
  else if (s.scale?.status === 'ok') out.push(...scaleTables(s.scale.data));
  return out.join('\n');
}

function testrunChart(d: TestRunData, sub: string): string {
  const w = d.forwarding;
  const bars: Bar[] = [
    {
      label: `no-op (${d.calibration.program})`,
      value: d.calibration.ns.median,
      range: [d.calibration.ns.min, d.calibration.ns.max],
      group: 'calibration',
    },
    ...d.cases.map((c) => ({
      label: c.name,
      value: c.ns.median,
      range: [c.ns.min, c.ns.max] as [number, number],
      group: 'director',
    })),
    ...(w
      ? [
          {
            label: 'no-op, repeat=1 per call',
            value: w.noop.ns.median,
            range: [w.noop.ns.min, w.noop.ns.max] as [number, number],
            group: 'calibration, repeat=1',
          },
          ...w.cases.map((c) => ({
            label: `${c.name}, repeat=1`,
            value: c.ns.median,
            range: [c.ns.min, c.ns.max] as [number, number],
            group: 'DR vs tunnel, repeat=1',
          })),
        ]
      : []),
  ];
  return barChartSvg({
    title: 'XDP director: cost per packet (BPF_PROG_TEST_RUN)',
    subtitle: sub,
    unit: 'ns/packet',
    bars,
  });
}

function pktChart(d: PktRateData, key: 'mppsDelivered' | 'mppsPerCpu', sub: string): string {
  const bars: Bar[] = d.scenarios.flatMap((sc) =>
    sc.cells
      .filter((m) => m.status === 'ok' && m[key])
      .map((m) => ({
        label: `${sc.name} ${flowsLabel(m.flows)}: ${m.mode}`,
        value: m[key]!.median,
        range: [m[key]!.min, m[key]!.max] as [number, number],
        group: `${sc.name} ${m.mode.startsWith('xdp-tx-noop') ? 'ceiling' : m.mode.startsWith('xdp') || m.mode.startsWith('tunnel') ? 'xdirector' : 'kernel'}`,
      })),
  );
  return key === 'mppsDelivered'
    ? barChartSvg({
        title: 'Packets delivered through veth (wall clock): DR path and isolated director',
        subtitle: sub,
        unit: 'Mpps',
        bars,
      })
    : barChartSvg({
        title: 'Packets delivered per CPU-second of the packet path: DR path and isolated director',
        subtitle: sub,
        unit: 'Mpps per CPU-second',
        bars,
      });
}

function mysqlChart(d: MysqlData, key: 'connectsPerSec' | 'queriesPerSec', sub: string): string {
  const ok = d.targets.filter((t) => t.status === 'ok');
  return lineChartSvg({
    title: key === 'connectsPerSec' ? 'MySQL new connections per second' : 'MySQL queries per second',
    subtitle: sub,
    xLabel: 'concurrent clients',
    yLabel: key === 'connectsPerSec' ? 'connections/s' : 'queries/s',
    x: d.clients.map(String),
    series: ok.map((t) => ({
      name: t.target,
      values: d.clients.map((c) => t.points.find((p) => p.clients === c)?.[key] ?? null),
    })),
  });
}

/** Write <stem>.json, <stem>.md and the SVG charts into outDir; returns the absolute paths written (also stored in result.files). */
export async function writeReport(result: BenchResult, outDir: string): Promise<string[]> {
  const dir = resolve(outDir);
  await mkdir(dir, { recursive: true });
  const stem = runStem(result.startedAt);
  const sub = `${result.machine.cpus} vCPU, Linux ${result.machine.kernel}, load avg ${result.machine.loadAvg1}${result.quick ? ', --quick' : ''}`;
  const charts: Record<string, string> = {};
  const svgs: [string, string][] = [];
  const s = result.sections;
  if (s.testrun?.status === 'ok') svgs.push(['testrun', testrunChart(s.testrun.data, sub)]);
  if (s.pktrate?.status === 'ok' && s.pktrate.data.scenarios.some((sc) => sc.cells.some((m) => m.status === 'ok'))) {
    svgs.push(['pktrate', pktChart(s.pktrate.data, 'mppsDelivered', sub)]);
    svgs.push(['pktrateCpu', pktChart(s.pktrate.data, 'mppsPerCpu', sub)]);
  }
  if (s.mysql?.status === 'ok' && s.mysql.data.targets.some((t) => t.status === 'ok')) {
    svgs.push(['mysqlConnects', mysqlChart(s.mysql.data, 'connectsPerSec', sub)]);
    svgs.push(['mysqlQueries', mysqlChart(s.mysql.data, 'queriesPerSec', sub)]);
  }
  const files: string[] = [];
  for (const [name, svg] of svgs) {
    const file = `${stem}-${name}.svg`;
    charts[name] = file;
    await writeFile(join(dir, file), svg);
    files.push(join(dir, file));
  }
  const md = join(dir, `${stem}.md`);
  await writeFile(md, markdown(result, charts) + '\n');
  files.push(md);
  const json = join(dir, `${stem}.json`);
  files.push(json);
  result.files = files;
  await writeFile(json, JSON.stringify(result, null, 2) + '\n');
  return files;
}
