// Measurement for the issue's goal "time to build and apply a new ring for
// M=65537, N=1000: under 50 ms": (a) building the ring alone (plan's
// buildRing, i.e. the Maglev table), (b) a whole XdpDataplane.apply() of a
// desired state that differs from the applied one by one backend's weight
// (plan + ring write into the inactive generation + the service flip).
//
// (b) needs a real dataplane: unless `ifname` is given, a veth pair
// <prefix>a/<prefix>b is created in this network namespace (no addresses, so
// no traffic), the program is attached to <prefix>a in generic mode, pinned
// under <pinDir>/<prefix>, and everything is removed before returning.
//
// Samples are wall-clock ms; the matching process CPU ms (user + system, all
// threads) come beside them, because on a loaded machine the wall clock mostly
// measures the wait for a CPU. The load average is recorded before and after.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import pino, { type Logger } from 'pino';
import type { DesiredService, DesiredState } from '../../src/state/types';
import { buildRing } from '../../src/dataplane/xdp/plan';
import { XdpDataplane, instancePinDir } from '../../src/dataplane/xdp/dataplane';
import { ToolError } from '../errors';

export interface MeasureApplyOptions {
  /** Ring size M (prime). Default 65537. */
  ringSize?: number;
  /** Backends N. Default 1000. */
  backends?: number;
  /** Timed samples per measurement, after one untimed warm-up. Default 10. */
  samples?: number;
  /** Interface to attach to (in this network namespace); default: a veth pair made for the run. */
  ifname?: string;
  /** XDP mode. Default generic (works on any interface). */
  mode?: 'native' | 'generic';
  /** bpffs directory for the instance's pins. Default /sys/fs/bpf. */
  pinDir?: string;
  /** Names the veth pair and the pin directory (≤ 12 characters). Default xdm<pid>. */
  prefix?: string;
  /** Compiled program; default the package's dist/bpf/xdirector.bpf.o. */
  objectPath?: string;
  log?: Logger;
}

export interface MeasureApplyResult {
  ringSize: number;
  backends: number;
  /** (a) ring build only, ms wall clock per sample. */
  ringBuildMs: number[];
  ringBuildCpuMs: number[];
  /** (b) full apply with one weight change, ms wall clock per sample. */
  applyMs: number[];
  applyCpuMs: number[];
  /** Ring slots written per apply (only slots that differ from the inactive generation are written). */
  slotsWritten: number[];
  /** The first apply of the whole state (every slot of the ring written, as for a new service or after adoption), ms wall clock. */
  firstApplyMs: number;
  /** os.loadavg() before and after. */
  loadavgBefore: number[];
  loadavgAfter: number[];
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** N backends with distinct addresses and MACs, all weight 100. */
function makeService(n: number, ringSize: number): DesiredService {
  const backends = Array.from({ length: n }, (_, i) => {
    const address = `10.${100 + ((i >> 16) & 63)}.${(i >> 8) & 255}.${i & 255}`;
    return {
      key: `${address}:3306`,
      name: `rs${i}`,
      address,
      port: 3306,
      family: 4 as const,
      weight: 100,
      state: 'active' as const,
      mac: `02:00:${((i >> 24) & 255).toString(16).padStart(2, '0')}:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
    };
  });
  return {
    name: 'measure',
    vip: '10.99.0.1',
    port: 3306,
    proto: 'tcp',
    family: 4,
    scheduler: 'maglev',
    ring: { kind: 'maglev', size: ringSize },
    onEmpty: 'pass',
    backends,
  };
}

function ip(args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? '';
    throw new ToolError('XD_ERR_EXEC', `ip ${args.join(' ')}: ${stderr || (err as Error).message}`, { cause: err });
  }
}

export async function measureApply(opts: MeasureApplyOptions = {}): Promise<MeasureApplyResult> {
  const ringSize = opts.ringSize ?? 65537;
  const n = opts.backends ?? 1000;
  const samples = opts.samples ?? 10;
  const prefix = opts.prefix ?? `xdm${process.pid}`;
  if (!/^[a-z][a-z0-9]{0,11}$/.test(prefix)) {
    throw new TypeError(
      `measureApply prefix: expected 1-12 lowercase letters and digits starting with a letter, received ${JSON.stringify(prefix)}`,
    );
  }
  const pinDir = opts.pinDir ?? '/sys/fs/bpf';
  const log = opts.log ?? pino({ level: 'warn' });
  const loadavgBefore = os.loadavg();
  const svc = makeService(n, ringSize);
  const state = (): DesiredState => ({ services: [{ ...svc, backends: svc.backends.map((b) => ({ ...b })) }] });

  // (a) ring build only: one weight change per sample, so every build is a real one.
  const idx = new Map(svc.backends.map((b, i) => [b.key, i + 1]));
  const ringBuildMs: number[] = [];
  const ringBuildCpuMs: number[] = [];
  {
    const s = state().services[0]!;
    buildRing(s, idx, ringSize); // warm-up
    for (let i = 0; i < samples; i++) {
      s.backends[i % n]!.weight += 50;
      const c0 = cpuMs();
      const t0 = nowMs();
      buildRing(s, idx, ringSize);
      ringBuildMs.push(nowMs() - t0);
      ringBuildCpuMs.push(cpuMs() - c0);
    }
  }

  // (b) full apply with one weight change.
  let ifname = opts.ifname;
  const ownVeth = ifname === undefined;
  if (ownVeth) {
    ifname = `${prefix}a`;
    ip(['link', 'add', ifname, 'type', 'veth', 'peer', 'name', `${prefix}b`]);
  }
  const applyMs: number[] = [];
  const applyCpuMs: number[] = [];
  const slotsWritten: number[] = [];
  let firstApplyMs = NaN;
  let dp: XdpDataplane | undefined;
  try {
    if (ownVeth) {
      ip(['link', 'set', ifname!, 'up']);
      ip(['link', 'set', `${prefix}b`, 'up']);
    }
    dp = await XdpDataplane.open({
      instance: prefix,
      ifname: ifname!,
      mode: opts.mode ?? 'generic',
      pinDir,
      ringMax: ringSize,
      maxServices: 4,
      maxBackends: n + 2,
      flowTableSize: 1024,
      ...(opts.objectPath ? { objectPath: opts.objectPath } : {}),
      log,
    });
    const cur = state();
    const t0 = nowMs();
    await dp.apply(cur); // full state: every slot written once
    firstApplyMs = nowMs() - t0;
    cur.services[0]!.backends[0]!.weight += 50;
    await dp.apply(cur); // warm-up of the one-change path (fills the other generation)
    for (let i = 0; i < samples; i++) {
      cur.services[0]!.backends[(i + 1) % n]!.weight += 50;
      const next: DesiredState = {
        services: [{ ...cur.services[0]!, backends: cur.services[0]!.backends.map((b) => ({ ...b })) }],
      };
      const c0 = cpuMs();
      const t0 = nowMs();
      await dp.apply(next);
      applyMs.push(nowMs() - t0);
      applyCpuMs.push(cpuMs() - c0);
      slotsWritten.push(dp.lastApply.slots);
    }
  } finally {
    if (dp) await dp.close({ keepState: false });
    else if (fs.existsSync(instancePinDir(pinDir, prefix))) XdpDataplane.detachInstance(pinDir, prefix, ifname!, log);
    if (ownVeth) {
      try {
        ip(['link', 'del', ifname!]);
      } catch {
        /* already gone */
      }
    }
  }
  return {
    ringSize,
    backends: n,
    ringBuildMs,
    ringBuildCpuMs,
    applyMs,
    applyCpuMs,
    slotsWritten,
    firstApplyMs,
    loadavgBefore,
    loadavgAfter: os.loadavg(),
  };
}

/** "median 12.3 ms (min 9.8, max 30.1)" for a sample list. */
export function summarize(ms: number[]): { median: number; min: number; max: number } {
  const s = [...ms].sort((a, b) => a - b);
  return { median: s[Math.floor((s.length - 1) / 2)] ?? NaN, min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
}

// Run directly: node dist/src/dataplane/xdp/measure.js [samples]
if (require.main === module) {
  void (async () => {
    const r = await measureApply({ samples: Number(process.argv[2] ?? 10) });
    const f = (xs: number[]) => {
      const s = summarize(xs);
      return `median ${s.median.toFixed(1)} ms (min ${s.min.toFixed(1)}, max ${s.max.toFixed(1)})`;
    };
    console.log(
      `M=${r.ringSize} N=${r.backends}, load average ${r.loadavgBefore.map((x) => x.toFixed(2)).join(' ')} -> ${r.loadavgAfter.map((x) => x.toFixed(2)).join(' ')}`,
    );
    console.log(`(a) ring build:  wall ${f(r.ringBuildMs)}; cpu ${f(r.ringBuildCpuMs)}`);
    console.log(`first apply of the whole state (${r.ringSize} slots written): ${r.firstApplyMs.toFixed(1)} ms`);
    console.log(
      `(b) apply, one weight change: wall ${f(r.applyMs)}; cpu ${f(r.applyCpuMs)}; slots written ${f(r.slotsWritten).replace(/ ms/g, '')}`,
    );
  })().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
