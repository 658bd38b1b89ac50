// The kernel's own per-program accounting (bpf_stats) for the sections that
// time programs: kernel.bpf_stats_enabled=1 plus a BPF_ENABLE_STATS fd for the
// section, and the Δrun_time_ns / Δrun_cnt of one program around a timed run.
// The kernel counts every run of a program while the switch is on: attached
// runs (pktrate, scale) and BPF_PROG_TEST_RUN runs alike (one count per repeat).
import * as fs from 'node:fs';
import { getNative } from '../../src/bpf/native';
import type { Logger } from '../../src/log';
import { round } from './stats';

const BPF_STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

/**
 * kernel.bpf_stats_enabled=1 for the section (the kernel then counts run_time_ns and run_cnt of
 * every program), the value before restored by restore(). The sysctl is one global switch that
 * another run on the machine may set and restore meanwhile, so the section also holds a
 * BPF_ENABLE_STATS fd: a reference of its own on the same kernel switch, which keeps the counting
 * on until it is closed whatever the sysctl is set to.
 */
export function enableBpfStats(log: Logger): { enabled: boolean; detail: string; restore(): void } {
  let before: string;
  let fd: number;
  try {
    before = fs.readFileSync(BPF_STATS_SYSCTL, 'utf8').trim();
    fs.writeFileSync(BPF_STATS_SYSCTL, '1');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    log.warn({ err }, 'bpf_stats');
    return {
      enabled: false,
      detail: `kernel.bpf_stats_enabled could not be set: ${e.code ?? ''} ${e.message}`,
      restore: () => undefined,
    };
  }
  const restoreSysctl = (): void => {
    try {
      fs.writeFileSync(BPF_STATS_SYSCTL, before);
    } catch (err) {
      log.warn({ err }, `restore kernel.bpf_stats_enabled=${before}`);
    }
  };
  try {
    fd = getNative().enableRunTimeStats();
  } catch (err) {
    restoreSysctl();
    const e = err as NodeJS.ErrnoException;
    log.warn({ err }, 'bpf_stats');
    return {
      enabled: false,
      detail: `bpf_enable_stats(BPF_STATS_RUN_TIME) failed: ${e.code ?? ''} ${e.message}`,
      restore: () => undefined,
    };
  }
  return {
    enabled: true,
    detail: `kernel.bpf_stats_enabled set to 1 for the section (was ${before}, restored after; a BPF_ENABLE_STATS fd held as well, so another run resetting the sysctl does not stop the counting); ns per packet = Δrun_time_ns / Δrun_cnt of the program timed (bpf_prog_info) over each timed run, including the kernel's two clock reads around every run (the same for every program, so the director − no-op difference is the director's own)`,
    restore() {
      try {
        getNative().close(fd);
      } catch (err) {
        log.warn({ err }, 'close BPF_ENABLE_STATS fd');
      }
      restoreSysctl();
    },
  };
}

/** A program's run count and total run time so far (bpf_prog_info). */
export interface ProgStats {
  runCnt: bigint;
  runTimeNs: bigint;
}

export function progStats(fd: number): ProgStats {
  const i = getNative().progInfo(fd);
  return { runCnt: i.runCnt, runTimeNs: i.runTimeNs };
}

/** The kernel's ns per run between two readings, or undefined when the program did not run (or stats were off). */
export function nsPerRun(
  before: ProgStats,
  after: ProgStats,
): { runs: number; runTimeNs: number; nsPerRun: number } | undefined {
  const runs = Number(after.runCnt - before.runCnt);
  const ns = Number(after.runTimeNs - before.runTimeNs);
  return runs > 0 ? { runs, runTimeNs: ns, nsPerRun: round(ns / runs, 2) } : undefined;
}
