// The kernel's SipHash/hsiphash (lib/siphash.c) and IPVS mh table (ip_vs_mh.c) reproduced in
// src/maglev: test vectors from the kernel's own self-test (lib/tests/siphash_kunit.c, taken
// from the SipHash reference implementation), a small table checked by hand, table properties,
// and the flow-hash vectors that the BPF program's C implementation must also produce.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  siphash,
  hsiphash,
  hsiphash1u32,
  sipKeyWords,
  buildIpvsMh,
  ipvsMhHash,
  ipvsMhPermutation,
  ipvsMhTurns,
  ipvsMhLookup,
  ipvsMhAddrFold,
  IPVS_MH_PRIMES,
  IPVS_MH_DEFAULT_SIZE,
  IpvsMhDest,
} from '../../src/maglev';
import { XdError } from '../../src/errors';

const TEST_KEY = { k0: 0x0706050403020100n, k1: 0x0f0e0d0c0b0a0908n };

// lib/tests/siphash_kunit.c test_vectors_siphash: SipHash-2-4 of bytes 0..i-1, i = 0..63.
const SIPHASH_VECTORS = [
  0x726fdb47dd0e0e31n,
  0x74f839c593dc67fdn,
  0x0d6c8009d9a94f5an,
  0x85676696d7fb7e2dn,
  0xcf2794e0277187b7n,
  0x18765564cd99a68dn,
  0xcbc9466e58fee3cen,
  0xab0200f58b01d137n,
  0x93f5f5799a932462n,
  0x9e0082df0ba9e4b0n,
  0x7a5dbbc594ddb9f3n,
  0xf4b32f46226bada7n,
  0x751e8fbc860ee5fbn,
  0x14ea5627c0843d90n,
  0xf723ca908e7af2een,
  0xa129ca6149be45e5n,
  0x3f2acc7f57c29bdbn,
  0x699ae9f52cbe4794n,
  0x4bc1b3f0968dd39cn,
  0xbb6dc91da77961bdn,
  0xbed65cf21aa2ee98n,
  0xd0f2cbb02e3b67c7n,
  0x93536795e3a33e88n,
  0xa80c038ccd5ccec8n,
  0xb8ad50c6f649af94n,
  0xbce192de8a85b8ean,
  0x17d835b85bbb15f3n,
  0x2f2e6163076bcfadn,
  0xde4daaaca71dc9a5n,
  0xa6a2506687956571n,
  0xad87a3535c49ef28n,
  0x32d892fad841c342n,
  0x7127512f72f27ccen,
  0xa7f32346f95978e3n,
  0x12e0b01abb051238n,
  0x15e034d40fa197aen,
  0x314dffbe0815a3b4n,
  0x027990f029623981n,
  0xcadcd4e59ef40c4dn,
  0x9abfd8766a33735cn,
  0x0e3ea96b5304a7d0n,
  0xad0c42d6fc585992n,
  0x187306c89bc215a9n,
  0xd4a60abcf3792b95n,
  0xf935451de4f21df2n,
  0xa9538f0419755787n,
  0xdb9acddff56ca510n,
  0xd06c98cd5c0975ebn,
  0xe612a3cb9ecba951n,
  0xc766e62cfcadaf96n,
  0xee64435a9752fe72n,
  0xa192d576b245165an,
  0x0a8787bf8ecb74b2n,
  0x81b3e73d20b49b6fn,
  0x7fa8220ba3b2ecean,
  0x245731c13ca42499n,
  0xb78dbfaf3a8d83bdn,
  0xea1ad565322a1a0bn,
  0x60e61c23a3795013n,
  0x6606d7e446282b93n,
  0x6ca4ecb15c5f91e1n,
  0x9f626da15c9625f3n,
  0xe51b38608ef25f57n,
  0x958a324ceb064572n,
];

// lib/tests/siphash_kunit.c test_vectors_hsiphash for BITS_PER_LONG == 64 (SipHash-1-3, low 32 bits).
const HSIPHASH64_VECTORS = [
  0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67, 0xc59f22a7, 0x9bb11140, 0x8d299a8e,
  0x6c063de4, 0x92ff097f, 0xf94dc352, 0x57b4d9a2, 0x1229ffa7, 0xc0f95d34, 0x2a519956, 0x7d908b66, 0x63dbd80c,
  0xb473e63e, 0x8d297d1c, 0xa6cce040, 0x2b45f844, 0xa320872e, 0xdae6c123, 0x67349c8c, 0x705b0979, 0xca9913a5,
  0x4ade3b35, 0xef6cd00d, 0x4ab1e1f4, 0x43c5e663, 0x8c21d1bc, 0x16a7b60d, 0x7a8ff9bf, 0x1f2a753e, 0xbf186b91,
  0xada26206, 0xa3c33057, 0xae3a36a1, 0x7b108392, 0x99e41531, 0x3f1ad944, 0xc8138825, 0xc28949a6, 0xfaf8876b,
  0x9f042196, 0x68b1d623, 0x8b5114fd, 0xdf074c46, 0x12cc86b3, 0x0a52098f, 0x9d292f9a, 0xa2f41f12, 0x43a71ed0,
  0x73f0bce6, 0x70a7e980, 0x243c6d75, 0xfdb71513, 0xa67d8a08, 0xb7e8f148, 0xf7a644ee, 0x0f1837f2, 0x4b6694e0,
  0xb7bbb3a8,
];

const INPUT = Uint8Array.from({ length: 64 }, (_, i) => i);

function digest(t: Uint32Array): string {
  return createHash('sha256')
    .update(Buffer.from(t.buffer, t.byteOffset, t.byteLength))
    .digest('hex');
}

function lab(): IpvsMhDest[] {
  // Kernel list order for destinations added .11, .12, .13 in that order: newest first.
  return [
    { id: 3, address: '10.77.0.13', port: 3306, family: 4, weight: 2 },
    { id: 2, address: '10.77.0.12', port: 3306, family: 4, weight: 1 },
    { id: 1, address: '10.77.0.11', port: 3306, family: 4, weight: 1 },
  ];
}

test('siphash (SipHash-2-4) matches the kernel self-test vectors for lengths 0 to 63', () => {
  for (let i = 0; i < 64; i++) {
    assert.equal(siphash(INPUT.subarray(0, i), TEST_KEY), SIPHASH_VECTORS[i], `length ${i}`);
  }
});

test('hsiphash (64-bit kernels: SipHash-1-3, 32 bits) matches the kernel self-test vectors for lengths 0 to 63', () => {
  for (let i = 0; i < 64; i++) {
    assert.equal(hsiphash(INPUT.subarray(0, i), TEST_KEY), HSIPHASH64_VECTORS[i], `length ${i}`);
  }
});

test('hsiphash_1u32 equals hsiphash of the same 4 little-endian bytes, as in the kernel self-test', () => {
  assert.equal(hsiphash1u32(0x03020100, sipKeyWords(TEST_KEY)), HSIPHASH64_VECTORS[4]);
});

test('the flow hash matches the three reference vectors shared with the BPF program', () => {
  // ip_vs_mh_hashkey(af, client, port, hash1, 0): hsiphash of (port + ntohl(addr_fold)).
  assert.equal(ipvsMhHash('10.77.0.10', 40000, 4, true), 0x4159f7de);
  assert.equal(ipvsMhHash('10.77.0.10', 40000, 4, false), 0xaa2e4244);
  assert.equal(ipvsMhHash('2001:db8::10', 40000, 6, true), 0xc3dd883f);
  // Slots in the 4093 table: 0x4159f7de % 4093 etc.
  assert.equal(ipvsMhHash('10.77.0.10', 40000, 4, true) % 4093, 0x4159f7de % 4093);
});

test('without mh-port the client port does not change the flow hash', () => {
  assert.equal(ipvsMhHash('10.77.0.10', 1, 4, false), ipvsMhHash('10.77.0.10', 65535, 4, false));
  assert.notEqual(ipvsMhHash('10.77.0.10', 1, 4, true), ipvsMhHash('10.77.0.10', 2, 4, true));
});

test('an IPv6 address folds to the XOR of its four 32-bit words', () => {
  assert.equal(ipvsMhAddrFold('2001:db8::10', 6), (0x20010db8 ^ 0 ^ 0 ^ 0x10) >>> 0);
  assert.equal(ipvsMhAddrFold('10.77.0.10', 4), 0x0a4d000a);
  // Same fold, same hash: the kernel cannot tell these apart either.
  assert.equal(ipvsMhHash('2001:db8::10', 5, 6, true), ipvsMhHash('::2001:db8:0:10', 5, 6, true));
});

test('turns follow (weight / gcd) >> shift with the table-size dependent shift', () => {
  assert.deepEqual(ipvsMhTurns([2, 1, 1]), [2, 1, 1]);
  assert.deepEqual(ipvsMhTurns([100, 200, 300]), [1, 2, 3]);
  // 4093: TAB_BITS 6; max 1000 -> fls 10 -> shift 4: 3 >> 4 = 0 -> 1 (non-zero weight), 1000 >> 4 = 62
  assert.deepEqual(ipvsMhTurns([3, 1000]), [1, 62]);
  // 251: TAB_INDEX 8 -> TAB_BITS 4; max 100 -> fls 7 -> shift 3
  assert.deepEqual(ipvsMhTurns([1, 100], 251), [1, 12]);
  assert.deepEqual(ipvsMhTurns([0, 5]), [0, 1]);
  assert.deepEqual(ipvsMhTurns([0, 0]), [0, 0]);
});

test('a small 251-slot table matches the slots worked out by hand', () => {
  // Permutations at M=251 (offset, skip): .13 (132, 231), .12 (17, 134), .11 (120, 48).
  assert.deepEqual(ipvsMhPermutation('10.77.0.13', 3306, 4, 251), { offset: 132, skip: 231 });
  assert.deepEqual(ipvsMhPermutation('10.77.0.12', 3306, 4, 251), { offset: 17, skip: 134 });
  assert.deepEqual(ipvsMhPermutation('10.77.0.11', 3306, 4, 251), { offset: 120, skip: 48 });
  const t = buildIpvsMh(lab(), 251);
  // Round 1: .13 has 2 turns: 132, then 132+231-251 = 112; .12: 17; .11: 120.
  // Round 2: .13: 112+231-251 = 92, 92+231-251 = 72; .12: 17+134 = 151; .11: 120+48 = 168.
  const expected: [number, number][] = [
    [132, 3],
    [112, 3],
    [17, 2],
    [120, 1],
    [92, 3],
    [72, 3],
    [151, 2],
    [168, 1],
  ];
  for (const [slot, id] of expected) assert.equal(t[slot], id, `slot ${slot}`);
});

test('the lab table at 4093 slots equals the one computed by a C transcription of ip_vs_mh.c', () => {
  // Reference: lib/siphash.c hsiphash + ip_vs_mh_permutate/populate compiled in user space
  // (64-bit unsigned long keys, native u64 arithmetic), same destinations in the same list order.
  // The harness numbers destinations by list position (1 = head = .13).
  const t = buildIpvsMh(
    lab().map((d, i) => ({ ...d, id: i + 1 })),
    4093,
  );
  assert.equal(digest(t), 'f8677edbfc3fcbb751d1548b0b3dcded4068dd02b2456a955b8479faff172512');
  assert.deepEqual([...t.subarray(0, 24)], [1, 3, 1, 2, 1, 1, 1, 2, 3, 1, 1, 3, 3, 1, 2, 3, 3, 1, 2, 2, 1, 1, 1, 1]);
});

test('an IPv6 table at 251 slots equals the one computed by the C transcription', () => {
  const t = buildIpvsMh(
    [
      { id: 1, address: 'fd00::11', port: 3306, family: 6, weight: 1 },
      { id: 2, address: 'fd00::12', port: 3306, family: 6, weight: 2 },
    ],
    251,
  );
  assert.equal(digest(t), 'ec594a0f46d4c3ea16410c94a3531cdf2579381a1c464753dff5b03f88fa6b9a');
});

test('every slot is filled and shares follow the turns', () => {
  const t = buildIpvsMh(lab());
  assert.equal(t.length, IPVS_MH_DEFAULT_SIZE);
  const c = [0, 0, 0, 0];
  for (const v of t) c[v]!++;
  assert.equal(c[0], 0);
  // 2:1:1 turns: .13 gets half the table (one slot of rounding), the others a quarter each.
  assert.ok(Math.abs(c[3]! - 4093 / 2) <= 2, `counts ${c}`);
  assert.ok(Math.abs(c[2]! - 4093 / 4) <= 2 && Math.abs(c[1]! - 4093 / 4) <= 2, `counts ${c}`);
});

test('a destination with weight 0 takes no slot', () => {
  const d = lab();
  d[1]!.weight = 0;
  const t = buildIpvsMh(d);
  assert.equal(t.indexOf(2), -1);
  assert.equal(t.indexOf(0), -1);
});

test('a destination drained to weight 0 keeps its slots through its last weight', () => {
  const d = lab();
  const before = buildIpvsMh(d);
  d[1]!.weight = 0;
  d[1]!.lastWeight = 1; // edited to 0: the kernel keeps last_weight 1
  assert.equal(digest(buildIpvsMh(d)), digest(before));
});

test('all weights 0 give an all-zero table', () => {
  const d = lab().map((x) => ({ ...x, weight: 0 }));
  assert.ok(buildIpvsMh(d).every((v) => v === 0));
  assert.ok(buildIpvsMh([]).every((v) => v === 0));
});

test('the destination list order changes the table, so it must be the kernel order', () => {
  const d = lab();
  assert.notEqual(digest(buildIpvsMh(d)), digest(buildIpvsMh([...d].reverse())));
});

test('a table size the kernel cannot have is rejected with the possible sizes', () => {
  assert.throws(
    () => buildIpvsMh(lab(), 4091),
    (e: unknown) => {
      assert.ok(e instanceof XdError);
      assert.equal(e.code, 'XD_ERR_RING');
      assert.match(e.message, /table size 4091 is not one the kernel can have.*4093/);
      return true;
    },
  );
  for (const p of IPVS_MH_PRIMES) assert.equal(buildIpvsMh(lab(), p).length, p);
});

test('mixed address families and duplicate ids are rejected', () => {
  assert.throws(
    () => buildIpvsMh([...lab(), { id: 9, address: 'fd00::1', port: 3306, family: 6, weight: 1 }]),
    /share its address family/,
  );
  assert.throws(
    () => buildIpvsMh([...lab(), { id: 1, address: '10.77.0.14', port: 3306, family: 4, weight: 1 }]),
    /id 1 is given twice/,
  );
});

test('lookup picks the destination in the flow hash slot', () => {
  const d = lab();
  const t = buildIpvsMh(d);
  for (let port = 40000; port < 40100; port++) {
    const slot = ipvsMhHash('10.77.0.10', port, 4, true) % t.length;
    assert.equal(ipvsMhLookup(t, d, { address: '10.77.0.10', port, family: 4 }, { withPort: true })?.id, t[slot]);
  }
});

test('lookup of an unavailable destination finds none, or the next one with mh-fallback', () => {
  const d = lab();
  const t = buildIpvsMh(d);
  d[0]!.weight = 0; // .13 drained (last weight 2 keeps its slots)
  d[0]!.lastWeight = 2;
  let none = 0;
  for (let port = 40000; port < 40200; port++) {
    const client = { address: '10.77.0.10', port, family: 4 as const };
    const plain = ipvsMhLookup(t, d, client, { withPort: true });
    const fb = ipvsMhLookup(t, d, client, { withPort: true, fallback: true });
    const slot = ipvsMhHash('10.77.0.10', port, 4, true) % t.length;
    if (t[slot] === 3) {
      none++;
      assert.equal(plain, undefined);
      assert.ok(fb && fb.id !== 3);
    } else {
      assert.equal(plain?.id, t[slot]);
      assert.equal(fb?.id, t[slot]);
    }
  }
  assert.ok(none > 50, `${none} of 200 flows hit the drained destination`);
});

// Recorded from the real kernel: Debian's linux-image 6.1.0-56-amd64 booted in the project's VM
// (scripts/vm/run.sh), `ipvsadm -A -t 10.77.0.100:3306 -s mh -b mh-port`, DR dests added in the
// order .11 (w1), .12 (w1), .13 (w2); local connections from 10.77.0.10:PORT; the destination
// IPVS chose read from `ipvsadm -Lnc`. `ipvsadm -Ln --nosort` listed .13, .12, .11 (head insertion).
// These 40 client ports land on the 6 slots where the head-inserted list order and the config order
// give different tables, so they also prove the order.
const KERNEL_PICKS: [number, number][] = [
  [1226, 11],
  [1254, 13],
  [1331, 11],
  [1590, 13],
  [4484, 13],
  [4516, 13],
  [5545, 11],
  [6342, 13],
  [7195, 13],
  [7354, 11],
  [7491, 11],
  [8206, 11],
  [8319, 13],
  [9107, 12],
  [9718, 11],
  [10209, 11],
  [12668, 11],
  [13899, 12],
  [15551, 13],
  [17102, 13],
  [19744, 11],
  [19814, 11],
  [21192, 13],
  [23135, 11],
  [23227, 13],
  [23346, 12],
  [23354, 12],
  [23754, 12],
  [24340, 11],
  [24503, 13],
  [26923, 11],
  [28766, 12],
  [29242, 13],
  [30245, 11],
  [30995, 11],
  [31046, 11],
  [32886, 11],
  [33733, 13],
  [33979, 11],
  [34985, 13],
];
// Then `ipvsadm -e ... -r 10.77.0.12:3306 -w 0` (no mh-fallback): new connections from ports 41000..41039;
// 0 = IPVS found no destination (the flow hit .12's slots, which it keeps through last_weight).
const KERNEL_PICKS_DRAINED: [number, number][] = [
  [41000, 13],
  [41001, 13],
  [41002, 11],
  [41003, 0],
  [41004, 13],
  [41005, 0],
  [41006, 13],
  [41007, 13],
  [41008, 0],
  [41009, 13],
  [41010, 13],
  [41011, 0],
  [41012, 0],
  [41013, 13],
  [41014, 11],
  [41015, 13],
  [41016, 13],
  [41017, 0],
  [41018, 13],
  [41019, 11],
  [41020, 0],
  [41021, 0],
  [41022, 11],
  [41023, 13],
  [41024, 13],
  [41025, 0],
  [41026, 13],
  [41027, 13],
  [41028, 13],
  [41029, 13],
  [41030, 13],
  [41031, 13],
  [41032, 11],
  [41033, 0],
  [41034, 11],
  [41035, 13],
  [41036, 11],
  [41037, 13],
  [41038, 13],
  [41039, 0],
];

test('the destinations match what the real kernel IPVS mh chose, given the head-inserted list order', () => {
  const dests = lab(); // .13, .12, .11: reverse of creation
  const t = buildIpvsMh(dests);
  for (const [port, octet] of KERNEL_PICKS) {
    const d = ipvsMhLookup(t, dests, { address: '10.77.0.10', port, family: 4 }, { withPort: true });
    assert.equal(d?.address, `10.77.0.${octet}`, `client port ${port}`);
  }
  // In creation order the table differs exactly where these ports land.
  const wrong = [...dests].reverse();
  const tw = buildIpvsMh(wrong);
  const agree = KERNEL_PICKS.filter(
    ([port, octet]) =>
      ipvsMhLookup(tw, wrong, { address: '10.77.0.10', port, family: 4 }, { withPort: true })?.address ===
      `10.77.0.${octet}`,
  );
  assert.equal(agree.length, 0);
});

test('a destination edited to weight 0 keeps its slots and its flows find no destination, as in the kernel', () => {
  const dests = lab();
  dests[1]!.weight = 0; // .12
  dests[1]!.lastWeight = 1;
  const t = buildIpvsMh(dests);
  for (const [port, octet] of KERNEL_PICKS_DRAINED) {
    const d = ipvsMhLookup(t, dests, { address: '10.77.0.10', port, family: 4 }, { withPort: true });
    assert.equal(d ? Number(d.address.split('.')[3]) : 0, octet, `client port ${port}`);
  }
});
