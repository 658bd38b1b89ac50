// object.ts: a loaded BPF object (programs + maps) behind a typed wrapper.
//
//   const obj = await BpfObject.load(path, {maxEntries, globals, reusePinnedDir});
//   obj.program(name) -> {name, fd, id, tag}; obj.map(name, keyCodec, valueCodec) -> BpfMap
//   obj.pinMaps(dir); obj.pinProgram(name, path); obj.close()
//
// reusePinnedDir: maps already pinned as <dir>/<map name> (by a previous run)
// are reused instead of created, after checking type, key/value size,
// max_entries and flags; a mismatch throws XD_ERR_LAYOUT_MISMATCH naming the
// map and the property. So a new program can be loaded over the maps, and the
// established flows and counters, of the previous one.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { XdError, wrap } from '../errors';
import { Codec } from './codec';
import { securePinDir } from './pins';
import { BpfMap } from './map';
import { getNative, isNativeSystemError, NativeGlobalDesc, NativeMapDesc, NativeProgDesc } from './native';

export type GlobalValue = Buffer | number | bigint | boolean;

export interface LoadOptions {
  /** max_entries overrides by map name (use MAPS.<role>.name from layouts.generated.ts). */
  maxEntries?: Readonly<Record<string, number>>;
  /**
   * const volatile globals by name, set before load. A Buffer must have the
   * variable's exact size; numbers, bigints and booleans are encoded in host
   * byte order at the variable's size (1, 2, 4 or 8 bytes).
   */
  globals?: Readonly<Record<string, GlobalValue>>;
  /** The whole .rodata section, exact size (globals, if also given, are applied on top). */
  rodata?: Buffer;
  /** Reuse maps pinned in this directory (by map name) instead of creating them. */
  reusePinnedDir?: string;
  /** Object name override (what bpftool shows as the map name prefix of .rodata). */
  name?: string;
  /**
   * Keep the verifier's summary of each program (log level BPF_LOG_STATS: "processed N insns",
   * "stack depth A+B+..." per subprogram), read with verifierLog(); costs no more than a plain load.
   */
  verifierStats?: boolean;
}

export interface ProgramRef {
  name: string;
  fd: number;
  id: number;
  tag: string;
}

const kHandle = Symbol('xdirector.bpf.objectHandle');

function encodeGlobal(g: NativeGlobalDesc, v: GlobalValue): Buffer {
  if (Buffer.isBuffer(v)) return v;
  const buf = Buffer.alloc(g.size);
  const le = os.endianness() === 'LE';
  const num = typeof v === 'boolean' ? (v ? 1 : 0) : v;
  const bad = () =>
    new TypeError(
      `global ${g.name}: expected a Buffer of ${g.size} bytes or an unsigned integer that fits in ${g.size} bytes, received ${typeof v} ${String(v)}`,
    );
  if (typeof num === 'bigint') {
    if (g.size !== 8 || num < 0n || num > 0xffffffffffffffffn) throw bad();
    le ? buf.writeBigUInt64LE(num) : buf.writeBigUInt64BE(num);
    return buf;
  }
  if (!Number.isInteger(num) || num < 0) throw bad();
  switch (g.size) {
    case 1:
      if (num > 0xff) throw bad();
      buf.writeUInt8(num);
      break;
    case 2:
      if (num > 0xffff) throw bad();
      le ? buf.writeUInt16LE(num) : buf.writeUInt16BE(num);
      break;
    case 4:
      if (num > 0xffffffff) throw bad();
      le ? buf.writeUInt32LE(num) : buf.writeUInt32BE(num);
      break;
    case 8:
      if (!Number.isSafeInteger(num)) throw bad();
      le ? buf.writeBigUInt64LE(BigInt(num)) : buf.writeBigUInt64BE(BigInt(num));
      break;
    default:
      throw bad();
  }
  return buf;
}

function nativeDetail(e: unknown): Record<string, unknown> | undefined {
  if (!isNativeSystemError(e)) return undefined;
  return { errno: e.errno, code: e.code, syscall: e.syscall, verifierLog: e.verifierLog, libbpfLog: e.libbpfLog };
}

export class BpfObject {
  private [kHandle]: number | undefined;
  private readonly mapDescs: NativeMapDesc[];
  private readonly progDescs: NativeProgDesc[];
  /** Names of maps that were reused from reusePinnedDir rather than created. */
  readonly reusedMaps: readonly string[];

  private constructor(
    readonly path: string,
    handle: number,
    reused: string[],
  ) {
    this[kHandle] = handle;
    const n = getNative();
    this.mapDescs = n.objectMaps(handle);
    this.progDescs = n.objectPrograms(handle);
    this.reusedMaps = reused;
  }

  /** Opens, configures and loads (verifies) an ELF object. */
  static async load(objPath: string, opts: LoadOptions = {}): Promise<BpfObject> {
    const n = getNative();
    if (!fs.existsSync(objPath)) {
      throw new XdError(
        'XD_ERR_BPF_OBJECT',
        `open BPF object ${objPath}: file not found; fix: run npm run build:bpf (or reinstall the package, which ships dist/bpf/*.o)`,
        { detail: { path: objPath } },
      );
    }
    let handle: number;
    try {
      handle = n.objectOpen(
        objPath,
        opts.name === undefined && !opts.verifierStats
          ? undefined
          : {
              ...(opts.name === undefined ? {} : { name: opts.name }),
              ...(opts.verifierStats ? { verifierStats: true } : {}),
            },
      );
    } catch (e) {
      throw wrap('XD_ERR_BPF_OBJECT', `open BPF object ${objPath}`, e, nativeDetail(e));
    }
    const reused: string[] = [];
    try {
      for (const [name, max] of Object.entries(opts.maxEntries ?? {})) {
        try {
          n.objectSetMaxEntries(handle, name, max);
        } catch (e) {
          if (e instanceof TypeError) throw e;
          throw wrap('XD_ERR_BPF_OBJECT', `set max_entries of ${name} in ${objPath}`, e, nativeDetail(e));
        }
      }
      if (opts.rodata !== undefined) n.objectSetSectionData(handle, '.rodata', opts.rodata);
      if (opts.globals && Object.keys(opts.globals).length > 0) {
        const known = n.objectGlobals(handle);
        for (const [name, v] of Object.entries(opts.globals)) {
          const g = known.find((x) => x.name === name);
          if (!g) {
            throw new XdError(
              'XD_ERR_BPF_OBJECT',
              `set global ${name} in ${objPath}: no such global (globals: ${known.map((x) => x.name).join(', ') || 'none'})`,
            );
          }
          n.objectSetGlobal(handle, name, encodeGlobal(g, v));
        }
      }
      if (opts.reusePinnedDir !== undefined) {
        for (const m of n.objectMaps(handle)) {
          if (m.internal) continue;
          const pinned = path.join(opts.reusePinnedDir, m.name);
          if (!fs.existsSync(pinned)) continue;
          let fd: number;
          try {
            fd = n.objGet(pinned);
          } catch (e) {
            throw wrap('XD_ERR_BPF_PIN', `open pinned map ${pinned}`, e, nativeDetail(e));
          }
          try {
            n.objectReuseMap(handle, m.name, fd);
            reused.push(m.name);
          } catch (e) {
            if (isNativeSystemError(e) && e.property !== undefined) {
              throw new XdError(
                'XD_ERR_LAYOUT_MISMATCH',
                `reuse pinned map ${pinned}: ${e.message}; fix: remove the stale pin (rm ${pinned}) or give the changed map a new name (_vN suffix)`,
                {
                  cause: e,
                  detail: {
                    map: e.map,
                    property: e.property,
                    existing: e.existing,
                    expected: e.expected,
                    path: pinned,
                  },
                },
              );
            }
            throw wrap('XD_ERR_BPF_PIN', `reuse pinned map ${pinned}`, e, nativeDetail(e));
          } finally {
            n.close(fd); // libbpf keeps its own dup
          }
        }
      }
      try {
        await n.objectLoad(handle);
      } catch (e) {
        const detail = nativeDetail(e);
        const vlog = isNativeSystemError(e) ? e.verifierLog : undefined;
        // The verifier's reason is the last line before its statistics.
        const last = vlog
          ? vlog
              .trim()
              .split('\n')
              .filter((l) => l.trim() !== '' && !/^(processed \d+ insns|verification time)/.test(l))
              .pop()
          : undefined;
        if (!last) throw wrap('XD_ERR_BPF_LOAD', `load BPF object ${objPath}`, e, detail);
        throw new XdError(
          'XD_ERR_BPF_LOAD',
          `load BPF object ${objPath}: ${(e as Error).message} (verifier: ${last}; full log in detail.verifierLog)`,
          { cause: e, detail },
        );
      }
    } catch (e) {
      n.objectClose(handle);
      throw e;
    }
    return new BpfObject(objPath, handle, reused);
  }

  private handle(): number {
    const h = this[kHandle];
    if (h === undefined) throw new XdError('XD_ERR_BPF_OBJECT', `BPF object ${this.path} is closed`);
    return h;
  }

  /** Map descriptions (name, fd, type, sizes, max_entries, flags). */
  maps(): readonly NativeMapDesc[] {
    this.handle();
    return this.mapDescs;
  }

  programs(): readonly NativeProgDesc[] {
    this.handle();
    return this.progDescs;
  }

  /** The verifier's summary of a program's load (LoadOptions.verifierStats), or undefined without it. */
  verifierLog(name: string): string | undefined {
    this.handle();
    return this.progDescs.find((x) => x.name === name)?.verifierLog;
  }

  /** A program by name (the only one if name is omitted and there is exactly one). */
  program(name?: string): ProgramRef {
    this.handle();
    const p =
      name === undefined
        ? this.progDescs.length === 1
          ? this.progDescs[0]
          : undefined
        : this.progDescs.find((x) => x.name === name);
    if (!p) {
      const names = this.progDescs.map((x) => x.name).join(', ');
      throw new XdError(
        'XD_ERR_NOT_FOUND',
        name === undefined
          ? `BPF object ${this.path} has ${this.progDescs.length} programs (${names}): name one`
          : `BPF object ${this.path} has no program ${name} (programs: ${names})`,
      );
    }
    const info = getNative().progInfo(p.fd);
    return { name: p.name, fd: p.fd, id: info.id, tag: info.tag };
  }

  /** The fd of a map by name (owned by this object). */
  mapFd(name: string): number {
    this.handle();
    const m = this.mapDescs.find((x) => x.name === name);
    if (!m)
      throw new XdError(
        'XD_ERR_NOT_FOUND',
        `BPF object ${this.path} has no map ${name} (maps: ${this.mapDescs.map((x) => x.name).join(', ')})`,
      );
    return m.fd;
  }

  /** A typed view of a map; it borrows this object's fd (valid until close()). */
  map<K, V>(name: string, key: Codec<K>, value: Codec<V>): BpfMap<K, V> {
    return new BpfMap(this.mapFd(name), key, value, { owned: false, origin: `object ${this.path} map ${name}` });
  }

  /**
   * Pins every non-internal map at <dir>/<map name> (creating dir). A path that
   * already holds this very map (reused) is left alone; any other existing
   * file is an error.
   */
  pinMaps(dir: string): void {
    this.handle();
    const n = getNative();
    securePinDir(dir, { create: true });
    for (const m of this.mapDescs) {
      if (m.internal) continue;
      const p = path.join(dir, m.name);
      if (fs.existsSync(p)) {
        let same = false;
        try {
          const fd = n.objGet(p);
          try {
            same = n.mapInfo(fd).id === n.mapInfo(m.fd).id;
          } finally {
            n.close(fd);
          }
        } catch {
          same = false;
        }
        if (same) continue;
        throw new XdError(
          'XD_ERR_BPF_PIN',
          `pin map ${m.name} at ${p}: another object is pinned there; fix: remove it (rm ${p}) or pin under another directory`,
          { detail: { path: p } },
        );
      }
      try {
        n.objPin(m.fd, p);
      } catch (e) {
        throw wrap('XD_ERR_BPF_PIN', `pin map ${m.name} at ${p}`, e, nativeDetail(e));
      }
    }
  }

  /** Pins a program at a bpffs path (creating the parent directory). */
  pinProgram(name: string, pinPath: string): void {
    const p = this.program(name);
    securePinDir(path.dirname(pinPath), { create: true });
    try {
      getNative().objPin(p.fd, pinPath);
    } catch (e) {
      throw wrap('XD_ERR_BPF_PIN', `pin program ${name} at ${pinPath}`, e, nativeDetail(e));
    }
  }

  /** Closes the object's fds. Attached programs stay attached; pinned objects stay pinned. */
  close(): void {
    const h = this[kHandle];
    if (h === undefined) return;
    this[kHandle] = undefined;
    getNative().objectClose(h);
  }
}

/** Opens a pinned program (bpffs path) and returns its fd (caller closes it with closeFd). */
export function openPinnedProgram(pinPath: string): ProgramRef & { close(): void } {
  const n = getNative();
  let fd: number;
  try {
    fd = n.objGet(pinPath);
  } catch (e) {
    throw wrap('XD_ERR_BPF_PIN', `open pinned program ${pinPath}`, e, nativeDetail(e));
  }
  try {
    const info = n.progInfo(fd);
    return { name: info.name, fd, id: info.id, tag: info.tag, close: () => n.close(fd) };
  } catch (e) {
    n.close(fd);
    throw wrap('XD_ERR_BPF_PIN', `open pinned program ${pinPath}`, e, nativeDetail(e));
  }
}
