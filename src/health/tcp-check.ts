// TCP connect check for services that are not MySQL (check: tcp). Never used against MySQL:
// there a bare connect/close counts against max_connect_errors (see mysql-check.ts).

import * as net from 'node:net';
import { hostPort } from '../net/inet';

export interface TcpProbe {
  ok: boolean;
  error: string | null;
  durationMs: number;
}

export function tcpCheck(host: string, port: number, timeoutMs: number, sourceAddress?: string): Promise<TcpProbe> {
  const target = hostPort(host, port);
  const t0 = performance.now();
  return new Promise((resolve) => {
    let done = false;
    const sock = net.connect({ host, port, localAddress: sourceAddress });
    const finish = (error: string | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ ok: error === null, error, durationMs: Math.round(performance.now() - t0) });
    };
    const timer = setTimeout(
      () => finish(`timeout after ${timeoutMs} ms: TCP connect to ${target} not answered`),
      timeoutMs,
    );
    sock.once('connect', () => finish(null));
    sock.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') finish(`connection refused by ${target} (nothing listening)`);
      else finish(`TCP connect to ${target} failed: ${err.message}`);
    });
  });
}
