// gen-layouts.ts: generates src/bpf/layouts.generated.ts from the BTF of the
// compiled XDP object (bpf2go style), so TypeScript never copies a C layout
// by hand: the C header is the single source of truth, like Cilium's alignchecker
// and cilium/ebpf's generated types.
//
//   node dist/scripts/gen-layouts.js [--object dist/bpf/xdirector.bpf.o]
//        [--header bpf/include/xdirector.h] [--out src/bpf/layouts.generated.ts] [--check]
//
// --check: do not write; exit 1 (and print the differences) if the committed
// file is not what the object would generate.
//
// Every struct and enum the header declares must be in the object's BTF
// (bpf/xdirector.bpf.c anchors the enums); the header also gives
// XD_LAYOUT_VERSION and the default limits (#define XD_*), which BTF cannot
// carry.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readBtf } from '../src/bpf/btf';
import { compareLayouts, extractLayouts, FieldLayout, layoutHash, LayoutModel, StructLayout } from '../src/bpf/layout';

export interface HeaderFacts {
  layoutVersion: number;
  defines: Record<string, number>;
  structs: string[];
  enums: string[];
}

/** What the C header declares (names only; layouts come from BTF). */
export function readHeader(headerPath: string): HeaderFacts {
  const text = fs
    .readFileSync(headerPath, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '');
  const defines: Record<string, number> = {};
  for (const m of text.matchAll(/^\s*#\s*define\s+(XD_[A-Z0-9_]+)\s+\(?(\d+)\)?\s*$/gm)) defines[m[1]] = Number(m[2]);
  const version = defines.XD_LAYOUT_VERSION;
  if (version === undefined) throw new Error(`${headerPath}: no #define XD_LAYOUT_VERSION <n>`);
  delete defines.XD_LAYOUT_VERSION;
  const structs = [...text.matchAll(/\bstruct\s+(xd_\w+)\s*\{/g)].map((m) => m[1]);
  const enums = [...text.matchAll(/\benum\s+(xd_\w+)\s*\{/g)].map((m) => m[1]);
  return { layoutVersion: version, defines, structs, enums };
}

/** The layout model of an object, checked against what the header declares. */
export function modelFromObject(objectPath: string, header: HeaderFacts): LayoutModel {
  const model = extractLayouts(readBtf(objectPath), header.layoutVersion);
  const missing = [
    ...header.structs.filter((s) => !model.structs[s]).map((s) => `struct ${s}`),
    ...header.enums.filter((e) => !model.enums[e]).map((e) => `enum ${e}`),
  ];
  if (missing.length > 0) {
    throw new Error(
      `${objectPath}: ${missing.join(', ')} declared in the header but absent from the object's BTF; reference them in bpf/xdirector.bpf.c (the BTF anchors)`,
    );
  }
  return model;
}

// ---- code generation ----------------------------------------------------

/** xd_service_key -> XdServiceKey */
export function pascal(cName: string): string {
  return cName
    .split('_')
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
}

function isBufferField(f: FieldLayout): boolean {
  return f.count > 1 && (f.elem === 'u8' || f.elem.startsWith('be'));
}

function tsType(f: FieldLayout): string {
  if (isBufferField(f)) return 'Buffer';
  const scalar = f.elem === 'u64' || f.elem === 's64' || f.elem === 'be64' ? 'bigint' : 'number';
  return f.count > 1 ? `${scalar}[]` : scalar;
}

const WRITE: Record<string, string> = {
  u8: 'writeUInt8',
  u16: 'writeUInt16LE',
  u32: 'writeUInt32LE',
  u64: 'writeBigUInt64LE',
  s8: 'writeInt8',
  s16: 'writeInt16LE',
  s32: 'writeInt32LE',
  s64: 'writeBigInt64LE',
  be16: 'writeUInt16BE',
  be32: 'writeUInt32BE',
  be64: 'writeBigUInt64BE',
};
const READ: Record<string, string> = {
  u8: 'readUInt8',
  u16: 'readUInt16LE',
  u32: 'readUInt32LE',
  u64: 'readBigUInt64LE',
  s8: 'readInt8',
  s16: 'readInt16LE',
  s32: 'readInt32LE',
  s64: 'readBigInt64LE',
  be16: 'readUInt16BE',
  be32: 'readUInt32BE',
  be64: 'readBigUInt64BE',
};
const ELEM_SIZE: Record<string, number> = {
  u8: 1,
  u16: 2,
  u32: 4,
  u64: 8,
  s8: 1,
  s16: 2,
  s32: 4,
  s64: 8,
  be16: 2,
  be32: 4,
  be64: 8,
};

function checkCall(f: FieldLayout, expr: string, label: string): string {
  const e = f.elem;
  if (e === 'u64' || e === 'be64') return `chkU64(${expr}, '${label}')`;
  if (e === 's64') return `chkS64(${expr}, '${label}')`;
  const bits = ELEM_SIZE[e] * 8;
  return e.startsWith('s')
    ? `chkInt(${expr}, ${-(2 ** (bits - 1))}, ${2 ** (bits - 1) - 1}, '${label}')`
    : `chkInt(${expr}, 0, ${2 ** bits - 1}, '${label}')`;
}

/**
 * Fields a value may omit, encoded as zero: padding, and a backend entry's NAT fields (nat_*), which
 * only a NAT backend (XD_BE_F_NAT) has: every other writer leaves them out.
 */
function isPad(f: FieldLayout): boolean {
  return /^(pad|nat_)/.test(f.name);
}

function genStruct(s: StructLayout): string {
  const T = pascal(s.name);
  const lines: string[] = [];
  lines.push(`/** struct ${s.name}: ${s.size} bytes. */`);
  lines.push(`export interface ${T} {`);
  for (const f of s.fields) {
    const note = `${f.kind} at ${f.offset}${f.byteOrder === 'network' ? ', network order' : ''}${isBufferField(f) ? `, ${f.size}-byte Buffer` : ''}${isPad(f) ? ', zero if omitted' : ''}`;
    lines.push(`  /** ${note} */`);
    lines.push(`  ${f.name}${isPad(f) ? '?' : ''}: ${tsType(f)};`);
  }
  lines.push('}');
  lines.push('');
  const C = `${s.name.toUpperCase()}_SIZE`;
  lines.push(`export const ${C} = ${s.size};`);
  lines.push('');
  lines.push(`export function encode${T}(v: ${T}, buf: Buffer = Buffer.alloc(${s.size}), offset = 0): Buffer {`);
  lines.push(`  buf.fill(0, offset, offset + ${s.size});`);
  for (const f of s.fields) {
    const label = `${s.name}.${f.name}`;
    const at = `offset + ${f.offset}`;
    const acc = `v.${f.name}`;
    const guard = isPad(f) ? `if (${acc} !== undefined) ` : '';
    if (isBufferField(f)) {
      lines.push(`  ${guard}chkBuf(${acc}, ${f.size}, '${label}').copy(buf, ${at});`);
    } else if (f.count > 1) {
      lines.push(
        `  ${guard}chkArr(${acc}, ${f.count}, '${label}').forEach((x, i) => buf.${WRITE[f.elem]}(${checkCall(f, 'x', label)}, ${at} + i * ${ELEM_SIZE[f.elem]}));`,
      );
    } else {
      lines.push(`  ${guard}buf.${WRITE[f.elem]}(${checkCall(f, acc, label)}, ${at});`);
    }
  }
  lines.push('  return buf;');
  lines.push('}');
  lines.push('');
  lines.push(`export function decode${T}(buf: Buffer, offset = 0): ${T} {`);
  lines.push(
    `  if (buf.length < offset + ${s.size}) throw new TypeError(\`${s.name}: expected ${s.size} bytes at offset \${offset}, received a Buffer of \${buf.length} bytes\`);`,
  );
  lines.push('  return {');
  for (const f of s.fields) {
    const at = `offset + ${f.offset}`;
    if (isBufferField(f)) lines.push(`    ${f.name}: Buffer.from(buf.subarray(${at}, ${at} + ${f.size})),`);
    else if (f.count > 1)
      lines.push(
        `    ${f.name}: Array.from({ length: ${f.count} }, (_, i) => buf.${READ[f.elem]}(${at} + i * ${ELEM_SIZE[f.elem]})),`,
      );
    else lines.push(`    ${f.name}: buf.${READ[f.elem]}(${at}),`);
  }
  lines.push('  };');
  lines.push('}');
  lines.push('');
  const codec = T[0].toLowerCase() + T.slice(1) + 'Codec';
  lines.push(`export const ${codec}: Codec<${T}> = { size: ${s.size}, encode: encode${T}, decode: decode${T} };`);
  return lines.join('\n');
}

function lit(v: unknown, indent = ''): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (Array.isArray(v)) return `[${v.map((x) => lit(x, indent)).join(', ')}]`;
  if (v && typeof v === 'object') {
    const inner = indent + '  ';
    const keys = Object.keys(v);
    if (keys.length === 0) return '{}';
    return `{\n${keys.map((k) => `${inner}${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}: ${lit((v as Record<string, unknown>)[k], inner)},`).join('\n')}\n${indent}}`;
  }
  return typeof v === 'string' ? `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : String(v);
}

export function generate(model: LayoutModel, header: HeaderFacts, objectLabel: string): string {
  const hash = layoutHash(model);
  const out: string[] = [];
  out.push(`// Code generated by scripts/gen-layouts.ts from ${objectLabel} BTF. DO NOT EDIT.`);
  out.push(
    '// Regenerate after changing bpf/include/xdirector.h or the maps: make -C bpf && npx tsc -p tsconfig.json && node dist/scripts/gen-layouts.js',
  );
  out.push('//');
  out.push('// Conventions: host-order fields use little-endian (x86-64, arm64; checked at load);');
  out.push('// __be16/__be32 scalars are plain numbers written in network order; arrays of __u8');
  out.push('// (MACs, padding) and of __be32 (addresses: IPv4 in the first 4 bytes, rest zero) are');
  out.push('// Buffers of the raw bytes; u64 is a bigint. Fields named pad* are optional (zero).');
  out.push('/* eslint-disable */');
  out.push("import { endianness } from 'node:os';");
  out.push("import { none, u32, u64, type Codec } from './codec';");
  out.push("import type { LayoutModel } from './layout';");
  out.push('');
  out.push(
    "if (endianness() !== 'LE') throw new Error('xdirector layouts assume a little-endian host (the BPF object is built for bpfel)');",
  );
  out.push('');
  out.push(`/** XD_LAYOUT_VERSION of bpf/include/xdirector.h. */`);
  out.push(`export const LAYOUT_VERSION = ${model.layoutVersion};`);
  out.push('');
  out.push('/** First 8 bytes of SHA-256 over LAYOUT (see src/bpf/layout.ts layoutHash); stored in the meta map. */');
  out.push(`export const LAYOUT_HASH = 0x${hash.toString(16).padStart(16, '0')}n;`);
  out.push('');
  out.push('/** Default limits (#define XD_* of the header); the loaded sizes may differ. */');
  out.push(`export const DEFINES = ${lit(header.defines)} as const;`);
  out.push('');
  out.push('/** Maps by role (name minus xd_ and _vN): the only place map names appear in TypeScript. */');
  out.push(`export const MAPS = ${lit(model.maps)} as const;`);
  out.push('export type MapRole = keyof typeof MAPS;');
  out.push('');
  out.push('/** Load-time globals (const volatile, .rodata) by name: offset and size in their section. */');
  out.push(`export const GLOBALS = ${lit(model.globals)} as const;`);
  out.push('');
  for (const e of Object.values(model.enums)) {
    const T = pascal(e.name);
    out.push(`/** enum ${e.name} */`);
    out.push(`export const ${T} = ${lit(e.values)} as const;`);
    out.push(`export type ${T} = (typeof ${T})[keyof typeof ${T}];`);
    out.push('');
  }
  out.push('function chkInt(v: number, min: number, max: number, name: string): number {');
  out.push(
    "  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new TypeError(`${name}: expected an integer from ${min} to ${max}, received ${typeof v} ${String(v)}`);",
  );
  out.push('  return v;');
  out.push('}');
  out.push('function chkU64(v: bigint, name: string): bigint {');
  out.push(
    "  if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) throw new TypeError(`${name}: expected a bigint from 0n to 2n**64n-1n, received ${typeof v} ${String(v)}`);",
  );
  out.push('  return v;');
  out.push('}');
  out.push('function chkS64(v: bigint, name: string): bigint {');
  out.push(
    "  if (typeof v !== 'bigint' || v < -(2n ** 63n) || v >= 2n ** 63n) throw new TypeError(`${name}: expected a signed 64-bit bigint, received ${typeof v} ${String(v)}`);",
  );
  out.push('  return v;');
  out.push('}');
  out.push('function chkBuf(v: Buffer, size: number, name: string): Buffer {');
  out.push(
    '  if (!Buffer.isBuffer(v) || v.length !== size) throw new TypeError(`${name}: expected a Buffer of ${size} bytes, received ${Buffer.isBuffer(v) ? `a Buffer of ${v.length} bytes` : typeof v}`);',
  );
  out.push('  return v;');
  out.push('}');
  out.push('function chkArr<T>(v: T[], n: number, name: string): T[] {');
  out.push(
    '  if (!Array.isArray(v) || v.length !== n) throw new TypeError(`${name}: expected an array of ${n} elements, received ${Array.isArray(v) ? `${v.length} elements` : typeof v}`);',
  );
  out.push('  return v;');
  out.push('}');
  out.push('');
  for (const s of Object.values(model.structs)) {
    out.push(genStruct(s));
    out.push('');
  }
  const codecOf = (t: string): string => {
    if (t === 'u32' || t === 'u64' || t === 'none') return t;
    if (model.structs[t]) {
      const T = pascal(t);
      return T[0].toLowerCase() + T.slice(1) + 'Codec';
    }
    throw new Error(`map key/value type ${t} has no codec (only u32, u64 and xd_* structs)`);
  };
  out.push("/** Key and value codecs of each map, by role. Per-CPU maps: the codec is for one CPU's value. */");
  out.push('export const MAP_CODECS = {');
  for (const m of Object.values(model.maps))
    out.push(`  ${m.role}: { key: ${codecOf(m.keyType)}, value: ${codecOf(m.valueType)} },`);
  out.push('} as const;');
  out.push('');
  out.push("/** Everything above as data: what test/bpf/layouts.test.ts compares with the object's BTF. */");
  // The maps and globals are written once, above (MAPS, GLOBALS); the model refers to them.
  const { maps: _maps, globals: _globals, ...rest } = model;
  out.push(
    `export const LAYOUT: LayoutModel = ${lit(rest).replace(/\n\}$/, '\n  maps: MAPS,\n  globals: GLOBALS,\n}')};`,
  );
  out.push('');
  return out.join('\n');
}

function arg(argv: string[], name: string, dflt: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] ? argv[i + 1] : dflt;
}

export function main(argv: string[]): number {
  const root = path.resolve(__dirname, '../..');
  const objectPath = path.resolve(root, arg(argv, '--object', 'dist/bpf/xdirector.bpf.o'));
  const headerPath = path.resolve(root, arg(argv, '--header', 'bpf/include/xdirector.h'));
  const outPath = path.resolve(root, arg(argv, '--out', 'src/bpf/layouts.generated.ts'));
  if (!fs.existsSync(objectPath)) {
    process.stderr.write(`gen-layouts: ${objectPath} not found; build it first: make -C bpf\n`);
    return 1;
  }
  const header = readHeader(headerPath);
  const model = modelFromObject(objectPath, header);
  const text = generate(model, header, path.relative(root, objectPath));
  if (argv.includes('--check')) {
    const cur = fs.existsSync(outPath) ? fs.readFileSync(outPath, 'utf8') : '';
    if (cur === text) {
      process.stdout.write(`gen-layouts: ${path.relative(root, outPath)} is up to date\n`);
      return 0;
    }
    process.stderr.write(
      `gen-layouts: ${path.relative(root, outPath)} is stale; run node dist/scripts/gen-layouts.js\n`,
    );
    return 1;
  }
  fs.writeFileSync(outPath, text);
  process.stdout.write(
    `gen-layouts: wrote ${path.relative(root, outPath)} (${Object.keys(model.structs).length} structs, ${Object.keys(model.enums).length} enums, ${Object.keys(model.maps).length} maps, hash 0x${layoutHash(model).toString(16)})\n`,
  );
  return 0;
}

// Exported for the layout test; also used by compareLayouts callers.
export { compareLayouts };

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`gen-layouts: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
