// The IPVS dataplane: the same desired state the XDP dataplane takes, programmed into kernel IPVS
// (direct routing) over generic netlink, by difference against what the kernel really has.
//
// Ownership: services this instance has applied are its own; a kernel service that is not in the
// desired state and was not applied by this instance (another tool's, or left by an earlier run
// with another config) is left alone and logged, unless `exclusive` is set.
// Every apply reads the kernel first, so changes made behind xdirector's back (ipvsadm -d, -e)
// are found, logged as drift, and reconciled.

import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../log';
import { silentLogger } from '../../log';
import { XdError } from '../../errors';
import type {
  BackendStatus,
  Dataplane,
  IpvsStatus,
  DesiredState,
  LiveConnection,
  PinnedBackend,
  Scheduler,
  ServiceStatus,
} from '../../state/types';
import { IpvsClient } from './client';
import { IPVS_CONN_PROC, parseIpvsConns } from './conns';
import { ensureSysctls, natSysctls, type NatInterfaces } from '../nat-sysctls';
import {
  FwdMethod,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IpvsDest,
  IpvsServiceEntry,
  TunType,
  serviceLabel,
  versionString,
} from './codec';
import {
  IpvsOp,
  IpvsTarget,
  KernelService,
  describeOp,
  destKeyString,
  inverseOps,
  planIpvs,
  schedLabel,
  serviceKeyString,
  toIpvsTargets,
  unmapScheduler,
} from './plan';

/** net.ipv4.vs sysctls set in IPVS mode (per network namespace). */
export const IPVS_SYSCTLS: Record<string, string> = {
  // Adopt mid-stream TCP packets of flows IPVS has not seen (after a switch from XDP). There is
  // no sloppy_udp: any UDP packet without a connection entry is scheduled anyway.
  sloppy_tcp: '1',
  // A connection whose dest was removed (backend down) is expired on its next packet and
  // rescheduled, as XDP re-hashes the flows of a down backend, instead of being dropped.
  expire_nodest_conn: '1',
};

/** What the dataplane needs of an IPVS client (IpvsClient; tests may pass a model of the kernel). */
export type IpvsApi = Pick<
  IpvsClient,
  | 'familyId'
  | 'info'
  | 'listServices'
  | 'listDests'
  | 'addService'
  | 'editService'
  | 'deleteService'
  | 'addDest'
  | 'editDest'
  | 'deleteDest'
  | 'close'
>;

export interface IpvsDataplaneOptions {
  log?: Logger;
  /** An open client; otherwise an IpvsClient is opened in the caller's network namespace. */
  client?: IpvsApi;
  /** Delete kernel services that are not in the desired state even if this instance did not create them. */
  exclusive?: boolean;
  /** Set IPVS_SYSCTLS (default true). */
  sysctls?: boolean;
  /** Where the net.ipv4.vs sysctls live (default /proc/sys/net/ipv4/vs). */
  sysctlDir?: string;
  /** The client- and server-side interfaces, for the sysctls NAT services need (src/dataplane/nat-sysctls.ts). */
  nat?: NatInterfaces;
  /** Root of the NAT sysctls (default /proc/sys). */
  procSys?: string;
}

function errnoOf(err: unknown): number | undefined {
  if (err instanceof XdError && typeof err.detail.errno === 'number') return err.detail.errno;
  return undefined;
}

const EEXIST = 17;
const ENOENT = 2;
const ESRCH = 3;

export class IpvsDataplane implements Dataplane {
  readonly kind = 'ipvs' as const;
  /** A down (or maint) backend has no dest here (plan.ts): health treats one missing from an adopted service as down. */
  readonly omitsDownBackends = true;
  private readonly client: IpvsApi;
  private readonly log: Logger;
  private readonly exclusive: boolean;
  private readonly version: string;
  private readonly connTabSize: number;
  private readonly sysctlsSet: Record<string, string>;
  private readonly natItf: NatInterfaces;
  private readonly setSysctls: boolean;
  private readonly procSys?: string;
  /** Services applied by this instance: service key -> last applied target. */
  private readonly applied = new Map<string, IpvsTarget>();
  /** Keys of services this instance created or adopted (removable when no longer desired). */
  private readonly owned = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    client: IpvsApi,
    log: Logger,
    exclusive: boolean,
    info: { version: number; connTabSize: number },
    sysctls: Record<string, string>,
    opts: IpvsDataplaneOptions = {},
  ) {
    this.client = client;
    this.natItf = opts.nat ?? { outer: '' };
    this.setSysctls = opts.sysctls !== false;
    this.procSys = opts.procSys;
    this.log = log;
    this.exclusive = exclusive;
    this.version = versionString(info.version);
    this.connTabSize = info.connTabSize;
    this.sysctlsSet = sysctls;
  }

  /**
   * Open IPVS in the caller's network namespace: resolve the family (XD_ERR_IPVS_MISSING if the
   * kernel has none), read its version, set the sysctls. Changes nothing else.
   */
  static async open(opts: IpvsDataplaneOptions = {}): Promise<IpvsDataplane> {
    const log = (opts.log ?? silentLogger()).child({ component: 'ipvs' });
    const client: IpvsApi = opts.client ?? (await IpvsClient.open({ log }));
    try {
      const info = await client.info();
      const set: Record<string, string> = {};
      if (opts.sysctls !== false) {
        const dir = opts.sysctlDir ?? '/proc/sys/net/ipv4/vs';
        for (const [k, v] of Object.entries(IPVS_SYSCTLS)) {
          try {
            await fs.writeFile(join(dir, k), `${v}\n`);
          } catch (err) {
            throw new XdError(
              'XD_ERR_IPVS',
              `IPVS: set net.ipv4.vs.${k}=${v} (${join(dir, k)}): ${(err as Error).message}`,
              {
                cause: err,
                detail: { errno: (err as NodeJS.ErrnoException).errno, code: (err as NodeJS.ErrnoException).code },
              },
            );
          }
          set[`net.ipv4.vs.${k}`] = v;
        }
      }
      log.info(
        { version: versionString(info.version), connTabSize: info.connTabSize, sysctls: set },
        'IPVS dataplane opened',
      );
      const dp = new IpvsDataplane(client, log, opts.exclusive ?? false, info, set, opts);
      dp.pinned = pinnedFromKernel(await dp.readKernel());
      if (dp.pinned.length)
        log.info(
          { dests: dp.pinned.length },
          'IPVS already holds services and dests: health starts from them (adopted)',
        );
      return dp;
    } catch (err) {
      if (!opts.client) client.close();
      throw err;
    }
  }

  /**
   * The dests the kernel held when this dataplane was opened (a restart over an earlier run's
   * IPVS services, as XDP adopts its pinned maps): what health starts from, through the same
   * initialFromPinned() as XDP (src/health/adopt.ts). Empty on a fresh start.
   */
  pinnedBackends(): PinnedBackend[] {
    return this.pinned.map((p) => ({ ...p }));
  }
  private pinned: PinnedBackend[] = [];

  /** The client (for status tools and tests that need the raw kernel view). */
  get ipvs(): IpvsApi {
    return this.client;
  }

  apply(state: DesiredState): Promise<void> {
    return this.serialize(() => this.doApply(state));
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The kernel's services with their dests, by service key. */
  async readKernel(): Promise<Map<string, KernelService>> {
    const out = new Map<string, KernelService>();
    for (const s of await this.client.listServices()) {
      if (s.fwmark) continue; // xdirector never creates fwmark services
      out.set(serviceKeyString(s), { service: s, dests: await this.client.listDests(s) });
    }
    return out;
  }

  private async doApply(state: DesiredState): Promise<void> {
    if (this.closed) throw new XdError('XD_ERR_IPVS', 'IPVS: apply after close');
    const targets = toIpvsTargets(state); // validates everything before any kernel call
    await this.natSysctls(state);
    const kernel = await this.readKernel();
    this.logDrift(kernel);
    for (const t of targets) {
      if (kernel.has(serviceKeyString(t.service)) && !this.owned.has(serviceKeyString(t.service))) {
        this.log.info({ service: t.name, ipvs: serviceLabel(t.service) }, 'IPVS service already exists: adopted');
      }
    }
    const ops = planIpvs(targets, kernel, (k) => this.exclusive || this.owned.has(k));
    for (const [k, ks] of kernel) {
      if (!targets.some((t) => serviceKeyString(t.service) === k) && !this.exclusive && !this.owned.has(k)) {
        this.log.debug({ ipvs: serviceLabel(ks.service) }, 'IPVS service not managed by xdirector: left alone');
      }
    }
    const done: IpvsOp[] = [];
    for (const o of ops) {
      try {
        await this.execute(o);
        done.push(o);
      } catch (err) {
        const pending = ops.slice(done.length + 1).map(describeOp);
        this.log.error(
          { err, failed: describeOp(o), done: done.map(describeOp), pending },
          `IPVS apply failed after ${done.length} of ${ops.length} changes; rolling back`,
        );
        await this.rollback(done);
        throw err;
      }
      const level = o.op === 'edit-service' ? 'warn' : 'info';
      this.log[level]({ change: describeOp(o) }, 'IPVS changed');
    }
    for (const t of targets) {
      const k = serviceKeyString(t.service);
      this.applied.set(k, t);
      this.owned.add(k);
    }
    for (const k of [...this.applied.keys()]) {
      if (!targets.some((t) => serviceKeyString(t.service) === k)) {
        this.applied.delete(k);
        this.owned.delete(k);
      }
    }
    if (ops.length) this.log.debug({ changes: ops.length }, 'IPVS apply done');
  }

  /**
   * Masquerading dests need the director to forward their replies (src/dataplane/nat-sysctls.ts):
   * set before the first dest is added, so the first connection's replies already pass. A
   * failure throws before any IPVS change.
   */
  private async natSysctls(state: DesiredState): Promise<void> {
    if (!this.setSysctls) return;
    const want = natSysctls(state, this.natItf);
    for (const c of await ensureSysctls(want, this.procSys)) {
      this.log.info({ sysctl: c.key, from: c.was, to: c.value, why: c.why }, `set ${c.key}=${c.value} for NAT`);
    }
    for (const w of want) this.sysctlsSet[w.key] = w.value;
  }

  /** Compare the kernel with what this instance applied last time; log what changed behind its back. */
  private logDrift(kernel: Map<string, KernelService>): void {
    for (const [k, t] of this.applied) {
      const ks = kernel.get(k);
      const svc = serviceLabel(t.service);
      if (!ks) {
        this.log.warn({ ipvs: svc, service: t.name }, 'IPVS service was removed outside xdirector; re-adding');
        continue;
      }
      if (ks.service.schedName !== t.service.schedName || (ks.service.flags & ~2) !== t.service.flags) {
        this.log.warn(
          { ipvs: svc, found: schedLabel(ks.service), want: schedLabel(t.service) },
          'IPVS scheduler was changed outside xdirector; restoring',
        );
      }
      const have = new Map(ks.dests.map((d) => [destKeyString(d), d]));
      for (const d of t.dests) {
        const hd = have.get(destKeyString(d));
        if (!hd)
          this.log.warn(
            { ipvs: svc, dest: `${d.addr}:${d.port}` },
            'IPVS dest was removed outside xdirector; re-adding',
          );
        else if (hd.weight !== d.weight)
          this.log.warn(
            { ipvs: svc, dest: `${d.addr}:${d.port}`, found: hd.weight, want: d.weight },
            'IPVS dest weight was changed outside xdirector; restoring',
          );
        have.delete(destKeyString(d));
      }
      for (const hd of have.values()) {
        this.log.warn({ ipvs: svc, dest: `${hd.addr}:${hd.port}` }, 'IPVS dest was added outside xdirector; removing');
      }
    }
  }

  /** One operation, idempotent: EEXIST on add becomes an update, ESRCH/ENOENT on update an add, on delete success. */
  private async execute(o: IpvsOp): Promise<void> {
    const c = this.client;
    switch (o.op) {
      case 'add-service':
        try {
          await c.addService(o.service);
        } catch (err) {
          if (errnoOf(err) !== EEXIST) throw err;
          this.log.info(
            { ipvs: serviceLabel(o.service) },
            'IPVS service appeared meanwhile (EEXIST): updating it instead',
          );
          await c.editService(o.service);
        }
        return;
      case 'edit-service':
        try {
          await c.editService(o.service);
        } catch (err) {
          if (errnoOf(err) !== ESRCH) throw err;
          await c.addService(o.service);
        }
        return;
      case 'del-service':
        try {
          await c.deleteService(o.service);
        } catch (err) {
          if (errnoOf(err) !== ESRCH) throw err;
        }
        return;
      case 'add-dest':
        try {
          await c.addDest(o.service, o.dest);
        } catch (err) {
          if (errnoOf(err) !== EEXIST) throw err;
          await c.editDest(o.service, o.dest);
        }
        return;
      case 'edit-dest':
        try {
          await c.editDest(o.service, o.dest);
        } catch (err) {
          if (errnoOf(err) !== ENOENT) throw err;
          await c.addDest(o.service, o.dest);
        }
        return;
      case 'del-dest':
        try {
          await c.deleteDest(o.service, o.dest);
        } catch (err) {
          const e = errnoOf(err);
          if (e !== ENOENT && e !== ESRCH) throw err;
        }
        return;
    }
  }

  private async rollback(done: IpvsOp[]): Promise<void> {
    for (const o of [...done].reverse()) {
      for (const inv of inverseOps(o)) {
        try {
          await this.execute(inv);
        } catch (err) {
          this.log.error(
            { err, change: describeOp(inv) },
            'IPVS rollback step failed: the kernel is left part-way between the old and the new state; the next apply reconciles',
          );
        }
      }
    }
  }

  status(): Promise<IpvsStatus> {
    return this.serialize(async () => {
      const kernel = await this.readKernel();
      const services: ServiceStatus[] = [];
      for (const [k, t] of this.applied) {
        const ks = kernel.get(k);
        services.push(serviceStatus(t, ks));
      }
      const foreign = [...kernel.keys()]
        .filter((k) => !this.applied.has(k))
        .map((k) => serviceLabel(kernel.get(k)!.service));
      return {
        kind: 'ipvs',
        detail: {
          version: this.version,
          connTabSize: this.connTabSize,
          sysctls: this.sysctlsSet,
          familyId: this.client.familyId,
          unmanagedServices: foreign,
        },
        services,
      };
    });
  }

  /** The kernel's IPVS takes the traffic as long as the services exist: nothing to lose track of. */
  attached(): boolean {
    return true;
  }

  /**
   * The kernel's live connections (conns.ts), for a switch to XDP to take over before close()
   * removes the services: with expire_nodest_conn=1 removing a dest expires its connections, and
   * the kernel unregisters IPVS's hooks with a family's last service, so after close nothing of
   * IPVS translates a NAT reply any more.
   */
  async liveConnections(): Promise<LiveConnection[]> {
    return parseIpvsConns(await fs.readFile(IPVS_CONN_PROC, 'utf8'));
  }

  close(opts: { keepState?: boolean } = {}): Promise<void> {
    return this.serialize(async () => {
      if (this.closed) return;
      try {
        if (opts.keepState === false) {
          for (const [k, t] of this.applied) {
            try {
              await this.client.deleteService(t.service);
              this.log.info({ ipvs: serviceLabel(t.service) }, 'IPVS service removed on close');
            } catch (err) {
              if (errnoOf(err) !== ESRCH) throw err;
            }
            this.applied.delete(k);
            this.owned.delete(k);
          }
        } else if (this.applied.size) {
          this.log.info({ services: this.applied.size }, 'IPVS dataplane closed; kernel services left in place');
        }
      } finally {
        this.closed = true;
        this.client.close();
      }
    });
  }
}

function n(x: bigint | undefined): number {
  return x === undefined ? 0 : Number(x);
}

/** The forwarding the kernel has for a dest, labelled like the XDP status ("dr", "tunnel/ipip", "tunnel/gue:6080"). */
function destForwardingLabel(d: IpvsDest): string {
  if (d.fwdMethod === FwdMethod.DROUTE) return 'dr';
  if (d.fwdMethod === FwdMethod.MASQ) return 'nat';
  if (d.fwdMethod === FwdMethod.TUNNEL)
    return d.tunType === TunType.GUE
      ? `tunnel/gue:${d.tunPort ?? 0}`
      : d.tunType === TunType.GRE
        ? 'tunnel/gre'
        : 'tunnel/ipip';
  return `method ${d.fwdMethod}`;
}

function serviceStatus(t: IpvsTarget, ks: KernelService | undefined): ServiceStatus {
  const byDest = new Map((ks?.dests ?? []).map((d) => [destKeyString(d), d]));
  const backends: BackendStatus[] = [];
  for (const [dk, b] of t.backends) {
    const d = byDest.get(dk);
    const [address, port] = splitDestKey(dk);
    backends.push({
      key: b.key,
      name: b.name,
      address,
      port,
      weight: d?.weight ?? 0,
      ...(d ? { forwarding: destForwardingLabel(d) } : {}),
      state: b.state as BackendStatus['state'],
      activeFlows: d ? d.activeConns : 0,
      inactiveFlows: d ? d.inactConns : 0,
      packets: n(d?.stats?.inpkts),
      bytes: n(d?.stats?.inbytes),
      newFlows: n(d?.stats?.conns),
      // Masquerading: IPVS translates the replies too and counts them as the dest's Out (ipvsadm --stats).
      ...(d?.fwdMethod === FwdMethod.MASQ ? { outPackets: n(d.stats?.outpkts), outBytes: n(d.stats?.outbytes) } : {}),
    });
  }
  const nat = (ks?.dests ?? []).some((d) => d.fwdMethod === FwdMethod.MASQ);
  const s: IpvsServiceEntry | undefined = ks?.service;
  return {
    name: t.name,
    vip: t.service.addr,
    port: t.service.port,
    proto: t.service.protocol === 17 ? 'udp' : 'tcp',
    scheduler: (unmapScheduler(s?.schedName ?? t.service.schedName, s?.flags ?? t.service.flags) ??
      'maglev') as Scheduler,
    forwarding: [...new Set((ks?.dests.length ? ks.dests : t.dests).map(destForwardingLabel))].join('+') || 'dr',
    packets: n(s?.stats?.inpkts),
    bytes: n(s?.stats?.inbytes),
    newFlows: n(s?.stats?.conns),
    ...(nat ? { outPackets: n(s?.stats?.outpkts), outBytes: n(s?.stats?.outbytes) } : {}),
    noBackend: 0,
    backends,
  };
}

function splitDestKey(dk: string): [string, number] {
  const i = dk.lastIndexOf(':');
  return [dk.slice(0, i), Number(dk.slice(i + 1))];
}

/**
 * The kernel's IPVS table as the backend states the last run left (pure). IPVS holds an active
 * backend as a dest with its weight and a draining one with weight 0 (src/dataplane/ipvs/plan.ts);
 * a down or maint backend has no dest, so it is not reported: like a backend new to the config,
 * its first result decides. fwmark services are never xdirector's.
 */
export function pinnedFromKernel(kernel: ReadonlyMap<string, KernelService>): PinnedBackend[] {
  const out: PinnedBackend[] = [];
  for (const { service: s, dests } of kernel.values()) {
    const proto = s.protocol === IPPROTO_TCP ? 'tcp' : s.protocol === IPPROTO_UDP ? 'udp' : undefined;
    if (s.fwmark || !proto) continue;
    for (const d of dests)
      out.push({ vip: s.addr, port: s.port, proto, address: d.addr, state: d.weight === 0 ? 'draining' : 'active' });
  }
  return out;
}
