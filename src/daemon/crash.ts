// Fatal errors: an uncaught exception or an unhandled rejection leaves the daemon
// in an unknown state. Without a handler Node prints the stack and exits, and the
// VIPs stay on the interface while the pinned program keeps forwarding with frozen
// health; a VRRP peer takes over after its Master_Down_Interval and both directors
// answer for the VIP. So: log why, resign VRRP (a priority 0 advert lets the
// Backup take over at once) and remove the VIPs, then exit non-zero (70,
// EX_SOFTWARE) within `graceMs` whatever happens. The XDP program and maps stay
// pinned: the restarted daemon (systemd Restart=on-failure) adopts them.
//
// Fault injection for tests: with XDIRECTOR_TEST_FAULTS=throw (or =reject) in
// the environment, SIGUSR2 throws an exception inside the event loop (or leaves
// a promise rejected with nobody handling it). Without the variable SIGUSR2 is
// not touched.
import type { Logger } from 'pino';

export const EXIT_FATAL = 70;

export interface CrashOptions {
  log: Logger;
  /** Resign VRRP and remove the VIPs (each instance's graceful stop). */
  resign: () => Promise<void>;
  /** Longest wait for resign before exiting anyway (ms); default 2000. */
  graceMs?: number;
  /** process.exit, replaceable in tests. */
  exit?: (code: number) => void;
}

/** Installs the handlers; returns a function that removes them (a clean stop). */
export function installCrashHandlers(o: CrashOptions): () => void {
  const exit = o.exit ?? ((code: number) => process.exit(code));
  let fatal = false;
  const onFatal = (err: unknown, origin: string): void => {
    if (fatal) {
      o.log.error({ err, origin }, `another fatal error while exiting: ${describe(err)}`);
      return;
    }
    fatal = true;
    o.log.fatal(
      { err, origin },
      `fatal ${origin}: ${describe(err)}; resigning VRRP (priority 0), removing the VIPs and exiting with ${EXIT_FATAL}; the XDP program and maps stay pinned for the restarted daemon to adopt`,
    );
    const timer = setTimeout(() => {
      o.log.error(`resigning VRRP did not finish within ${o.graceMs ?? 2000} ms: exiting anyway`);
      exit(EXIT_FATAL);
    }, o.graceMs ?? 2000);
    o.resign().then(
      () => {
        clearTimeout(timer);
        o.log.info('VRRP resigned and VIPs removed; exiting');
        exit(EXIT_FATAL);
      },
      (e: unknown) => {
        clearTimeout(timer);
        o.log.error({ err: e }, `resigning VRRP failed: ${describe(e)}; exiting`);
        exit(EXIT_FATAL);
      },
    );
  };
  const onException = (err: Error, origin: string) =>
    onFatal(err, origin === 'unhandledRejection' ? 'unhandled rejection' : 'uncaught exception');
  const onRejection = (reason: unknown) => onFatal(reason, 'unhandled rejection');
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);

  const mode = process.env.XDIRECTOR_TEST_FAULTS;
  const onUsr2 = (): void => {
    o.log.warn(
      `fault injection (XDIRECTOR_TEST_FAULTS=${mode}): ${mode === 'reject' ? 'an unhandled rejection' : 'an exception in the event loop'}`,
    );
    if (mode === 'reject')
      void Promise.reject(new Error('injected fault: unhandled rejection (XDIRECTOR_TEST_FAULTS=reject, SIGUSR2)'));
    else
      setImmediate(() => {
        throw new Error('injected fault: exception in the event loop (XDIRECTOR_TEST_FAULTS=throw, SIGUSR2)');
      });
  };
  if (mode === 'throw' || mode === 'reject') process.on('SIGUSR2', onUsr2);

  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
    process.off('SIGUSR2', onUsr2);
  };
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
