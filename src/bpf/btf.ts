// btf.ts: reads the BTF of a compiled BPF ELF object, without libbpf.
// Pure (no addon): the layout generator (scripts/gen-layouts.ts) and the
// layout test use it to see the layouts the C compiler really produced.
//
// ELF: section header table -> section name string table -> ".BTF".
// BTF (kernel Documentation/bpf/btf.rst): header {magic 0xeB9F, version,
// flags, hdr_len, type_off, type_len, str_off, str_len}, then the type
// section (btf_type records, ids from 1) and the string section.
import * as fs from 'node:fs';

export type BtfKind =
  | 'void'
  | 'int'
  | 'ptr'
  | 'array'
  | 'struct'
  | 'union'
  | 'enum'
  | 'fwd'
  | 'typedef'
  | 'volatile'
  | 'const'
  | 'restrict'
  | 'func'
  | 'func_proto'
  | 'var'
  | 'datasec'
  | 'float'
  | 'decl_tag'
  | 'type_tag'
  | 'enum64';

const KINDS: BtfKind[] = [
  'void',
  'int',
  'ptr',
  'array',
  'struct',
  'union',
  'enum',
  'fwd',
  'typedef',
  'volatile',
  'const',
  'restrict',
  'func',
  'func_proto',
  'var',
  'datasec',
  'float',
  'decl_tag',
  'type_tag',
  'enum64',
];

export interface BtfMember {
  name: string;
  type: number;
  /** Offset in bits from the start of the struct/union. */
  bitOffset: number;
  /** Bitfield width in bits (0 = not a bitfield). */
  bitfieldSize: number;
}

export interface BtfEnumValue {
  name: string;
  value: bigint;
}

export interface BtfVarSecinfo {
  type: number;
  offset: number;
  size: number;
}

export interface BtfType {
  id: number;
  kind: BtfKind;
  name: string;
  /** size for int/struct/union/enum/datasec/float; referenced type id for ptr/typedef/cv/var/func. */
  sizeOrType: number;
  kindFlag: boolean;
  /** int: bits, encoding (1 signed, 2 char, 4 bool), bit offset. */
  int?: { bits: number; encoding: number; offset: number };
  array?: { type: number; indexType: number; nelems: number };
  members?: BtfMember[];
  enumValues?: BtfEnumValue[];
  /** datasec */
  secinfos?: BtfVarSecinfo[];
  /** var: 0 static, 1 global, 2 extern */
  linkage?: number;
}

export class BtfError extends Error {}

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  link: number;
  /** File contents (empty for SHT_NOBITS such as .bss). */
  data: Buffer;
  size: number;
}

export interface ElfSymbol {
  name: string;
  /** Section index the symbol is defined in. */
  shndx: number;
  value: number;
  size: number;
}

export interface ElfFile {
  sections: ElfSection[];
  byName: Map<string, ElfSection>;
  symbols: ElfSymbol[];
}

/** Sections and symbols of an ELF64 file (little or big endian). */
export function parseElf(buf: Buffer): ElfFile {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) throw new BtfError('not an ELF file (bad magic)');
  if (buf[4] !== 2) throw new BtfError(`not a 64-bit ELF file (EI_CLASS ${buf[4]}); BPF objects are ELF64`);
  const le = buf[5] === 1;
  const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const u64 = (o: number) => Number(le ? buf.readBigUInt64LE(o) : buf.readBigUInt64BE(o));
  const shoff = u64(0x28);
  const shentsize = u16(0x3a);
  const shnum = u16(0x3c);
  const shstrndx = u16(0x3e);
  if (shoff === 0 || shnum === 0) throw new BtfError('ELF file has no section header table');
  if (shoff + shnum * shentsize > buf.length) throw new BtfError('ELF section header table is truncated');
  const raw: { name: number; type: number; offset: number; size: number; link: number }[] = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    raw.push({ name: u32(o), type: u32(o + 4), offset: u64(o + 24), size: u64(o + 32), link: u32(o + 40) });
  }
  const cstr = (tab: Buffer, off: number) => tab.toString('latin1', off, tab.indexOf(0, off));
  const contents = (h: (typeof raw)[number], what: string): Buffer => {
    // SHT_NOBITS (8) occupies no file space.
    if (h.type === 8) return Buffer.alloc(0);
    if (h.offset + h.size > buf.length) throw new BtfError(`ELF section ${what} is truncated`);
    return buf.subarray(h.offset, h.offset + h.size);
  };
  const shstr = contents(raw[shstrndx], 'string table');
  const sections: ElfSection[] = raw.map((h, index) => {
    const name = cstr(shstr, h.name);
    return { index, name, type: h.type, link: h.link, data: contents(h, name), size: h.size };
  });
  const byName = new Map(sections.map((s) => [s.name, s]));
  const symbols: ElfSymbol[] = [];
  const symtab = sections.find((s) => s.type === 2 /* SHT_SYMTAB */);
  if (symtab) {
    const strtab = sections[symtab.link].data;
    const d = symtab.data;
    for (let o = 0; o + 24 <= d.length; o += 24) {
      const r32 = (x: number) => (le ? d.readUInt32LE(x) : d.readUInt32BE(x));
      const r16 = (x: number) => (le ? d.readUInt16LE(x) : d.readUInt16BE(x));
      const r64 = (x: number) => Number(le ? d.readBigUInt64LE(x) : d.readBigUInt64BE(x));
      symbols.push({ name: cstr(strtab, r32(o)), shndx: r16(o + 6), value: r64(o + 8), size: r64(o + 16) });
    }
  }
  return { sections, byName, symbols };
}

export class Btf {
  /** types[id]; types[0] is void. */
  readonly types: BtfType[];

  constructor(types: BtfType[]) {
    this.types = types;
  }

  get(id: number): BtfType {
    const t = this.types[id];
    if (!t) throw new BtfError(`BTF type id ${id} out of range (${this.types.length - 1} types)`);
    return t;
  }

  /** All types of a kind with a name. */
  find(kind: BtfKind, name: string): BtfType | undefined {
    return this.types.find((t) => t.kind === kind && t.name === name);
  }

  /** Follows typedef / volatile / const / restrict / type_tag to the underlying type. */
  resolve(id: number): BtfType {
    let t = this.get(id);
    for (let guard = 0; guard < 64; guard++) {
      if (
        t.kind === 'typedef' ||
        t.kind === 'volatile' ||
        t.kind === 'const' ||
        t.kind === 'restrict' ||
        t.kind === 'type_tag'
      ) {
        t = this.get(t.sizeOrType);
      } else {
        return t;
      }
    }
    throw new BtfError(`BTF type id ${id}: modifier chain too long (loop?)`);
  }

  /** Size in bytes of a type. */
  sizeOf(id: number): number {
    const t = this.resolve(id);
    switch (t.kind) {
      case 'int':
      case 'struct':
      case 'union':
      case 'enum':
      case 'enum64':
      case 'float':
      case 'datasec':
        return t.sizeOrType;
      case 'ptr':
        return 8;
      case 'array':
        return t.array!.nelems * this.sizeOf(t.array!.type);
      default:
        throw new BtfError(`BTF type id ${id} (${t.kind} ${t.name}) has no size`);
    }
  }
}

/** Parses a raw .BTF section. */
export function parseBtf(sec: Buffer): Btf {
  if (sec.length < 24) throw new BtfError('.BTF section shorter than its header');
  let le: boolean;
  if (sec.readUInt16LE(0) === 0xeb9f) le = true;
  else if (sec.readUInt16BE(0) === 0xeb9f) le = false;
  else throw new BtfError('.BTF section has a bad magic (expected 0xeB9F)');
  const u32 = (o: number) => (le ? sec.readUInt32LE(o) : sec.readUInt32BE(o));
  const i32 = (o: number) => (le ? sec.readInt32LE(o) : sec.readInt32BE(o));
  const hdrLen = u32(4);
  const typeOff = hdrLen + u32(8);
  const typeLen = u32(12);
  const strOff = hdrLen + u32(16);
  const strLen = u32(20);
  if (typeOff + typeLen > sec.length || strOff + strLen > sec.length) throw new BtfError('.BTF section is truncated');
  const str = (off: number): string => {
    if (off >= strLen) throw new BtfError(`BTF string offset ${off} beyond the string section (${strLen} bytes)`);
    const s = strOff + off;
    return sec.toString('utf8', s, sec.indexOf(0, s));
  };
  const types: BtfType[] = [{ id: 0, kind: 'void', name: '', sizeOrType: 0, kindFlag: false }];
  let p = typeOff;
  const end = typeOff + typeLen;
  while (p < end) {
    const id = types.length;
    const nameOff = u32(p);
    const info = u32(p + 4);
    const sizeOrType = u32(p + 8);
    p += 12;
    const vlen = info & 0xffff;
    const kindNum = (info >>> 24) & 0x1f;
    const kindFlag = info >>> 31 === 1;
    const kind = KINDS[kindNum];
    if (!kind || kindNum === 0) throw new BtfError(`BTF type id ${id}: unknown kind ${kindNum}`);
    const t: BtfType = { id, kind, name: str(nameOff), sizeOrType, kindFlag };
    switch (kind) {
      case 'int': {
        const v = u32(p);
        t.int = { encoding: (v >>> 24) & 0x0f, offset: (v >>> 16) & 0xff, bits: v & 0xff };
        p += 4;
        break;
      }
      case 'array':
        t.array = { type: u32(p), indexType: u32(p + 4), nelems: u32(p + 8) };
        p += 12;
        break;
      case 'struct':
      case 'union':
        t.members = [];
        for (let i = 0; i < vlen; i++, p += 12) {
          const off = u32(p + 8);
          t.members.push({
            name: str(u32(p)),
            type: u32(p + 4),
            bitOffset: kindFlag ? off & 0xffffff : off,
            bitfieldSize: kindFlag ? off >>> 24 : 0,
          });
        }
        break;
      case 'enum':
        t.enumValues = [];
        for (let i = 0; i < vlen; i++, p += 8) {
          t.enumValues.push({ name: str(u32(p)), value: kindFlag ? BigInt(i32(p + 4)) : BigInt(u32(p + 4)) });
        }
        break;
      case 'enum64':
        t.enumValues = [];
        for (let i = 0; i < vlen; i++, p += 12) {
          const v = (BigInt(u32(p + 8)) << 32n) | BigInt(u32(p + 4));
          t.enumValues.push({ name: str(u32(p)), value: kindFlag ? BigInt.asIntN(64, v) : v });
        }
        break;
      case 'func_proto':
        p += 8 * vlen;
        break;
      case 'var':
        t.linkage = u32(p);
        p += 4;
        break;
      case 'datasec':
        t.secinfos = [];
        for (let i = 0; i < vlen; i++, p += 12) t.secinfos.push({ type: u32(p), offset: u32(p + 4), size: u32(p + 8) });
        break;
      case 'decl_tag':
        p += 4;
        break;
      default:
        // ptr, fwd, typedef, volatile, const, restrict, func, float, type_tag: no extra data
        break;
    }
    types.push(t);
  }
  if (p !== end) throw new BtfError(`BTF type section: parsed ${p - typeOff} of ${typeLen} bytes`);
  return new Btf(types);
}

/**
 * Fills in what clang leaves to the loader in a relocatable object: data
 * section sizes and variable offsets (0 in the raw BTF; libbpf takes them from
 * the ELF section headers and symbol table, as done here).
 */
export function fixupDatasecs(btf: Btf, elf: ElfFile): void {
  for (const t of btf.types) {
    if (t.kind !== 'datasec') continue;
    const sec = elf.byName.get(t.name);
    if (!sec) continue;
    t.sizeOrType = sec.size;
    for (const vsi of t.secinfos ?? []) {
      const v = btf.get(vsi.type);
      const sym = elf.symbols.find((x) => x.name === v.name && x.shndx === sec.index);
      if (sym) vsi.offset = sym.value;
    }
  }
}

/** Reads the .BTF section of an ELF object file, with data sections fixed up. */
export function readBtf(path: string): Btf {
  return btfFromElf(fs.readFileSync(path), path);
}

export function btfFromElf(buf: Buffer, what = 'ELF object'): Btf {
  const elf = parseElf(buf);
  const sec = elf.byName.get('.BTF');
  if (!sec) throw new BtfError(`${what} has no .BTF section (compile with clang -g)`);
  const btf = parseBtf(sec.data);
  fixupDatasecs(btf, elf);
  return btf;
}
