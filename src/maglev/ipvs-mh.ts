// The exact lookup table and flow hash of the Linux kernel's IPVS `mh` (Maglev hashing)
// scheduler, net/netfilter/ipvs/ip_vs_mh.c, so that an XDP ring built here sends every
// flow to the same real server IPVS would, and switching XDP <-> IPVS moves no flow.
//
// What the kernel does, and this module reproduces:
// - Table size IP_VS_MH_TAB_SIZE = primes[CONFIG_IP_VS_MH_TAB_INDEX - 8] from
//   {251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071}; Debian sets index 12
//   -> 4093. IP_VS_MH_TAB_BITS = CONFIG_IP_VS_MH_TAB_INDEX / 2 (6 on Debian) bounds the turns.
// - Keys: hash1 = {2654435761, 2654435761} (offset and flow lookup), hash2 =
//   {2654446892, 2654446892} (skip); fixed, so every director builds the same table.
// - ip_vs_mh_hashkey(af, addr, port, key, offset) = hsiphash(&v, 4, key) with
//   v = offset + ntohs(port) + ntohl(addr_fold) (u32 wrap-around), addr_fold = the IPv4
//   address, or the XOR of the four 32-bit words of an IPv6 address. On 64-bit kernels
//   hsiphash is SipHash-1-3 truncated to 32 bits (lib/siphash.c).
// - Destination i: offset = hashkey(svc af, dest addr, dest port, hash1, 0) % M,
//   skip = hashkey(..., hash2, 0) % (M - 1) + 1 (ip_vs_mh_permutate).
// - Weights: gcd of the positive last weights; rshift = max(0, fls(max / gcd) - TAB_BITS);
//   turns = ((last_weight / gcd) >> rshift) or, if that is 0, (last_weight != 0).
//   A destination with 0 turns takes no slot.
// - ip_vs_mh_populate: rounds over the destination list; in each round a destination
//   claims `turns` slots in a row, each its next free preferred slot, until the table is full.
// - The destination list order: ip_vs_ctl.c inserts a new destination at the HEAD of
//   svc->destinations (list_add_rcu), so the list is in reverse order of creation, and a
//   destination deleted and added again (even back from the trash) goes to the head again.
//   Callers must pass `dests` in the kernel's list order, best read back from an IPVS
//   destination dump (IPVS_CMD_GET_DEST returns them in list order), not config order.
//   (`ipvsadm -Ln` sorts by address; `ipvsadm -Ln --nosort` shows the list order.)
// Checked against the real thing: Debian's 6.1.0-56-amd64 kernel in the project VM chose the
// same destination for every recorded client port (test/maglev/ipvs-mh.test.ts KERNEL_PICKS),
// including ports that only the head-inserted order predicts, and after a drain to weight 0.
// - last_weight: __ip_vs_update_dest keeps the latest NON-ZERO weight in last_weight
//   ("if (add || udest->weight != 0)"), and the table is built from last_weight. A
//   destination edited to weight 0 (drained) keeps its slots; lookups that land on it find
//   it unavailable (weight <= 0 or overloaded) and get no destination, or, with
//   mh-fallback, the next available one (ip_vs_mh_get_fallback). A destination added with
//   weight 0 has last_weight 0 and no slots. Pass `lastWeight` to reproduce that.
// Pure: no I/O.

import { XdError } from '../errors';
import { parseAddress } from '../net/inet';
import type { Family } from '../state/types';
import { hsiphash1u32, sipKeyWords, SipKeyWords } from './siphash';

/** The kernel's table sizes, indexed by CONFIG_IP_VS_MH_TAB_INDEX - 8. */
export const IPVS_MH_PRIMES: readonly number[] = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071];
/** Debian's CONFIG_IP_VS_MH_TAB_INDEX (also the kernel's default). */
export const IPVS_MH_DEFAULT_TAB_INDEX = 12;
/** IP_VS_MH_TAB_SIZE for the default index: 4093. */
export const IPVS_MH_DEFAULT_SIZE = 4093;

/** hsiphash keys of ip_vs_mh.c generate_hash_secret(): hash1 (offset, lookup) and hash2 (skip). */
export const IPVS_MH_KEY1: SipKeyWords = sipKeyWords({ k0: 2654435761n, k1: 2654435761n });
export const IPVS_MH_KEY2: SipKeyWords = sipKeyWords({ k0: 2654446892n, k1: 2654446892n });

export interface IpvsMhDest {
  /** Value written to the destination's slots (BPF backend index, >= 1). */
  id: number;
  address: string;
  port: number;
  family: Family;
  /** The destination's current weight (used by ipvsMhLookup's availability test). */
  weight: number;
  /** The kernel's last_weight (latest non-zero weight); defaults to `weight`. The table is built from it. */
  lastWeight?: number;
  /** IP_VS_DEST_F_OVERLOAD (upper threshold reached): unavailable for lookups. */
  overloaded?: boolean;
}

function ringError(msg: string, detail: Record<string, unknown> = {}): XdError {
  return new XdError('XD_ERR_RING', `ipvs-mh: ${msg}`, { detail });
}

/** ntohl(addr_fold): the IPv4 address, or the XOR of the four IPv6 words, as a host integer. */
export function ipvsMhAddrFold(address: string, family: Family): number {
  const a = parseAddress(address);
  if (!a) throw ringError(`${JSON.stringify(address)} is not an IPv4 or IPv6 address`);
  if (a.family !== family) throw ringError(`${address} is not an IPv${family} address`);
  let fold = 0;
  for (const w of a.words) fold = (fold ^ w) >>> 0;
  return fold;
}

/**
 * ip_vs_mh_hashkey(): hsiphash of (offset + port + addr_fold) mod 2^32 under `key`.
 * `port` is the host-order port number (what ntohs() returns); pass 0 for "no port".
 */
export function ipvsMhHashKey(address: string, port: number, family: Family, key: SipKeyWords, offset = 0): number {
  const fold = ipvsMhAddrFold(address, family);
  return hsiphash1u32((offset + (port & 0xffff) + fold) >>> 0, key);
}

/**
 * The kernel's flow hash for a client: ip_vs_mh_hashkey(af, client addr, port, hash1, 0),
 * with the client port when the service has mh-port (IP_VS_SVC_F_SCHED_MH_PORT), else 0.
 * The slot is `ipvsMhHash(...) % size`.
 */
export function ipvsMhHash(address: string, port: number, family: Family, withPort: boolean): number {
  return ipvsMhHashKey(address, withPort ? port : 0, family, IPVS_MH_KEY1, 0);
}

/** A destination's preference-list start and step for table size `size` (ip_vs_mh_permutate). */
export function ipvsMhPermutation(
  address: string,
  port: number,
  family: Family,
  size = IPVS_MH_DEFAULT_SIZE,
): { offset: number; skip: number } {
  return {
    offset: ipvsMhHashKey(address, port, family, IPVS_MH_KEY1, 0) % size,
    skip: (ipvsMhHashKey(address, port, family, IPVS_MH_KEY2, 0) % (size - 1)) + 1,
  };
}

/** CONFIG_IP_VS_MH_TAB_INDEX for a table size; throws unless it is one of the kernel's sizes. */
export function ipvsMhTabIndex(size: number): number {
  const i = IPVS_MH_PRIMES.indexOf(size);
  if (i < 0) {
    throw ringError(
      `table size ${size} is not one the kernel can have: CONFIG_IP_VS_MH_TAB_INDEX 8..17 gives ${IPVS_MH_PRIMES.join(', ')} (Debian: ${IPVS_MH_DEFAULT_SIZE})`,
      { size },
    );
  }
  return i + 8;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** fls(): position of the most significant set bit, 1-based; 0 for 0. */
function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

/** The turns each destination gets per round (ip_vs_mh_gcd_weight/shift_weight/permutate). */
export function ipvsMhTurns(lastWeights: readonly number[], size = IPVS_MH_DEFAULT_SIZE): number[] {
  const tabBits = Math.floor(ipvsMhTabIndex(size) / 2);
  let g = 0;
  let max = 0;
  for (const w of lastWeights) {
    if (w > 0) g = g > 0 ? gcd(w, g) : w;
    if (w > max) max = w;
  }
  if (g < 1) return lastWeights.map(() => 0);
  const shift = Math.max(0, fls(Math.trunc(max / g)) - tabBits);
  return lastWeights.map((w) => Math.trunc(w / g) >> shift || (w !== 0 ? 1 : 0));
}

/**
 * Build the table the kernel's mh scheduler builds for a service whose destination list
 * is `dests` (in the kernel's list order: newest first). Values are the dests' ids; all
 * zeros when no destination has a positive (last) weight.
 */
export function buildIpvsMh(dests: readonly IpvsMhDest[], size = IPVS_MH_DEFAULT_SIZE): Uint32Array {
  ipvsMhTabIndex(size);
  if (dests.length > size)
    throw ringError(`${dests.length} destinations do not fit a table of ${size} (the kernel refuses with EINVAL)`);
  const family = dests[0]?.family;
  const ids = new Set<number>();
  for (const d of dests) {
    if (!Number.isInteger(d.id) || d.id < 1 || d.id > 0xffffffff)
      throw ringError(`destination ${d.address}:${d.port}: id must be an integer from 1 to 4294967295, got ${d.id}`);
    if (ids.has(d.id)) throw ringError(`destination ${d.address}:${d.port}: id ${d.id} is given twice`);
    ids.add(d.id);
    if (d.family !== family)
      throw ringError(
        `destination ${d.address}:${d.port}: all destinations of a DR service share its address family (IPv${family})`,
      );
    if (!Number.isInteger(d.port) || d.port < 0 || d.port > 65535)
      throw ringError(`destination ${d.address}: port must be 0..65535, got ${d.port}`);
    const lw = d.lastWeight ?? d.weight;
    if (!Number.isInteger(lw) || lw < 0 || lw > 0x7fffffff)
      throw ringError(`destination ${d.address}:${d.port}: weight must be an integer from 0 to 2147483647, got ${lw}`);
  }
  const table = new Uint32Array(size);
  const n = dests.length;
  const turns = ipvsMhTurns(
    dests.map((d) => d.lastWeight ?? d.weight),
    size,
  );
  if (!turns.some((t) => t > 0)) return table;

  const perm = new Uint32Array(n);
  const skip = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const d = dests[i]!;
    const p = ipvsMhPermutation(d.address, d.port, d.family, size);
    perm[i] = p.offset;
    skip[i] = p.skip;
  }
  const taken = new Uint8Array(size);
  let filled = 0;
  // ip_vs_mh_populate, step by step: i walks the list; dt counts the turns used in this round.
  for (;;) {
    let dt = 0;
    for (let i = 0; i < n;) {
      if (turns[i]! < 1) {
        i++;
        continue;
      }
      let c = perm[i]!;
      while (taken[c]) {
        perm[i] += skip[i]!;
        if (perm[i]! >= size) perm[i] -= size;
        c = perm[i]!;
      }
      taken[c] = 1;
      table[c] = dests[i]!.id;
      if (++filled === size) return table;
      if (++dt >= turns[i]!) {
        dt = 0;
        i++;
      }
    }
  }
}

/** IPVS's is_unavailable(): weight <= 0 or overloaded. */
function unavailable(d: IpvsMhDest | undefined): boolean {
  return !d || d.weight <= 0 || d.overloaded === true;
}

/**
 * The destination the kernel's mh scheduler picks for a new connection from `client`:
 * ip_vs_mh_get (no fallback) or ip_vs_mh_get_fallback (service flag mh-fallback, 0x08).
 * `withPort` is the mh-port flag (0x10). Returns undefined when IPVS would find none.
 */
export function ipvsMhLookup(
  table: Uint32Array,
  dests: readonly IpvsMhDest[],
  client: { address: string; port: number; family: Family },
  opts: { withPort: boolean; fallback?: boolean },
): IpvsMhDest | undefined {
  const size = table.length;
  const byId = new Map<number, IpvsMhDest>();
  for (const d of dests) byId.set(d.id, d);
  const port = opts.withPort ? client.port : 0;
  const ihash = ipvsMhHashKey(client.address, port, client.family, IPVS_MH_KEY1, 0) % size;
  const first = table[ihash] ? byId.get(table[ihash]!) : undefined;
  if (!first) return undefined;
  if (!unavailable(first)) return first;
  if (!opts.fallback) return undefined;
  for (let offset = 0; offset < size; offset++) {
    const roffset = (offset + ihash) % size;
    const h = ipvsMhHashKey(client.address, port, client.family, IPVS_MH_KEY1, roffset) % size;
    const d = table[h] ? byId.get(table[h]!) : undefined;
    if (!d) return undefined;
    if (!unavailable(d)) return d;
  }
  return undefined;
}
