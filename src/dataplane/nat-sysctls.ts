// The kernel settings a NAT director needs beyond its dataplane's own tables: what they are for a
// desired state (pure: natSysctls), and setting them (ensureSysctls). Both dataplanes need them:
// - IPVS translates replies in its NF_INET_FORWARD hook (ip_vs_reply4/6 -> ip_vs_out): a reply
//   from a real server to a client is a routed packet, and with forwarding off the kernel drops it
//   in the route lookup, before any hook runs. In the other direction ip_vs_nat_xmit routes the
//   rewritten packet itself from LOCAL_IN, so forwarding matters for the replies only.
// - XDP passes a reply that matches no NAT flow to the kernel untouched; after a switch from IPVS
//   those are the replies of IPVS's own connections, which the kernel translates only if it
//   forwards them.
// - One-armed NAT (the replies leave by the interface they came in on): the kernel sends an ICMP
//   redirect (ip_forward() -> ip_rt_send_redirect(), before the FORWARD hook) telling the real
//   server to reach the client directly, which a host obeys (accept_redirects defaults to 1 when
//   forwarding is off): its next replies bypass the director untranslated. The sending side is
//   IN_DEV_TX_REDIRECTS = conf/all OR conf/<interface>, so both go to 0. IPv6 has no such switch
//   (ip6_forward() always may send one); see src/realserver/nat.ts for the real server's side.
// Nothing is restored on close: a hot restart leaves the kernel's NAT state working, and turning
// forwarding off under it would cut every live session.

import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { XdError } from '../errors';
import type { DesiredState } from '../state/types';

export interface SysctlSetting {
  /** Dotted name, as sysctl(8) writes it: net.ipv4.ip_forward. */
  key: string;
  value: string;
  why: string;
}

export interface NatInterfaces {
  /** The client-side interface (the top-level `interface`). */
  outer: string;
  /** The server-side interface (`nat.interface`); absent or equal to outer: one-armed. */
  inner?: string;
}

/** The sysctls the NAT services of `state` need (empty when no backend forwards with NAT). Pure. */
export function natSysctls(state: DesiredState, itf: NatInterfaces): SysctlSetting[] {
  const fams = new Set<number>();
  for (const s of state.services) for (const b of s.backends) if (b.forwarding === 'nat') fams.add(s.family);
  const out: SysctlSetting[] = [];
  if (fams.has(4))
    out.push({
      key: 'net.ipv4.ip_forward',
      value: '1',
      why: 'NAT replies from the real servers are routed through the director',
    });
  if (fams.has(6)) {
    out.push({
      key: 'net.ipv6.conf.all.forwarding',
      value: '1',
      why: 'IPv6 NAT replies from the real servers are routed through the director (this also stops router advertisements being accepted unless accept_ra=2)',
    });
  }
  const oneArmed = !itf.inner || itf.inner === itf.outer;
  if (fams.has(4) && oneArmed) {
    const why = `one-armed NAT: an ICMP redirect from ${itf.outer} would send the real servers' replies straight to the clients, untranslated`;
    out.push({ key: 'net.ipv4.conf.all.send_redirects', value: '0', why });
    out.push({ key: `net.ipv4.conf.${itf.outer}.send_redirects`, value: '0', why });
  }
  return out;
}

/** /proc/sys path of a dotted key; interface names may contain dots, which sysctl(8) writes as '/'. */
export function sysctlFile(key: string, procSys = '/proc/sys'): string {
  return join(procSys, ...key.split('.'));
}

/**
 * Set each sysctl whose value differs; returns the ones changed (with the value found). Throws
 * XD_ERR_SYSCTL naming the first that cannot be read (before writing any) or written (the ones
 * already written are put back), so a failure leaves every value as it was.
 */
export async function ensureSysctls(
  want: SysctlSetting[],
  procSys = '/proc/sys',
): Promise<Array<SysctlSetting & { was: string }>> {
  const found: string[] = [];
  for (const w of want) {
    try {
      found.push((await fs.readFile(sysctlFile(w.key, procSys), 'utf8')).trim());
    } catch (err) {
      throw new XdError(
        'XD_ERR_SYSCTL',
        `NAT needs ${w.key}=${w.value} (${w.why}), but ${sysctlFile(w.key, procSys)} cannot be read: ${(err as Error).message}`,
        {
          cause: err,
          detail: { errno: (err as NodeJS.ErrnoException).errno, code: (err as NodeJS.ErrnoException).code },
        },
      );
    }
  }
  const changed: Array<SysctlSetting & { was: string }> = [];
  for (const [i, w] of want.entries()) {
    if (found[i] === w.value) continue;
    try {
      await fs.writeFile(sysctlFile(w.key, procSys), `${w.value}\n`);
    } catch (err) {
      for (const c of changed.reverse())
        await fs.writeFile(sysctlFile(c.key, procSys), `${c.was}\n`).catch(() => undefined);
      throw new XdError(
        'XD_ERR_SYSCTL',
        `NAT needs ${w.key}=${w.value} (${w.why}): writing ${sysctlFile(w.key, procSys)} failed: ${(err as Error).message} (run as root, in a network namespace that is not read-only)`,
        {
          cause: err,
          detail: { errno: (err as NodeJS.ErrnoException).errno, code: (err as NodeJS.ErrnoException).code },
        },
      );
    }
    changed.push({ ...w, was: found[i]! });
  }
  return changed;
}
