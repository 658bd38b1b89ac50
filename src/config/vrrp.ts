// The `vrrp:` section of the config: a list of VRRP instances (keepalived's
// vrrp_instance, with snake_case keys). Pure: validation and defaults only; the
// output is normalised (durations in milliseconds, VIPs split into address,
// prefix and family) so src/vrrp never parses strings again.
//
// The instance `interface` may be omitted: the top-level config's interface is
// then used (resolveVrrpInterfaces() below, called by the config composer).

import { addressFamily } from '../net/inet';
import { z } from 'zod';
import { duration } from './duration';

const ipAddress = z.string().refine((s) => addressFamily(s) !== undefined, {
  message: 'not an IPv4 or IPv6 address (write e.g. "10.0.0.10" or "fd00::10")',
});

export interface Vip {
  address: string;
  prefix: number;
  family: 4 | 6;
  /**
   * Another interface than the instance's (keepalived's `virtual_ipaddress { ADDR dev IFACE }`):
   * the address moves with the instance's state, as LVS-NAT's inner gateway moves with the VIP.
   */
  dev?: string;
}

const IFNAME_RE = /^[A-Za-z0-9_.:@-]{1,15}$/;

const vip = z.string().transform((s, ctx): Vip => {
  // "addr[/prefix] [dev IFACE]", as keepalived writes a virtual_ipaddress line.
  const words = s.trim().split(/\s+/);
  let dev: string | undefined;
  if (words.length === 3 && words[1] === 'dev' && IFNAME_RE.test(words[2]!)) dev = words[2];
  else if (words.length !== 1) {
    ctx.addIssue({
      code: 'custom',
      message: `"${s}" is not a VIP: write "addr", "addr/prefix" or "addr/prefix dev IFACE" (an address that moves with the instance on another interface, e.g. "10.0.1.1/24 dev eth1")`,
    });
    return z.NEVER;
  }
  const [addr, pfx, extra] = words[0]!.split('/');
  const fam = addressFamily(addr ?? '');
  if (extra !== undefined || fam === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `"${s}" is not a VIP: write "addr" or "addr/prefix", e.g. "10.0.0.10/24" or "fd00::10/64"`,
    });
    return z.NEVER;
  }
  const max = fam === 4 ? 32 : 128;
  let prefix = max;
  if (pfx !== undefined) {
    if (!/^\d{1,3}$/.test(pfx) || Number(pfx) > max) {
      ctx.addIssue({ code: 'custom', message: `"${s}": prefix must be 0–${max} for an IPv${fam} address` });
      return z.NEVER;
    }
    prefix = Number(pfx);
  }
  return { address: addr!, prefix, family: fam as 4 | 6, ...(dev ? { dev } : {}) };
});

/** keepalived's weight range for scripts/interfaces (±254 is rewritten to ±253 there). */
const trackWeight = z.number().int().min(-253).max(253);

const trackScript = z.strictObject({
  /** Shell command (run with /bin/sh -c); exit status 0 = OK. */
  command: z.string().min(1),
  interval: duration({ default: 1000, min: 1 }),
  /** Kill and count as failed after this long (default: the interval). */
  timeout: duration({ optional: true, min: 1 }),
  /** >0 added while OK, <0 subtracted while failing, 0 = Fault while failing. */
  weight: trackWeight.default(0),
  rise: z.number().int().min(1).max(255).default(1),
  fall: z.number().int().min(1).max(255).default(1),
});

const track = z.strictObject({
  /** Link state (operstate up) of these interfaces. */
  interfaces: z.array(z.strictObject({ name: z.string().min(1).max(15), weight: trackWeight.default(0) })).default([]),
  /** The XDP program attached on the instance interface (wired by the daemon). */
  xdp: z.strictObject({ weight: trackWeight.default(0) }).optional(),
  /** A service's pool has at least one healthy backend (wired by the daemon). */
  pools: z.array(z.strictObject({ service: z.string().min(1), weight: trackWeight.default(0) })).default([]),
  scripts: z.array(trackScript).default([]),
});

const garp = z.strictObject({
  /** Gratuitous ARPs / unsolicited NAs sent per VIP on becoming Master. */
  repeat: z.number().int().min(1).max(100).default(5),
  /** Gap between the repeats. */
  interval: duration({ default: 100 }),
  /** Periodic re-announcement while Master (0 = off). Stale upstream ARP caches are the classic failover bug. */
  refresh: duration({ default: 60_000 }),
});

const instanceInput = z.strictObject({
  name: z
    .string()
    .min(1)
    .regex(/^[A-Za-z0-9_.:-]+$/, 'use letters, digits and _ . : - only'),
  interface: z.string().min(1).max(15).optional(),
  vrid: z.number().int().min(1).max(255),
  /** 255 = address owner (never adjusted by tracking); 100 is keepalived's default. */
  priority: z.number().int().min(1).max(255).default(100),
  /** Default 2 for IPv4 VIPs, 3 for IPv6 VIPs (v2 has no IPv6). */
  version: z.union([z.literal(2), z.literal(3)]).optional(),
  advert_interval: duration({ default: 1000, min: 1 }),
  vips: z.array(vip).min(1, 'at least one VIP is needed').max(255),
  preempt: z.boolean().default(true),
  preempt_delay: duration({ default: 0 }),
  unicast_src: ipAddress.optional(),
  unicast_peers: z.array(ipAddress).default([]),
  auth: z
    .strictObject({
      type: z.literal('pass'),
      password: z.string().min(1).max(8, 'VRRPv2 simple passwords are at most 8 characters'),
    })
    .optional(),
  /** VRRPv3 over IPv4: leave the IPv4 pseudo-header out of the checksum (RFC 9568, Cisco/Juniper); default includes it like keepalived. */
  v3_checksum_as_v2: z.boolean().default(false),
  garp: garp.default({ repeat: 5, interval: 100, refresh: 60_000 }),
  track: track.default({ interfaces: [], pools: [], scripts: [] }),
  /** Run on every state change with arguments: instance name, state (MASTER|BACKUP|FAULT|STOP), priority. */
  notify: z.string().min(1).optional(),
  /** keepalived's vrrp_sync_group: instances naming the same group fail over as one (src/vrrp/sync.ts). */
  sync_group: z
    .string()
    .min(1)
    .regex(/^[A-Za-z0-9_.:-]+$/, 'use letters, digits and _ . : - only')
    .optional(),
});

const instance = instanceInput
  .superRefine((i, ctx) => {
    const fams = new Set(i.vips.map((v) => v.family));
    if (fams.size > 1)
      ctx.addIssue({
        code: 'custom',
        path: ['vips'],
        message: 'an instance carries one address family: split IPv4 and IPv6 VIPs into two instances',
      });
    const fam = i.vips[0]?.family ?? 4;
    if (fam === 6 && i.version === 2)
      ctx.addIssue({ code: 'custom', path: ['version'], message: 'VRRPv2 has no IPv6: use version 3 for IPv6 VIPs' });
    const version = i.version ?? (fam === 6 ? 3 : 2);
    if (version === 2) {
      if (i.advert_interval % 1000 !== 0 || i.advert_interval < 1000 || i.advert_interval > 255_000)
        ctx.addIssue({
          code: 'custom',
          path: ['advert_interval'],
          message: `VRRPv2 adverts are whole seconds 1s–255s (got ${i.advert_interval} ms): use e.g. "1s", or version 3 for sub-second adverts`,
        });
    } else {
      if (i.advert_interval % 10 !== 0 || i.advert_interval < 10 || i.advert_interval > 40_950)
        ctx.addIssue({
          code: 'custom',
          path: ['advert_interval'],
          message: `VRRPv3 adverts are centiseconds 10ms–40.95s (got ${i.advert_interval} ms): use a multiple of 10ms`,
        });
      if (i.auth)
        ctx.addIssue({
          code: 'custom',
          path: ['auth'],
          message: 'VRRPv3 has no authentication: remove auth or use version 2',
        });
    }
    if (i.priority === 255 && !i.preempt)
      ctx.addIssue({
        code: 'custom',
        path: ['preempt'],
        message: 'the address owner (priority 255) always preempts: remove preempt: false or lower the priority',
      });
    if (i.preempt_delay > 1_000_000)
      ctx.addIssue({ code: 'custom', path: ['preempt_delay'], message: 'preempt_delay is at most 1000s' });
    const addrFam = (a: string) => addressFamily(a);
    if (i.unicast_src && addrFam(i.unicast_src) !== fam)
      ctx.addIssue({
        code: 'custom',
        path: ['unicast_src'],
        message: `unicast_src must be an IPv${fam} address like the VIPs`,
      });
    i.unicast_peers.forEach((p, k) => {
      if (addrFam(p) !== fam)
        ctx.addIssue({
          code: 'custom',
          path: ['unicast_peers', k],
          message: `unicast peer must be an IPv${fam} address like the VIPs`,
        });
    });
    if (i.unicast_src && i.unicast_peers.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['unicast_peers'],
        message: 'unicast_src is set but unicast_peers is empty: list the peers or remove unicast_src',
      });
  })
  .transform((i) => {
    const family = i.vips[0]!.family;
    return { ...i, family, version: (i.version ?? (family === 6 ? 3 : 2)) as 2 | 3 };
  });

export const vrrpSchema = z.array(instance).superRefine((list, ctx) => {
  const names = new Set<string>();
  const vrids = new Map<string, number>();
  list.forEach((i, k) => {
    if (names.has(i.name))
      ctx.addIssue({ code: 'custom', path: [k, 'name'], message: `instance name "${i.name}" is used twice` });
    names.add(i.name);
    // Same VRID on the same interface and family is only valid with disjoint unicast peer sets.
    const key = `${i.interface ?? ''}/${i.family}/${i.vrid}`;
    if (vrids.has(key) && i.unicast_peers.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: [k, 'vrid'],
        message: `VRID ${i.vrid} is already used by instance ${list[vrids.get(key)!]!.name} on this interface`,
      });
    vrids.set(key, k);
  });
  const groups = new Map<string, number[]>();
  list.forEach((i, k) => {
    if (i.sync_group) groups.set(i.sync_group, [...(groups.get(i.sync_group) ?? []), k]);
  });
  for (const [g, ks] of groups) {
    if (ks.length < 2)
      ctx.addIssue({
        code: 'custom',
        path: [ks[0]!, 'sync_group'],
        message: `sync group "${g}" has only this instance: a group makes several instances fail over as one; name it on another instance too, or remove sync_group`,
      });
  }
});

export type VrrpConfigInput = z.input<typeof vrrpSchema>;
export type VrrpConfig = z.output<typeof vrrpSchema>;
export type VrrpInstanceConfig = VrrpConfig[number];
/** An instance with its interface resolved. */
/** With the interface resolved, and the top-level script_user its track and notify scripts run as. */
export type ResolvedVrrpInstanceConfig = VrrpInstanceConfig & { interface: string; scriptUser?: string };

/**
 * Fill in each instance's interface from the top-level one. Throws a plain
 * Error naming the instance when neither is set (the config composer wraps it).
 */
export function resolveVrrpInterfaces(
  list: VrrpConfig,
  topInterface: string | undefined,
): ResolvedVrrpInstanceConfig[] {
  return list.map((i) => {
    const itf = i.interface ?? topInterface;
    if (!itf) throw new Error(`vrrp instance ${i.name}: no interface: set vrrp[].interface or the top-level interface`);
    // "dev" naming the instance's own interface is the plain form.
    return {
      ...i,
      interface: itf,
      vips: i.vips.map((v) => (v.dev === itf ? { address: v.address, prefix: v.prefix, family: v.family } : v)),
    };
  });
}
