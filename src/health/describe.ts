// Plain-words descriptions of check failures ("auth failed: Access denied for user ...",
// "timeout after 500 ms running SELECT @@read_only"). Every text passes through scrub(), so a
// password can never reach a log line, an error message or a snapshot. Pure.

export interface DbErrorLike {
  message?: string;
  code?: string;
  errno?: number;
  sqlMessage?: string;
  fatal?: boolean;
}

/** Replace every occurrence of each secret with [redacted]. */
export function scrub(text: string, secrets: readonly (string | undefined)[]): string {
  let t = text;
  for (const s of secrets) {
    if (s && s.length > 0) t = t.split(s).join('[redacted]');
  }
  return t;
}

/** The MySQL privilege that lets the monitor read replica status. */
export function replicaPrivilege(isMariaDB: boolean): string {
  return isMariaDB ? 'SLAVE MONITOR' : 'REPLICATION CLIENT';
}

/**
 * Describe an error from connecting or logging in to `target` ("host:port").
 * Server errors keep the server's own words; network errors say what they mean.
 */
export function describeConnectError(err: unknown, target: string): string {
  const e = (err ?? {}) as DbErrorLike;
  const msg = e.sqlMessage ?? e.message ?? String(err);
  switch (e.errno) {
    case 1045:
      return `auth failed: ${msg}`;
    case 1129:
      return `director blocked by ${target} (ERROR 1129, max_connect_errors reached): ${msg}`;
    case 1040:
      return `server full: ${msg} (max_connections reached)`;
    case 1203:
    case 1226:
      return `monitor user over its connection limit: ${msg}`;
    case 1130:
      return `monitor user not allowed from this address: ${msg}`;
    case 1862:
    case 1820:
      return `monitor password expired: ${msg}`;
    default:
      break;
  }
  if (typeof e.errno === 'number' && e.errno >= 1000 && e.errno < 5000) return `login failed: ERROR ${e.errno}: ${msg}`;
  switch (e.code) {
    case 'ECONNREFUSED':
      return `connection refused by ${target} (nothing listening: mysqld down?)`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${target} unreachable (${e.code})`;
    case 'ECONNRESET':
      return `connection reset by ${target} during login`;
    case 'EADDRNOTAVAIL':
      return `cannot bind the source address for ${target}: ${msg} (check monitor.source_address)`;
    case 'PROTOCOL_CONNECTION_LOST':
      return `${target} closed the connection during login`;
    default:
      break;
  }
  if (e.code && /^(PROTOCOL_|HANDSHAKE_)/.test(e.code))
    return `not a MySQL server at ${target}? protocol error during login: ${msg}`;
  if (err instanceof RangeError || err instanceof TypeError)
    return `not a MySQL server at ${target}? could not parse its greeting: ${msg}`;
  return `connect to ${target} failed: ${msg}`;
}

/** Describe an error from running `sql` on an open monitor connection. */
export function describeQueryError(err: unknown, sql: string, timeoutMs: number, isMariaDB: boolean): string {
  const e = (err ?? {}) as DbErrorLike;
  const msg = e.sqlMessage ?? e.message ?? String(err);
  if (e.code === 'PROTOCOL_SEQUENCE_TIMEOUT') return `timeout after ${timeoutMs} ms running ${sql}`;
  if (e.errno === 1227 && /REPLICA|SLAVE/i.test(sql)) return `missing privilege ${replicaPrivilege(isMariaDB)}: ${msg}`;
  if (e.errno === 1227 || e.errno === 1142 || e.errno === 1143 || e.errno === 1044)
    return `missing privilege for ${sql}: ${msg}`;
  if (e.code === 'PROTOCOL_CONNECTION_LOST' || e.code === 'ECONNRESET' || e.code === 'EPIPE')
    return `connection lost running ${sql}: ${msg}`;
  if (typeof e.errno === 'number') return `${sql} failed: ERROR ${e.errno}: ${msg}`;
  return `${sql} failed: ${msg}`;
}

/**
 * Does `b` start like a MySQL server's first packet (a v10 greeting, or an ERR packet such as
 * "Too many connections")? undefined: not enough bytes to tell yet.
 * Packet: 3-byte little-endian length, sequence id 0, then 0x0a (protocol 10) or 0xff (ERR).
 */
export function looksLikeMysqlFirstPacket(b: Buffer): boolean | undefined {
  if (b.length < 5) {
    if (b.length >= 4 && b[3] !== 0) return false;
    return undefined;
  }
  const len = b[0] | (b[1] << 8) | (b[2] << 16);
  return len > 0 && len < 4096 && b[3] === 0 && (b[4] === 0x0a || b[4] === 0xff);
}

/** A short printable preview of unexpected bytes. */
export function previewBytes(b: Buffer, max = 24): string {
  const s = b
    .subarray(0, max)
    .toString('latin1')
    .replace(/[^\x20-\x7e]/g, '.');
  return JSON.stringify(s) + (b.length > max ? '…' : '');
}
