// The committed TypeScript layouts (src/bpf/layouts.generated.ts) against the
// object the addon really loads (dist/bpf/xdirector.bpf.o): BTF layouts, the
// kernel's view of the maps, and the generated codecs (Cilium alignchecker,
// cilium/ebpf Compatible()).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as L from '../../src/bpf/layouts.generated';
import { compareLayouts, layoutHash, LayoutModel } from '../../src/bpf/layout';
import { btfFromElf, BtfError } from '../../src/bpf/btf';
import { modelFromObject, readHeader } from '../../scripts/gen-layouts';
import { BpfObject } from '../../src/bpf/object';
import { Codec } from '../../src/bpf/codec';

const root = path.resolve(__dirname, '../../..');
const OBJECT = path.join(root, 'dist/bpf/xdirector.bpf.o');
const HEADER = path.join(root, 'bpf/include/xdirector.h');

function clone(m: LayoutModel): LayoutModel {
  return JSON.parse(JSON.stringify(m)) as LayoutModel;
}

let loaded: BpfObject | undefined;

before(() => {
  // Builds only if a source changed (make is idempotent).
  execFileSync('make', ['-s', '-C', path.join(root, 'bpf')], { stdio: 'pipe' });
});

after(() => {
  loaded?.close();
});

test('the committed layouts match the BTF of the object the control plane loads', () => {
  const actual = modelFromObject(OBJECT, readHeader(HEADER));
  const diffs = compareLayouts(L.LAYOUT, actual);
  assert.deepEqual(
    diffs,
    [],
    `src/bpf/layouts.generated.ts is stale; regenerate with node dist/scripts/gen-layouts.js:\n${diffs.join('\n')}`,
  );
});

test('LAYOUT_HASH is the hash of the committed layout', () => {
  assert.equal(layoutHash(L.LAYOUT), L.LAYOUT_HASH);
  assert.equal(L.LAYOUT_VERSION, readHeader(HEADER).layoutVersion);
});

test('a moved field is reported as "struct X field Y: offset A changed to B"', () => {
  const altered = clone(L.LAYOUT);
  const f = altered.structs.xd_backend.fields.find((x) => x.name === 'generation')!;
  f.offset = 12;
  assert.deepEqual(compareLayouts(L.LAYOUT, altered), ['struct xd_backend field generation: offset 8 changed to 12']);
});

test('size, type, enum and map changes are each reported on their own line', () => {
  const altered = clone(L.LAYOUT);
  altered.structs.xd_flow.size = 24;
  altered.structs.xd_service_key.fields.find((x) => x.name === 'port')!.kind = 'u16';
  altered.structs.xd_service_key.fields.find((x) => x.name === 'port')!.byteOrder = 'host';
  const reasonMax = L.LAYOUT.enums.xd_reason.values.XD_R_MAX!;
  altered.enums.xd_reason.values.XD_R_MAX = reasonMax + 1;
  altered.maps.svc.valueSize = 20;
  delete altered.structs.xd_meta;
  assert.deepEqual(compareLayouts(L.LAYOUT, altered).sort(), [
    `enum xd_reason value XD_R_MAX: ${reasonMax} changed to ${reasonMax + 1}`,
    'map xd_svc_v1: valueSize 16 changed to 20',
    'struct xd_flow: size 16 changed to 24',
    'struct xd_meta: missing from the object',
    'struct xd_service_key field port: byteOrder network changed to host',
    'struct xd_service_key field port: kind be16 changed to u16',
  ]);
});

test('the kernel creates every map with the generated type, key size and value size', async () => {
  // Small sizes: this test is about layouts, not capacity.
  loaded = await BpfObject.load(OBJECT, {
    maxEntries: { [L.MAPS.flow4.name]: 1024, [L.MAPS.flow6.name]: 1024, [L.MAPS.ring.name]: 2 * 2 * 17 },
  });
  const kernel = loaded.maps().filter((m) => !m.internal);
  assert.deepEqual(
    kernel.map((m) => m.name).sort(),
    Object.values(L.MAPS)
      .map((m) => m.name)
      .sort(),
  );
  for (const m of Object.values(L.MAPS)) {
    const k = kernel.find((x) => x.name === m.name)!;
    assert.deepEqual(
      { name: k.name, type: k.typeName, keySize: k.keySize, valueSize: k.valueSize },
      { name: m.name, type: m.type, keySize: m.keySize, valueSize: m.valueSize },
    );
  }
});

test('libbpf places every generated global at the generated offset and size', async () => {
  loaded ??= await BpfObject.load(OBJECT, {
    maxEntries: { [L.MAPS.flow4.name]: 1024, [L.MAPS.flow6.name]: 1024, [L.MAPS.ring.name]: 2 * 2 * 17 },
  });
  const { getNative } = await import('../../src/bpf/native');
  const handle = Object.getOwnPropertySymbols(loaded).find((s) => s.description === 'xdirector.bpf.objectHandle')!;
  const globals = getNative().objectGlobals((loaded as unknown as Record<symbol, number>)[handle]);
  for (const [name, g] of Object.entries(L.GLOBALS)) {
    const k = globals.find((x) => x.name === name);
    assert.deepEqual(
      k && { section: k.section, offset: k.offset, size: k.size },
      { section: g.section, offset: g.offset, size: g.size },
      `global ${name}`,
    );
  }
});

test('every shared struct declares all its bytes (no implicit padding)', () => {
  for (const s of Object.values(L.LAYOUT.structs)) {
    const covered = s.fields.reduce((n, f) => n + f.size, 0);
    assert.equal(covered, s.size, `struct ${s.name}: fields cover ${covered} of ${s.size} bytes`);
  }
});

test('every generated codec decodes and re-encodes every byte of its struct unchanged', () => {
  for (const [role, c] of Object.entries(L.MAP_CODECS)) {
    for (const codec of [c.key, c.value] as Codec<unknown>[]) {
      if (codec.size === 0) continue; // a ring buffer map (xd_sync_v1) has no key or value: its record is xd_sync_event
      const bytes = Buffer.alloc(codec.size);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 37 + 11) & 0xff;
      assert.deepEqual(codec.encode(codec.decode(bytes)), bytes, `map ${role} codec of ${codec.size} bytes`);
    }
  }
});

test('codecs put network-order fields in network order at the BTF offsets', () => {
  const key = L.encodeXdServiceKey({
    vip: Buffer.from([10, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    port: 3306,
    proto: 6,
    family: L.XdFamily.XD_FAMILY_V4,
  });
  assert.equal(key.toString('hex'), '0a000064' + '00'.repeat(12) + '0cea' + '06' + '04');
  const be = L.encodeXdBackend({
    mac: Buffer.from('020000000011', 'hex'),
    family: 4,
    flags: L.XdBackendFlags.XD_BE_F_ACTIVE,
    generation: 7,
    ifindex: 3,
    service: 1,
    addr: Buffer.from([10, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
  });
  const gen = L.LAYOUT.structs.xd_backend.fields.find((f) => f.name === 'generation')!;
  assert.equal(be.readUInt32LE(gen.offset), 7);
  assert.deepEqual(L.decodeXdBackend(be).addr.subarray(0, 4), Buffer.from([10, 0, 0, 11]));
  const meta = L.encodeXdMeta({
    layout_version: 1,
    ring_max: 65537,
    max_services: 64,
    max_backends: 4096,
    created_ns: 2n ** 62n,
    layout_hash: L.LAYOUT_HASH,
    flow_seed: 0xfedcba98,
    pad: 0,
  });
  assert.equal(L.decodeXdMeta(meta).layout_hash, L.LAYOUT_HASH);
  assert.equal(L.decodeXdMeta(meta).flow_seed, 0xfedcba98);
});

test('codecs refuse values that do not fit, naming the field', () => {
  assert.throws(() => L.encodeXdServiceKey({ vip: Buffer.alloc(4), port: 3306, proto: 6, family: 4 }), {
    name: 'TypeError',
    message: 'xd_service_key.vip: expected a Buffer of 16 bytes, received a Buffer of 4 bytes',
  });
  assert.throws(() => L.encodeXdServiceKey({ vip: Buffer.alloc(16), port: 70000, proto: 6, family: 4 }), {
    name: 'TypeError',
    message: 'xd_service_key.port: expected an integer from 0 to 65535, received number 70000',
  });
});

test('a truncated object is refused with a BTF error, not a crash', () => {
  const buf = fs.readFileSync(OBJECT);
  assert.throws(() => btfFromElf(buf.subarray(0, 200)), BtfError);
  assert.throws(
    () => btfFromElf(Buffer.from('not an elf file at all, just text......................................')),
    { message: 'not an ELF file (bad magic)' },
  );
});
