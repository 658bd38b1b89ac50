// The XDP dataplane: loads (or adopts) the program and its pinned maps under
// <pin_dir>/<instance>, attaches it, and applies desired states by difference
// (plan.ts decides what to write; this file writes it in a safe order).
//
// Hot restart: close() leaves the program attached and the maps pinned; the
// next open() loads the program again over the same pinned maps (after checking
// the layout recorded in the meta map) and swaps it in atomically
// (XDP_FLAGS_REPLACE), so flows, rings and counters survive a restart.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type {
  PinnedBackend,
  Dataplane,
  XdpStatus,
  DesiredState,
  ServiceStatus,
  Family,
  LiveConnection,
} from '../../state/types';
import { BpfObject, openPinnedProgram } from '../../bpf';
import { checkRemovable, removePinDir, securePinDir } from '../../bpf';
import { getNative } from '../../bpf';
import { xdp } from '../../bpf';
import { sumPerCpu } from '../../bpf';
import { cpuSizedMaxEntries, flowTableEntries, randomFlowSeed, type BpfMap } from '../../bpf';
import { XdError, wrap } from '../../errors';
import { monotonicMs } from '../../clock';
import { forwardingLabel, serviceForwardingLabel } from '../../state/forwarding';
import { emptyModel, Model, NatEgress, Plan, plan, svcKeyString, SvcKey, tunnelText } from './plan';
import { NatSide, natAlert, type NatSample } from './nat';
import * as L from './layout';
import type * as G from '../../bpf';
import { readLinkMac } from '../../net/neigh';
import { addressToBytes, canonicalAddress } from '../../net/inet';
import { vethPeer } from '../../net/veth';
import { driverStats, xdpTxErrors } from '../../net/ethtool';
import { FlowCounter, FlowCountResult } from './flow-counts';
import {
  DEFAULT_EMBRYONIC_TABLE_SIZE,
  DEFAULT_NEW_FLOW_RATE,
  DEFAULT_SYN_REUSE_IDLE_MS,
  DEFAULT_TAKEOVER_TABLE_SIZE,
  DEFAULT_TOO_BIG_RATE,
} from '../../defaults';

export interface ApplyStats {
  backends: number;
  rings: number;
  slots: number;
  services: number;
  deleted: number;
  cleared: number;
}

export interface XdpOptions {
  instance: string;
  ifname: string;
  mode: 'native' | 'generic';
  pinDir: string;
  ringMax: number;
  maxServices: number;
  maxBackends: number;
  flowTableSize: number;
  /** Entries of each embryonic table (default DEFAULT_EMBRYONIC_TABLE_SIZE). */
  embryonicTableSize?: number;
  /** Entries of each takeover and probation table (default DEFAULT_TAKEOVER_TABLE_SIZE). */
  takeoverTableSize?: number;
  /** Proven flows per second, all CPUs together, that may enter the flow table, 0 = no limit (default DEFAULT_NEW_FLOW_RATE). */
  newFlowRate?: number;
  /** A SYN reusing a tracked flow's 5-tuple reschedules it only after this many ms idle (default DEFAULT_SYN_REUSE_IDLE_MS). */
  synReuseIdleMs?: number;
  /** The director's own frag needed / PTB answers per second, all CPUs together (default DEFAULT_TOO_BIG_RATE). */
  tooBigRate?: number;
  /** Report flows to the sync ring buffer (config `sync:`; src/sync reads it). */
  syncExport?: boolean;
  /** Compiled program; default dist/bpf/xdirector.bpf.o of this package. */
  objectPath?: string;
  /** A flow counts as active when it saw a packet within this many seconds (IPVS: TCP established 900 s). */
  flowIdleSeconds?: number;
  /**
   * Native mode on a veth whose peer runs no native XDP program (XDP_TX would be dropped by the
   * driver): 'refuse' (default; `dataplane: xdp`) throws XD_ERR_XDP_VETH_PEER with the fix,
   * 'generic' (`dataplane: auto`) attaches in generic mode with a warning.
   */
  vethPeerWithoutXdp?: 'refuse' | 'generic';
  /** status starts a new count of active flows when the last is older than this (ms); default 2000. */
  flowCountsMaxAgeMs?: number;
  /**
   * NAT's server-side interface (config nat.interface) when it is not `ifname` (two-armed): the
   * program is attached there too (replies arrive there) and NAT backends are sent there through
   * the xd_tx_v1 devmap. Absent: one-armed, NAT backends behind `ifname` (XDP_TX).
   */
  natIfname?: string;
  log: Logger;
}

/** What pollTxErrors() found since the previous poll. */
export interface TxErrorCheck {
  /** Frames the program forwarded (XDP_TX or redirect verdicts) since the previous poll. */
  forwarded: number;
  /** XDP_TX errors the driver counted since the previous poll (veth: rx_queue_*_xdp_tx_errors). */
  txErrors: number;
  /** The alert text when this poll saw new XDP_TX errors. */
  alert?: string;
}

const PROG_PIN = 'prog';
/** The program attached to NAT's server-side interface (two-armed), pinned beside the first. */
const NAT_PROG_PIN = 'prog-nat';

export function defaultObjectPath(): string {
  return path.resolve(__dirname, '../../../bpf/xdirector.bpf.o');
}

export function instancePinDir(pinDir: string, instance: string): string {
  return path.join(pinDir, instance);
}

function ensureBpffs(pinDir: string): void {
  // /sys/fs/bpf may not be mounted on a new machine; and `ip netns exec` hides it.
  const root = '/sys/fs/bpf';
  if (pinDir.startsWith(root) && !fs.existsSync(root)) {
    throw new XdError(
      'XD_ERR_BPF_PIN',
      `${root} does not exist: mount bpffs (mount -t bpf bpf ${root}); inside a network namespace use nsenter --net=... rather than ip netns exec, which hides it`,
    );
  }
  if (pinDir.startsWith(root)) {
    const mounts = fs.readFileSync('/proc/self/mounts', 'utf8');
    if (!mounts.split('\n').some((l) => l.split(' ')[1] === root && l.split(' ')[2] === 'bpf')) {
      throw new XdError(
        'XD_ERR_BPF_PIN',
        `${root} is not a bpffs mount in this mount namespace: mount it (mount -t bpf bpf ${root}); inside a network namespace use nsenter --net=... rather than ip netns exec, which remounts /sys`,
      );
    }
  }
}

/** tunnelText() of a pinned tunnel entry, so an adopted model compares with the desired one. */
function tunnelEntryText(t: ReturnType<L.Maps['tun']['lookup']>): string {
  if (!t) return '';
  const encap = t.encap === L.ENCAP.gue ? 'gue' : 'ipip';
  return tunnelText({
    encap,
    source: L.addrString(t.saddr, t.family as Family),
    guePort: t.gue_port,
    ...(t.mtu ? { mtu: t.mtu } : {}),
  });
}

export class XdpDataplane implements Dataplane {
  readonly kind = 'xdp' as const;
  private model: Model;
  private lastState: DesiredState = { services: [] };
  private indexes = new Map<string, Map<string, number>>();
  /** The nonzero words of xd_vport_v1 as written (read back on adoption). */
  private vport = new Map<number, bigint>();
  private closed = false;
  private readonly flowCounter: FlowCounter;
  /** What the last successful apply() wrote (entries per kind; ring slots of all rings together). */
  lastApply: ApplyStats = { backends: 0, rings: 0, slots: 0, services: 0, deleted: 0, cleared: 0 };

  private constructor(
    private readonly o: XdpOptions,
    private readonly dir: string,
    private readonly obj: BpfObject,
    private readonly ifindex: number,
    readonly programId: number,
    private readonly maps: L.Maps,
    readonly adopted: boolean,
  ) {
    this.model = emptyModel();
    const tables = [maps.flow4, maps.flow6, maps.prb4, maps.prb6, maps.tko4, maps.tko6];
    this.flowCounter = new FlowCounter(tables as unknown as BpfMap<unknown, unknown>[], {
      idleSeconds: o.flowIdleSeconds ?? 900,
      maxAgeMs: o.flowCountsMaxAgeMs ?? 2000,
    });
  }

  /** Load (adopting pinned state when compatible), pin, attach. */
  static async open(o: XdpOptions): Promise<XdpDataplane> {
    const log = o.log;
    ensureBpffs(o.pinDir);
    const dir = instancePinDir(o.pinDir, o.instance);
    const ifc = xdp.resolveInterface(o.ifname);
    if (o.mode === 'native') o = { ...o, mode: await XdpDataplane.checkVethPeer(o) };
    const objectPath = o.objectPath ?? defaultObjectPath();
    const wantMeta = {
      layoutVersion: L.LAYOUT_VERSION,
      ringMax: o.ringMax,
      maxServices: o.maxServices,
      maxBackends: o.maxBackends,
      layoutHash: L.LAYOUT_HASH,
    };

    // 1. Decide: adopt the pinned instance, replace it cleanly, or refuse.
    let adopt = false;
    // The flow tables' hash seed (bpf/flow.h flow_seed): a new instance draws one, an adopted one
    // keeps the pinned tables' (their flows sit in the buckets that seed hashed them to).
    let flowSeed = randomFlowSeed();
    // Every directory of the pin path below the bpffs mount: real, ours, not writable by others (src/bpf/pins.ts).
    if (securePinDir(dir, { create: false })) {
      const metaPath = path.join(dir, L.MAP.meta);
      let meta: ReturnType<typeof L.readPinnedMeta>;
      if (fs.existsSync(metaPath)) {
        try {
          meta = L.readPinnedMeta(dir);
        } catch (err) {
          log.warn({ err }, `pinned meta map at ${metaPath} is unreadable: replacing the pinned instance`);
        }
      }
      if (meta && meta.layout_version === wantMeta.layoutVersion && meta.layout_hash === wantMeta.layoutHash) {
        const diff: string[] = [];
        if (meta.ring_max !== o.ringMax) diff.push(`ring size ${meta.ring_max} (config says ${o.ringMax})`);
        if (meta.max_services !== o.maxServices)
          diff.push(`max_services ${meta.max_services} (config says ${o.maxServices})`);
        if (meta.max_backends !== o.maxBackends)
          diff.push(`max_backends ${meta.max_backends} (config says ${o.maxBackends})`);
        if (diff.length) {
          throw new XdError(
            'XD_ERR_LAYOUT_MISMATCH',
            `the pinned instance at ${dir} was loaded with ${diff.join(', ')}: these limits size the maps and cannot change under running flows; fix: run xdirector stop --detach -c <config> (established flows are then re-hashed) and start again, or restore the old values`,
            { detail: { dir } },
          );
        }
        adopt = true;
        flowSeed = meta.flow_seed;
      } else {
        checkRemovable(dir); // a pin directory that cannot be removed safely is refused before anything is detached
        log.warn(
          { dir, pinned: meta ?? null, want: wantMeta },
          `pinned state at ${dir} has another layout than this build: replacing it (established flows will be re-hashed)`,
        );
        XdpDataplane.detachPinned(dir, ifc.ifindex, log);
        removePinDir(dir);
      }
    }

    // 2. Load the program; with adopt, over the pinned maps.
    const maxEntries: Record<string, number> = {
      [L.MAP.svc]: o.maxServices,
      [L.MAP.svcst]: o.maxServices,
      [L.MAP.rr]: o.maxServices,
      [L.MAP.be]: o.maxBackends,
      [L.MAP.best]: o.maxBackends,
      [L.MAP.tun]: o.maxBackends,
      [L.MAP.nbst]: o.maxBackends,
      [L.MAP.nrev4]: o.flowTableSize,
      [L.MAP.nrev6]: o.flowTableSize,
      [L.MAP.ring]: o.maxServices * 2 * o.ringMax,
      [L.MAP.flow4]: flowTableEntries(o.flowTableSize),
      [L.MAP.flow6]: flowTableEntries(o.flowTableSize),
      [L.MAP.emb4]: o.embryonicTableSize ?? DEFAULT_EMBRYONIC_TABLE_SIZE,
      [L.MAP.emb6]: o.embryonicTableSize ?? DEFAULT_EMBRYONIC_TABLE_SIZE,
      [L.MAP.tko4]: o.takeoverTableSize ?? DEFAULT_TAKEOVER_TABLE_SIZE,
      [L.MAP.tko6]: o.takeoverTableSize ?? DEFAULT_TAKEOVER_TABLE_SIZE,
      [L.MAP.prb4]: o.takeoverTableSize ?? DEFAULT_TAKEOVER_TABLE_SIZE,
      [L.MAP.prb6]: o.takeoverTableSize ?? DEFAULT_TAKEOVER_TABLE_SIZE,
      ...cpuSizedMaxEntries(),
    };
    // Forward only frames addressed to this interface (a flooded frame is the kernel's to drop).
    const selfMac = await readLinkMac(o.ifname);
    const globals = {
      ring_max: o.ringMax,
      match_dst_mac: 1,
      self_mac: L.macBytes(selfMac),
      new_flow_rate: o.newFlowRate ?? DEFAULT_NEW_FLOW_RATE,
      syn_reuse_idle_ns: BigInt(o.synReuseIdleMs ?? DEFAULT_SYN_REUSE_IDLE_MS) * 1_000_000n,
      too_big_rate: o.tooBigRate ?? DEFAULT_TOO_BIG_RATE,
      flow_seed: flowSeed,
      // Connection sync (bpf/sync.h): report flows to the ring buffer only when src/sync reads it
      // (the object's default is off).
      ...(o.syncExport ? { sync_export: 1 } : {}),
    };
    const obj = await BpfObject.load(objectPath, { maxEntries, globals, ...(adopt ? { reusePinnedDir: dir } : {}) });
    let maps: L.Maps | undefined;
    try {
      obj.pinMaps(dir);
      maps = L.openMaps(obj);
      if (!adopt)
        maps.meta.update(0, {
          layout_version: wantMeta.layoutVersion,
          ring_max: o.ringMax,
          max_services: o.maxServices,
          max_backends: o.maxBackends,
          layout_hash: wantMeta.layoutHash,
          created_ns: BigInt(Date.now()) * 1000000n,
          flow_seed: flowSeed,
          pad: 0,
        });
      const prog = obj.program();
      XdpDataplane.attachProgram(dir, ifc, prog, o.mode, log);
      // Two-armed NAT: the same program over the same maps on the server side, with that
      // interface's MAC (it forwards only frames addressed to it), and both in the devmap.
      const nat =
        o.natIfname && o.natIfname !== o.ifname
          ? await NatSide.open({
              dir,
              ifname: o.natIfname,
              mode: o.mode,
              objectPath,
              maxEntries,
              globals,
              pinName: NAT_PROG_PIN,
              attach: XdpDataplane.attachProgram,
              log,
            })
          : undefined;
      if (nat)
        maps.tx.updateBatch([
          [ifc.ifindex, ifc.ifindex],
          [nat.ifindex, nat.ifindex],
        ]);
      const dp = new XdpDataplane(o, dir, obj, ifc.ifindex, prog.id, maps, adopt);
      dp.natSide = nat;
      dp.natEgress = await XdpDataplane.natEgressOf(o, nat);
      if (adopt) {
        dp.adoptModel();
        dp.pinned = dp.pinnedFromModel();
      }
      log.info(
        { interface: o.ifname, mode: o.mode, programId: prog.id, pinDir: dir, adopted: adopt },
        adopt ? 'XDP program reloaded over the pinned maps' : 'XDP program loaded and attached',
      );
      return dp;
    } catch (err) {
      maps?.close();
      obj.close();
      // A fresh instance that never got attached leaves nothing behind (an
      // adopted one keeps its pins: the old program is still attached to them).
      if (!adopt) {
        try {
          removePinDir(dir);
        } catch (e) {
          log.warn({ err: e }, `could not remove ${dir}`);
        }
      }
      throw err;
    }
  }

  /**
   * Native XDP on a veth forwards only if the peer runs a native XDP program (see net/veth.ts).
   * Returns the mode to attach in, or throws XD_ERR_XDP_VETH_PEER with the fix.
   */
  private static async checkVethPeer(o: XdpOptions): Promise<'native' | 'generic'> {
    const peer = await vethPeer(o.ifname);
    if (!peer || peer.nativeProgId !== 0) return 'native';
    const where = `${peer.name ?? `ifindex ${peer.ifindex}`}${peer.netnsid === undefined ? '' : ` (in the network namespace with id ${peer.netnsid})`}`;
    const what = `${o.ifname} is a veth whose peer ${where} runs no native XDP program${peer.genericProgId ? ` (only a generic one, id ${peer.genericProgId})` : ''}: in native mode the veth driver drops every frame the director forwards (XDP_TX), counted as rx_queue_*_xdp_tx_errors in ethtool -S ${o.ifname}`;
    if (o.vethPeerWithoutXdp === 'generic') {
      o.log.warn(
        { interface: o.ifname, peer: peer.name, peerIfindex: peer.ifindex, peerNetnsid: peer.netnsid },
        `${what}; attaching in generic mode instead (slower; to get native mode attach an XDP program such as xdp_pass to the peer)`,
      );
      return 'generic';
    }
    throw new XdError(
      'XD_ERR_XDP_VETH_PEER',
      `attach xdp to ${o.ifname} in native mode: ${what}; fix: attach an XDP program to the peer in native mode (e.g. ip link set dev ${peer.name ?? 'PEER'} xdpdrv obj xdp_pass.bpf.o sec xdp, in its namespace), or set xdp.mode: generic`,
      { detail: { interface: o.ifname, peer: peer.name, peerIfindex: peer.ifindex, peerNetnsid: peer.netnsid } },
    );
  }

  /** Where NAT backends are sent: the server side's MAC, ifindex (0 one-armed: XDP_TX) and MTU. */
  private static async natEgressOf(o: XdpOptions, nat: NatSide | undefined): Promise<NatEgress> {
    const ifname = nat ? nat.ifname : o.ifname;
    return { smac: await readLinkMac(ifname), ifindex: nat ? nat.ifindex : 0, mtu: NatSide.mtuOf(ifname) };
  }

  /** Attach `prog`, atomically replacing this instance's previous program if it is the one attached. */
  private static attachProgram(
    dir: string,
    ifc: { ifindex: number; ifname: string },
    prog: { fd: number; id: number; name: string },
    mode: 'native' | 'generic',
    log: Logger,
    pinName = PROG_PIN,
  ): void {
    const pinPath = path.join(dir, pinName);
    const q = xdp.query(ifc.ifindex);
    let old: ReturnType<typeof openPinnedProgram> | undefined;
    if (fs.existsSync(pinPath)) {
      try {
        old = openPinnedProgram(pinPath);
      } catch {
        old = undefined;
      }
    }
    try {
      const attachedIds = [q.programs.native, q.programs.generic].filter((x) => x !== 0);
      const foreign = attachedIds.filter((id) => id !== old?.id);
      if (foreign.length > 0) {
        throw new XdError(
          'XD_ERR_XDP_ATTACH',
          `attach xdp to ${ifc.ifname}: another XDP program (id ${foreign.join(', ')}, ${q.mode} mode) is attached that this instance did not load; fix: detach it (ip link set dev ${ifc.ifname} xdp off) or use another interface`,
          { detail: { interface: ifc.ifname, programIds: foreign } },
        );
      }
      const oldMode =
        old && q.programs.native === old.id ? 'native' : old && q.programs.generic === old.id ? 'generic' : undefined;
      if (old && oldMode === mode) {
        xdp.attach(ifc.ifindex, prog, mode, { replace: { expectedFd: old.fd } });
      } else {
        if (old && oldMode) {
          log.warn(
            { from: oldMode, to: mode },
            `XDP mode changes from ${oldMode} to ${mode}: detaching the old program first (packets pass to the kernel for a moment)`,
          );
          xdp.detach(ifc.ifindex, oldMode, { expectedFd: old.fd });
        }
        xdp.attach(ifc.ifindex, prog, mode);
      }
    } finally {
      old?.close();
    }
    try {
      fs.unlinkSync(pinPath);
    } catch {
      /* not pinned yet */
    }
    getNative().objPin(prog.fd, pinPath);
  }

  private static detachPinned(dir: string, ifindex: number, log: Logger, pinName = PROG_PIN): void {
    const pinPath = path.join(dir, pinName);
    if (!fs.existsSync(pinPath)) return;
    let old: ReturnType<typeof openPinnedProgram> | undefined;
    try {
      old = openPinnedProgram(pinPath);
      const q = xdp.query(ifindex);
      if (q.programs.native === old.id) xdp.detach(ifindex, 'native', { expectedFd: old.fd });
      if (q.programs.generic === old.id) xdp.detach(ifindex, 'generic', { expectedFd: old.fd });
    } catch (err) {
      log.warn({ err }, `could not detach the program pinned at ${pinPath}`);
    } finally {
      old?.close();
    }
  }

  /**
   * The backends of each service as the pinned maps held them when this
   * instance adopted them (empty for a fresh load): what health starts from
   * after a hot restart (src/health/adopt.ts).
   */
  pinnedBackends(): PinnedBackend[] {
    return this.pinned.map((p) => ({ ...p }));
  }
  private pinned: PinnedBackend[] = [];

  private pinnedFromModel(): PinnedBackend[] {
    const byId = new Map([...this.model.services.values()].map((s) => [s.id, s.key]));
    const out: PinnedBackend[] = [];
    for (const b of this.model.backends.values()) {
      const k = byId.get(b.serviceId);
      if (!k) continue;
      const state = b.flags & L.BE_FLAG.DOWN ? 'down' : b.flags & L.BE_FLAG.DRAINING ? 'draining' : 'active';
      out.push({ vip: k.vip, port: k.port, proto: k.proto, address: b.address, state });
    }
    return out;
  }

  /** The NAT side (two-armed: the program on the server-side interface), if any. */
  private natSide?: NatSide;
  /** Where NAT backends are sent (plan.ts). */
  private natEgress?: NatEgress;
  /** The nonzero words of xd_nport_v1 as written. */
  private nport = new Map<number, bigint>();
  /** Interfaces whose forwarding sysctl NAT needed (bpf_fib_lookup refuses to route a reply arriving on an interface that does not forward). */
  private natSysctls: Record<string, string> = {};
  private natSamples = new Map<number, NatSample>();
  private natAlerts = new Map<string, string>();

  private writeNport(words: Map<number, bigint>): void {
    this.maps.nport.updateBatch([...words]);
    for (const [w, bits] of words) {
      if (bits) this.nport.set(w, bits);
      else this.nport.delete(w);
    }
  }

  /** NAT routes replies like a router: forwarding on the interface they arrive on (IPv4; IPv6 when a NAT service is IPv6). */
  private natForwarding(state: DesiredState): void {
    const ifname = this.natSide?.ifname ?? this.o.ifname;
    const v6 = state.services.some((s) => s.family === 6 && s.backends.some((b) => b.forwarding === 'nat'));
    for (const key of [`net/ipv4/conf/${ifname}/forwarding`, ...(v6 ? [`net/ipv6/conf/${ifname}/forwarding`] : [])]) {
      if (this.natSysctls[key] === '1') continue;
      NatSide.enableSysctl(key, this.o.log);
      this.natSysctls[key] = '1';
    }
  }

  /** Writes xd_vport_v1 words and remembers what the map now holds. */
  private writeVport(words: Map<number, bigint>): void {
    this.maps.vport.updateBatch([...words]);
    for (const [w, bits] of words) {
      if (bits) this.vport.set(w, bits);
      else this.vport.delete(w);
    }
  }

  /** Rebuild the model (service ids, backend indexes, generations) from the pinned maps. */
  private adoptModel(): void {
    this.vport = new Map();
    for (const [w, bits] of this.maps.vport.entries()) if (bits) this.vport.set(w, bits);
    this.nport = new Map();
    for (const [w, bits] of this.maps.nport.entries()) if (bits) this.nport.set(w, bits);
    const m = emptyModel();
    for (const [k, v] of this.maps.svc.entries()) {
      const key: SvcKey = {
        vip: L.addrString(k.vip, k.family as Family),
        port: k.port,
        proto: k.proto === 17 ? 'udp' : 'tcp',
        family: k.family as Family,
      };
      m.services.set(svcKeyString(key), {
        key,
        id: v.id,
        activeGen: (v.active_gen & 1) as 0 | 1,
        ringSize: v.ring_size,
        sched: v.sched,
        flags: v.flags,
      });
    }
    for (const [index, b] of this.maps.be.entries()) {
      if (b.generation) m.generations.set(index, b.generation);
      if (index === 0 || !(b.flags & L.BE_FLAG.ACTIVE)) continue;
      const nat = (b.flags & L.BE_FLAG.NAT) !== 0;
      m.backends.set(index, {
        index,
        serviceId: b.service,
        address: L.addrString(b.addr, b.family as Family),
        family: b.family as Family,
        mac: L.macString(b.mac),
        flags: b.flags,
        generation: b.generation,
        tunnel: b.flags & L.BE_FLAG.TUNNEL ? tunnelEntryText(this.maps.tun.lookup(index)) : '',
        ...(nat
          ? {
              nat: L.natText({
                // Decoded entries have every field (only writers may omit the nat_ ones).
                port: b.nat_port ?? 0,
                smac: L.macString(b.nat_smac ?? Buffer.alloc(6)),
                mtu: b.nat_mtu ?? 0,
                ifindex: b.ifindex,
                csum_l3: b.nat_csum_l3 ?? 0,
                csum_l4: b.nat_csum_l4 ?? 0,
              }),
              natPort: b.nat_port ?? 0,
            }
          : {}),
      });
    }
    this.model = m;
  }

  async apply(state: DesiredState): Promise<void> {
    if (this.closed) throw new XdError('XD_ERR_BPF_MAP', 'XDP dataplane is closed');
    if (this.natEgress)
      this.natEgress = { ...this.natEgress, mtu: NatSide.mtuOf(this.natSide?.ifname ?? this.o.ifname) };
    const p = plan(
      this.model,
      state,
      { maxServices: this.o.maxServices, maxBackends: this.o.maxBackends, ringMax: this.o.ringMax },
      this.natEgress,
    );
    if (state.services.some((s) => s.backends.some((b) => b.forwarding === 'nat'))) this.natForwarding(state);
    let slots = 0;
    try {
      // Ports of the new services on before any service names them (the
      // program passes a packet whose port bit is clear without a lookup).
      const wantPorts = L.vportWords([...p.next.services.values()].map((s) => s.key));
      const onPorts = new Map<number, bigint>();
      for (const [w, bits] of wantPorts) {
        const cur = this.vport.get(w) ?? 0n;
        if ((cur | bits) !== cur) onPorts.set(w, cur | bits);
      }
      if (onPorts.size) this.writeVport(onPorts);
      // NAT backends' source ports on before they take flows (their replies are looked for by it).
      const wantNport = L.nportWords(
        state.services.flatMap((s) =>
          s.backends.filter((b) => b.forwarding === 'nat').map((b) => ({ port: b.port, proto: s.proto })),
        ),
      );
      const onNport = new Map<number, bigint>();
      for (const [w, bits] of wantNport) {
        const cur = this.nport.get(w) ?? 0n;
        if ((cur | bits) !== cur) onNport.set(w, cur | bits);
      }
      if (onNport.size) this.writeNport(onNport);
      // Removed services first: their ids and backend indexes may be reused below.
      for (const k of p.serviceDeletes) {
        this.maps.svc.delete({
          vip: L.addr16(k.vip),
          port: k.port,
          proto: k.proto === 'udp' ? 17 : 6,
          family: k.family,
        });
      }
      // A backend entry given to another backend: its counters go to its old service first.
      this.retireBackendStats(p.resetBackendStats);
      // One batch per phase (a new service with 1000 backends: 3 syscalls, not 3000).
      if (p.resetServiceStats.length)
        this.maps.svcst.updateBatch(p.resetServiceStats.map((r) => [r, L.zeroServiceStats()] as const));
      if (p.resetBackendStats.length)
        this.maps.best.updateBatch(p.resetBackendStats.map((r) => [r, L.zeroBackendStats()] as const));
      // Tunnel entries before the backend entries that point packets at them.
      const tunWrites = p.backendWrites.filter((b) => b.tunnel);
      if (tunWrites.length)
        this.maps.tun.updateBatch(tunWrites.map((b) => [b.index, L.tunnelEntry(b.address, b.tunnel!)] as const));
      // A NAT backend's fields are in its backend entry (one write); a new entry's Out counters start at zero.
      if (p.resetBackendStats.length)
        this.maps.nbst.updateBatch(p.resetBackendStats.map((r) => [r, L.zeroNatStats()] as const));
      // Backends that may take new flows before the rings that name them; backends that stop
      // taking new flows after the flip, when no live ring names them (plan.ts, steps 1 and 4).
      const writeBackends = (ws: Plan['backendWrites']) => {
        if (ws.length)
          this.maps.be.updateBatch(
            ws.map(
              (b) =>
                [
                  b.index,
                  {
                    mac: L.macBytes(b.mac),
                    family: b.family,
                    flags: b.flags,
                    generation: b.generation,
                    ifindex: b.nat?.ifindex ?? 0,
                    service: b.serviceId,
                    addr: L.addr16(b.address),
                    ...L.natEntry(b.nat),
                  },
                ] as const,
            ),
          );
      };
      writeBackends(p.backendWrites.filter((b) => !b.afterFlip));
      for (const r of p.ringWrites) slots += await this.writeRing(r);
      for (const s of p.serviceWrites) {
        this.maps.svc.update(
          { vip: L.addr16(s.key.vip), port: s.key.port, proto: s.key.proto === 'udp' ? 17 : 6, family: s.key.family },
          { id: s.id, ring_size: s.ringSize, flags: s.flags, sched: s.sched, active_gen: s.activeGen },
        );
      }
      writeBackends(p.backendWrites.filter((b) => b.afterFlip));
      if (p.backendClears.length) {
        this.maps.be.updateBatch(
          p.backendClears.map(
            (c) =>
              [
                c.index,
                {
                  mac: Buffer.alloc(6),
                  family: 0,
                  flags: 0,
                  generation: c.generation,
                  ifindex: 0,
                  service: 0,
                  addr: Buffer.alloc(16),
                },
              ] as const,
          ),
        );
        // Cleared (new generation): no packet is counted on it any more.
        this.retireBackendStats(p.backendClears.map((c) => c.index));
      }
      // Ports no service has any more off, now that their services are gone.
      const offPorts = new Map<number, bigint>();
      for (const [w, cur] of this.vport) if ((wantPorts.get(w) ?? 0n) !== cur) offPorts.set(w, wantPorts.get(w) ?? 0n);
      if (offPorts.size) this.writeVport(offPorts);
      const offNport = new Map<number, bigint>();
      for (const [w, cur] of this.nport) if ((wantNport.get(w) ?? 0n) !== cur) offNport.set(w, wantNport.get(w) ?? 0n);
      if (offNport.size) this.writeNport(offNport);
    } catch (err) {
      // What was written is consistent per service (rings before the flip);
      // forget the model so the next apply rewrites everything from the maps.
      this.adoptModel();
      throw err instanceof XdError ? err : wrap('XD_ERR_BPF_MAP', 'apply desired state to the XDP maps', err);
    }
    this.model = p.next;
    this.indexes = p.indexes;
    this.lastState = state;
    this.lastApply = {
      backends: p.backendWrites.length,
      rings: p.ringWrites.length,
      slots,
      services: p.serviceWrites.length,
      deleted: p.serviceDeletes.length,
      cleared: p.backendClears.length,
    };
    this.o.log.debug(this.lastApply, 'XDP maps updated');
  }

  /**
   * The program counts a forwarded packet only on its backend entry (one
   * per-CPU counter per packet), so a service's totals are its own counters
   * plus its live backends'. When a backend entry leaves its service (cleared,
   * or reused for another backend), its counters are added to the service's,
   * and its flow hits to the tx_flow_hit reason, so neither total goes back.
   * Indexes the model does not hold (never used, or retired already) are skipped.
   */
  private retireBackendStats(indexes: readonly number[]): void {
    const bySvc = new Map<number, G.XdServiceStats>();
    let hits = 0n;
    let hitBytes = 0n;
    for (const index of indexes) {
      const owner = this.model.backends.get(index);
      if (!owner) continue;
      this.model.backends.delete(index);
      const per = this.maps.best.lookupPerCpu(index);
      if (!per) continue;
      const b = sumPerCpu(per);
      const acc = bySvc.get(owner.serviceId) ?? L.zeroServiceStats();
      acc.packets += b.packets;
      acc.bytes += b.bytes;
      acc.new_flows += b.new_flows;
      bySvc.set(owner.serviceId, acc);
      hits += b.flow_hits;
      hitBytes += b.flow_hit_bytes;
    }
    for (const [id, add] of bySvc) {
      const cur = this.maps.svcst.lookupPerCpu(id);
      if (!cur || cur.length === 0) continue;
      const first = cur[0]!;
      cur[0] = {
        packets: first.packets + add.packets,
        bytes: first.bytes + add.bytes,
        new_flows: first.new_flows + add.new_flows,
        no_backend: first.no_backend,
      };
      this.maps.svcst.updatePerCpu(id, cur);
    }
    if (hits > 0n) {
      const cur = this.maps.rsnst.lookupPerCpu(L.REASON.tx_flow_hit!);
      if (cur && cur.length > 0) {
        cur[0] = { packets: cur[0]!.packets + hits, bytes: cur[0]!.bytes + hitBytes };
        this.maps.rsnst.updatePerCpu(L.REASON.tx_flow_hit!, cur);
      }
    }
  }

  /**
   * Writes a table into the inactive generation in one batch (only the slots
   * that differ from what the generation holds when the plan knows it); the
   * service update after it is what makes it live.
   */
  private async writeRing(r: Plan['ringWrites'][number]): Promise<number> {
    const base = (r.serviceId * 2 + r.gen) * this.o.ringMax;
    let keys: Uint32Array;
    let values: Uint32Array;
    if (r.slots) {
      if (r.slots.length === 0) return 0;
      keys = new Uint32Array(r.slots.length);
      values = new Uint32Array(r.slots.length);
      for (let i = 0; i < keys.length; i++) {
        const slot = r.slots[i]!;
        keys[i] = base + slot;
        values[i] = r.ring[slot]!;
      }
    } else {
      keys = new Uint32Array(r.ring.length);
      for (let i = 0; i < keys.length; i++) keys[i] = base + i;
      values = r.ring;
    }
    return this.maps.ring.updateBatchRaw(
      Buffer.from(keys.buffer, keys.byteOffset, keys.byteLength),
      Buffer.from(values.buffer, values.byteOffset, values.byteLength),
    );
  }

  /** Is our program still the one attached (for VRRP tracking)? */
  attached(): boolean {
    try {
      return xdp.modeOf(xdp.query(this.ifindex), this.programId) !== 'detached';
    } catch {
      return false;
    }
  }

  private txPoll?: { forwarded: number; txErrors: number };
  private txAlert?: string;

  /** Frames forwarded so far (XDP_TX and redirect verdicts of every reason), from the per-CPU reason counters. */
  private forwardedTotal(): number {
    let n = 0;
    for (const [name, value] of Object.entries(L.REASON)) {
      if (!name.startsWith('tx_')) continue;
      const r = this.maps.rsnst.lookupPerCpu(value);
      if (r) n += Number(sumPerCpu(r).packets);
    }
    return n;
  }

  /** The driver's XDP TX error counters of the attached interface (undefined: the driver reports none). */
  driverTxErrors(): ({ driver: string } & ReturnType<typeof xdpTxErrors>) | undefined {
    const st = driverStats(this.o.ifname);
    return st ? { driver: st.driver, ...xdpTxErrors(st) } : undefined;
  }

  /**
   * Poll for a silent black hole at run time: did frames the program sent with XDP_TX since the
   * last poll turn into driver TX errors (a veth peer that lost its XDP program, a NIC out of TX
   * ring)? Only this interface's own XDP program produces XDP_TX errors on it, so any new one is
   * ours; xmit errors (frames other programs redirect into the interface) are shown in status
   * but raise nothing. The first poll sets the baseline. The alert is logged when it starts and
   * when a poll sees no new errors, and is shown in status().detail.txAlert while set. The daemon
   * calls this periodically.
   */
  pollTxErrors(): TxErrorCheck {
    const drv = this.driverTxErrors();
    const now = { forwarded: this.forwardedTotal(), txErrors: drv ? drv.txErrors : 0 };
    const prev = this.txPoll ?? now;
    this.txPoll = now;
    const r: TxErrorCheck = {
      forwarded: Math.max(0, now.forwarded - prev.forwarded),
      txErrors: Math.max(0, now.txErrors - prev.txErrors),
    };
    if (r.txErrors > 0) {
      r.alert = `XDP forwarding on ${this.o.ifname} is failing: the program forwarded ${r.forwarded} frames since the last check and the ${drv?.driver ?? ''} driver counted ${r.txErrors} XDP TX errors (${drv?.counters.join(', ')}); on veth the peer needs a native XDP program (e.g. xdp_pass), or use xdp.mode: generic`;
      if (!this.txAlert)
        this.o.log.error(
          { interface: this.o.ifname, forwarded: r.forwarded, txErrors: r.txErrors },
          `ALERT ${r.alert}`,
        );
      this.txAlert = r.alert;
    } else if (this.txAlert) {
      this.o.log.info(
        { interface: this.o.ifname, forwarded: r.forwarded },
        `XDP forwarding on ${this.o.ifname} recovered: no driver TX errors since the last check`,
      );
      this.txAlert = undefined;
    }
    return r;
  }

  private floodSample?: { at: number; counts: L.GuardCounts };
  private floodAlert?: string;

  /**
   * The flood alert (status().detail.floodAlert), from the guard counters' change since the
   * sample at least 2 s older (status() runs every 2 s for the rates); logged when it starts
   * and when it clears. Timed on the monotonic clock: a wall-clock step back would otherwise
   * stop the sampling (a negative interval) until the clock caught up.
   */
  private checkFlood(now: L.GuardCounts): void {
    const at = monotonicMs();
    const prev = this.floodSample;
    if (!prev) {
      this.floodSample = { at, counts: now };
      return;
    }
    const seconds = (at - prev.at) / 1000;
    if (seconds < 2) return;
    this.floodSample = { at, counts: now };
    const d = {
      embryonic: now.embryonic - prev.counts.embryonic,
      takeovers: now.takeovers - prev.counts.takeovers,
      handshakes: now.handshakes - prev.counts.handshakes,
      limited: now.limited - prev.counts.limited,
    };
    const alert = L.floodAlert(
      d,
      seconds,
      this.o.takeoverTableSize ?? DEFAULT_TAKEOVER_TABLE_SIZE,
      this.o.newFlowRate ?? DEFAULT_NEW_FLOW_RATE,
    );
    if (alert && !this.floodAlert)
      this.o.log.warn({ interface: this.o.ifname, alert: 'flood', ...d, seconds }, `ALERT ${alert}`);
    else if (!alert && this.floodAlert)
      this.o.log.info({ interface: this.o.ifname, alert: 'flood' }, 'flood guard: pressure over');
    this.floodAlert = alert;
  }

  /**
   * A NAT backend that takes new connections while no reply of its comes back through the
   * director (its SYN-ACKs never seen here) routes around the director: raise the alert naming
   * it and the fix (nat.ts natAlert); clear it once replies come back.
   */
  private checkNatReplies(
    service: string,
    b: DesiredState['services'][number]['backends'][number],
    index: number,
    newFlows: number,
    outPackets: number,
  ): void {
    const key = `${service}/${b.key}`;
    const prev = this.natSamples.get(index);
    const now: NatSample = { at: monotonicMs(), newFlows, outPackets };
    if (!prev || newFlows < prev.newFlows || outPackets < prev.outPackets) {
      this.natSamples.set(index, now);
      return;
    }
    const r = natAlert(service, b, prev, now, this.natSide?.ifname ?? this.o.ifname);
    if (r.resample) this.natSamples.set(index, now);
    if (r.alert && !this.natAlerts.has(key))
      this.o.log.error({ service, backend: b.name, alert: 'nat-replies' }, `ALERT ${r.alert}`);
    else if (r.clear && this.natAlerts.has(key))
      this.o.log.info(
        { service, backend: b.name, alert: 'nat-replies' },
        `NAT backend ${b.name}: replies come back through the director again`,
      );
    if (r.alert) this.natAlerts.set(key, r.alert);
    else if (r.clear) this.natAlerts.delete(key);
  }

  /** Resolves when the count of active flows under way (if any) is done. */
  flowCountsSettled(): Promise<unknown> {
    return this.flowCounter.settled();
  }

  /** Which backend index the live ring of a service holds at a slot (tests and debugging). */
  ringSlot(serviceName: string, slot: number): number | undefined {
    const s = this.lastState.services.find((x) => x.name === serviceName);
    if (!s) return undefined;
    const ms = this.model.services.get(svcKeyString({ vip: s.vip, port: s.port, proto: s.proto, family: s.family }));
    if (!ms) return undefined;
    return this.maps.ring.lookup((ms.id * 2 + ms.activeGen) * this.o.ringMax + slot);
  }

  backendIndex(serviceName: string, backendKey: string): number | undefined {
    return this.indexes.get(serviceName)?.get(backendKey);
  }

  /**
   * The reverse entries (bpf/nat.h) of NAT connections another dataplane carried (a switch from
   * IPVS), as sync installs a peer's: without one, a reply that comes before the client's next
   * packet is passed to the kernel, which no longer translates it (the IPVS services are gone),
   * and leaves untranslated. The client's next packet then finds no flow here and is placed by
   * the ring, the same backend on the shared ipvs-mh ring, and refreshes the entry. No route yet
   * (route_ns 0): the first reply routes it with bpf_fib_lookup(). Connections of no NAT backend
   * of ours are skipped.
   */
  adoptNatConnections(conns: readonly LiveConnection[]): number {
    if (this.closed) throw new XdError('XD_ERR_BPF_MAP', 'XDP dataplane is closed');
    // "vip|port|proto|backend|port" -> backend index, for the NAT backends of the applied state
    const nat = new Map<string, number>();
    for (const s of this.lastState.services)
      for (const b of s.backends) {
        const i = this.indexes.get(s.name)?.get(b.key);
        if (b.forwarding !== 'nat' || i === undefined) continue;
        nat.set(`${canonicalAddress(s.vip)}|${s.port}|${s.proto}|${canonicalAddress(b.address)}|${b.port}`, i);
      }
    const lastSeen = process.hrtime.bigint(); // CLOCK_MONOTONIC, as bpf_ktime_get_coarse_ns()
    const r4: [Parameters<L.Maps['nrev4']['update']>[0], Parameters<L.Maps['nrev4']['update']>[1]][] = [];
    const r6: [Parameters<L.Maps['nrev6']['update']>[0], Parameters<L.Maps['nrev6']['update']>[1]][] = [];
    for (const c of conns) {
      const i = nat.get(`${c.vip}|${c.vipPort}|${c.proto}|${c.backend}|${c.backendPort}`);
      if (i === undefined) continue;
      const vip = addressToBytes(c.vip);
      const rev = {
        vip: Buffer.concat([vip, Buffer.alloc(16 - vip.length)]),
        vport: c.vipPort,
        peer_mac: Buffer.alloc(6),
        self_mac: Buffer.alloc(6),
        ifindex: 0,
        backend: i,
        last_seen_ns: lastSeen,
        route_ns: 0n,
      };
      const proto = c.proto === 'tcp' ? 6 : 17;
      const [saddr, daddr] = [addressToBytes(c.backend), addressToBytes(c.client)];
      if (c.family === 4)
        r4.push([
          {
            saddr: saddr.readUInt32BE(0),
            daddr: daddr.readUInt32BE(0),
            sport: c.backendPort,
            dport: c.clientPort,
            proto,
          },
          rev,
        ]);
      else r6.push([{ saddr, daddr, sport: c.backendPort, dport: c.clientPort, proto, family: 6 }, rev]);
    }
    if (r4.length) this.maps.nrev4.updateBatch(r4);
    if (r6.length) this.maps.nrev6.updateBatch(r6);
    return r4.length + r6.length;
  }

  /** Packets per verdict reason (flow hits from the backend counters), without the rest of status(). */
  reasons(): Record<string, number> {
    return L.readReasons(this.maps, this.model.backends.keys());
  }

  async status(opts: { countFlows?: boolean } = {}): Promise<XdpStatus> {
    // Counted by a paced, sliced walk of the flow map in the background
    // (flow-counts.ts): never a synchronous decode of up to 1M entries here.
    // countFlows false (the rate sampling every 2 s) starts no walk: the last one's counts.
    const counts =
      opts.countFlows === false
        ? (this.flowCounter.peek() ?? new FlowCountResult(new Map(), new Map(), 0, 0, 0))
        : await this.flowCounter.get();
    if (this.closed) throw new XdError('XD_ERR_BPF_MAP', 'XDP dataplane is closed');
    const flows = new Map<number, number>();
    const closed = new Map<number, number>();
    for (const b of this.model.backends.values()) {
      flows.set(b.index, counts.active(b.index, b.generation));
      closed.set(b.index, counts.inactive(b.index, b.generation));
    }
    const services: ServiceStatus[] = [];
    for (const s of this.lastState.services) {
      const ms = this.model.services.get(svcKeyString({ vip: s.vip, port: s.port, proto: s.proto, family: s.family }));
      // Its own counters (no_backend, and what backends that left it had counted) plus its live backends'.
      const st = ms ? sumPerCpu(this.maps.svcst.lookupPerCpu(ms.id) ?? [L.zeroServiceStats()]) : L.zeroServiceStats();
      const idx = this.indexes.get(s.name) ?? new Map<string, number>();
      let outPackets = 0n;
      let outBytes = 0n;
      const backends = s.backends.map((b) => {
        const i = idx.get(b.key);
        const bs =
          i !== undefined ? sumPerCpu(this.maps.best.lookupPerCpu(i) ?? [L.zeroBackendStats()]) : L.zeroBackendStats();
        st.packets += bs.packets;
        st.bytes += bs.bytes;
        st.new_flows += bs.new_flows;
        // NAT sees both directions: Out = the replies rewritten back to VIP:port (ipvsadm --stats).
        const out =
          b.forwarding === 'nat' && i !== undefined
            ? sumPerCpu(this.maps.nbst.lookupPerCpu(i) ?? [L.zeroNatStats()])
            : undefined;
        if (out && i !== undefined) this.checkNatReplies(s.name, b, i, Number(bs.new_flows), Number(out.packets));
        if (out) {
          outPackets += out.packets;
          outBytes += out.bytes;
        }
        return {
          key: b.key,
          name: b.name,
          address: b.address,
          port: b.port,
          ...(b.mac ? { mac: b.mac } : {}),
          weight: b.weight,
          forwarding: forwardingLabel(b),
          state: i === undefined ? ('down' as const) : b.state,
          ...activeInactive(
            s.proto,
            i === undefined ? 0 : (flows.get(i) ?? 0),
            i === undefined ? 0 : (closed.get(i) ?? 0),
          ),
          packets: Number(bs.packets),
          bytes: Number(bs.bytes),
          newFlows: Number(bs.new_flows),
          ...(out ? { outPackets: Number(out.packets), outBytes: Number(out.bytes) } : {}),
        };
      });
      services.push({
        name: s.name,
        vip: s.vip,
        port: s.port,
        proto: s.proto,
        scheduler: s.scheduler,
        forwarding: serviceForwardingLabel(s.backends, 'dr'),
        packets: Number(st.packets),
        bytes: Number(st.bytes),
        newFlows: Number(st.new_flows),
        noBackend: Number(st.no_backend),
        ...(s.backends.some((b) => b.forwarding === 'nat')
          ? { outPackets: Number(outPackets), outBytes: Number(outBytes) }
          : {}),
        backends,
      });
    }
    const reasons = L.readReasons(this.maps, this.model.backends.keys());
    const flood = L.readGuard(this.maps);
    this.checkFlood(flood);
    const q = xdp.query(this.ifindex);
    let driver: ReturnType<XdpDataplane['driverTxErrors']> | { error: string };
    try {
      driver = this.driverTxErrors();
    } catch (err) {
      driver = { error: (err as Error).message };
    }
    return {
      kind: 'xdp',
      detail: {
        interface: this.o.ifname,
        mode: xdp.modeOf(q, this.programId),
        programId: this.programId,
        pinDir: this.dir,
        ...(driver ? { driverTxErrors: driver } : {}),
        ...(this.txAlert ? { txAlert: this.txAlert } : {}),
        ...(this.floodAlert ? { floodAlert: this.floodAlert } : {}),
        ...(this.natAlerts.size ? { natAlert: [...this.natAlerts.values()].join('; ') } : {}),
        ...(this.natSide ? { natInterface: { name: this.natSide.ifname, mode: this.natSide.attachedMode() } } : {}),
        ...(Object.keys(this.natSysctls).length ? { natSysctls: { ...this.natSysctls } } : {}),
        flowCounts: {
          entries: counts.entries,
          countedAt: new Date(counts.at).toISOString(),
          walkMs: Math.round(counts.tookMs),
          tables: counts.tables,
        },
      },
      services,
      reasons,
      flood: {
        embryonicCreated: flood.embryonic,
        rateLimited: flood.limited,
        takeoversCreated: flood.takeovers,
        handshakes: flood.handshakes,
      },
    };
  }

  async close(opts: { keepState?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    // A pin directory that cannot be removed safely is refused while everything is still open and attached.
    if (opts.keepState === false) checkRemovable(this.dir);
    this.closed = true;
    this.flowCounter.stop();
    if (opts.keepState === false) {
      XdpDataplane.detachPinned(this.dir, this.ifindex, this.o.log);
      if (this.natSide) XdpDataplane.detachPinned(this.dir, this.natSide.ifindex, this.o.log, NAT_PROG_PIN);
      this.natSide?.close();
      this.maps.close();
      this.obj.close();
      removePinDir(this.dir);
      this.o.log.info({ pinDir: this.dir }, 'XDP program detached and pins removed');
      return;
    }
    this.natSide?.close();
    this.maps.close();
    this.obj.close();
  }

  /** Remove a pinned instance without loading anything (stop --detach with no daemon running); natIfname: NAT's server-side interface (two-armed). */
  static detachInstance(pinDir: string, instance: string, ifname: string, log: Logger, natIfname?: string): string {
    const dir = instancePinDir(pinDir, instance);
    if (!securePinDir(dir, { create: false })) return `nothing pinned at ${dir}`;
    let ifindex: number | undefined;
    try {
      ifindex = xdp.resolveInterface(ifname).ifindex;
    } catch {
      ifindex = undefined;
    }
    checkRemovable(dir);
    if (ifindex !== undefined) XdpDataplane.detachPinned(dir, ifindex, log);
    if (natIfname && natIfname !== ifname) {
      try {
        XdpDataplane.detachPinned(dir, xdp.resolveInterface(natIfname).ifindex, log, NAT_PROG_PIN);
      } catch {
        /* the interface is gone: nothing attached to it */
      }
    }
    removePinDir(dir);
    return `detached the XDP program of ${instance} from ${ifname} and removed ${dir}`;
  }
}

/**
 * A backend's ActiveConn / InActConn as IPVS shows them: a UDP "connection" is never
 * ESTABLISHED in IPVS, so all of a UDP service's flows are inactive; a TCP flow is active until
 * its client's FIN or RST (flow-counts.ts).
 */
function activeInactive(
  proto: 'tcp' | 'udp',
  open: number,
  closed: number,
): { activeFlows: number; inactiveFlows: number } {
  return proto === 'udp'
    ? { activeFlows: 0, inactiveFlows: open + closed }
    : { activeFlows: open, inactiveFlows: closed };
}
