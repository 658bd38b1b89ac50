// flowtable.ts: user space's side of the flow tables (xd_flow4_v3 / xd_flow6_v3, bpf/maps.h):
// arrays used as set-associative hash tables, XD_FLOW_WAYS entries a bucket. A key is found by
// hashing it exactly as the program does (bpf/flow.h ft4_hash()) and reading its bucket's entries,
// comparing the whole key, with the instance's seed; test/bpf/datapath.test.ts proves the two hashes agree.
//
//   const t = FlowTable.v4(openPinnedXdMap(dir, 'flow4'), meta.flow_seed);
//   t.lookup({ saddr, daddr, sport, dport, proto }); // XdFlow | undefined
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { BpfMap } from './map';
import { getNative } from './native';
import { wrap } from '../errors';
import { raw, u32, type Codec } from './codec';
import type { XdMap } from './maps';
import {
  DEFINES,
  xdFlow4KeyCodec,
  xdFlowCodec,
  xdFlowKeyCodec,
  type XdFlow,
  type XdFlow4Key,
  type XdFlowKey,
} from './layouts.generated';

/** Entries per bucket (XD_FLOW_WAYS). */
export const FLOW_WAYS: number = DEFINES.XD_FLOW_WAYS;

/**
 * max_entries of a flow table meant to hold `flows` flows: a power of two of buckets of
 * FLOW_WAYS entries, at least one bucket per flow (the program masks the hash by the bucket
 * count). So `flows` random flows fill at most half the entries: with FLOW_WAYS = 2 and a
 * bucket's flows Poisson-distributed (mean flows / buckets <= 1), at most e^-1 * 3 - 1 = 10.4% of
 * them find their bucket full at the nominal count (3.3% at half of it); a table of exactly
 * `flows` entries (mean 2) lost 25% (bpf/maps.h).
 */
export function flowTableEntries(flows: number): number {
  if (!Number.isInteger(flows) || flows < 1)
    throw new RangeError(`flow table size: expected a positive integer, received ${flows}`);
  let buckets = 1;
  while (buckets < flows) buckets *= 2;
  return buckets * FLOW_WAYS;
}

const rol = (x: number, n: number): number => ((x << n) | (x >>> (32 - n))) >>> 0;

/**
 * The flow table hash of an encoded key (16 or 40 bytes, the struct's memory image): the kernel's
 * jhash2() over its little-endian 32-bit words with `seed` as initval, as bpf/flow.h ft4_hash() /
 * ft6_hash() compute it with the program's flow_seed.
 */
export function flowHash(key: Buffer, seed: number): number {
  const n = key.length >>> 2;
  let a = (0xdeadbeef + (n << 2) + seed) >>> 0;
  let b = a;
  let c = a;
  const k = (i: number): number => key.readUInt32LE(i * 4);
  let i = 0;
  for (let left = n; left > 3; left -= 3, i += 3) {
    a = (a + k(i)) >>> 0;
    b = (b + k(i + 1)) >>> 0;
    c = (c + k(i + 2)) >>> 0;
    a = (a - c) >>> 0;
    a = (a ^ rol(c, 4)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rol(a, 6)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rol(b, 8)) >>> 0;
    b = (b + a) >>> 0;
    a = (a - c) >>> 0;
    a = (a ^ rol(c, 16)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rol(a, 19)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rol(b, 4)) >>> 0;
    b = (b + a) >>> 0;
  }
  const left = n - i;
  if (left === 0) return c;
  if (left >= 3) c = (c + k(i + 2)) >>> 0;
  if (left >= 2) b = (b + k(i + 1)) >>> 0;
  a = (a + k(i)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rol(b, 14)) >>> 0;
  a = (a ^ c) >>> 0;
  a = (a - rol(c, 11)) >>> 0;
  b = (b ^ a) >>> 0;
  b = (b - rol(a, 25)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rol(b, 16)) >>> 0;
  a = (a ^ c) >>> 0;
  a = (a - rol(c, 4)) >>> 0;
  b = (b ^ a) >>> 0;
  b = (b - rol(a, 14)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rol(b, 24)) >>> 0;
  return c;
}

/** The first entry index of an encoded key's bucket in a table of `maxEntries` entries hashed with `seed`. */
export function flowBucketFirst(key: Buffer, maxEntries: number, seed: number): number {
  const buckets = Math.floor(maxEntries / FLOW_WAYS);
  return ((flowHash(key, seed) & (buckets - 1)) >>> 0) * FLOW_WAYS;
}

/** A random flow table seed (flow_seed, bpf/flow.h), never 0: chosen once per instance, kept in xd_meta_v1. */
export function randomFlowSeed(): number {
  for (;;) {
    const s = crypto.randomBytes(4).readUInt32LE(0);
    if (s !== 0) return s;
  }
}

/** Bytes of kernel memory a map is charged (`memlock:` of its /proc/self/fdinfo entry), undefined if not shown. */
export function mapMemlock(fd: number): number | undefined {
  try {
    const m = /^memlock:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The closed mark (bit 63) of last_seen_ns, masked for comparing times. */
const TIME_MASK = (1n << 63n) - 1n;

/** A flow table by family: the flow key type K, its codec, and the map of its entries. */
export class FlowTable<K> {
  /** The same map, entries as raw bytes. */
  private readonly rawMap: BpfMap<number, Buffer>;
  private readonly keySize: number;

  private constructor(
    readonly map: XdMap<'flow4'> | XdMap<'flow6'>,
    readonly key: Codec<K>,
    /** The program's flow_seed (xd_meta_v1 flow_seed for a daemon's instance). */
    readonly seed: number,
  ) {
    this.keySize = key.size;
    this.rawMap = new BpfMap(map.fd, u32, raw(map.info.valueSize), { owned: false, origin: map.origin });
  }

  /** The IPv4 table, hashed with `seed` (the flow_seed the program was loaded with). */
  static v4(map: XdMap<'flow4'>, seed: number): FlowTable<XdFlow4Key> {
    return new FlowTable(map, xdFlow4KeyCodec, seed);
  }

  /** The IPv6 table, hashed with `seed`. */
  static v6(map: XdMap<'flow6'>, seed: number): FlowTable<XdFlowKey> {
    return new FlowTable(map, xdFlowKeyCodec, seed);
  }

  /** Entries (flows it can hold). */
  get capacity(): number {
    return this.map.info.maxEntries;
  }

  /** Bytes of kernel memory the table is charged (bpf_map memlock), undefined where fdinfo does not show it. */
  memlock(): number | undefined {
    return mapMemlock(this.map.fd);
  }

  /** The entry indexes of a key's bucket. */
  bucketOf(key: K): number[] {
    const first = flowBucketFirst(this.key.encode(key), this.capacity, this.seed);
    return Array.from({ length: FLOW_WAYS }, (_, i) => first + i);
  }

  private readBucket(kb: Buffer): { index: number; entry: Buffer }[] {
    const first = flowBucketFirst(kb, this.capacity, this.seed);
    const out: { index: number; entry: Buffer }[] = [];
    for (let i = first; i < first + FLOW_WAYS; i++) {
      const entry = this.rawMap.lookup(i);
      if (entry) out.push({ index: i, entry });
    }
    return out;
  }

  private flowOf(entry: Buffer): XdFlow {
    return xdFlowCodec.decode(entry, this.keySize);
  }

  private holds(entry: Buffer, kb: Buffer): boolean {
    return this.flowOf(entry).backend !== 0 && entry.subarray(0, this.keySize).equals(kb);
  }

  /** The flow of `key`, undefined if the table does not hold it. */
  lookup(key: K): XdFlow | undefined {
    return this.lookupEncoded(this.key.encode(key));
  }

  /** lookup() of an encoded key (the key struct's bytes). */
  lookupEncoded(kb: Buffer): XdFlow | undefined {
    const e = this.readBucket(kb).find((x) => this.holds(x.entry, kb));
    return e ? this.flowOf(e.entry) : undefined;
  }

  /**
   * Puts a flow into its bucket by the program's rule (bpf/flow.h ft4_insert()): the entry of
   * its key, else an empty one, else the one seen least recently. For tests and tools: the
   * program writes this table; user space only reads it.
   */
  update(key: K, flow: XdFlow): void {
    const kb = this.key.encode(key);
    const bucket = this.readBucket(kb);
    if (bucket.length !== FLOW_WAYS) throw new RangeError(`flow table ${this.map.info.name}: bucket out of range`);
    const seen = (e: Buffer): bigint => this.flowOf(e).last_seen_ns & TIME_MASK;
    const victim =
      bucket.find((x) => x.entry.subarray(0, this.keySize).equals(kb)) ??
      bucket.find((x) => this.flowOf(x.entry).backend === 0) ??
      bucket.reduce((a, b) => (seen(b.entry) < seen(a.entry) ? b : a));
    const entry = Buffer.alloc(this.map.info.valueSize);
    kb.copy(entry, 0);
    xdFlowCodec.encode(flow, entry, this.keySize);
    this.rawMap.update(victim.index, entry);
  }

  /** Empties the entry of `key`; false if the table does not hold it. */
  delete(key: K): boolean {
    const kb = this.key.encode(key);
    const e = this.readBucket(kb).find((x) => this.holds(x.entry, kb));
    if (!e) return false;
    this.rawMap.update(e.index, Buffer.alloc(this.map.info.valueSize));
    return true;
  }

  /**
   * Every flow the table holds: a walk of the whole array (tests, tools and the sync full dump) in
   * batch lookups of 64K entries, decoding only the entries that hold a flow, so a 1M-entry table
   * costs tens of milliseconds, not a decoded object per empty entry.
   */
  entries(): [K, XdFlow][] {
    const n = getNative();
    const vs = this.map.info.valueSize;
    const chunk = Math.min(65536, Math.max(this.capacity, 1));
    const keys = Buffer.alloc(chunk * 4);
    const values = Buffer.alloc(chunk * vs);
    const out: [K, XdFlow][] = [];
    let inBatch: Buffer | null = null;
    for (;;) {
      const outBatch = Buffer.alloc(4);
      let r: { count: number; done: boolean };
      try {
        r = n.mapLookupBatch(this.map.fd, inBatch, outBatch, keys, values, chunk);
      } catch (e) {
        throw wrap('XD_ERR_BPF_MAP', `read flow table ${this.map.info.name} (${this.map.origin})`, e);
      }
      for (let i = 0; i < r.count; i++) {
        const o = i * vs;
        if (values.readUInt32LE(o + this.keySize) !== 0)
          out.push([this.key.decode(values, o), xdFlowCodec.decode(values, o + this.keySize)]);
      }
      if (r.done) return out;
      inBatch = outBatch;
    }
  }

  /** The keys of every flow the table holds. */
  keys(): K[] {
    return this.entries().map(([k]) => k);
  }

  /** Flows held. */
  count(): number {
    return this.entries().length;
  }

  /** Empties every entry. */
  clear(): void {
    const n = this.capacity;
    const vs = this.map.info.valueSize;
    const keys = Buffer.alloc(n * 4);
    for (let i = 0; i < n; i++) keys.writeUInt32LE(i, i * 4);
    this.rawMap.updateBatchRawSync(keys, Buffer.alloc(n * vs));
  }
}
