// testrun.ts: BPF_PROG_TEST_RUN for XDP programs (fixtures and benchmarks).
import { wrap } from '../errors';
import { getNative, isNativeSystemError, NativeTestRunOptions, NativeTestRunResult } from './native';

export type TestRunOptions = NativeTestRunOptions;
export type TestRunResult = NativeTestRunResult;

/** Runs a program once (or `repeat` times) on a packet, synchronously. */
export function testRun(prog: number | { fd: number }, opts: TestRunOptions): TestRunResult {
  const fd = typeof prog === 'number' ? prog : prog.fd;
  try {
    return getNative().progTestRun(fd, opts);
  } catch (e) {
    if (e instanceof TypeError) throw e;
    throw wrap(
      'XD_ERR_BPF_TEST_RUN',
      `test run of program fd ${fd}`,
      e,
      isNativeSystemError(e) ? { errno: e.errno, code: e.code, syscall: e.syscall } : undefined,
    );
  }
}

/** As testRun, on a worker thread: long repeat runs and live-frames generation. */
export async function testRunAsync(prog: number | { fd: number }, opts: TestRunOptions): Promise<TestRunResult> {
  const fd = typeof prog === 'number' ? prog : prog.fd;
  try {
    return await getNative().progTestRunAsync(fd, opts);
  } catch (e) {
    if (e instanceof TypeError) throw e;
    throw wrap(
      'XD_ERR_BPF_TEST_RUN',
      `test run of program fd ${fd}`,
      e,
      isNativeSystemError(e) ? { errno: e.errno, code: e.code, syscall: e.syscall } : undefined,
    );
  }
}

/** Live-frames flags for testRunAsync (what xdp-trafficgen is built on). */
export function liveFramesFlag(): number {
  return getNative().constants.BPF_F_TEST_XDP_LIVE_FRAMES;
}
