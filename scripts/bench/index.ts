// The benchmark suite: runBench(opts) runs the selected sections in order and
// writes the report (JSON, markdown, SVG charts) into opts.outDir.
//
// Each section is a function returning typed results (see types.ts). A section
// that cannot run here is 'skipped' with the exact reason and, where there is
// one, the install command; a section that fails is an 'error' with its
// message; neither stops the others. Kernel resources carry the per-run prefix
// (default xdh<pid>) and are removed when each section ends.
import * as os from 'node:os';
import * as fs from 'node:fs';
import { XdError } from '../../src/errors';
import { silentLogger, type Logger } from '../../src/log';
import { cleanupStaleRuns } from './cleanup';
import { FAILOVER_FULL, FAILOVER_QUICK, runFailoverBench } from './failover';
import { MAGLEV_FULL, MAGLEV_QUICK, runMaglevBench } from './maglev';
import { MYSQL_FULL, MYSQL_QUICK, runMysqlBench, which } from './mysql';
import { PKTRATE_FULL, PKTRATE_QUICK, runPktRate } from './pktrate';
import { writeReport } from './report';
import { SCALE_FULL, SCALE_QUICK, runScaleBench } from './scale';
import { TESTRUN_FULL, TESTRUN_QUICK, runTestRunBench } from './testrun';
import {
  SECTION_NAMES,
  type BenchResult,
  type MachineInfo,
  type SectionName,
  type SectionOutcome,
  type Skipped,
} from './types';

export type { BenchResult } from './types';
export { SECTION_NAMES } from './types';

export interface BenchOptions {
  /** Short smoke run: every section shrunk to a few seconds. */
  quick?: boolean;
  /** Output directory (default ./bench-results). */
  outDir?: string;
  /** Sections to run (default all). */
  only?: SectionName[];
  /** Prefix of every namespace, pin dir and temp dir (default xdh<pid>). */
  prefix?: string;
  log?: Logger;
  /** Progress lines (long runs); default none. */
  progress?: (msg: string) => void;
  /** Do not write files (tests of the runner itself). */
  noWrite?: boolean;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    loadAvg1: Math.round(os.loadavg()[0] * 100) / 100,
    kernel: os.release(),
    cpuModel: cpus[0]?.model.trim() ?? 'unknown CPU',
    cpus: cpus.length,
    memoryMiB: Math.round(os.totalmem() / 1048576),
    node: process.version,
    hostname: os.hostname(),
  };
}

/** Why packet-level sections cannot run in this process, or null. */
function rootProblem(): Skipped | null {
  if (process.getuid?.() !== 0)
    return {
      status: 'skipped',
      reason: 'needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN for namespaces): run as root',
    };
  return null;
}

/** bpffs must be mounted at /sys/fs/bpf (pins are how programs reach the namespaces). */
function bpffsProblem(): Skipped | null {
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8');
  if (!mounts.split('\n').some((l) => l.split(' ')[1] === '/sys/fs/bpf' && l.split(' ')[2] === 'bpf')) {
    return {
      status: 'skipped',
      reason: '/sys/fs/bpf is not a bpffs mount in this mount namespace',
      install: 'mount -t bpf bpf /sys/fs/bpf',
    };
  }
  return null;
}

async function section<T>(
  name: SectionName,
  fn: () => Promise<T>,
  log: Logger,
  progress?: (m: string) => void,
): Promise<SectionOutcome<T>> {
  const t0 = Date.now();
  progress?.(`${name}: start`);
  try {
    const data = await fn();
    const durationMs = Date.now() - t0;
    progress?.(`${name}: done in ${(durationMs / 1000).toFixed(1)} s`);
    return { status: 'ok', durationMs, data };
  } catch (err) {
    log.error({ err, section: name }, 'benchmark section failed');
    progress?.(`${name}: error: ${err instanceof Error ? err.message : String(err)}`);
    return {
      status: 'error',
      code: err instanceof XdError ? err.code : undefined,
      error: err instanceof Error ? err.message : String(err),
    };
  }
}

export async function runBench(opts: BenchOptions = {}): Promise<BenchResult> {
  const quick = opts.quick ?? false;
  const log = (opts.log ?? silentLogger()).child({ component: 'bench' });
  const prefix = opts.prefix ?? `xdh${process.pid}`;
  const only = opts.only ?? [...SECTION_NAMES];
  for (const s of only) {
    if (!SECTION_NAMES.includes(s))
      throw new XdError('XD_ERR_USAGE', `unknown bench section "${s}": use one of ${SECTION_NAMES.join(', ')}`);
  }
  const progress = opts.progress;
  const result: BenchResult = {
    version: 1,
    tool: 'xdirector bench',
    startedAt: new Date().toISOString(),
    finishedAt: '',
    quick,
    machine: machineInfo(),
    sections: {},
    files: [],
  };
  const kernelSkip = rootProblem() ?? bpffsProblem();
  if (process.getuid?.() === 0) await cleanupStaleRuns(log);
  const s = result.sections;

  if (only.includes('testrun')) {
    s.testrun =
      kernelSkip ??
      (await section(
        'testrun',
        () => runTestRunBench({ prefix, ...(quick ? TESTRUN_QUICK : TESTRUN_FULL), log, progress }),
        log,
        progress,
      ));
  }
  if (only.includes('pktrate')) {
    s.pktrate =
      kernelSkip ??
      (await section(
        'pktrate',
        () => runPktRate({ prefix, ...(quick ? PKTRATE_QUICK : PKTRATE_FULL), log, progress }),
        log,
        progress,
      ));
  }
  if (only.includes('mysql')) {
    const missing = (await which('mariadbd')) === null;
    s.mysql =
      kernelSkip ??
      (missing
        ? {
            status: 'skipped',
            reason: 'mariadbd is not installed (not found on PATH)',
            install: 'apt-get install -y mariadb-server',
          }
        : await section(
            'mysql',
            () => runMysqlBench({ prefix, ...(quick ? MYSQL_QUICK : MYSQL_FULL), log, progress }),
            log,
            progress,
          ));
  }
  if (only.includes('maglev')) {
    const applyUnavailable = kernelSkip
      ? `${kernelSkip.reason}${kernelSkip.install ? ` (${kernelSkip.install})` : ''}`
      : undefined;
    s.maglev = await section(
      'maglev',
      () =>
        runMaglevBench({
          ...(quick ? MAGLEV_QUICK : MAGLEV_FULL),
          applyUnavailable,
          applyPrefix: `xdh${process.pid}m`,
          progress,
        }),
      log,
      progress,
    );
  }
  if (only.includes('failover')) {
    const missing = (await which('mariadbd')) === null;
    s.failover = missing
      ? {
          status: 'skipped',
          reason: 'mariadbd is not installed (not found on PATH): health detection needs MariaDB backends',
          install: 'apt-get install -y mariadb-server',
        }
      : await section(
          'failover',
          () => runFailoverBench({ prefix, ...(quick ? FAILOVER_QUICK : FAILOVER_FULL), log, progress }),
          log,
          progress,
        );
  }
  if (only.includes('scale')) {
    s.scale =
      kernelSkip ??
      (await section(
        'scale',
        () => runScaleBench({ prefix, ...(quick ? SCALE_QUICK : SCALE_FULL), log, progress }),
        log,
        progress,
      ));
  }
  result.finishedAt = new Date().toISOString();
  if (!opts.noWrite) await writeReport(result, opts.outDir ?? 'bench-results');
  return result;
}
