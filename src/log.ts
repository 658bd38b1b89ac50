// The one root logger; created by the CLI and passed down (components take `log.child({ component })`).
//
// Output formats (XDIRECTOR_LOG_FORMAT=json|journal|pretty, else chosen from where stderr goes):
// - json: one pino JSON object per line, `"level":"info"` by name, with pid and hostname;
// - journal: the same line with a syslog priority prefix ("<6>{...}", sd-daemon(3)), chosen when
//   stderr is the journal stream systemd announced in $JOURNAL_STREAM: journald then files each
//   line under its real priority (journalctl -p warning shows warnings and worse);
// - pretty: "12:00:01.123 INFO  [vrrp] VI_1 became MASTER  key=value", chosen on a terminal.
import fs from 'node:fs';
import os from 'node:os';
import pino, { Logger } from 'pino';

export type { Logger };
export type LogFormat = 'json' | 'journal' | 'pretty';

/** syslog priorities journald understands as line prefixes. */
const SYSLOG_PRIORITY: Record<string, number> = { fatal: 2, error: 3, warn: 4, info: 6, debug: 7, trace: 7 };

/** Is fd 2 the stream systemd connected to the journal ($JOURNAL_STREAM = "dev:inode")? */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const js = env.JOURNAL_STREAM;
  if (!js) return false;
  const [dev, ino] = js.split(':');
  try {
    const st = fs.fstatSync(2);
    return String(st.dev) === dev && String(st.ino) === ino;
  } catch {
    return false;
  }
}

export function chooseLogFormat(env: NodeJS.ProcessEnv = process.env, isTty = !!process.stderr.isTTY): LogFormat {
  const f = env.XDIRECTOR_LOG_FORMAT;
  if (f === 'json' || f === 'journal' || f === 'pretty') return f;
  if (stderrIsJournal(env)) return 'journal';
  return isTty ? 'pretty' : 'json';
}

const SKIP = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'component']);

/** One JSON log line → one terminal line. */
export function prettyLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json);
  } catch {
    return json;
  }
  const t = new Date(typeof o.time === 'number' ? o.time : Date.now());
  const time = `${String(t.getHours()).padStart(2, '0')}:${String(t.getMinutes()).padStart(2, '0')}:${String(t.getSeconds()).padStart(2, '0')}.${String(t.getMilliseconds()).padStart(3, '0')}`;
  const level = String(o.level ?? '')
    .toUpperCase()
    .padEnd(5);
  const comp = o.component ? `[${o.component}] ` : '';
  const rest = Object.entries(o)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => {
      if (k === 'err' && v && typeof v === 'object')
        return `err=${JSON.stringify((v as { message?: string }).message ?? v)}`;
      return `${k}=${typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`;
    })
    .join(' ');
  const color = process.env.NO_COLOR
    ? ''
    : ((
        { FATAL: '\x1b[35m', ERROR: '\x1b[31m', WARN: '\x1b[33m', DEBUG: '\x1b[2m', TRACE: '\x1b[2m' } as Record<
          string,
          string
        >
      )[level.trim()] ?? '');
  return `${time} ${color}${level}${color ? '\x1b[0m' : ''} ${comp}${o.msg ?? ''}${rest ? `  ${rest}` : ''}\n`;
}

/** A JSON log line → the same line with journald's priority prefix. */
export function journalLine(json: string): string {
  const m = /^\{"level":"(\w+)"/.exec(json);
  return `<${SYSLOG_PRIORITY[m?.[1] ?? 'info'] ?? 6}>${json}`;
}

export function createLogger(opts: { level?: string; destination?: number | string; format?: LogFormat } = {}): Logger {
  const format = opts.format ?? (opts.destination === undefined || opts.destination === 2 ? chooseLogFormat() : 'json');
  const dest = pino.destination(opts.destination ?? 2);
  const stream =
    format === 'json'
      ? dest
      : { write: (s: string) => dest.write(format === 'pretty' ? prettyLine(s) : journalLine(s)) };
  return pino(
    {
      level: opts.level ?? process.env.XDIRECTOR_LOG_LEVEL ?? 'info',
      base: { pid: process.pid, hostname: os.hostname() },
      // Level names, not numbers: readable in the journal and in any log shipper.
      formatters: { level: (label) => ({ level: label }) },
      // Secrets never reach a log line, even by accident.
      redact: { paths: ['password', '*.password', 'config.monitor.password', '*.passwordFile'], censor: '[redacted]' },
    },
    stream,
  );
}

/** A logger that writes nothing: for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
