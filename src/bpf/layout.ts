// layout.ts: the layout model of xdirector's shared types, extracted from BTF,
// plus the comparison and hash used by the generator and the layout test.
// Pure (no addon). The model is what src/bpf/layouts.generated.ts records.
import { createHash } from 'node:crypto';
import { Btf, BtfType } from './btf';

/** Scalar kinds; beN = network byte order (typedef __beN in the C header). */
export type ScalarKind = 'u8' | 'u16' | 'u32' | 'u64' | 's8' | 's16' | 's32' | 's64' | 'be16' | 'be32' | 'be64';

export interface FieldLayout {
  name: string;
  /** Byte offset in the struct. */
  offset: number;
  /** Bytes. */
  size: number;
  /** 'u32', 'be16', 'u8[6]', 'be32[4]' ... */
  kind: string;
  /** Element scalar kind (the scalar itself for non-arrays). */
  elem: ScalarKind;
  /** Array length (1 for a scalar). */
  count: number;
  byteOrder: 'host' | 'network';
}

export interface StructLayout {
  name: string;
  size: number;
  fields: FieldLayout[];
}

export interface EnumLayout {
  name: string;
  values: Record<string, number>;
}

export interface MapLayout {
  /** Map name minus the xd_ prefix and _vN suffix: svc, be, ring, ... */
  role: string;
  name: string;
  /** libbpf map type name: 'hash', 'array', 'lru_hash', 'percpu_array', ... */
  type: string;
  /** Struct name or scalar kind of the key / value. */
  keyType: string;
  valueType: string;
  keySize: number;
  valueSize: number;
  /** Default max_entries in the object (the control plane may override at load). */
  maxEntries: number;
}

export interface GlobalLayout {
  section: string;
  offset: number;
  size: number;
}

export interface LayoutModel {
  layoutVersion: number;
  structs: Record<string, StructLayout>;
  enums: Record<string, EnumLayout>;
  maps: Record<string, MapLayout>;
  globals: Record<string, GlobalLayout>;
}

// enum bpf_map_type order (include/uapi/linux/bpf.h), named as libbpf names them.
const MAP_TYPES = [
  'unspec',
  'hash',
  'array',
  'prog_array',
  'perf_event_array',
  'percpu_hash',
  'percpu_array',
  'stack_trace',
  'cgroup_array',
  'lru_hash',
  'lru_percpu_hash',
  'lpm_trie',
  'array_of_maps',
  'hash_of_maps',
  'devmap',
  'sockmap',
  'cpumap',
  'xskmap',
  'sockhash',
  'cgroup_storage',
  'reuseport_sockarray',
  'percpu_cgroup_storage',
  'queue',
  'stack',
  'sk_storage',
  'devmap_hash',
  'struct_ops',
  'ringbuf',
  'inode_storage',
  'task_storage',
  'bloom_filter',
  'user_ringbuf',
  'cgrp_storage',
  'arena',
];

export function mapTypeName(n: number): string {
  return MAP_TYPES[n] ?? `type_${n}`;
}

/** The scalar kind of a type id (following typedefs, noting __beN), or undefined if not a scalar. */
function scalarKind(btf: Btf, id: number): ScalarKind | undefined {
  let t: BtfType = btf.get(id);
  let be: ScalarKind | undefined;
  for (let guard = 0; guard < 64; guard++) {
    if (t.kind === 'typedef' && /^__be(16|32|64)$/.test(t.name) && !be) be = t.name.slice(2) as ScalarKind;
    if (
      t.kind === 'typedef' ||
      t.kind === 'volatile' ||
      t.kind === 'const' ||
      t.kind === 'restrict' ||
      t.kind === 'type_tag'
    ) {
      t = btf.get(t.sizeOrType);
      continue;
    }
    break;
  }
  if (t.kind === 'enum' || t.kind === 'enum64') return `u${t.sizeOrType * 8}` as ScalarKind;
  if (t.kind !== 'int' || !t.int) return undefined;
  if (be) return be;
  const signed = (t.int.encoding & 1) !== 0;
  const bits = t.sizeOrType * 8;
  if (![8, 16, 32, 64].includes(bits)) return undefined;
  return `${signed ? 's' : 'u'}${bits}` as ScalarKind;
}

export class LayoutError extends Error {}

function fieldOf(
  btf: Btf,
  struct: string,
  m: { name: string; type: number; bitOffset: number; bitfieldSize: number },
): FieldLayout {
  if (m.bitfieldSize !== 0 || m.bitOffset % 8 !== 0)
    throw new LayoutError(`struct ${struct} field ${m.name}: bitfields are not allowed in shared layouts`);
  const offset = m.bitOffset / 8;
  const size = btf.sizeOf(m.type);
  const r = btf.resolve(m.type);
  if (r.kind === 'array') {
    const elem = scalarKind(btf, r.array!.type);
    if (!elem)
      throw new LayoutError(
        `struct ${struct} field ${m.name}: arrays of ${btf.resolve(r.array!.type).kind} are not supported in shared layouts`,
      );
    return {
      name: m.name,
      offset,
      size,
      kind: `${elem}[${r.array!.nelems}]`,
      elem,
      count: r.array!.nelems,
      byteOrder: elem.startsWith('be') ? 'network' : 'host',
    };
  }
  const elem = scalarKind(btf, m.type);
  if (!elem)
    throw new LayoutError(
      `struct ${struct} field ${m.name}: ${r.kind} ${r.name} is not supported in shared layouts (use fixed-width scalars and arrays)`,
    );
  return {
    name: m.name,
    offset,
    size,
    kind: elem,
    elem,
    count: 1,
    byteOrder: elem.startsWith('be') ? 'network' : 'host',
  };
}

/** The named struct's layout. */
export function structLayout(btf: Btf, t: BtfType): StructLayout {
  if (t.kind !== 'struct') throw new LayoutError(`${t.name}: expected a struct, found ${t.kind}`);
  return { name: t.name, size: t.sizeOrType, fields: (t.members ?? []).map((m) => fieldOf(btf, t.name, m)) };
}

function typeLabel(btf: Btf, id: number): string {
  const r = btf.resolve(id);
  if (r.kind === 'struct' || r.kind === 'union') return r.name;
  return scalarKind(btf, id) ?? r.kind;
}

/** A BTF-defined map's __uint(name, N) (pointer to an array of N elements). */
function mapUint(btf: Btf, mapName: string, def: BtfType, field: string): number | undefined {
  const m = def.members?.find((x) => x.name === field);
  if (!m) return undefined;
  const p = btf.resolve(m.type);
  const a = p.kind === 'ptr' ? btf.resolve(p.sizeOrType) : undefined;
  if (!a || a.kind !== 'array') throw new LayoutError(`map ${mapName}: ${field} is not an __uint() definition`);
  return a.array!.nelems;
}

function mapTypeOf(btf: Btf, mapName: string, def: BtfType, field: 'key' | 'value'): { label: string; size: number } {
  const m = def.members?.find((x) => x.name === field);
  if (m) {
    const p = btf.resolve(m.type);
    if (p.kind !== 'ptr') throw new LayoutError(`map ${mapName}: ${field} is not a __type() definition`);
    return { label: typeLabel(btf, p.sizeOrType), size: btf.sizeOf(p.sizeOrType) };
  }
  const size = mapUint(btf, mapName, def, `${field}_size`);
  if (size === undefined) throw new LayoutError(`map ${mapName}: no ${field} or ${field}_size`);
  return { label: `${size} bytes`, size };
}

/** The role of a map name: xd_<role>_vN -> role; undefined for names that do not follow the convention. */
export function mapRole(name: string): string | undefined {
  const m = /^xd_([a-z0-9_]+?)_v\d+$/.exec(name);
  return m ? m[1] : undefined;
}

/**
 * The layout model of an object's BTF: structs whose names match `structPrefix`,
 * enums matching it, maps named xd_<role>_vN (from the .maps section) and the
 * variables of .rodata / .data / .bss.
 */
export function extractLayouts(btf: Btf, layoutVersion: number, prefix = 'xd_'): LayoutModel {
  const model: LayoutModel = { layoutVersion, structs: {}, enums: {}, maps: {}, globals: {} };
  for (const t of btf.types) {
    if (t.kind === 'struct' && t.name.startsWith(prefix)) model.structs[t.name] = structLayout(btf, t);
    if ((t.kind === 'enum' || t.kind === 'enum64') && t.name.startsWith(prefix)) {
      const values: Record<string, number> = {};
      for (const v of t.enumValues ?? []) values[v.name] = Number(v.value);
      model.enums[t.name] = { name: t.name, values };
    }
  }
  const maps = btf.find('datasec', '.maps');
  for (const vsi of maps?.secinfos ?? []) {
    const v = btf.get(vsi.type);
    const role = mapRole(v.name);
    if (!role) continue;
    const def = btf.resolve(v.sizeOrType);
    const type = mapUint(btf, v.name, def, 'type');
    if (type === undefined) throw new LayoutError(`map ${v.name}: no type`);
    // A ring buffer has neither: its records are a struct of the header (bpf/sync.h anchors it).
    const ring = mapTypeName(type) === 'ringbuf' || mapTypeName(type) === 'user_ringbuf';
    const key = ring ? { label: 'none', size: 0 } : mapTypeOf(btf, v.name, def, 'key');
    const value = ring ? { label: 'none', size: 0 } : mapTypeOf(btf, v.name, def, 'value');
    if (model.maps[role])
      throw new LayoutError(`maps ${model.maps[role].name} and ${v.name} have the same role ${role}`);
    model.maps[role] = {
      role,
      name: v.name,
      type: mapTypeName(type),
      keyType: key.label,
      valueType: value.label,
      keySize: key.size,
      valueSize: value.size,
      maxEntries: mapUint(btf, v.name, def, 'max_entries') ?? 0,
    };
  }
  for (const sec of ['.rodata', '.data', '.bss']) {
    const ds = btf.find('datasec', sec);
    for (const vsi of ds?.secinfos ?? [])
      model.globals[btf.get(vsi.type).name] = { section: sec, offset: vsi.offset, size: vsi.size };
  }
  return model;
}

/** Stable JSON: object keys sorted, so the hash does not depend on BTF order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * LAYOUT_HASH: the first 8 bytes of SHA-256 over the canonical model (layout
 * version, structs, enums, maps, globals), as a u64. The control plane writes
 * it into the meta map; a control plane adopting pinned maps compares it.
 */
export function layoutHash(model: LayoutModel): bigint {
  return createHash('sha256').update(canonical(model)).digest().readBigUInt64BE(0);
}

function diffFields(
  out: string[],
  label: string,
  a: Record<string, unknown>,
  b: Record<string, unknown>,
  keys: string[],
): void {
  for (const k of keys) {
    if (a[k] !== b[k]) out.push(`${label}: ${k} ${String(a[k])} changed to ${String(b[k])}`);
  }
}

/**
 * Differences between the committed layouts (`expected`) and the object's
 * (`actual`), one line each, in Cilium alignchecker style:
 * "struct xd_backend field generation: offset 8 changed to 12". Empty = same.
 */
export function compareLayouts(expected: LayoutModel, actual: LayoutModel): string[] {
  const out: string[] = [];
  if (expected.layoutVersion !== actual.layoutVersion)
    out.push(`layout version ${expected.layoutVersion} changed to ${actual.layoutVersion}`);
  for (const name of new Set([...Object.keys(expected.structs), ...Object.keys(actual.structs)])) {
    const a = expected.structs[name];
    const b = actual.structs[name];
    if (!b) {
      out.push(`struct ${name}: missing from the object`);
      continue;
    }
    if (!a) {
      out.push(`struct ${name}: new in the object`);
      continue;
    }
    if (a.size !== b.size) out.push(`struct ${name}: size ${a.size} changed to ${b.size}`);
    for (const f of a.fields) {
      const g = b.fields.find((x) => x.name === f.name);
      if (!g) {
        out.push(`struct ${name} field ${f.name}: missing from the object`);
        continue;
      }
      diffFields(
        out,
        `struct ${name} field ${f.name}`,
        f as unknown as Record<string, unknown>,
        g as unknown as Record<string, unknown>,
        ['offset', 'size', 'kind', 'byteOrder'],
      );
    }
    for (const g of b.fields)
      if (!a.fields.some((f) => f.name === g.name))
        out.push(`struct ${name} field ${g.name}: new in the object (offset ${g.offset}, size ${g.size})`);
  }
  for (const name of new Set([...Object.keys(expected.enums), ...Object.keys(actual.enums)])) {
    const a = expected.enums[name];
    const b = actual.enums[name];
    if (!b) {
      out.push(`enum ${name}: missing from the object`);
      continue;
    }
    if (!a) {
      out.push(`enum ${name}: new in the object`);
      continue;
    }
    for (const k of new Set([...Object.keys(a.values), ...Object.keys(b.values)])) {
      if (!(k in b.values)) out.push(`enum ${name} value ${k}: missing from the object`);
      else if (!(k in a.values)) out.push(`enum ${name} value ${k}: new in the object (${b.values[k]})`);
      else if (a.values[k] !== b.values[k])
        out.push(`enum ${name} value ${k}: ${a.values[k]} changed to ${b.values[k]}`);
    }
  }
  for (const role of new Set([...Object.keys(expected.maps), ...Object.keys(actual.maps)])) {
    const a = expected.maps[role];
    const b = actual.maps[role];
    if (!b) {
      out.push(`map ${a.name}: missing from the object`);
      continue;
    }
    if (!a) {
      out.push(`map ${b.name}: new in the object`);
      continue;
    }
    diffFields(out, `map ${a.name}`, a as unknown as Record<string, unknown>, b as unknown as Record<string, unknown>, [
      'name',
      'type',
      'keyType',
      'valueType',
      'keySize',
      'valueSize',
      'maxEntries',
    ]);
  }
  for (const name of new Set([...Object.keys(expected.globals), ...Object.keys(actual.globals)])) {
    const a = expected.globals[name];
    const b = actual.globals[name];
    if (!b) {
      out.push(`global ${name}: missing from the object`);
      continue;
    }
    if (!a) {
      out.push(`global ${name}: new in the object`);
      continue;
    }
    diffFields(
      out,
      `global ${name}`,
      a as unknown as Record<string, unknown>,
      b as unknown as Record<string, unknown>,
      ['section', 'offset', 'size'],
    );
  }
  return out;
}
