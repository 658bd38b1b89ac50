// The kernel's IPVS connection table as /proc/net/ip_vs_conn prints it (ip_vs_conn.c,
// ip_vs_conn_seq_show), parsed (pure). The generic netlink API has no connection dump, and this
// is the network namespace's own table (/proc/net follows the reading process's namespace).
//   Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
//   TCP 0A4D000A 9C43 0A4D0064 0CEB 0A4F000B 0CEA ESTABLISHED     899
// IPv4 addresses are 8 hex digits (host order of the number, so big-endian text), IPv6 ones
// eight colon-separated groups (%pI6); ports are 4 hex digits. The forwarding method is not in
// the table: the caller knows it from its own services.
import { parseAddress } from '../../net/inet';
import type { LiveConnection } from '../../state/types';

export const IPVS_CONN_PROC = '/proc/net/ip_vs_conn';

function address(tok: string): string | undefined {
  if (tok.includes(':')) return parseAddress(tok)?.text;
  if (!/^[0-9A-Fa-f]{8}$/.test(tok)) return undefined;
  const n = parseInt(tok, 16);
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function port(tok: string): number | undefined {
  return /^[0-9A-Fa-f]{4}$/.test(tok) ? parseInt(tok, 16) : undefined;
}

/**
 * The live connections of the table: TCP ones in ESTABLISHED and every UDP one (a closing or
 * half-open TCP connection is left out: there is nothing left to keep). Persistence templates
 * (client port 0) and lines that do not parse are skipped.
 */
export function parseIpvsConns(text: string): LiveConnection[] {
  const out: LiveConnection[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [pro, ca, cp, va, vp, da, dp, state] = f as [string, string, string, string, string, string, string, string];
    const proto = pro === 'TCP' ? 'tcp' : pro === 'UDP' ? 'udp' : undefined;
    if (!proto || (proto === 'tcp' && state !== 'ESTABLISHED')) continue;
    const client = address(ca);
    const vip = address(va);
    const backend = address(da);
    const clientPort = port(cp);
    const vipPort = port(vp);
    const backendPort = port(dp);
    if (!client || !vip || !backend || !clientPort || vipPort === undefined || backendPort === undefined) continue;
    out.push({
      family: vip.includes(':') ? 6 : 4,
      proto,
      client,
      clientPort,
      vip,
      vipPort,
      backend,
      backendPort,
    });
  }
  return out;
}
