import pino, { Logger } from 'pino';

export type { Logger };

/** The one root logger; created by the CLI and passed down (components take `log.child({ component })`). */
export function createLogger(opts: { level?: string; destination?: number | string } = {}): Logger {
  return pino(
    {
      level: opts.level ?? process.env.XDIRECTOR_LOG_LEVEL ?? 'info',
      base: { pid: process.pid },
      // Secrets never reach a log line, even by accident.
      redact: { paths: ['password', '*.password', 'config.monitor.password', '*.passwordFile'], censor: '[redacted]' },
    },
    pino.destination(opts.destination ?? 2),
  );
}

/** A logger that writes nothing: for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
