// flowtable.ts: user space's side of the flow tables (xd_flow4_v3 / xd_flow6_v3, bpf/maps.h):
// arrays used as set-associative hash tables, XD_FLOW_WAYS entries a bucket. A key is found by
// hashing it exactly as the program does (bpf/flow.h ft_hash()) and reading its bucket's entries,
// comparing the whole key; test/bpf/flowtable.test.ts proves the two hashes agree.
//
//   const t = FlowTable.v4(openPinnedXdMap(dir, 'flow4'));
//   t.lookup({ saddr, daddr, sport, dport, proto }); // XdFlow | undefined
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
 * FLOW_WAYS entries, at least `flows` entries (the program masks the hash by the bucket count).
 */
export function flowTableEntries(flows: number): number {
  if (!Number.isInteger(flows) || flows < 1)
    throw new RangeError(`flow table size: expected a positive integer, received ${flows}`);
  let buckets = 1;
  while (buckets * FLOW_WAYS < flows) buckets *= 2;
  return buckets * FLOW_WAYS;
}

/** MurmurHash3's 32-bit finalizer, as bpf/flow.h ft_hash() applies it. */
function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The flow table hash of an encoded key (16 or 40 bytes, the struct's memory image): its 64-bit
 * words XORed, the halves XORed (so: every 32-bit little-endian word XORed), then fmix32.
 */
export function flowHash(key: Buffer): number {
  let x = 0;
  for (let o = 0; o + 4 <= key.length; o += 4) x ^= key.readUInt32LE(o);
  return fmix32(x);
}

/** The first entry index of an encoded key's bucket in a table of `maxEntries` entries. */
export function flowBucketFirst(key: Buffer, maxEntries: number): number {
  const buckets = Math.floor(maxEntries / FLOW_WAYS);
  return ((flowHash(key) & (buckets - 1)) >>> 0) * FLOW_WAYS;
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
  ) {
    this.keySize = key.size;
    this.rawMap = new BpfMap(map.fd, u32, raw(map.info.valueSize), { owned: false, origin: map.origin });
  }

  static v4(map: XdMap<'flow4'>): FlowTable<XdFlow4Key> {
    return new FlowTable(map, xdFlow4KeyCodec);
  }

  static v6(map: XdMap<'flow6'>): FlowTable<XdFlowKey> {
    return new FlowTable(map, xdFlowKeyCodec);
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
    const first = flowBucketFirst(this.key.encode(key), this.capacity);
    return Array.from({ length: FLOW_WAYS }, (_, i) => first + i);
  }

  private readBucket(kb: Buffer): { index: number; entry: Buffer }[] {
    const first = flowBucketFirst(kb, this.capacity);
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
