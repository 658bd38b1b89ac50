// Test helpers for the health tests (not a test file): a log capture, waiting on monitor
// rounds, and a plain TCP server that is not MySQL. MariaDB servers come from scripts/lab/mariadb.ts.
import * as net from 'node:net';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import type { HealthMonitor } from '../../src/health/monitor';
import type { HealthSnapshot, BackendHealth } from '../../src/health/types';

export interface LogCapture {
  log: Logger;
  lines: string[];
}

/** A pino logger at debug level whose output lines are kept in memory. */
export function captureLog(): LogCapture {
  const lines: string[] = [];
  let buf = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      buf += chunk.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

export function summary(s: HealthSnapshot): string {
  return JSON.stringify({
    writers: s.writers,
    alerts: s.alerts.map((a) => a.message),
    backends: s.backends.map((b) => ({
      n: b.name,
      up: b.up,
      role: b.role,
      lag: b.lagSeconds,
      reader: b.readerEligible,
      err: b.lastError,
    })),
  });
}

/**
 * Wait (round by round) until `pred(snapshot)` holds; returns the milliseconds it took.
 * Fails with the last snapshot when `timeoutMs` passes.
 */
export async function until(
  hm: HealthMonitor,
  pred: (s: HealthSnapshot) => boolean,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const s = hm.snapshot();
    if (pred(s)) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`${what}: not reached within ${timeoutMs} ms; state ${summary(s)}`);
    await Promise.race([hm.nextRound(), new Promise((r) => setTimeout(r, 250))]);
  }
}

export function backend(s: HealthSnapshot, name: string): BackendHealth {
  const b = s.backends.find((x) => x.name === name);
  if (!b) throw new Error(`no backend ${name} in snapshot`);
  return b;
}

/** A TCP server on 127.0.0.1:0 that greets every connection with `greeting` (or stays silent when null). */
export async function fakeServer(greeting: string | null): Promise<{ port: number; close(): Promise<void> }> {
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => undefined);
    if (greeting !== null) s.write(greeting);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of socks) s.destroy();
        srv.close(() => resolve());
      }),
  };
}
