// Section 2: packet rate through veth, measured on the receive side, on two
// paths (scenarios), rounds interleaved across both:
//
// dr-bridge (the full one-armed DR path; bridge and veth hops dominate):
//   gen ns ──veth── bridge ns (br0) ──veth── director ns ──(XDP_TX / forward)── br0 ── rN ns
//
// isolated (the director's own cost, research lab.md §3):
//   gen ns eth0 ⇄ director ns eth0 (one veth pair); the director sends every
//   frame straight back to the generator, whose eth0 counts and drops it
//   (xdp_count). The director program's backends all carry the generator's
//   MAC; the kernel path forwards back out of eth0 via the generator.
//
// The generator (xdp_gen on BPF_PROG_RUN live frames, in its own process inside
// the client namespace) sends TCP frames to VIP:3306 via the director's MAC,
// over many source ports. Each real server counts what reaches its eth0 with
// xdp_count (per-CPU counter, XDP_DROP). The director's eth0 runs, in turn,
// interleaved round by round on the same path:
//   xdp-native      xdirector, native (driver) mode
//   xdp-generic     xdirector, generic (skb) mode
//   xdp-tx-noop     xdp_tx_noop: MAC rewrite + XDP_TX only (the ceiling)
//   kernel-forward  XDP_PASS (xdp_count pass) + kernel forwarding, ECMP route to the real servers
//   ipvs            where the kernel has IPVS (skipped here with the reason)
// Bridge-side peers of the generator and the director carry xdp_count in pass
// mode: native XDP_TX / ndo_xdp_xmit on veth needs an XDP program on the peer
// (on the isolated path the generator's counter is that peer; for generic mode
// the director's eth0 gets GRO on, which gives its veth the NAPI the
// generator's ndo_xdp_xmit needs). One generator worker per path (the same
// program, frame shape and flows), since live frames leave from the caller's
// namespace.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import * as path from 'node:path';
import { XdError, wrap } from '../../src/errors';
import { runIn, waitChildExit, sleep } from '../lab/exec';
import type { Logger } from '../../src/log';
import { loadCounter, loadDirector, loadNoopTx, type BenchDirector, type CounterProg, type PinnedProg } from './director';
import { buildFrame, TCP_ACK, TCP_SYN } from './packet';
import { spread, round, roundSpread } from './stats';
import { createIsolated, createTopology, setKernelEcmp, xdpAttachPinned, xdpDetach, type IsolatedTopology, type Topology } from './topology';
import type { PktMode, PktModeResult, PktRateData, PktRatios, PktRound, PktScenario, PktScenarioName } from './types';
import { ToolError } from '../errors';

export interface PktRateOptions {
  prefix: string;
  packets: number;
  rounds: number;
  flows: number;
  batch: number;
  receivers: number;
  /** Modes to run (default all). */
  modes?: PktMode[];
  /** Paths to drive (default both). */
  scenarios?: PktScenarioName[];
  /** dr-bridge: destination MAC the no-op XDP_TX program writes (default: the first real server's). */
  ceilingMac?: string;
  log: Logger;
  progress?: (msg: string) => void;
}

export const PKTRATE_FULL = { packets: 2_000_000, rounds: 3, flows: 4096, batch: 64, receivers: 2 };
export const PKTRATE_QUICK = { packets: 200_000, rounds: 1, flows: 1024, batch: 64, receivers: 2 };

const ALL_MODES: PktMode[] = ['xdp-native', 'xdp-generic', 'xdp-tx-noop', 'kernel-forward', 'ipvs'];
const ALL_SCENARIOS: PktScenarioName[] = ['dr-bridge', 'isolated'];
const SCENARIO_DESCRIPTIONS: Record<PktScenarioName, string> = {
  'dr-bridge': 'full one-armed DR path: generator → bridge → director → bridge → real servers (counted on the real servers)',
  isolated: 'isolated director: generator eth0 ⇄ director eth0 on one veth pair, sent straight back to the generator (counted on its eth0)',
};
const DESCRIPTIONS: Record<PktScenarioName, Record<PktMode, string>> = {
  'dr-bridge': {
    'xdp-native': 'xdirector in native (driver) XDP mode, DR via XDP_TX',
    'xdp-generic': 'xdirector in generic (skb) XDP mode, DR via XDP_TX',
    'xdp-tx-noop': 'no-op XDP_TX (MAC rewrite only) on the same path: the ceiling',
    'kernel-forward': 'XDP_PASS + kernel IPv4 forwarding, ECMP route over the real servers',
    ipvs: 'IPVS direct routing (mh scheduler)',
  },
  isolated: {
    'xdp-native': 'xdirector in native (driver) XDP mode, XDP_TX back to the generator (every backend has its MAC)',
    'xdp-generic': 'xdirector in generic (skb) XDP mode, XDP_TX back to the generator',
    'xdp-tx-noop': 'no-op XDP_TX (MAC rewrite only) back to the generator: the ceiling',
    'kernel-forward': 'XDP_PASS + kernel IPv4 forwarding back out of eth0 (route for the VIP via the generator, static neighbour)',
    ipvs: 'IPVS direct routing (mh scheduler)',
  },
};
const BASE_PORT = 10000;

/** Why kernel pktgen cannot be used, or null if /proc/net/pktgen exists. */
export function pktgenUnavailable(): string | null {
  if (fs.existsSync('/proc/net/pktgen/pgctrl')) return null;
  return '/proc/net/pktgen/pgctrl does not exist (kernel built without CONFIG_NET_PKTGEN, and it cannot load modules)';
}

/** Why IPVS cannot be used in namespace ns, found by asking the kernel, or null if it can. */
export async function ipvsUnavailable(ns: string): Promise<string | null> {
  const r = await runIn(ns, 'ipvsadm', ['-Ln'], { allowFail: true }).catch((e: unknown) => ({ code: -1, stdout: '', stderr: e instanceof Error ? e.message : String(e) }));
  if (r.code === 0) return null;
  const why = (r.stderr || r.stdout).trim().split('\n')[0];
  const proc = fs.existsSync('/proc/net/ip_vs') ? '' : '; /proc/net/ip_vs does not exist (CONFIG_IP_VS not built in, no loadable modules)';
  return `ipvsadm -Ln failed: ${why}${proc}`;
}

/** Client side of genworker.js running inside the client namespace. */
class GenClient {
  private lines: AsyncIterator<string>;
  private stderr = '';
  private constructor(readonly child: ChildProcess) {
    this.lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    child.on('error', (err) => (this.stderr += `${err.message}\n`));
  }

  static start(ns: string): GenClient {
    const script = path.join(__dirname, 'genworker.js');
    // nsenter --net keeps the mount namespace: bpffs and the addon stay visible.
    const child = spawn('nsenter', [`--net=/run/netns/${ns}`, '--', process.execPath, script], { stdio: ['pipe', 'pipe', 'pipe'] });
    return new GenClient(child);
  }

  /** Send one request and wait for its answer (at most timeoutMs; then the worker is killed). */
  async call(msg: Record<string, unknown>, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    this.child.stdin!.write(JSON.stringify(msg) + '\n');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        reject(new ToolError('XD_ERR_BENCH', `generator ${String(msg.op)}: no answer within ${timeoutMs} ms (worker killed): ${this.stderr.trim()}`));
      }, timeoutMs);
    });
    const r = await Promise.race([this.lines.next(), timeout]).finally(() => clearTimeout(timer));
    if (r.done) throw new ToolError('XD_ERR_BENCH', `generator process exited (code ${this.child.exitCode}): ${this.stderr.trim()}`);
    const o = JSON.parse(r.value) as Record<string, unknown>;
    if (o.ok !== true) throw new ToolError('XD_ERR_BENCH', `generator ${String(msg.op)}: ${String(o.error)}`);
    return o;
  }

  async stop(): Promise<void> {
    this.child.stdin!.end();
    if (!(await waitChildExit(this.child, 5000))) this.child.kill('SIGKILL');
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

/** One path the generator drives, set up and ready for attach(mode). */
interface Path {
  scenario: PktScenario;
  gen: GenClient;
  syn: Buffer;
  ack: Buffer;
  frameBytes: number;
  director?: BenchDirector;
  attach(mode: PktMode): Promise<void>;
  detach(): Promise<void>;
  /** Frames counted so far per receiving interface. */
  counts(): bigint[];
}

const ratio = (a?: number, b?: number): number | undefined => (a !== undefined && b !== undefined && b > 0 ? round(a / b, 3) : undefined);

function scenarioRatios(modes: PktModeResult[], key: 'mppsDelivered' | 'mppsPerCpu'): PktRatios {
  const med = (mode: PktMode): number | undefined => modes.find((x) => x.mode === mode && x.status === 'ok')?.[key]?.median;
  return {
    nativeVsCeiling: ratio(med('xdp-native'), med('xdp-tx-noop')),
    nativeVsKernel: ratio(med('xdp-native'), med('kernel-forward')),
    genericVsKernel: ratio(med('xdp-generic'), med('kernel-forward')),
  };
}

function frames(srcMac: string, dstMac: string, src: string, dst: string): { syn: ReturnType<typeof buildFrame>; ack: ReturnType<typeof buildFrame> } {
  const frameOf = (flags: number): ReturnType<typeof buildFrame> =>
    buildFrame({ srcMac, dstMac, family: 4, src, dst, proto: 'tcp', sport: BASE_PORT, dport: 3306, flags, minLength: 60, multipleOf: 8 });
  return { syn: frameOf(TCP_SYN), ack: frameOf(TCP_ACK) };
}

async function startGen(ns: string, syn: ReturnType<typeof buildFrame>, o: PktRateOptions): Promise<GenClient> {
  const gen = GenClient.start(ns);
  try {
    await gen.call({ op: 'init', ifname: 'eth0', frame: syn.bytes.toString('hex'), sportOff: syn.sportOff, csumOff: syn.csumOff, flows: o.flows, basePort: BASE_PORT });
  } catch (err) {
    await gen.stop().catch(() => undefined);
    throw err;
  }
  return gen;
}

interface Owned {
  progs: { close(): Promise<void> }[];
  gens: GenClient[];
  teardown: (() => Promise<void>)[];
}

/** Attach the program a mode runs to the director's eth0 (pinned programs of this run). */
function attachMode(ns: string, mode: PktMode, p: { director?: { pinPath: string }; noop?: { pinPath: string }; dirPass: { pinPath: string } }): Promise<void> {
  switch (mode) {
    case 'xdp-native':
      return xdpAttachPinned(ns, 'eth0', 'native', p.director!.pinPath);
    case 'xdp-generic':
      return xdpAttachPinned(ns, 'eth0', 'generic', p.director!.pinPath);
    case 'xdp-tx-noop':
      return xdpAttachPinned(ns, 'eth0', 'native', p.noop!.pinPath);
    case 'kernel-forward':
      return xdpAttachPinned(ns, 'eth0', 'native', p.dirPass.pinPath);
    default:
      throw new ToolError('XD_ERR_BENCH', `mode ${mode} cannot be attached`);
  }
}

async function bridgePath(o: PktRateOptions, modes: PktMode[], pinDir: string, own: Owned, log: Logger): Promise<Path> {
  const scenario: PktScenario = { name: 'dr-bridge', description: SCENARIO_DESCRIPTIONS['dr-bridge'], receivers: o.receivers, modes: [], ratios: {}, ratiosPerCpu: {} };
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
  const dirPass = await loadCounter({ pinDir, name: 'dir-pass', verdict: 'pass' });
  own.progs.push(dirPass);
  await xdpAttachPinned(t.bridgeNs, t.client.port, 'native', peerGen.pinPath);
  await xdpAttachPinned(t.bridgeNs, t.director.port, 'native', peerDir.pinPath);
  let director: BenchDirector | undefined;
  let noop: PinnedProg | undefined;
  if (modes.includes('xdp-native') || modes.includes('xdp-generic')) {
    director = await loadDirector({ pinDir, log, mac: t.director.mac });
    own.progs.push(director);
    await director.setService({ vip: t.vip, port: 3306, proto: 'tcp', backends: t.receivers.map((r) => ({ address: r.ip, port: 3306, mac: r.mac })) });
  }
  if (modes.includes('xdp-tx-noop')) {
    noop = await loadNoopTx({ pinDir, mac: o.ceilingMac ?? t.receivers[0].mac });
    own.progs.push(noop);
  }
  await setKernelEcmp(t, true);
  const f = frames(t.client.mac, t.director.mac, t.client.ip, t.vip);
  const gen = await startGen(t.client.ns, f.syn, o);
  own.gens.push(gen);
  return {
    scenario,
    gen,
    syn: f.syn.bytes,
    ack: f.ack.bytes,
    frameBytes: f.ack.bytes.length,
    director,
    async attach(mode) {
      await xdpDetach(t.director.ns, 'eth0');
      return attachMode(t.director.ns, mode, { director, noop, dirPass });
    },
    detach: () => xdpDetach(t.director.ns, 'eth0'),
    counts: () => rcv.map((c) => c.read().packets),
  };
}

async function isolatedPath(o: PktRateOptions, modes: PktMode[], pinDir: string, own: Owned, log: Logger): Promise<Path> {
  const scenario: PktScenario = { name: 'isolated', description: SCENARIO_DESCRIPTIONS.isolated, receivers: 1, modes: [], ratios: {}, ratiosPerCpu: {} };
  const t: IsolatedTopology = await createIsolated(`${o.prefix}p`);
  own.teardown.push(() => t.destroy());
  fs.mkdirSync(pinDir, { recursive: true });
  // The generator's own eth0 counts and drops what the director sends back (and is the XDP peer native XDP_TX needs).
  const back = await loadCounter({ pinDir, name: 'gen-back', verdict: 'drop' });
  own.progs.push(back);
  await xdpAttachPinned(t.gen.ns, 'eth0', 'native', back.pinPath);
  const dirPass = await loadCounter({ pinDir, name: 'dir-pass', verdict: 'pass' });
  own.progs.push(dirPass);
  let director: BenchDirector | undefined;
  let noop: PinnedProg | undefined;
  if (modes.includes('xdp-native') || modes.includes('xdp-generic')) {
    director = await loadDirector({ pinDir, log, mac: t.director.mac });
    own.progs.push(director);
    // The same shape as the DR path (two backends), every backend at the generator's MAC.
    const backends = Array.from({ length: Math.max(1, o.receivers) }, (_, i) => ({ address: `10.202.0.${11 + i}`, port: 3306, mac: t.gen.mac }));
    await director.setService({ vip: t.vip, port: 3306, proto: 'tcp', backends });
  }
  if (modes.includes('xdp-tx-noop')) {
    noop = await loadNoopTx({ pinDir, mac: t.gen.mac });
    own.progs.push(noop);
  }
  const gro = (on: boolean): Promise<unknown> => runIn(t.director.ns, 'ethtool', ['-K', 'eth0', 'gro', on ? 'on' : 'off']);
  const f = frames(t.gen.mac, t.director.mac, t.gen.ip, t.vip);
  const gen = await startGen(t.gen.ns, f.syn, o);
  own.gens.push(gen);
  return {
    scenario,
    gen,
    syn: f.syn.bytes,
    ack: f.ack.bytes,
    frameBytes: f.ack.bytes.length,
    director,
    async attach(mode) {
      await xdpDetach(t.director.ns, 'eth0');
      // Generic mode: no native program on the director's veth, so GRO on gives it the NAPI
      // the generator's ndo_xdp_xmit needs; off for the others (their native program does that).
      await gro(mode === 'xdp-generic');
      return attachMode(t.director.ns, mode, { director, noop, dirPass });
    },
    detach: () => xdpDetach(t.director.ns, 'eth0'),
    counts: () => [back.read().packets],
  };
}

async function measureRound(p: Path, m: PktModeResult, o: PktRateOptions): Promise<PktRound> {
  const delivered = (): bigint => p.counts().reduce((a, b) => a + b, 0n);
  await p.attach(m.mode);
  // Warm-up: one handshake per flow (a SYN enters the director's embryonic table, the first ACK
  // moves it to the flow table), then established ACKs are timed.
  await p.gen.call({ op: 'template', frame: p.syn.toString('hex') });
  await p.gen.call({ op: 'run', packets: o.flows, batch: o.batch }, runBudget(o.flows));
  await settle(delivered);
  await p.gen.call({ op: 'template', frame: p.ack.toString('hex') });
  await p.gen.call({ op: 'run', packets: o.flows, batch: o.batch }, runBudget(o.flows));
  await settle(delivered);
  const before = p.counts();
  const reasonsBefore = p.director?.reasons() ?? {};
  const softBefore = ksoftirqdSeconds();
  const g = await p.gen.call({ op: 'run', packets: o.packets, batch: o.batch }, runBudget(o.packets));
  await settle(delivered);
  const per = p.counts().map((c, i) => Number(c - before[i]));
  const softSeconds = ksoftirqdSeconds() - softBefore;
  const got = per.reduce((a, b) => a + b, 0);
  const seconds = Number(g.seconds);
  const cpuSeconds = Number(g.cpuSeconds);
  const sent = Number(g.sent);
  if (Number(g.aborted) > 0) throw new ToolError('XD_ERR_BENCH', `generator aborted ${String(g.aborted)} frames (template/length mismatch)`);
  // Nothing (or a stray handful: under 0.1% of what was offered) arriving means a broken path,
  // reported as an error rather than as a rate.
  if (got * 1000 < sent || got === 0) {
    const none = got === 0 ? 'none' : `only ${got}`;
    const where = p.scenario.name === 'isolated' ? `the generator's eth0 received ${none} back` : `the real servers received ${none}`;
    throw new ToolError('XD_ERR_BENCH_NO_TRAFFIC', `${m.mode}: the generator offered ${sent} frames in ${seconds.toFixed(3)} s and ${where}; the path is broken (check the director program and the veth XDP peers)`);
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
  };
  if ((m.mode === 'xdp-native' || m.mode === 'xdp-generic') && p.director) {
    const after = p.director.reasons();
    r.directorReasons = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (reasonsBefore[k] ?? 0)]).filter(([, v]) => Number(v) > 0));
  }
  return r;
}

export async function runPktRate(o: PktRateOptions): Promise<PktRateData> {
  const log = o.log.child({ component: 'bench-pktrate' });
  const modes = o.modes ?? ALL_MODES;
  const names = o.scenarios ?? ALL_SCENARIOS;
  const pinRoot = `/sys/fs/bpf/${o.prefix}p`;
  const own: Owned = { progs: [], gens: [], teardown: [] };
  try {
    const paths: Path[] = [];
    for (const name of names) {
      const p = name === 'dr-bridge' ? await bridgePath(o, modes, path.join(pinRoot, 'bridge'), own, log) : await isolatedPath(o, modes, path.join(pinRoot, 'isolated'), own, log);
      p.scenario.modes = modes.map((mode) => ({ mode, description: DESCRIPTIONS[name][mode], status: 'ok', rounds: [] }));
      paths.push(p);
    }
    if (modes.includes('ipvs')) {
      const why = await ipvsUnavailable(`${o.prefix}p-${names[0] === 'dr-bridge' ? 'dir' : 'id'}`);
      for (const p of paths) {
        const r = p.scenario.modes.find((m) => m.mode === 'ipvs')!;
        if (why) Object.assign(r, { status: 'skipped', reason: `kernel has no IPVS: ${why}`, install: 'boot a kernel with CONFIG_IP_VS (e.g. Debian linux-image-amd64) and modprobe ip_vs ip_vs_mh' });
        else Object.assign(r, { status: 'skipped', reason: 'IPVS is present, but this suite does not drive IPVS for the packet-rate comparison yet' });
      }
    }

    // Interleaved: every round visits every path and every mode, so slow drifts of the machine hit all alike.
    for (let r = 0; r < o.rounds; r++) {
      for (const p of paths) {
        for (const m of p.scenario.modes) {
          if (m.status !== 'ok') continue;
          try {
            const x = await measureRound(p, m, o);
            m.rounds.push(x);
            o.progress?.(`pktrate round ${r + 1}/${o.rounds} ${p.scenario.name} ${m.mode}: ${x.mppsDelivered} Mpps delivered (${x.delivered}/${x.offered}), ${x.mppsPerCpu} Mpps per CPU-second`);
          } catch (err) {
            m.status = 'error';
            m.reason = err instanceof Error ? err.message : String(err);
            log.error({ err, scenario: p.scenario.name }, `pktrate ${m.mode}`);
          }
        }
      }
    }
    for (const p of paths) {
      await p.detach();
      for (const m of p.scenario.modes) {
        if (m.status !== 'ok' || m.rounds.length === 0) continue;
        m.mppsDelivered = roundSpread(spread(m.rounds.map((x) => x.mppsDelivered)), 3);
        m.mppsPerCpu = roundSpread(spread(m.rounds.map((x) => x.mppsPerCpu)), 3);
        m.offeredTotal = m.rounds.reduce((s, x) => s + x.offered, 0);
        m.deliveredTotal = m.rounds.reduce((s, x) => s + x.delivered, 0);
        m.dropsTotal = m.offeredTotal - m.deliveredTotal;
      }
      p.scenario.ratios = scenarioRatios(p.scenario.modes, 'mppsDelivered');
      p.scenario.ratiosPerCpu = scenarioRatios(p.scenario.modes, 'mppsPerCpu');
    }
    const pktgen = pktgenUnavailable();
    return {
      generator: {
        kind: 'live-frames',
        detail: `xdp_gen on BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (template restored every run, source port over ${o.flows} flows, incremental checksum), in the generator's namespace of each path`,
        pktgen: pktgen === null ? 'present, not used: every mode is driven by the same live-frames generator for a like-for-like comparison' : `not available: ${pktgen}`,
      },
      frameBytes: paths[0]?.frameBytes ?? 0,
      flows: o.flows,
      packetsPerRound: o.packets,
      batchSize: o.batch,
      rounds: o.rounds,
      scenarios: paths.map((p) => p.scenario),
    };
  } finally {
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
