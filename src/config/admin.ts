// The `admin:` section's HTTP listener: its address, its tokens and the Host names it answers
// to. Pure. The listener itself is src/api/http.ts; the token files' contents and modes are
// checked with the other named files (files.ts).
//
//   admin:
//     http: 127.0.0.1:9105                 # off by default
//     http_token_file: /etc/xdirector/http.token        # changes (POST) with this token; it also reads
//     http_read_token_file: /etc/xdirector/http-read.token  # reads (/, /status, /metrics) need a token
//     http_host_names: [director1.example.net]          # Host names a loopback listener also answers to
//
// Who may read: on a loopback bind, anyone on this host unless a read token is set; on any
// other bind, only with a token (the read token or the write token). A non-loopback bind with
// no token at all is refused: the status page and /status give away the whole topology.

import { z } from 'zod';
import { leaf, show } from './fields';
import { parseAddress } from '../net/inet';

/** "127.0.0.1:9105" / "[::1]:9105" / "localhost:9105" → host and port; a problem otherwise. */
export const httpAddress = leaf<string>(
  (v) => {
    const m = typeof v === 'string' ? /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+|localhost)):(\d+)$/.exec(v) : null;
    const host = m ? (m[1] ?? m[2]!) : '';
    if (!m || (host !== 'localhost' && (!parseAddress(host) || (m[1] !== undefined) !== host.includes(':')))) {
      return { problem: `must be an address and port such as "127.0.0.1:9105" or "[::1]:9105", got ${show(v)}` };
    }
    const port = Number(m[3]);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      return { problem: `port ${m[3]} is not 1-65535: give a port such as 9105, got ${show(v)}` };
    return { value: v as string };
  },
  { optional: true },
);

/** A DNS name the Host header may carry (RFC 1123 labels). */
const hostName = leaf<string>((v) =>
  typeof v === 'string' &&
  /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(v)
    ? { value: v.toLowerCase() }
    : { problem: `must be a host name such as director1.example.net, got ${show(v)}` },
);

export const httpHostNames = z.array(hostName).max(32, 'at most 32 names').optional();

/** "127.0.0.1:9105" → host and port (httpAddress checked the shape). */
export function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}

/** A bind only this host can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const a = parseAddress(host);
  return a !== undefined && (a.family === 4 ? a.text.startsWith('127.') : a.text === '::1');
}

/** admin.http over a non-loopback bind needs a token (raw YAML; only well-formed values are looked at). Problems as rules.ts's. */
export function adminHttpProblems(admin: Record<string, unknown>): { path: (string | number)[]; message: string }[] {
  const http = admin.http;
  if (typeof http !== 'string' || !/:\d+$/.test(http)) return [];
  const { host } = splitHostPort(http);
  if (isLoopbackHost(host) || admin.http_token_file !== undefined || admin.http_read_token_file !== undefined)
    return [];
  return [
    {
      path: ['admin', 'http'],
      message: `binds ${host}, which other hosts can reach, with no token: anyone who reaches it would read the whole topology (/, /status, /metrics); set admin.http_read_token_file (readers such as Prometheus send "Authorization: Bearer <token>") or admin.http_token_file, or bind 127.0.0.1`,
    },
  ];
}
