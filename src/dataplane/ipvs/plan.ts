// Pure part of the IPVS dataplane: desired state -> IPVS services/dests, and the difference
// between what the kernel has and what is desired, as an ordered list of operations.
//
// Backend states in IPVS (kept consistent with the XDP dataplane's meaning):
// - active: dest with its weight;
// - draining: dest kept with weight 0 (IPVS sends no new connections to it, existing ones stay);
// - down: dest removed. XDP re-hashes the established flows of a down backend; IPVS cannot
//   re-route a connection, so the dest goes away; with net.ipv4.vs.expire_nodest_conn=1 (set by the
//   dataplane) the next packet of such a connection expires it and, with sloppy_tcp, the flow is
//   scheduled afresh, which is what XDP does.
// - maint (the operator's maintenance): dest removed, as down, never weight 0 (that would be a
//   drain: IPVS keeps sending a weight-0 dest's established connections to it). With
//   expire_nodest_conn=1 the next packet of a connection to the removed dest expires it, and
//   with sloppy_tcp the mid-stream packet is scheduled to another real server, which has no
//   socket for it and answers RST: the client's connection ends, as with XDP's re-hash.

import { XdError } from '../../errors';
import { canonicalAddress } from '../../net/inet';
import type { DesiredService, DesiredState, Scheduler } from '../../state/types';
import {
  AF_INET,
  AF_INET6,
  FwdMethod,
  TunFlag,
  TunType,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SvcFlag,
  hostPort,
  serviceLabel,
  AddressFamily,
  IpvsDest,
  IpvsDestEntry,
  IpvsService,
  IpvsServiceEntry,
  IpvsServiceKey,
} from './codec';

/** Flag bits xdirector sets and compares; HASHED is the kernel's own bookkeeping. */
export const MANAGED_FLAG_MASK = 0xffffffff & ~SvcFlag.HASHED;
export const MAX_WEIGHT = 0x7fffffff;

export interface SchedulerMapping {
  schedName: string;
  flags: number;
}

/**
 * xdirector scheduler -> IPVS scheduler + flags.
 * - maglev -> mh with mh-port (0x10: client address and port hashed, like the XDP ring) and
 *   mh-fallback (0x08). Why fallback: mh builds its table from each dest's last non-zero weight,
 *   so a drained dest (weight 0) keeps its slots; without mh-fallback a new connection hashed
 *   onto it finds no server and is refused. With it, the kernel rehashes to the next available
 *   dest (ip_vs_mh_get_fallback), which is what drain means here: no new flows, nothing refused.
 *   Flows hashed onto active dests are unaffected, so the table still matches buildIpvsMh().
 * - sh -> sh with sh-fallback (0x08), for the same reason (client address only: affinity);
 *   with ring ipvs-mh: mh with mh-fallback and without mh-port, the table the XDP ring copies.
 * - wrr, rr, lc -> themselves (they skip weight-0 dests by construction).
 */
export function mapScheduler(
  s: Scheduler | string,
  service = '?',
  ring: 'maglev' | 'ipvs-mh' = 'maglev',
): SchedulerMapping {
  // sh with an IPVS-compatible ring: the XDP side hashes client addresses onto the mh table
  // (XD_SCHED_IPVS_MH_NOPORT), so IPVS must run mh without mh-port, not sh, for the two to agree.
  if (s === 'sh' && ring === 'ipvs-mh') return { schedName: 'mh', flags: SvcFlag.MH_FALLBACK };
  switch (s) {
    case 'maglev':
      return { schedName: 'mh', flags: SvcFlag.MH_PORT | SvcFlag.MH_FALLBACK };
    case 'sh':
      return { schedName: 'sh', flags: SvcFlag.SH_FALLBACK };
    case 'wrr':
      return { schedName: 'wrr', flags: 0 };
    case 'rr':
      return { schedName: 'rr', flags: 0 };
    case 'lc':
      return { schedName: 'lc', flags: 0 };
    default:
      throw new XdError(
        'XD_ERR_IPVS',
        `IPVS: service ${service}: unknown scheduler ${JSON.stringify(s)} — use one of maglev, sh, wrr, rr, lc`,
        {
          detail: { service, scheduler: s },
        },
      );
  }
}

export function unmapScheduler(schedName: string, flags: number): Scheduler | undefined {
  if (schedName === 'mh' && flags & SvcFlag.MH_PORT) return 'maglev';
  if (schedName === 'sh' || schedName === 'mh') return 'sh';
  if (schedName === 'wrr' || schedName === 'rr' || schedName === 'lc') return schedName;
  return undefined;
}

export function serviceKeyString(s: IpvsServiceKey): string {
  if (s.fwmark) return `fwm:${s.af}:${s.fwmark}`;
  return `${s.protocol}:${s.af}:${canonicalAddress(s.addr)}:${s.port}`;
}

export function destKeyString(d: Pick<IpvsDest, 'addr' | 'port'>): string {
  return `${canonicalAddress(d.addr)}:${d.port}`;
}

export interface IpvsTarget {
  /** Config name of the service. */
  name: string;
  service: IpvsService;
  /** In desired order; 'down' backends are absent. */
  dests: IpvsDest[];
  /** dest key -> backend key/name/state from the desired state (down ones included). */
  backends: Map<string, { key: string; name: string; state: string }>;
  /**
   * dest key -> the configured weight of a drained dest. mh builds its table from each dest's
   * last non-zero weight, which stays 0 for a dest *added* with weight 0; such a dest is added
   * with this weight and then set to 0, so it keeps its slots as the XDP ipvs-mh ring does.
   */
  addWeights?: Map<string, number>;
}

/** Desired state -> IPVS services and dests. Validates everything before any kernel call. */
export function toIpvsTargets(state: DesiredState): IpvsTarget[] {
  const seen = new Set<string>();
  return state.services.map((ds) => {
    const t = toIpvsTarget(ds);
    const k = serviceKeyString(t.service);
    if (seen.has(k)) {
      throw new XdError(
        'XD_ERR_IPVS',
        `IPVS: service ${ds.name}: ${serviceLabel(t.service)} is defined twice — each VIP:port/protocol must be one service`,
      );
    }
    seen.add(k);
    return t;
  });
}

function toIpvsTarget(ds: DesiredService): IpvsTarget {
  const af: AddressFamily = ds.family === 6 ? AF_INET6 : AF_INET;
  const protocol = ds.proto === 'tcp' ? IPPROTO_TCP : ds.proto === 'udp' ? IPPROTO_UDP : -1;
  if (protocol < 0)
    throw new XdError(
      'XD_ERR_IPVS',
      `IPVS: service ${ds.name}: unknown protocol ${JSON.stringify(ds.proto)} — use tcp or udp`,
    );
  if (!Number.isInteger(ds.port) || ds.port < 1 || ds.port > 65535) {
    throw new XdError('XD_ERR_IPVS', `IPVS: service ${ds.name}: port ${ds.port} is not 1..65535`);
  }
  let addr: string;
  try {
    addr = canonicalAddress(ds.vip);
  } catch {
    throw new XdError('XD_ERR_IPVS', `IPVS: service ${ds.name}: VIP ${JSON.stringify(ds.vip)} is not an IP address`);
  }
  if (addr.includes(':') !== (af === AF_INET6)) {
    throw new XdError('XD_ERR_IPVS', `IPVS: service ${ds.name}: VIP ${ds.vip} is not an IPv${ds.family} address`);
  }
  const sched = mapScheduler(ds.scheduler, ds.name, ds.ring?.kind);
  const service: IpvsService = {
    af,
    protocol,
    addr,
    port: ds.port,
    schedName: sched.schedName,
    flags: sched.flags,
    flagsMask: 0xffffffff,
    timeout: 0,
    netmask: af === AF_INET ? 0xffffffff : 128,
  };
  const dests: IpvsDest[] = [];
  const backends = new Map<string, { key: string; name: string; state: string }>();
  const addWeights = new Map<string, number>();
  for (const b of ds.backends) {
    const where = `service ${ds.name} backend ${b.name}`;
    let baddr: string;
    try {
      baddr = canonicalAddress(b.address);
    } catch {
      throw new XdError('XD_ERR_IPVS', `IPVS: ${where}: address ${JSON.stringify(b.address)} is not an IP address`);
    }
    const tunnel = b.forwarding === 'tunnel' && b.tunnel ? b.tunnel : undefined;
    const nat = b.forwarding === 'nat';
    const baf: AddressFamily = baddr.includes(':') ? AF_INET6 : AF_INET;
    if (baf !== af && !tunnel) {
      throw new XdError(
        'XD_ERR_IPVS',
        `IPVS: ${where}: ${b.address} is not IPv${ds.family} like the VIP — ${nat ? 'NAT rewrites addresses within one family' : 'direct routing needs one address family'} (a tunnel may cross families)`,
      );
    }
    if (!Number.isInteger(b.port) || b.port < 1 || b.port > 65535)
      throw new XdError('XD_ERR_IPVS', `IPVS: ${where}: port ${b.port} is not 1..65535`);
    if (!Number.isInteger(b.weight) || b.weight < 0 || b.weight > MAX_WEIGHT) {
      throw new XdError('XD_ERR_IPVS', `IPVS: ${where}: weight ${b.weight} is not an integer 0..${MAX_WEIGHT}`, {
        detail: { weight: b.weight },
      });
    }
    const dk = destKeyString({ addr: baddr, port: b.port });
    if (backends.has(dk))
      throw new XdError('XD_ERR_IPVS', `IPVS: ${where}: ${hostPort(baddr, b.port, af)} is listed twice`);
    backends.set(dk, { key: b.key, name: b.name, state: b.state });
    if (b.state === 'down' || b.state === 'maint') continue;
    const drained = b.state === 'draining' || b.weight === 0;
    if (drained && (b.configWeight ?? 0) > 0) addWeights.set(dk, Math.min(b.configWeight!, MAX_WEIGHT));
    dests.push({
      // NAT: masquerading (IP_VS_CONN_F_MASQ), the one IPVS method that rewrites the destination
      // to the dest's address *and port*, so b.port may differ from the service's.
      addr: baddr,
      port: b.port,
      addrFamily: baf,
      fwdMethod: tunnel ? FwdMethod.TUNNEL : nat ? FwdMethod.MASQ : FwdMethod.DROUTE,
      weight: b.state === 'draining' ? 0 : b.weight,
      uThreshold: 0,
      lThreshold: 0,
      // IPVS tunnels: IPIP (ipip / sit / ip6tnl by family), or GUE with no UDP checksum as XDP sends it.
      ...(tunnel
        ? tunnel.encap === 'gue'
          ? { tunType: TunType.GUE, tunPort: tunnel.guePort, tunFlags: TunFlag.NOCSUM }
          : { tunType: TunType.IPIP }
        : {}),
    });
  }
  return { name: ds.name, service, dests, backends, addWeights };
}

/** What the kernel has for one service. */
export interface KernelService {
  service: IpvsServiceEntry;
  dests: IpvsDestEntry[];
}

export type IpvsOp =
  | { op: 'add-service'; service: IpvsService; name: string }
  | { op: 'edit-service'; service: IpvsService; old: IpvsService; name: string; reason: string }
  | { op: 'del-service'; service: IpvsServiceKey; old: KernelService; reason: string }
  | { op: 'add-dest'; service: IpvsServiceKey; dest: IpvsDest }
  | { op: 'edit-dest'; service: IpvsServiceKey; dest: IpvsDest; old: IpvsDest; reason: string }
  | { op: 'del-dest'; service: IpvsServiceKey; dest: IpvsDest; reason: string };

/** One line per operation, for logs: "add dest 10.0.0.11:3306 to TCP 10.0.0.100:3306". */
export function describeOp(o: IpvsOp): string {
  switch (o.op) {
    case 'add-service':
      return `add ${serviceLabel(o.service)} scheduler ${schedLabel(o.service)}`;
    case 'edit-service':
      return `update ${serviceLabel(o.service)}: ${o.reason}`;
    case 'del-service':
      return `delete ${serviceLabel(o.service)} (${o.reason})`;
    case 'add-dest':
      return `add dest ${hostPort(o.dest.addr, o.dest.port, o.service.af)} weight ${o.dest.weight} to ${serviceLabel(o.service)}`;
    case 'edit-dest':
      return `update dest ${hostPort(o.dest.addr, o.dest.port, o.service.af)} of ${serviceLabel(o.service)}: ${o.reason}`;
    case 'del-dest':
      return `delete dest ${hostPort(o.dest.addr, o.dest.port, o.service.af)} from ${serviceLabel(o.service)} (${o.reason})`;
  }
}

export function schedLabel(s: Pick<IpvsService, 'schedName' | 'flags'>): string {
  const f: string[] = [];
  if (s.schedName === 'mh' || s.schedName === 'sh') {
    if (s.flags & SvcFlag.SCHED1) f.push(`${s.schedName}-fallback`);
    if (s.flags & SvcFlag.SCHED2) f.push(`${s.schedName}-port`);
  }
  if (s.flags & SvcFlag.PERSISTENT) f.push('persistent');
  if (s.flags & SvcFlag.ONEPACKET) f.push('ops');
  return f.length ? `${s.schedName} (${f.join(',')})` : s.schedName;
}

function serviceDiff(want: IpvsService, have: IpvsService): string | undefined {
  const why: string[] = [];
  if (want.schedName !== have.schedName) why.push(`scheduler ${have.schedName} -> ${want.schedName}`);
  if ((want.flags & MANAGED_FLAG_MASK) !== (have.flags & MANAGED_FLAG_MASK)) {
    why.push(
      `flags ${schedLabel(have)} -> ${schedLabel(want)} (0x${(have.flags & MANAGED_FLAG_MASK).toString(16)} -> 0x${want.flags.toString(16)})`,
    );
  }
  if (want.timeout !== have.timeout) why.push(`persistence timeout ${have.timeout} -> ${want.timeout}`);
  if (want.netmask >>> 0 !== have.netmask >>> 0) why.push(`netmask ${have.netmask >>> 0} -> ${want.netmask >>> 0}`);
  if ((want.peName ?? '') !== (have.peName ?? ''))
    why.push(`persistence engine ${have.peName ?? 'none'} -> ${want.peName ?? 'none'}`);
  return why.length ? why.join(', ') : undefined;
}

function tunLabel(d: IpvsDest): string {
  return d.tunType === TunType.GUE ? `gue:${d.tunPort ?? 0}` : d.tunType === TunType.GRE ? 'gre' : 'ipip';
}

function destDiff(want: IpvsDest, have: IpvsDest): string | undefined {
  const why: string[] = [];
  if (want.weight !== have.weight) why.push(`weight ${have.weight} -> ${want.weight}`);
  if (want.fwdMethod !== have.fwdMethod) why.push(`forwarding method ${have.fwdMethod} -> ${want.fwdMethod}`);
  if (
    want.fwdMethod === FwdMethod.TUNNEL &&
    ((want.tunType ?? 0) !== (have.tunType ?? 0) ||
      (want.tunPort ?? 0) !== (have.tunPort ?? 0) ||
      (want.tunFlags ?? 0) !== (have.tunFlags ?? 0))
  ) {
    why.push(`tunnel ${tunLabel(have)} -> ${tunLabel(want)}`);
  }
  if (want.uThreshold !== have.uThreshold) why.push(`upper threshold ${have.uThreshold} -> ${want.uThreshold}`);
  if (want.lThreshold !== have.lThreshold) why.push(`lower threshold ${have.lThreshold} -> ${want.lThreshold}`);
  return why.length ? why.join(', ') : undefined;
}

/** Add a dest; a drained one goes in with its configured weight first (see IpvsTarget.addWeights). */
function addDestOps(t: IpvsTarget, d: IpvsDest): IpvsOp[] {
  const w = t.addWeights?.get(destKeyString(d));
  if (!w || d.weight !== 0) return [{ op: 'add-dest', service: t.service, dest: d }];
  const first = { ...d, weight: w };
  return [
    { op: 'add-dest', service: t.service, dest: first },
    {
      op: 'edit-dest',
      service: t.service,
      dest: d,
      old: first,
      reason: `drained: added with weight ${w} so mh keeps its slots, then weight 0`,
    },
  ];
}

/**
 * Operations that turn `kernel` into `targets`. Order: services added/updated, then per service
 * dests added, updated, removed (new capacity first, so a service is never left without a dest it
 * should have), then services removed. `removable(key)` says whether a kernel service that is not
 * desired may be deleted (xdirector owns it); others are left alone.
 */
export function planIpvs(
  targets: IpvsTarget[],
  kernel: Map<string, KernelService>,
  removable: (key: string) => boolean,
): IpvsOp[] {
  const ops: IpvsOp[] = [];
  const wanted = new Set<string>();
  for (const t of targets) {
    const key = serviceKeyString(t.service);
    wanted.add(key);
    const have = kernel.get(key);
    if (!have) {
      ops.push({ op: 'add-service', service: t.service, name: t.name });
      for (const d of t.dests) ops.push(...addDestOps(t, d));
      continue;
    }
    const why = serviceDiff(t.service, have.service);
    if (why) ops.push({ op: 'edit-service', service: t.service, old: have.service, name: t.name, reason: why });
    const haveDests = new Map(have.dests.map((d) => [destKeyString(d), d]));
    const wantDests = new Set<string>();
    const adds: IpvsOp[] = [];
    const edits: IpvsOp[] = [];
    for (const d of t.dests) {
      const dk = destKeyString(d);
      wantDests.add(dk);
      const hd = haveDests.get(dk);
      if (!hd) {
        adds.push(...addDestOps(t, d));
        continue;
      }
      const dwhy = destDiff(d, hd);
      if (dwhy) edits.push({ op: 'edit-dest', service: t.service, dest: d, old: hd, reason: dwhy });
    }
    const dels: IpvsOp[] = [];
    for (const [dk, hd] of haveDests) {
      if (wantDests.has(dk)) continue;
      const b = t.backends.get(dk);
      dels.push({
        op: 'del-dest',
        service: t.service,
        dest: hd,
        reason: b ? `backend ${b.name} is ${b.state}` : 'not in the desired state',
      });
    }
    ops.push(...adds, ...edits, ...dels);
  }
  for (const [key, have] of kernel) {
    if (wanted.has(key) || !removable(key)) continue;
    ops.push({ op: 'del-service', service: have.service, old: have, reason: 'no longer in the desired state' });
  }
  return ops;
}

/** The operation that undoes `o` (used to roll back a failed apply). */
export function inverseOps(o: IpvsOp): IpvsOp[] {
  switch (o.op) {
    case 'add-service':
      return [{ op: 'del-service', service: o.service, old: { service: o.service, dests: [] }, reason: 'rollback' }];
    case 'edit-service':
      return [
        {
          op: 'edit-service',
          service: { ...o.old, flagsMask: 0xffffffff },
          old: o.service,
          name: o.name,
          reason: 'rollback',
        },
      ];
    case 'del-service':
      return [
        { op: 'add-service', service: { ...o.old.service, flagsMask: 0xffffffff }, name: 'rollback' },
        ...o.old.dests.map((d): IpvsOp => ({ op: 'add-dest', service: o.service, dest: d })),
      ];
    case 'add-dest':
      return [{ op: 'del-dest', service: o.service, dest: o.dest, reason: 'rollback' }];
    case 'edit-dest':
      return [{ op: 'edit-dest', service: o.service, dest: o.old, old: o.dest, reason: 'rollback' }];
    case 'del-dest':
      return [{ op: 'add-dest', service: o.service, dest: o.dest }];
  }
}
