// map.ts: a typed BPF map over an fd, with a key codec and a value codec.
//
// - lookup/update/delete one entry; batch update/delete; iterate all entries
//   (BPF_MAP_LOOKUP_BATCH, falling back to BPF_MAP_GET_NEXT_KEY for map types
//   without batch support);
// - per-CPU maps: lookupPerCpu() returns one value per possible CPU,
//   sumPerCpu() (codec.ts) adds them up;
// - openPinned(path) for maps a previous run left under bpffs.
// u64 values are bigints (codec.ts).
import { XdError, wrap } from '../errors';
import { Codec } from './codec';
import { getNative, isNativeSystemError, NativeMapInfo } from './native';

export type UpdateMode = 'any' | 'noexist' | 'exist';

const PERCPU_TYPES = new Set([
  5 /* percpu_hash */, 6 /* percpu_array */, 10 /* lru_percpu_hash */, 21 /* percpu_cgroup_storage */,
]);

/** Errnos that mean "this map type has no batch operations". */
function isBatchUnsupported(e: unknown): boolean {
  return isNativeSystemError(e) && (e.errno === -524 /* ENOTSUPP */ || e.code === 'EOPNOTSUPP' || e.code === 'ENOTSUP');
}

function modeFlag(mode: UpdateMode): number {
  const c = getNative().constants;
  switch (mode) {
    case 'any':
      return c.BPF_ANY;
    case 'noexist':
      return c.BPF_NOEXIST;
    case 'exist':
      return c.BPF_EXIST;
    default:
      throw new TypeError(`update mode: expected 'any', 'noexist' or 'exist', received ${String(mode)}`);
  }
}

export class BpfMap<K, V> {
  readonly fd: number;
  readonly info: NativeMapInfo;
  /** Where the map came from, for error messages (pin path or "object <path> map <name>"). */
  readonly origin: string;
  readonly perCpu: boolean;
  /** Possible CPUs (1 for maps that are not per-CPU). */
  readonly ncpus: number;
  /** Bytes per CPU slot of a per-CPU value (round_up(value_size, 8)), else value_size. */
  private readonly slot: number;
  private readonly owned: boolean;
  private closed = false;

  /**
   * Wraps an fd. `owned`: close() closes the fd (maps opened from a pin);
   * maps of a BpfObject borrow the object's fd and die with it.
   */
  constructor(
    fd: number,
    readonly key: Codec<K>,
    readonly value: Codec<V>,
    opts: { owned: boolean; origin: string },
  ) {
    const n = getNative();
    this.fd = fd;
    this.owned = opts.owned;
    this.origin = opts.origin;
    try {
      this.info = n.mapInfo(fd);
    } catch (e) {
      throw wrap('XD_ERR_BPF_MAP', `map ${opts.origin}`, e);
    }
    this.perCpu = PERCPU_TYPES.has(this.info.type);
    this.ncpus = this.perCpu ? n.numPossibleCpus() : 1;
    this.slot = this.perCpu ? Math.ceil(this.info.valueSize / 8) * 8 : this.info.valueSize;
    if (key.size !== this.info.keySize || value.size !== this.info.valueSize) {
      const what =
        key.size !== this.info.keySize
          ? `key size ${this.info.keySize} but the codec encodes ${key.size}`
          : `value size ${this.info.valueSize} but the codec encodes ${value.size}`;
      throw new XdError(
        'XD_ERR_LAYOUT_MISMATCH',
        `map ${this.info.name} (${opts.origin}) has ${what}; the pinned map and this build disagree: rebuild, or remove the pinned map`,
        {
          detail: { map: this.info.name, origin: opts.origin },
        },
      );
    }
  }

  /** Opens a pinned map (bpffs path) and checks its key/value sizes against the codecs. */
  static openPinned<K, V>(path: string, key: Codec<K>, value: Codec<V>): BpfMap<K, V> {
    const n = getNative();
    let fd: number;
    try {
      fd = n.objGet(path);
    } catch (e) {
      throw wrap('XD_ERR_BPF_PIN', `open pinned map ${path}`, e, { path });
    }
    try {
      return new BpfMap(fd, key, value, { owned: true, origin: path });
    } catch (e) {
      n.close(fd);
      throw e;
    }
  }

  get name(): string {
    return this.info.name;
  }
  get maxEntries(): number {
    return this.info.maxEntries;
  }

  private check(): void {
    if (this.closed) throw new XdError('XD_ERR_BPF_MAP', `map ${this.info.name} (${this.origin}) is closed`);
  }

  private fail(op: string, e: unknown): XdError {
    if (e instanceof TypeError) throw e;
    return wrap(
      'XD_ERR_BPF_MAP',
      `${op} map ${this.info.name}`,
      e,
      isNativeSystemError(e) ? { errno: e.errno, code: e.code, syscall: e.syscall } : undefined,
    );
  }

  private notPerCpu(op: string): void {
    if (this.perCpu)
      throw new TypeError(
        `${op} on per-CPU map ${this.info.name}: expected a map that is not per-CPU; use ${op}PerCpu()`,
      );
  }

  /** The value for key, or undefined if absent. */
  lookup(key: K): V | undefined {
    this.check();
    this.notPerCpu('lookup');
    const out = Buffer.alloc(this.info.valueSize);
    let found: boolean;
    try {
      found = getNative().mapLookup(this.fd, this.key.encode(key), out);
    } catch (e) {
      throw this.fail('lookup in', e);
    }
    return found ? this.value.decode(out) : undefined;
  }

  /** One value per possible CPU (index = CPU number), or undefined if absent. */
  lookupPerCpu(key: K): V[] | undefined {
    this.check();
    const out = Buffer.alloc(this.slot * this.ncpus);
    let found: boolean;
    try {
      found = getNative().mapLookup(this.fd, this.key.encode(key), out);
    } catch (e) {
      throw this.fail('lookup in', e);
    }
    return found ? this.splitPerCpu(out, 0) : undefined;
  }

  private splitPerCpu(buf: Buffer, offset: number): V[] {
    const vals: V[] = [];
    for (let c = 0; c < this.ncpus; c++) vals.push(this.value.decode(buf, offset + c * this.slot));
    return vals;
  }

  private encodeValue(v: V, buf: Buffer, offset: number): void {
    this.value.encode(v, buf, offset);
  }

  update(key: K, value: V, mode: UpdateMode = 'any'): void {
    this.check();
    this.notPerCpu('update');
    try {
      getNative().mapUpdate(this.fd, this.key.encode(key), this.value.encode(value), modeFlag(mode));
    } catch (e) {
      throw this.fail('update', e);
    }
  }

  /** Sets every CPU's value (values.length must equal ncpus), e.g. to reset counters. */
  updatePerCpu(key: K, values: readonly V[], mode: UpdateMode = 'any'): void {
    this.check();
    if (values.length !== this.ncpus)
      throw new TypeError(
        `updatePerCpu on ${this.info.name}: expected ${this.ncpus} values (one per possible CPU), received ${values.length}`,
      );
    const buf = Buffer.alloc(this.slot * this.ncpus);
    values.forEach((v, c) => this.encodeValue(v, buf, c * this.slot));
    try {
      getNative().mapUpdate(this.fd, this.key.encode(key), buf, modeFlag(mode));
    } catch (e) {
      throw this.fail('update', e);
    }
  }

  /** true if the key existed. */
  delete(key: K): boolean {
    this.check();
    try {
      return getNative().mapDelete(this.fd, this.key.encode(key));
    } catch (e) {
      throw this.fail('delete from', e);
    }
  }

  private packEntries(entries: readonly (readonly [K, V])[]): { keys: Buffer; values: Buffer } {
    const ks = this.key.size;
    const keys = Buffer.alloc(entries.length * ks);
    const values = Buffer.alloc(entries.length * this.slot * this.ncpus);
    entries.forEach(([k, v], i) => {
      this.key.encode(k, keys, i * ks);
      if (this.perCpu) {
        for (let c = 0; c < this.ncpus; c++) this.encodeValue(v, values, (i * this.ncpus + c) * this.slot);
      } else {
        this.encodeValue(v, values, i * this.slot);
      }
    });
    return { keys, values };
  }

  /**
   * Writes all entries with BPF_MAP_UPDATE_BATCH (per-element updates for map
   * types without batch support). Per-CPU maps get the same value on every CPU.
   * Returns the number of entries written.
   */
  updateBatch(entries: readonly (readonly [K, V])[], mode: UpdateMode = 'any'): number {
    this.check();
    if (entries.length === 0) return 0;
    const { keys, values } = this.packEntries(entries);
    try {
      return getNative().mapUpdateBatch(this.fd, keys, values, entries.length, modeFlag(mode));
    } catch (e) {
      if (!isBatchUnsupported(e)) throw this.fail('batch update', e);
    }
    return this.updateOneByOne(keys, values, entries.length, mode);
  }

  /** As updateBatch, with the syscall on a worker thread (large rings, many flows). */
  async updateBatchAsync(entries: readonly (readonly [K, V])[], mode: UpdateMode = 'any'): Promise<number> {
    this.check();
    if (entries.length === 0) return 0;
    const { keys, values } = this.packEntries(entries);
    try {
      return await getNative().mapUpdateBatchAsync(this.fd, keys, values, entries.length, modeFlag(mode));
    } catch (e) {
      if (!isBatchUnsupported(e)) throw this.fail('batch update', e);
    }
    return this.updateOneByOne(keys, values, entries.length, mode);
  }

  /**
   * Fast path for large batches built directly as Buffers (e.g. a Maglev ring
   * from a Uint32Array): `keys` holds count * key_size bytes, `values` count *
   * value size (per-CPU: round_up(value_size, 8) * ncpus) bytes, in map byte
   * order. The addon checks both lengths against the kernel map. Returns the
   * number of entries written.
   */
  updateBatchRaw(keys: Buffer, values: Buffer, mode: UpdateMode = 'any'): Promise<number> {
    this.check();
    const count = this.rawCount(keys, values);
    if (count === 0) return Promise.resolve(0);
    return getNative()
      .mapUpdateBatchAsync(this.fd, keys, values, count, modeFlag(mode))
      .catch((e: unknown) => {
        if (!isBatchUnsupported(e)) throw this.fail('batch update', e);
        return this.updateOneByOne(keys, values, count, mode);
      });
  }

  /** Synchronous updateBatchRaw. */
  updateBatchRawSync(keys: Buffer, values: Buffer, mode: UpdateMode = 'any'): number {
    this.check();
    const count = this.rawCount(keys, values);
    if (count === 0) return 0;
    try {
      return getNative().mapUpdateBatch(this.fd, keys, values, count, modeFlag(mode));
    } catch (e) {
      if (!isBatchUnsupported(e)) throw this.fail('batch update', e);
    }
    return this.updateOneByOne(keys, values, count, mode);
  }

  private rawCount(keys: Buffer, values: Buffer): number {
    const ks = this.key.size;
    const vs = this.slot * this.ncpus;
    if (!Buffer.isBuffer(keys) || keys.length % ks !== 0) {
      throw new TypeError(
        `keys for ${this.info.name}: expected a Buffer of a multiple of ${ks} bytes, received ${Buffer.isBuffer(keys) ? `a Buffer of ${keys.length} bytes` : typeof keys}`,
      );
    }
    const count = keys.length / ks;
    if (!Buffer.isBuffer(values) || values.length !== count * vs) {
      throw new TypeError(
        `values for ${this.info.name}: expected a Buffer of ${count * vs} bytes (${count} values of ${vs}), received ${Buffer.isBuffer(values) ? `a Buffer of ${values.length} bytes` : typeof values}`,
      );
    }
    return count;
  }

  private updateOneByOne(keys: Buffer, values: Buffer, count: number, mode: UpdateMode): number {
    const n = getNative();
    const ks = this.key.size;
    const vs = this.slot * this.ncpus;
    for (let i = 0; i < count; i++) {
      try {
        n.mapUpdate(
          this.fd,
          keys.subarray(i * ks, (i + 1) * ks),
          values.subarray(i * vs, (i + 1) * vs),
          modeFlag(mode),
        );
      } catch (e) {
        throw this.fail(`update (entry ${i} of ${count})`, e);
      }
    }
    return count;
  }

  /**
   * Deletes keys with BPF_MAP_DELETE_BATCH (per-element for map types without
   * it). Absent keys are skipped. Returns how many keys were deleted.
   */
  deleteBatch(keysIn: readonly K[]): number {
    this.check();
    const n = getNative();
    const ks = this.key.size;
    const keys = Buffer.alloc(keysIn.length * ks);
    keysIn.forEach((k, i) => this.key.encode(k, keys, i * ks));
    let deleted = 0;
    let start = 0;
    while (start < keysIn.length) {
      try {
        deleted += n.mapDeleteBatch(this.fd, keys.subarray(start * ks), keysIn.length - start);
        return deleted;
      } catch (e) {
        if (isNativeSystemError(e) && e.code === 'ENOENT') {
          // The kernel stops at the first absent key: count what went, skip it, go on.
          const done = e.processed ?? 0;
          deleted += done;
          start += done + 1;
          continue;
        }
        if (!isBatchUnsupported(e)) throw this.fail('batch delete from', e);
        break;
      }
    }
    for (let i = start; i < keysIn.length; i++) {
      try {
        if (n.mapDelete(this.fd, keys.subarray(i * ks, (i + 1) * ks))) deleted++;
      } catch (e) {
        throw this.fail('delete from', e);
      }
    }
    return deleted;
  }

  /**
   * Looks each of `keys` up in `maps` in turn (one native call for them all: the kernel has no
   * lookup-by-key batch): for key i, `found[i]` is the position in `maps` of the first map
   * holding it, or -1, and `value(i)` its value decoded by that map's codec. The maps must share
   * one key codec size and not be per-CPU. `keys` holds keys.length / key size packed keys
   * (encode them with maps[0].key).
   */
  static lookupFirst<K, V>(
    maps: readonly BpfMap<K, V>[],
    keys: Buffer,
  ): { found: Int8Array; value: (i: number) => V | undefined } {
    const first = maps[0];
    if (!first) throw new TypeError('lookupFirst: expected at least one map, received none');
    const ks = first.key.size;
    for (const m of maps) {
      m.check();
      m.notPerCpu('lookupFirst');
      if (m.key.size !== ks)
        throw new TypeError(`lookupFirst: map ${m.info.name} has ${m.key.size}-byte keys, ${first.info.name} ${ks}`);
    }
    if (keys.length % ks !== 0)
      throw new TypeError(`lookupFirst: expected keys of a multiple of ${ks} bytes, received ${keys.length} bytes`);
    const count = keys.length / ks;
    const stride = Math.max(...maps.map((m) => m.info.valueSize));
    const values = Buffer.alloc(count * stride);
    const hit = Buffer.alloc(count);
    try {
      getNative().mapLookupFirst(
        maps.map((m) => m.fd),
        keys,
        count,
        values,
        hit,
      );
    } catch (e) {
      throw first.fail(`lookup (in ${maps.map((m) => m.info.name).join(', ')})`, e);
    }
    const found = new Int8Array(count);
    for (let i = 0; i < count; i++) found[i] = hit[i]! - 1;
    return {
      found,
      value: (i) => (found[i]! >= 0 ? maps[found[i]!]!.value.decode(values, i * stride) : undefined),
    };
  }

  /** All keys (BPF_MAP_GET_NEXT_KEY walk). */
  keys(): K[] {
    this.check();
    const n = getNative();
    const out: K[] = [];
    let cur: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.key.size);
      let more: boolean;
      try {
        more = n.mapGetNextKey(this.fd, cur, next);
      } catch (e) {
        throw this.fail('iterate', e);
      }
      if (!more) return out;
      out.push(this.key.decode(next));
      cur = next;
    }
  }

  /**
   * Every entry: BPF_MAP_LOOKUP_BATCH in chunks, falling back to
   * GET_NEXT_KEY + LOOKUP for map types without batch lookup. For per-CPU
   * maps use entriesPerCpu().
   */
  entries(): [K, V][] {
    this.notPerCpu('entries');
    return this.rawEntries().map(([k, buf, off]) => [k, this.value.decode(buf, off)]);
  }

  /** Every entry with one value per possible CPU. */
  entriesPerCpu(): [K, V[]][] {
    return this.rawEntries().map(([k, buf, off]) => [k, this.splitPerCpu(buf, off)]);
  }

  /**
   * One BPF_MAP_LOOKUP_BATCH of up to `chunk` entries into `keys`/`values`. Returns 'grow'
   * when a hash bucket holds more entries than `chunk` (ENOSPC: the caller retries with a
   * larger chunk, up to 1 << 20), 'unsupported' when the map type or kernel has no batch
   * lookup and `canFallBack` (nothing read yet: the caller walks key by key instead);
   * any other failure throws.
   */
  private lookupBatchStep(
    inBatch: Buffer | null,
    outBatch: Buffer,
    keys: Buffer,
    values: Buffer,
    chunk: number,
    canFallBack: boolean,
  ): { count: number; done: boolean } | 'grow' | 'unsupported' {
    try {
      return getNative().mapLookupBatch(this.fd, inBatch, outBatch, keys, values, chunk);
    } catch (e) {
      if (isNativeSystemError(e) && e.code === 'ENOSPC' && chunk < 1 << 20) return 'grow';
      if (isBatchUnsupported(e) && canFallBack) return 'unsupported';
      throw this.fail('batch lookup in', e);
    }
  }

  private rawEntries(): [K, Buffer, number][] {
    this.check();
    const ks = this.key.size;
    const vs = this.slot * this.ncpus;
    const out: [K, Buffer, number][] = [];
    const tok = Math.max(ks, 4);
    let inBatch: Buffer | null = null;
    let chunk = Math.min(Math.max(this.info.maxEntries, 1), 1024);
    for (;;) {
      const outBatch = Buffer.alloc(tok);
      const keys = Buffer.alloc(chunk * ks);
      const values = Buffer.alloc(chunk * vs);
      const r = this.lookupBatchStep(inBatch, outBatch, keys, values, chunk, out.length === 0);
      if (r === 'grow') {
        chunk *= 4;
        continue;
      }
      if (r === 'unsupported') return this.rawEntriesByKey();
      for (let i = 0; i < r.count; i++) out.push([this.key.decode(keys, i * ks), values, i * vs]);
      if (r.done) return out;
      inBatch = outBatch;
    }
  }

  /**
   * Walks every entry in slices of about `slice` entries (BPF_MAP_LOOKUP_BATCH;
   * GET_NEXT_KEY + LOOKUP for map types without it), handing each slice's raw
   * keys and values (map byte order, per-CPU values ncpus slots apart) to
   * `onSlice`, and yields to the event loop between slices (`pause`, default
   * setImmediate), so a walk of a million-entry map never holds the loop for
   * more than one slice.
   * The map may change between slices: an entry added or removed meanwhile
   * may be seen or missed, never torn. Returns the number of entries seen.
   */
  async scanSliced(
    onSlice: (keys: Buffer, values: Buffer, count: number) => void,
    opts: { slice?: number; signal?: AbortSignal; pause?: () => Promise<void> } = {},
  ): Promise<number> {
    this.check();
    const ks = this.key.size;
    const vs = this.slot * this.ncpus;
    const tok = Math.max(ks, 4);
    const pause = opts.pause ?? (() => new Promise<void>((resolve) => setImmediate(resolve)));
    let chunk = Math.max(1, Math.min(opts.slice ?? 4096, Math.max(this.info.maxEntries, 1)));
    let inBatch: Buffer | null = null;
    let outBatch: Buffer = Buffer.alloc(tok);
    let keys: Buffer = Buffer.alloc(chunk * ks);
    let values: Buffer = Buffer.alloc(chunk * vs);
    let seen = 0;
    for (;;) {
      if (opts.signal?.aborted)
        throw new XdError('XD_ERR_BPF_MAP', `walk of map ${this.info.name} aborted`, { cause: opts.signal.reason });
      this.check();
      const r = this.lookupBatchStep(inBatch, outBatch, keys, values, chunk, seen === 0);
      if (r === 'grow') {
        chunk *= 4;
        keys = Buffer.alloc(chunk * ks);
        values = Buffer.alloc(chunk * vs);
        continue;
      }
      if (r === 'unsupported') return this.scanSlicedByKey(onSlice, chunk, pause, opts.signal);
      if (r.count > 0) onSlice(keys, values, r.count);
      seen += r.count;
      if (r.done) return seen;
      // The kernel reads the in-cursor before it writes the out-cursor: swap them.
      const t: Buffer = inBatch ?? Buffer.alloc(tok);
      inBatch = outBatch;
      outBatch = t;
      await pause();
    }
  }

  /** scanSliced for map types without batch lookup: GET_NEXT_KEY + LOOKUP, `slice` keys at a time. */
  private async scanSlicedByKey(
    onSlice: (keys: Buffer, values: Buffer, count: number) => void,
    slice: number,
    pause: () => Promise<void>,
    signal?: AbortSignal,
  ): Promise<number> {
    const n = getNative();
    const ks = this.key.size;
    const vs = this.slot * this.ncpus;
    let cur: Buffer | null = null;
    let seen = 0;
    for (;;) {
      if (signal?.aborted)
        throw new XdError('XD_ERR_BPF_MAP', `walk of map ${this.info.name} aborted`, { cause: signal.reason });
      this.check();
      const keys = Buffer.alloc(slice * ks);
      const values = Buffer.alloc(slice * vs);
      let count = 0;
      let done = false;
      try {
        while (count < slice) {
          const next = keys.subarray(count * ks, (count + 1) * ks);
          if (!n.mapGetNextKey(this.fd, cur, next)) {
            done = true;
            break;
          }
          cur = Buffer.from(next);
          // A key deleted between get_next_key and lookup is simply skipped.
          if (n.mapLookup(this.fd, next, values.subarray(count * vs, (count + 1) * vs))) count++;
        }
      } catch (e) {
        throw this.fail('iterate', e);
      }
      if (count > 0) onSlice(keys, values, count);
      seen += count;
      if (done) return seen;
      await pause();
    }
  }

  private rawEntriesByKey(): [K, Buffer, number][] {
    const n = getNative();
    const out: [K, Buffer, number][] = [];
    let cur: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.key.size);
      if (!n.mapGetNextKey(this.fd, cur, next)) return out;
      const val = Buffer.alloc(this.slot * this.ncpus);
      // A key deleted between get_next_key and lookup is simply skipped.
      if (n.mapLookup(this.fd, next, val)) out.push([this.key.decode(next), val, 0]);
      cur = next;
    }
  }

  /** Pins this map at a bpffs path. */
  pin(path: string): void {
    this.check();
    try {
      getNative().objPin(this.fd, path);
    } catch (e) {
      throw wrap('XD_ERR_BPF_PIN', `pin map ${this.info.name} at ${path}`, e, { path });
    }
  }

  /** Closes the fd if this wrapper owns it (opened from a pin); a no-op for maps borrowed from a BpfObject. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.owned) getNative().close(this.fd);
  }
}
