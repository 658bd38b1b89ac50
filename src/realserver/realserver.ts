// Real-server side of DR forwarding: the VIPs on `lo` (so the server accepts packets addressed
// to them) without answering ARP for them (arp_ignore=1, arp_announce=2), persisted in a
// sysctl.d file; a check that reports what is missing; the monitor account's GRANT.
//
// Kernel facts this relies on (Documentation/networking/ip-sysctl.rst):
// - arp_ignore and arp_announce: the effective value for an interface is the maximum of
//   conf/all and conf/<interface>; so setting `all` covers every interface.
//   arp_ignore=1: answer only for addresses on the interface the request came in on (the VIP on
//   lo is never answered from eth0); arp_announce=2: never source ARP requests from the VIP.
// - IPv6 has no ARP: a neighbour solicitation is answered only for addresses of the receiving
//   interface, so a VIP on lo is not announced. It is added `nodad` (usable at once) and
//   deprecated (preferred lifetime 0) so the server never picks it as a source address.
//
// Side effects go through `ip` (iproute2) and /proc/sys, in the caller's network namespace.

import fs from 'node:fs';
import { addressFamily, parseAddress } from '../net/inet';
import path from 'node:path';
import { XdError } from '../errors';
import { ip, sysctlPath } from './system';

export const DEFAULT_SYSCTL_FILE = '/etc/sysctl.d/90-xdirector-realserver.conf';

/** The sysctls DR needs on a real server, with the minimum effective value. */
export const DR_SYSCTLS = [
  {
    key: 'net.ipv4.conf.all.arp_ignore',
    value: 1,
    why: 'answer ARP only for addresses of the receiving interface (not for the VIP on lo)',
  },
  { key: 'net.ipv4.conf.all.arp_announce', value: 2, why: 'never use the VIP as the source of ARP requests' },
] as const;

export interface Vip {
  address: string;
  family: 4 | 6;
  prefix: number;
}

export function parseVip(text: string): Vip {
  const [addr, pfx] = text.split('/');
  const fam = addressFamily(addr ?? '');
  if (fam === undefined)
    throw new XdError(
      'XD_ERR_USAGE',
      `--vip ${text}: not an IPv4 or IPv6 address (write e.g. 10.0.0.100 or fd00::100)`,
    );
  const max = fam === 4 ? 32 : 128;
  if (pfx !== undefined && Number(pfx) !== max)
    throw new XdError(
      'XD_ERR_USAGE',
      `--vip ${text}: a VIP on lo is a host address: write it without a prefix or with /${max}`,
    );
  return { address: addr!, family: fam, prefix: max };
}

export function readSysctl(key: string): number {
  return Number(fs.readFileSync(sysctlPath(key), 'utf8').trim());
}

function writeSysctl(key: string, value: number): void {
  try {
    fs.writeFileSync(sysctlPath(key), `${value}\n`);
  } catch (err) {
    throw new XdError('XD_ERR_REALSERVER', `set ${key}=${value}: ${(err as Error).message} (run as root)`, {
      cause: err,
    });
  }
}

interface AddrInfo {
  family: string;
  local: string;
  prefixlen: number;
  deprecated?: boolean;
  nodad?: boolean;
  tentative?: boolean;
  dadfailed?: boolean;
}

/** Addresses per interface name (`ip -j addr`). */
async function addresses(): Promise<Map<string, AddrInfo[]>> {
  const links = JSON.parse(await ip(['-j', 'addr', 'show'])) as { ifname: string; addr_info?: AddrInfo[] }[];
  return new Map(links.map((l) => [l.ifname, l.addr_info ?? []]));
}

const canon = (a: string) => parseAddress(a)?.text ?? a;

export interface SetupOptions {
  vips: Vip[];
  sysctlFile?: string;
}

/** The sysctl.d file: the settings, and the values found before, for teardown to restore. */
function sysctlFileText(previous: Record<string, number>): string {
  return [
    '# Written by `xdirector realserver setup`: DR real server (VIPs on lo must not answer ARP).',
    '# `xdirector realserver teardown` removes this file and restores the previous values.',
    ...DR_SYSCTLS.map((s) => `# previous: ${s.key}=${previous[s.key]}`),
    ...DR_SYSCTLS.map((s) => `${s.key} = ${s.value}`),
    '',
  ].join('\n');
}

/** Put the VIPs on lo, set and persist the ARP sysctls. Idempotent. Returns what it did. */
export async function setup(o: SetupOptions): Promise<string[]> {
  const done: string[] = [];
  const file = o.sysctlFile ?? DEFAULT_SYSCTL_FILE;
  // Sysctls first: a VIP on lo must never be answered for, not even for a moment.
  const previous: Record<string, number> = {};
  const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  for (const s of DR_SYSCTLS) {
    const kept = new RegExp(`^# previous: ${s.key.replace(/\./g, '\\.')}=(\\d+)$`, 'm').exec(old);
    previous[s.key] = kept ? Number(kept[1]) : readSysctl(s.key);
    if (readSysctl(s.key) < s.value) {
      writeSysctl(s.key, s.value);
      done.push(`set ${s.key}=${s.value} (${s.why})`);
    }
  }
  const text = sysctlFileText(previous);
  if (old !== text) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    done.push(`wrote ${file} (applied at boot by systemd-sysctl)`);
  }
  await ip(['link', 'set', 'lo', 'up']);
  const have = (await addresses()).get('lo') ?? [];
  for (const v of o.vips) {
    const present = have.find((a) => canon(a.local) === canon(v.address));
    if (present && (v.family === 4 || present.deprecated)) continue;
    if (present) await ip(['addr', 'del', `${v.address}/${v.prefix}`, 'dev', 'lo']);
    await ip([
      'addr',
      'add',
      `${v.address}/${v.prefix}`,
      'dev',
      'lo',
      ...(v.family === 6 ? ['nodad', 'preferred_lft', '0'] : []),
    ]);
    done.push(
      `added ${v.address}/${v.prefix} to lo${v.family === 6 ? ' (nodad, deprecated: never a source address)' : ''}`,
    );
  }
  return done;
}

export interface Finding {
  ok: boolean;
  what: string;
  /** The fix, when not ok. */
  fix?: string;
}

/** What a running real server has and lacks for DR with these VIPs. */
export async function check(o: SetupOptions): Promise<Finding[]> {
  const out: Finding[] = [];
  const file = o.sysctlFile ?? DEFAULT_SYSCTL_FILE;
  const addrs = await addresses();
  const lo = addrs.get('lo') ?? [];
  for (const v of o.vips) {
    const a = lo.find((x) => canon(x.local) === canon(v.address));
    if (!a)
      out.push({
        ok: false,
        what: `${v.address} is not on lo: packets for the VIP would be dropped`,
        fix: `ip addr add ${v.address}/${v.prefix} dev lo${v.family === 6 ? ' nodad preferred_lft 0' : ''}`,
      });
    else if (v.family === 6 && a.dadfailed)
      out.push({
        ok: false,
        what: `${v.address} on lo failed duplicate address detection`,
        fix: `ip addr del ${v.address}/128 dev lo; ip addr add ${v.address}/128 dev lo nodad preferred_lft 0`,
      });
    else if (v.family === 6 && !a.deprecated)
      out.push({
        ok: false,
        what: `${v.address} on lo is not deprecated: the server may source its own connections from the VIP`,
        fix: `ip addr change ${v.address}/128 dev lo preferred_lft 0`,
      });
    else out.push({ ok: true, what: `${v.address}/${a.prefixlen} on lo${v.family === 6 ? ' (deprecated)' : ''}` });
    for (const [ifname, list] of addrs) {
      if (ifname === 'lo') continue;
      if (list.some((x) => canon(x.local) === canon(v.address)))
        out.push({
          ok: false,
          what: `${v.address} is also on ${ifname}: this server would answer ARP/ND for the VIP and steal it from the director`,
          fix: `ip addr del ${v.address} dev ${ifname}`,
        });
    }
  }
  if (o.vips.some((v) => v.family === 4)) {
    const persisted = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    for (const s of DR_SYSCTLS) {
      const leaf = s.key.split('.').pop()!;
      // Effective value per interface = max(all, interface): a lower `all` is fine where every interface is high.
      const all = readSysctl(s.key);
      const ifs = [...addrs.keys()].filter((i) => i !== 'lo');
      const low =
        ifs.length === 0
          ? all < s.value
            ? ['all']
            : []
          : ifs.filter((i) => {
              let mine = 0;
              try {
                mine = Number(fs.readFileSync(`/proc/sys/net/ipv4/conf/${i}/${leaf}`, 'utf8').trim());
              } catch {
                /* interface gone */
              }
              return Math.max(all, mine) < s.value;
            });
      if (low.length)
        out.push({
          ok: false,
          what: `${s.key} is ${all} (effective below ${s.value} on ${low.join(', ')}): ${s.why}`,
          fix: `sysctl -w ${s.key}=${s.value}`,
        });
      else out.push({ ok: true, what: `${s.key} effective >= ${s.value}` });
      if (!new RegExp(`^${s.key.replace(/\./g, '\\.')}\\s*=\\s*${s.value}\\s*$`, 'm').test(persisted))
        out.push({
          ok: false,
          what: `${s.key}=${s.value} is not persisted in ${file}: it is lost at reboot`,
          fix: 'xdirector realserver setup (writes the file)',
        });
    }
  }
  return out;
}

/** Remove the VIPs from lo; remove the sysctl file and restore the values it recorded. */
export async function teardown(o: SetupOptions): Promise<string[]> {
  const done: string[] = [];
  const file = o.sysctlFile ?? DEFAULT_SYSCTL_FILE;
  const lo = (await addresses()).get('lo') ?? [];
  for (const v of o.vips) {
    if (!lo.some((a) => canon(a.local) === canon(v.address))) continue;
    await ip(['addr', 'del', `${v.address}/${v.prefix}`, 'dev', 'lo']);
    done.push(`removed ${v.address}/${v.prefix} from lo`);
  }
  if (fs.existsSync(file)) {
    const text = fs.readFileSync(file, 'utf8');
    for (const s of DR_SYSCTLS) {
      const m = new RegExp(`^# previous: ${s.key.replace(/\./g, '\\.')}=(\\d+)$`, 'm').exec(text);
      if (m && readSysctl(s.key) !== Number(m[1])) {
        writeSysctl(s.key, Number(m[1]));
        done.push(`restored ${s.key}=${m[1]}`);
      }
    }
    fs.rmSync(file);
    done.push(`removed ${file}`);
  }
  return done;
}

/** The monitor account for xdirector's MySQL checks (read_only, replica status, connection counts). */
export function grantText(o: { user?: string; host?: string; heartbeat?: string } = {}): string {
  const user = o.user ?? 'monitor';
  const host = o.host ?? '%';
  const who = `'${user.replace(/'/g, "''")}'@'${host.replace(/'/g, "''")}'`;
  const hb = o.heartbeat ? [`GRANT SELECT ON ${o.heartbeat} TO ${who};`] : [];
  return [
    '-- MySQL 8.0 / 8.4 (SHOW REPLICA STATUS needs REPLICATION CLIENT):',
    `CREATE USER IF NOT EXISTS ${who} IDENTIFIED BY '<password>' WITH MAX_USER_CONNECTIONS 10;`,
    `GRANT REPLICATION CLIENT, PROCESS ON *.* TO ${who};`,
    ...hb,
    '',
    '-- MariaDB 10.5.9 and later (SHOW REPLICA STATUS needs SLAVE MONITOR, alias REPLICA MONITOR):',
    `CREATE USER IF NOT EXISTS ${who} IDENTIFIED BY '<password>' WITH MAX_USER_CONNECTIONS 10;`,
    `GRANT REPLICATION CLIENT, PROCESS, SLAVE MONITOR ON *.* TO ${who};`,
    ...hb,
    '',
    `-- Put the same password in the director's monitor.password_file (mode 0600).${host === '%' ? " Narrow the host to the directors' addresses where you can." : ''}`,
  ].join('\n');
}
