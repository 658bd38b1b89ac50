// Pure planning for the XDP dataplane: from what the maps hold now (the model)
// and the desired state, work out the map writes, in an order that never lets
// a packet see a half-written state:
//   0. deletions of removed services (their VIPs pass to the kernel from now),
//   1. backend entries that may take new flows after this apply (new ones are
//      referenced by nothing yet; an undrained or recovered one is named by
//      the new ring only),
//   2. rings, into the inactive generation (only the slots that differ from
//      what that generation is known to hold; all of them when unknown),
//   3. service values (one update flips the live generation),
//   4. backend entries that stop taking new flows (drained, weight 0, down,
//      maint: `afterFlip`): until the flip the live ring still names them,
//      and a SYN whose slot names a backend already flagged would find no
//      usable backend and be passed to the kernel, which answers RST where the
//      VIP is local (issue 20 item 4); after the flip no ring names them,
//   5. clearing backend entries nobody references any more.
// Ids and indexes that the live maps still use (removed services, removed
// backends: the live ring names them until the flip) are not handed to new
// services or backends in the same apply while others are free; at the limit
// they are, and a reused backend index then gets a newer generation instead of
// a clear, so flows of the removed backend re-hash.
// Each service has its own backend entries (index per service × real server), so
// drain/down/pool state is per service and stats read like ipvsadm's.
import { createHash } from 'node:crypto';
import type { DesiredService, DesiredState, Family, Scheduler, RingKind, TunnelSpec } from '../../state/types';
import { buildMaglev } from '../../maglev';
import { buildIpvsMh } from '../../maglev';
import { XdError } from '../../errors';
import { hostPort } from '../../net/inet';
import { takesNewFlows } from '../../state/backend';
import { SCHED, SVC_FLAG, BE_FLAG } from './constants';
import { natText, type NatSpec } from './layout';

export interface SvcKey {
  vip: string;
  port: number;
  proto: 'tcp' | 'udp';
  family: Family;
}

export interface ModelService {
  key: SvcKey;
  id: number;
  activeGen: 0 | 1;
  ringSize: number;
  sched: number;
  flags: number;
  /** Digest of what the live ring was built from; undefined after adoption (unknown: rewrite once). */
  ringDigest?: string;
  /**
   * What each generation's slots [0, ring length) hold, as last written by
   * this process; undefined = unknown (after adoption or a failed apply), so
   * the next write to that generation is a full one.
   */
  rings?: [Uint32Array | undefined, Uint32Array | undefined];
}

export interface ModelBackend {
  index: number;
  serviceId: number;
  address: string;
  family: Family;
  mac: string;
  flags: number;
  generation: number;
  /** tunnelText() of its xd_tun_v1 entry ('' for DR). */
  tunnel?: string;
  /** natText() of its NAT fields (in its xd_be_v2 entry) and egress ('' unless NAT). */
  nat?: string;
  /** A NAT backend's own port (NAT lets one address serve a service on several ports). */
  natPort?: number;
}

export interface Model {
  services: Map<string, ModelService>; // by svcKeyString
  backends: Map<number, ModelBackend>; // by index (flags & ACTIVE)
  /** Last generation used per index, including cleared ones, so a reused index gets a new generation. */
  generations: Map<number, number>;
}

export interface Limits {
  maxServices: number;
  maxBackends: number;
  ringMax: number;
}

/** Where NAT backends are reached: the director's MAC and ifindex on that interface (0: the receiving one, XDP_TX), its MTU. */
export interface NatEgress {
  smac: string;
  ifindex: number;
  mtu: number;
}

export interface BackendWrite {
  index: number;
  serviceId: number;
  address: string;
  family: Family;
  mac: string;
  flags: number;
  generation: number;
  tunnel?: TunnelSpec;
  nat?: NatSpec;
  /** Written after the service flip (step 4 above): the backend stops taking new flows. */
  afterFlip?: true;
}

/** Flags of a backend that may take new flows (the program's be_usable()). */
export function usableFlags(flags: number): boolean {
  return (flags & (BE_FLAG.ACTIVE | BE_FLAG.DRAINING | BE_FLAG.DOWN)) === BE_FLAG.ACTIVE;
}

/** What a tunnel entry holds, as one comparable string ('' = DR, no entry needed). */
export function tunnelText(t: TunnelSpec | undefined): string {
  return t ? `${t.encap}/${t.source}/${t.encap === 'gue' ? t.guePort : 0}/${t.mtu ?? 0}` : '';
}
export interface Plan {
  backendWrites: BackendWrite[];
  /**
   * ring: the whole new table; slots: the slot numbers whose value differs from
   * what generation `gen` holds (ascending), or undefined to write every slot.
   */
  ringWrites: { serviceId: number; gen: 0 | 1; ring: Uint32Array; slots?: Uint32Array }[];
  serviceWrites: { key: SvcKey; id: number; ringSize: number; flags: number; sched: number; activeGen: 0 | 1 }[];
  serviceDeletes: SvcKey[];
  backendClears: { index: number; generation: number }[];
  resetServiceStats: number[];
  resetBackendStats: number[];
  next: Model;
  /** backend key per service name -> index (for status). */
  indexes: Map<string, Map<string, number>>;
}

export function emptyModel(): Model {
  return { services: new Map(), backends: new Map(), generations: new Map() };
}

export function svcKeyString(k: SvcKey): string {
  return `${k.proto}/${hostPort(k.vip, k.port)}`;
}

export function schedFor(scheduler: Scheduler, ring: RingKind): number {
  if (ring === 'ipvs-mh') {
    if (scheduler === 'maglev' || scheduler === 'lc') return SCHED.IPVS_MH;
    if (scheduler === 'sh') return SCHED.IPVS_MH_NOPORT;
  }
  switch (scheduler) {
    case 'maglev':
    case 'lc':
      return SCHED.MAGLEV;
    case 'sh':
      return SCHED.SH;
    case 'wrr':
    case 'rr':
      return SCHED.SEQ;
  }
}

function backendFlags(b: DesiredService['backends'][number]): number {
  const tunnel = b.forwarding === 'tunnel' && b.tunnel ? BE_FLAG.TUNNEL : b.forwarding === 'nat' ? BE_FLAG.NAT : 0;
  // maint is down to the program: no new flows, and established flows re-hash away from it.
  if (b.state === 'down' || b.state === 'maint') return BE_FLAG.ACTIVE | BE_FLAG.DOWN | tunnel;
  if (b.state === 'draining' || b.weight === 0) return BE_FLAG.ACTIVE | BE_FLAG.DRAINING | tunnel;
  return BE_FLAG.ACTIVE | tunnel;
}

type DesiredBackend = DesiredService['backends'][number];
/** A backend the ring gives slots to, with the weight its slots are built from. */
interface LiveBackend {
  b: DesiredBackend;
  weight: number;
}

/**
 * Which backends take slots, and with what weight.
 * - Maglev / SEQ rings: active backends with weight > 0, at that weight (rr: 1).
 * - ipvs-mh rings with an IPVS_MH scheduler: also drained backends (state
 *   'draining', or active at weight 0), at their configured weight: the
 *   kernel's mh builds its table from each destination's last non-zero weight
 *   (last_weight), so a dest edited to weight 0 keeps its slots, and with
 *   mh-fallback a new flow landing on it walks on (ip_vs_mh_get_fallback; the
 *   XDP program does the same walk). Down backends are removed on the IPVS
 *   side and stay out here. A drained backend without configWeight, or with
 *   configured weight 0, has last_weight 0 and no slots. With no usable
 *   backend at all the ring is empty (see below).
 */
function ringBackends(s: DesiredService): LiveBackend[] {
  const sched = schedFor(s.scheduler, s.ring.kind);
  const keepDrained = s.ring.kind === 'ipvs-mh' && (sched === SCHED.IPVS_MH || sched === SCHED.IPVS_MH_NOPORT);
  const out: LiveBackend[] = [];
  let usable = 0;
  for (const b of s.backends) {
    if (!b.mac || b.state === 'down' || b.state === 'maint') continue;
    if (takesNewFlows(b)) {
      out.push({ b, weight: s.scheduler === 'rr' ? 1 : b.weight });
      usable++;
    } else if (keepDrained && (b.configWeight ?? 0) > 0) {
      out.push({ b, weight: b.configWeight! });
    }
  }
  // Every backend drained: the kernel's walk visits all `size` slots and finds
  // none; so would the program's, ~50 us per new-flow packet at 4093 slots.
  // An empty ring gives the same answer (no backend) at once; established
  // flows are in the flow table either way.
  return usable > 0 ? out : [];
}

function ringInputs(
  s: DesiredService,
  idx: Map<string, number>,
  ringMax: number,
): { live: LiveBackend[]; digest: string } {
  const live = ringBackends(s);
  const size = s.ring.size;
  if (size > ringMax) {
    throw new XdError(
      'XD_ERR_CAPACITY',
      `service ${s.name}: ring size ${size} is larger than the loaded ring_max ${ringMax}: restart with xdp.ring_size >= ${size} (xdirector stop --detach, then run)`,
    );
  }
  // Everything the table is a function of, in one string (cheaper than
  // building the table to compare it: ~0.3 ms for 1000 backends vs ~10 ms).
  let text = `${s.ring.kind}/${size}/${s.scheduler}`;
  for (const { b, weight } of live) text += `|${b.key},${weight},${idx.get(b.key)}`;
  return { live, digest: createHash('sha256').update(text).digest('hex') };
}

/** Build the ring a service should have. Values are backend indexes; 0 = none. */
export function buildRing(
  s: DesiredService,
  idx: Map<string, number>,
  ringMax: number,
): { ring: Uint32Array; digest: string } {
  const { live, digest } = ringInputs(s, idx, ringMax);
  return { ring: buildRingOf(s, live, idx), digest };
}

function buildRingOf(s: DesiredService, live: LiveBackend[], idx: Map<string, number>): Uint32Array {
  const size = s.ring.size;
  let ring: Uint32Array;
  if (s.ring.kind === 'ipvs-mh') {
    // The kernel's mh walks its destination list, where each new destination is
    // inserted at the head: an IPVS service programmed in config order holds
    // them in reverse. Build the same table (see src/maglev/ipvs-mh.ts).
    const dests = live
      .map(({ b, weight }) => ({ id: idx.get(b.key)!, address: b.address, port: b.port, family: b.family, weight }))
      .reverse();
    ring = buildIpvsMh(dests, size);
  } else {
    ring = buildMaglev(
      live.map(({ b, weight }) => ({ id: idx.get(b.key)!, key: b.key, weight })),
      size,
    );
  }
  return ring;
}

/** Slot numbers where `ring` differs from `held` (what a generation holds), or undefined when that is unknown. */
export function diffSlots(ring: Uint32Array, held: Uint32Array | undefined): Uint32Array | undefined {
  if (!held || held.length !== ring.length) return undefined;
  let n = 0;
  for (let i = 0; i < ring.length; i++) if (ring[i] !== held[i]) n++;
  const out = new Uint32Array(n);
  for (let i = 0, j = 0; i < ring.length; i++) if (ring[i] !== held[i]) out[j++] = i;
  return out;
}

/** The key a backend entry keeps its index by: its service and address (and port, for NAT). */
function ownerKey(serviceId: number, address: string, natPort: number | undefined): string {
  return natPort === undefined ? `${serviceId}/${address}` : `${serviceId}/${address}/${natPort}`;
}

/** A NAT backend's NAT fields (in its xd_be_v2 entry): its port, the egress side, its path MTU (else the egress interface's). */
function natSpecOf(
  s: DesiredService,
  b: DesiredService['backends'][number],
  egress: NatEgress | undefined,
): NatSpec | undefined {
  if (b.forwarding !== 'nat') return undefined;
  if (!egress)
    throw new XdError(
      'XD_ERR_CONFIG_INVALID',
      `backend ${b.name} forwards with nat but the XDP dataplane was opened without a NAT egress interface`,
    );
  return {
    address: b.address,
    port: b.port,
    vip: s.vip,
    vport: s.port,
    smac: egress.smac,
    ifindex: egress.ifindex,
    mtu: b.natMtu ?? egress.mtu,
  };
}

export function plan(model: Model, desired: DesiredState, limits: Limits, natEgress?: NatEgress): Plan {
  const p: Plan = {
    backendWrites: [],
    ringWrites: [],
    serviceWrites: [],
    serviceDeletes: [],
    backendClears: [],
    resetServiceStats: [],
    resetBackendStats: [],
    next: { services: new Map(), backends: new Map(), generations: new Map(model.generations) },
    indexes: new Map(),
  };
  // Service ids: keep existing ones, allocate the lowest free for new services.
  const wanted = new Map<string, DesiredService>();
  for (const s of desired.services)
    wanted.set(svcKeyString({ vip: s.vip, port: s.port, proto: s.proto, family: s.family }), s);
  const usedIds = new Set<number>();
  const freeingIds = new Set<number>();
  for (const [k, ms] of model.services) (wanted.has(k) ? usedIds : freeingIds).add(ms.id);
  let nextId = 0;
  const allocId = () => {
    while (usedIds.has(nextId) || freeingIds.has(nextId)) nextId++;
    let id = nextId;
    if (id >= limits.maxServices) {
      // Full: take an id being freed (its service is deleted before any ring is written).
      id = [...freeingIds].filter((x) => !usedIds.has(x)).sort((x, y) => x - y)[0] ?? limits.maxServices;
      if (id >= limits.maxServices) {
        throw new XdError(
          'XD_ERR_CAPACITY',
          `${wanted.size} services do not fit xdp.max_services ${limits.maxServices}: raise it (restart with stop --detach)`,
        );
      }
    }
    usedIds.add(id);
    return id;
  };
  // Backend indexes: existing (serviceId, address) entries keep theirs.
  const byOwner = new Map<string, ModelBackend>();
  for (const b of model.backends.values()) byOwner.set(ownerKey(b.serviceId, b.address, b.natPort), b);
  const usedIdx = new Set<number>([0]);
  const keepIdx = new Set<number>();
  const svcIdOf = new Map<string, number>();
  for (const [k, s] of wanted) {
    const id = model.services.get(k)?.id ?? allocId();
    svcIdOf.set(k, id);
    if (!model.services.has(k)) p.resetServiceStats.push(id);
    for (const b of s.backends) {
      if (!b.mac) continue;
      const old = byOwner.get(ownerKey(id, b.address, b.forwarding === 'nat' ? b.port : undefined));
      if (old) {
        usedIdx.add(old.index);
        keepIdx.add(old.index);
      }
    }
  }
  const freeingIdx = new Set<number>();
  for (const b of model.backends.values()) if (!keepIdx.has(b.index)) freeingIdx.add(b.index);
  let nextIdx = 1;
  const allocIdx = () => {
    while (usedIdx.has(nextIdx) || freeingIdx.has(nextIdx)) nextIdx++;
    let index = nextIdx;
    if (index >= limits.maxBackends) {
      // Full: reuse an index being freed; its write below carries a newer generation.
      index = [...freeingIdx].filter((x) => !usedIdx.has(x)).sort((x, y) => x - y)[0] ?? limits.maxBackends;
      if (index >= limits.maxBackends) {
        throw new XdError(
          'XD_ERR_CAPACITY',
          `backends do not fit xdp.max_backends ${limits.maxBackends} (index 0 is reserved): raise it (restart with stop --detach)`,
        );
      }
    }
    usedIdx.add(index);
    return index;
  };

  for (const [k, s] of wanted) {
    const id = svcIdOf.get(k)!;
    const idx = new Map<string, number>();
    for (const b of s.backends) {
      if (!b.mac) continue; // unresolved: left out (the daemon reports it)
      const natPort = b.forwarding === 'nat' ? b.port : undefined;
      const old = byOwner.get(ownerKey(id, b.address, natPort));
      const flags = backendFlags(b);
      const tun = flags & BE_FLAG.TUNNEL ? b.tunnel : undefined;
      const tunText = tunnelText(tun);
      const nat = natSpecOf(s, b, natEgress);
      const natTxt = natText(nat);
      let index: number;
      let generation: number;
      if (old) {
        index = old.index;
        generation = old.generation;
        // A new MAC for the same address is a new real server behind it: flows re-hash.
        // (For a tunnel backend the MAC is the next hop's: a new router is the same real server.)
        if (old.mac !== b.mac && !(flags & BE_FLAG.TUNNEL && old.flags & BE_FLAG.TUNNEL))
          generation = (generation + 1) >>> 0;
        if (old.flags !== flags || old.mac !== b.mac || (old.tunnel ?? '') !== tunText || (old.nat ?? '') !== natTxt) {
          p.backendWrites.push({
            index,
            serviceId: id,
            address: b.address,
            family: b.family,
            mac: b.mac,
            flags,
            generation,
            ...(tun ? { tunnel: tun } : {}),
            ...(nat ? { nat } : {}),
            ...(usableFlags(flags) ? {} : { afterFlip: true as const }),
          });
        }
      } else {
        index = allocIdx();
        generation = ((p.next.generations.get(index) ?? 0) + 1) >>> 0;
        p.backendWrites.push({
          index,
          serviceId: id,
          address: b.address,
          family: b.family,
          mac: b.mac,
          flags,
          generation,
          ...(tun ? { tunnel: tun } : {}),
          ...(nat ? { nat } : {}),
        });
        p.resetBackendStats.push(index);
      }
      p.next.generations.set(index, generation);
      p.next.backends.set(index, {
        index,
        serviceId: id,
        address: b.address,
        family: b.family,
        mac: b.mac,
        flags,
        generation,
        tunnel: tunText,
        ...(nat ? { nat: natTxt, natPort: nat.port } : {}),
      });
      idx.set(b.key, index);
    }
    p.indexes.set(s.name, idx);
    const { live, digest } = ringInputs(s, idx, limits.ringMax);
    const old = model.services.get(k);
    const sched = schedFor(s.scheduler, s.ring.kind);
    const flags = s.onEmpty === 'drop' ? SVC_FLAG.EMPTY_DROP : 0;
    let activeGen: 0 | 1 = old?.activeGen ?? 0;
    const ringChanged = !old || old.ringDigest !== digest || old.ringSize !== s.ring.size;
    const rings: [Uint32Array | undefined, Uint32Array | undefined] = old?.rings
      ? [old.rings[0], old.rings[1]]
      : [undefined, undefined];
    if (ringChanged) {
      // The table is built only when what it is built from changed.
      const ring = buildRingOf(s, live, idx);
      const gen: 0 | 1 = old ? (old.activeGen === 0 ? 1 : 0) : 0;
      const slots = diffSlots(ring, rings[gen]);
      p.ringWrites.push(slots ? { serviceId: id, gen, ring, slots } : { serviceId: id, gen, ring });
      rings[gen] = ring;
      activeGen = gen;
    }
    if (ringChanged || !old || old.sched !== sched || old.flags !== flags) {
      p.serviceWrites.push({
        key: { vip: s.vip, port: s.port, proto: s.proto, family: s.family },
        id,
        ringSize: s.ring.size,
        flags,
        sched,
        activeGen,
      });
    }
    p.next.services.set(k, {
      key: { vip: s.vip, port: s.port, proto: s.proto, family: s.family },
      id,
      activeGen,
      ringSize: s.ring.size,
      sched,
      flags,
      ringDigest: digest,
      rings,
    });
  }
  for (const [k, ms] of model.services) if (!wanted.has(k)) p.serviceDeletes.push(ms.key);
  for (const b of model.backends.values()) {
    if (usedIdx.has(b.index)) continue; // kept, or reused above with a newer generation
    const generation = (b.generation + 1) >>> 0;
    p.backendClears.push({ index: b.index, generation });
    p.next.generations.set(b.index, generation);
  }
  return p;
}
