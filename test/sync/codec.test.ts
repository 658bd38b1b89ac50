// Connection sync, the pure parts: the wire codec (round trip, HMAC, fuzzed input), the replay
// window, the import planner's rules, and the `sync:` config section with its key file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHmac, randomBytes } from 'node:crypto';
import {
  decodeMessage,
  encodeMessages,
  entrySize,
  HEADER_SIZE,
  MAC_SIZE,
  MAX_MESSAGE,
  ReplayWindow,
  sequenceFrom,
  SyncDecodeError,
  type SyncEntry,
} from '../../src/sync/codec';
import { addrKey, planImport, serviceKey, type LocalView } from '../../src/sync/plan';
import { parseConfig } from '../../src/config';
import { XdError } from '../../src/errors';

const KEY = Buffer.from('0123456789abcdef0123456789abcdef');
const ip4 = (s: string) => Buffer.from(s.split('.').map(Number));

function entry(i: number, o: Partial<SyncEntry> = {}): SyncEntry {
  return {
    kind: 'handshake',
    family: 4,
    proto: 'tcp',
    forwarding: 'dr',
    client: ip4(`10.1.${(i >> 8) & 255}.${i & 255}`),
    clientPort: 30000 + (i % 30000),
    vip: ip4('10.0.0.100'),
    vipPort: 3306,
    backend: ip4('10.0.0.11'),
    backendPort: 3306,
    ageMs: i % 1000,
    ...o,
  };
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

test('messages round-trip, split at MAX_MESSAGE, 26 bytes per IPv4 entry and 62 per IPv6 one', () => {
  const v6 = entry(1, {
    family: 6,
    client: Buffer.alloc(16, 1),
    vip: Buffer.alloc(16, 2),
    backend: Buffer.alloc(16, 3),
    proto: 'udp',
    kind: 'refresh',
    forwarding: 'tunnel',
  });
  const entries = [...Array.from({ length: 120 }, (_, i) => entry(i)), v6];
  const msgs = encodeMessages(KEY, 7, sequenceFrom(1000), 5000, entries);
  assert.ok(msgs.length >= 3);
  for (const m of msgs) assert.ok(m.length <= MAX_MESSAGE);
  const back = msgs.flatMap((m) => decodeMessage(KEY, m).entries);
  assert.deepEqual(back, entries);
  assert.equal(entrySize(4), 26);
  assert.equal(entrySize(6), 62);
  const seqs = msgs.map((m) => decodeMessage(KEY, m).seq);
  assert.deepEqual(
    seqs,
    seqs.map((_, i) => 1000n * 1000n + BigInt(i + 1)),
  );
  const one = decodeMessage(KEY, msgs[0]!);
  assert.equal(one.sender, 7);
  assert.equal(one.sentAtMs, 5000);
  // A heartbeat: one empty message.
  const hb = encodeMessages(KEY, 7, sequenceFrom(0), 1, []);
  assert.equal(hb.length, 1);
  assert.equal(hb[0]!.length, HEADER_SIZE + MAC_SIZE);
  assert.deepEqual(decodeMessage(KEY, hb[0]!).entries, []);
});

test('a message under another key, or with any byte changed, is refused as hmac (or earlier)', () => {
  const [m] = encodeMessages(KEY, 7, sequenceFrom(0), 1, [entry(1), entry(2)]);
  assert.throws(
    () => decodeMessage(Buffer.from('another key of 32 bytes........!'), m!),
    (e: unknown) => e instanceof SyncDecodeError && e.problem === 'hmac',
  );
  for (let i = 0; i < m!.length; i++) {
    const x = Buffer.from(m!);
    x[i] ^= 0x01;
    assert.throws(() => decodeMessage(KEY, x), SyncDecodeError, `byte ${i} flipped was accepted`);
  }
});

test('fuzz: random and mutated datagrams only ever throw SyncDecodeError, and none is accepted', () => {
  const r = rng(23);
  const [valid] = encodeMessages(
    KEY,
    9,
    sequenceFrom(0),
    1,
    Array.from({ length: 20 }, (_, i) => entry(i)),
  );
  let refused = 0;
  for (let n = 0; n < 10000; n++) {
    let buf: Buffer;
    const mode = n % 4;
    if (mode === 0) buf = randomBytes(Math.floor(r() * 1600));
    else if (mode === 1) {
      buf = Buffer.from(valid!);
      for (let k = 1 + Math.floor(r() * 8); k > 0; k--) buf[Math.floor(r() * buf.length)] = Math.floor(r() * 256);
    } else if (mode === 2) buf = valid!.subarray(0, Math.floor(r() * valid!.length));
    else {
      // Well-formed header, random body, then a correct-length trailer: still not signed.
      buf = Buffer.concat([valid!.subarray(0, HEADER_SIZE), randomBytes(Math.floor(r() * 400)), randomBytes(MAC_SIZE)]);
    }
    try {
      decodeMessage(KEY, buf);
      if (!buf.equals(valid!)) assert.fail(`fuzz case ${n} (mode ${mode}) was accepted`);
    } catch (e) {
      if (!(e instanceof SyncDecodeError)) throw e;
      refused++;
    }
  }
  assert.ok(refused > 9500);
});

test('a signed message whose entries are malformed is refused as entry or length, never half read', () => {
  // Signed with the right key (a peer with a bug): the parser still checks every field.
  const [m] = encodeMessages(KEY, 7, sequenceFrom(0), 1, [entry(1)]);
  const resign = (b: Buffer): Buffer => {
    const body = b.subarray(0, b.length - MAC_SIZE);
    return Buffer.concat([body, createHmac('sha256', KEY).update(body).digest().subarray(0, MAC_SIZE)]);
  };
  const badKind = Buffer.from(m!);
  badKind[HEADER_SIZE] = 9;
  assert.throws(
    () => decodeMessage(KEY, resign(badKind)),
    (e: unknown) => e instanceof SyncDecodeError && e.problem === 'entry',
  );
  const badCount = Buffer.from(m!);
  badCount.writeUInt16BE(5, 6);
  assert.throws(
    () => decodeMessage(KEY, resign(badCount)),
    (e: unknown) => e instanceof SyncDecodeError && e.problem === 'length',
  );
  const badFamily = Buffer.from(m!);
  badFamily[HEADER_SIZE + 1] = 6; // claims IPv6: runs past the end
  assert.throws(
    () => decodeMessage(KEY, resign(badFamily)),
    (e: unknown) => e instanceof SyncDecodeError && e.problem === 'length',
  );
});

test('replay window: each sequence once, reordering within 64 accepted, older refused', () => {
  const w = new ReplayWindow();
  assert.equal(w.accept(100n), true);
  assert.equal(w.accept(100n), false);
  assert.equal(w.accept(98n), true);
  assert.equal(w.accept(98n), false);
  assert.equal(w.accept(101n), true);
  assert.equal(w.accept(200n), true);
  assert.equal(w.accept(137n), true);
  assert.equal(w.accept(136n), false, 'older than the window');
  assert.equal(w.accept(99n), false);
  // A restarted sender starts at its start time in microseconds: above its old numbers.
  assert.ok(sequenceFrom(Date.now())() > sequenceFrom(Date.now() - 1000)());
});

test("import plan: only this director's services and usable backends; never a local flow; a newer takeover entry kept; ages carried", () => {
  const view: LocalView = {
    services: new Map([
      [
        serviceKey(4, ip4('10.0.0.100'), 3306, 'tcp'),
        { backends: new Map([[addrKey(ip4('10.0.0.11')), { index: 5, generation: 2, forwarding: 'dr' as const }]]) },
      ],
    ]),
  };
  const now = 10_000_000_000n;
  const existing = new Map<number, { table: 'flow' | 'probation' | 'embryonic' | 'takeover'; lastSeenNs: bigint }>([
    [2, { table: 'flow', lastSeenNs: 0n }],
    [3, { table: 'takeover', lastSeenNs: now }],
    [4, { table: 'takeover', lastSeenNs: 1n }],
    [6, { table: 'probation', lastSeenNs: 0n }],
  ]);
  const entries = [
    entry(1),
    entry(2),
    entry(3),
    entry(4),
    entry(6),
    entry(7, { vip: ip4('10.0.0.200') }),
    entry(8, { backend: ip4('192.0.2.66') }),
    entry(9, { forwarding: 'tunnel' }),
    entry(10, { vipPort: 3307 }),
  ];
  let asked: number[] = [];
  const plan = planImport(entries, view, now, 3, (es) => {
    asked = es.map((e) => e.client[3]!);
    return es.map((e) => existing.get(e.client[3]!));
  });
  assert.deepEqual(asked, [1, 2, 3, 4, 6], 'only entries of our services and backends are looked up, in one call');
  assert.deepEqual(
    plan.installs.map((i) => i.entry.client[3]),
    [1, 4],
  );
  assert.deepEqual(plan.rejected, { local_flow: 2, local_newer: 1, no_service: 2, no_backend: 1, forwarding: 1 });
  assert.equal(plan.installs[0]!.backend.index, 5);
  assert.equal(plan.installs[0]!.lastSeenNs, now - BigInt(1 + 3) * 1_000_000n, 'age on the sender plus transit');
  assert.equal(plan.examples.no_backend?.backend.toString('hex'), 'c0000242');
});

// ---- config ---------------------------------------------------------------------------------

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xd-sync-cfg-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cfgText(sync: string): string {
  return `instance: t\ninterface: eth0\nservices:\n  - name: db\n    vip: 10.0.0.100\n    port: 3306\n    check: none\n    backends: [{ address: 10.0.0.11 }]\n${sync}`;
}
function problems(text: string, checkFiles = true): string[] {
  try {
    parseConfig(text, 'lab.yaml', { checkFiles });
  } catch (e) {
    assert.ok(e instanceof XdError, String(e));
    return e.message.split('\n');
  }
  return [];
}

test('sync config: accepted with a key file; refused without one, with a short key, with itself as a peer, with peers and multicast', () => {
  const key = path.join(tmp, 'sync.key');
  fs.writeFileSync(key, 'a'.repeat(64) + '\n', { mode: 0o600 });
  const good = parseConfig(
    cfgText(`sync:\n  source: 10.0.0.2\n  peers: [10.0.0.3]\n  key_file: ${key}\n`),
    'lab.yaml',
    { checkFiles: true },
  );
  assert.deepEqual(good.sync, {
    source: '10.0.0.2',
    family: 4,
    peers: ['10.0.0.3'],
    port: 8850,
    keyFile: key,
    maxImportRate: 100000,
    silentAfterMs: 3000,
  });
  const missing = problems(cfgText(`sync:\n  source: 10.0.0.2\n  peers: [10.0.0.3]\n  key_file: ${tmp}/nope.key\n`));
  assert.ok(
    missing.some((l) => l.includes('sync.key_file') && l.includes('ENOENT') && l.includes('openssl rand')),
    missing.join('\n'),
  );
  const short = path.join(tmp, 'short.key');
  fs.writeFileSync(short, 'abc\n', { mode: 0o600 });
  const s = problems(cfgText(`sync:\n  source: 10.0.0.2\n  peers: [10.0.0.3]\n  key_file: ${short}\n`));
  assert.ok(
    s.some((l) => l.includes('shorter than 16')),
    s.join('\n'),
  );
  const self = problems(cfgText(`sync:\n  source: 10.0.0.2\n  peers: [10.0.0.3, 10.0.0.2]\n  key_file: ${key}\n`));
  assert.ok(
    self.some((l) => l.includes('sync.peers[1]') && l.includes("this director's own sync source")),
    self.join('\n'),
  );
  const both = problems(
    cfgText(`sync:\n  source: 10.0.0.2\n  peers: [10.0.0.3]\n  multicast: 239.255.88.50\n  key_file: ${key}\n`),
  );
  assert.ok(
    both.some((l) => l.includes('not both')),
    both.join('\n'),
  );
  const none = problems(cfgText(`sync:\n  source: 10.0.0.2\n  key_file: ${key}\n`));
  assert.ok(
    none.some((l) => l.includes('list the peers')),
    none.join('\n'),
  );
  const notMc = problems(cfgText(`sync:\n  source: 10.0.0.2\n  multicast: 10.0.0.9\n  key_file: ${key}\n`));
  assert.ok(
    notMc.some((l) => l.includes('not a multicast address')),
    notMc.join('\n'),
  );
  fs.chmodSync(key, 0o644);
  const warned = parseConfig(
    cfgText(`sync:\n  source: 10.0.0.2\n  multicast: 239.255.88.50\n  key_file: ${key}\n`),
    'lab.yaml',
    { checkFiles: true },
  );
  assert.ok(
    warned.warnings.some((w) => w.includes('sync.key_file') && w.includes('chmod 600')),
    warned.warnings.join('\n'),
  );
});
