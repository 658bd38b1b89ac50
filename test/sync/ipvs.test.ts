// The IPVS sync protocol version 1 codec (src/sync/ipvs.ts), pure: a message laid out byte by
// byte as the kernel's ip_vs_sync.c writes it decodes to its fields and is what the encoder
// writes; options, padding and several connections round-trip; fuzzed and mutated datagrams only
// ever throw IpvsDecodeError; the mapping to sync entries keeps what this director can install.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  decodeIpvsMessage,
  encodeIpvsMessages,
  entriesOfIpvs,
  ipvsOfEntries,
  IpvsDecodeError,
  IPVS_CONN_F,
  type IpvsConn,
} from '../../src/sync/ipvs';

const ip4 = (s: string) => Buffer.from(s.split('.').map(Number));
const ip6 = (last: number) => Buffer.from([0x20, 0x01, 0x0d, 0xb8, ...Array<number>(11).fill(0), last]);

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

function conn(i: number, o: Partial<IpvsConn> = {}): IpvsConn {
  return {
    family: 4,
    protocol: 6,
    flags: IPVS_CONN_F.DROUTE,
    state: 1,
    client: ip4(`10.0.1.${i}`),
    clientPort: 40000 + i,
    vip: ip4('10.0.0.100'),
    vipPort: 3306,
    dest: ip4('10.0.0.11'),
    destPort: 3306,
    fwmark: 0,
    timeoutS: 900,
    ...o,
  };
}

test('a version 1 message laid out as the kernel writes it decodes to its fields, and the encoder writes those bytes', () => {
  // struct ip_vs_sync_mesg, then one struct ip_vs_sync_v4 (36 bytes, no options).
  const golden = Buffer.from([
    0,
    7,
    0,
    44,
    1,
    1,
    0,
    0, // reserved, syncid 7, size 44, nr_conns 1, version 1, spare
    0,
    6,
    0,
    36, // type (IPv4), TCP, ver_size: version 0, size 36
    0,
    0,
    0,
    3, // flags: IP_VS_CONN_F_DROUTE
    0,
    1,
    0x9c,
    0x41, // state ESTABLISHED, cport 40001
    0x0c,
    0xea,
    0x0c,
    0xea, // vport 3306, dport 3306
    0,
    0,
    0,
    0,
    0,
    0,
    3,
    0x84, // fwmark 0, timeout 900 s
    10,
    0,
    1,
    1,
    10,
    0,
    0,
    100,
    10,
    0,
    0,
    11, // caddr, vaddr, daddr
  ]);
  const m = decodeIpvsMessage(golden);
  assert.equal(m.syncId, 7);
  assert.equal(m.skipped, 0);
  assert.deepEqual(m.conns, [conn(1)]);
  assert.deepEqual(encodeIpvsMessages(7, [conn(1)]), [golden]);
});

test('IPv6, sequence and persistence options, padding between connections and the 255-connection and size limits round-trip', () => {
  const conns: IpvsConn[] = [
    conn(1, {
      seq: { in: { initSeq: 1, delta: 2, previousDelta: 3 }, out: { initSeq: 4, delta: 5, previousDelta: 6 } },
    }),
    conn(2, { family: 6, client: ip6(2), vip: ip6(100), dest: ip6(11), flags: IPVS_CONN_F.TUNNEL }),
    conn(3, { peData: Buffer.from([1, 2, 3]), peName: 'sip' }), // 3 + 5 option bytes: padding after it
    conn(4, { protocol: 17, state: 0, flags: IPVS_CONN_F.MASQ }),
  ];
  const [one] = encodeIpvsMessages(3, conns);
  assert.deepEqual(decodeIpvsMessage(one!).conns, conns);
  const many = Array.from({ length: 600 }, (_, i) => conn(i % 250));
  const msgs = encodeIpvsMessages(1, many, 60000);
  assert.deepEqual(
    msgs.map((b) => b[4]),
    [255, 255, 90],
  );
  const small = encodeIpvsMessages(1, many, 1472);
  assert.ok(small.every((b) => b.length <= 1472));
  assert.deepEqual(
    small.flatMap((b) => decodeIpvsMessage(b).conns),
    many,
  );
  assert.throws(
    () => encodeIpvsMessages(1, [conn(1, { client: Buffer.alloc(16) })]),
    /client must be 4 bytes for IPv4/,
  );
});

test('the kernel receiver rules: bad header, size, version and connections drop the datagram; an unknown mandatory option skips the connection; an optional one is ignored', () => {
  const [good] = encodeIpvsMessages(1, [conn(1), conn(2)]);
  const bad = (f: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(good!);
    f(b);
    return b;
  };
  const problem = (b: Buffer): string => {
    try {
      decodeIpvsMessage(b);
      return 'accepted';
    } catch (e) {
      assert.ok(e instanceof IpvsDecodeError);
      return e.problem;
    }
  };
  assert.equal(problem(good!.subarray(0, 6)), 'short');
  assert.equal(problem(good!.subarray(0, 50)), 'size');
  assert.equal(problem(bad((b) => (b[5] = 0))), 'version');
  assert.equal(problem(bad((b) => (b[0] = 2))), 'version');
  assert.equal(problem(bad((b) => b.writeUInt16BE(0x1000 | 36, 10))), 'conn'); // connection version 1
  assert.equal(problem(bad((b) => b.writeUInt16BE(200, 10))), 'conn'); // size past the message
  assert.equal(problem(bad((b) => (b[8] = 4))), 'conn'); // unknown type
  // An option appended to the first connection: mandatory unknown (type 5) skips it, optional (5 | 64) does not.
  const withOpt = (ptype: number): Buffer => {
    const c1 = Buffer.from(good!.subarray(8, 44));
    c1.writeUInt16BE(40, 2);
    const body = Buffer.concat([good!.subarray(0, 8), c1, Buffer.from([ptype, 2, 9, 9]), good!.subarray(44)]);
    body.writeUInt16BE(body.length, 2);
    return body;
  };
  assert.deepEqual([decodeIpvsMessage(withOpt(5)).skipped, decodeIpvsMessage(withOpt(5)).conns.length], [1, 1]);
  assert.deepEqual(
    [decodeIpvsMessage(withOpt(5 | 64)).skipped, decodeIpvsMessage(withOpt(5 | 64)).conns.length],
    [0, 2],
  );
});

test('fuzz: random and mutated datagrams only ever throw IpvsDecodeError', () => {
  const r = rng(8848);
  const [valid] = encodeIpvsMessages(1, [
    conn(1, {
      seq: { in: { initSeq: 1, delta: 0, previousDelta: 0 }, out: { initSeq: 2, delta: 0, previousDelta: 0 } },
    }),
    conn(2, { family: 6, client: ip6(2), vip: ip6(100), dest: ip6(11) }),
    conn(3, { peData: Buffer.from([7]), peName: 'sip' }),
  ]);
  let refused = 0;
  for (let n = 0; n < 10000; n++) {
    let buf: Buffer;
    const mode = n % 3;
    if (mode === 0) buf = randomBytes(Math.floor(r() * 1600));
    else if (mode === 1) {
      buf = Buffer.from(valid!);
      for (let k = 1 + Math.floor(r() * 8); k > 0; k--)
        buf[8 + Math.floor(r() * (buf.length - 8))] = Math.floor(r() * 256);
    } else {
      buf = Buffer.from(valid!.subarray(0, Math.floor(r() * valid!.length)));
      if (buf.length >= 4) buf.writeUInt16BE(buf.length, 2);
    }
    try {
      const m = decodeIpvsMessage(buf);
      for (const c of m.conns) assert.equal(c.client.length, c.family === 4 ? 4 : 16);
    } catch (e) {
      if (!(e instanceof IpvsDecodeError)) throw e;
      refused++;
    }
  }
  assert.ok(refused > 3000, `${refused} refused`);
});

test('IPVS connections as sync entries: established TCP and UDP with a forwarding we have; templates, fwmark, closing and local ones left', () => {
  const conns = [
    conn(1),
    conn(2, { flags: IPVS_CONN_F.TUNNEL }),
    conn(3, { protocol: 17, state: 0, flags: IPVS_CONN_F.MASQ }),
    conn(4, { state: 5 }), // TIME_WAIT
    conn(5, { flags: IPVS_CONN_F.DROUTE | IPVS_CONN_F.TEMPLATE }),
    conn(6, { fwmark: 1 }),
    conn(7, { flags: IPVS_CONN_F.LOCALNODE }),
  ];
  const { entries, left } = entriesOfIpvs(conns);
  assert.equal(left, 4);
  assert.deepEqual(
    entries.map((e) => [e.client[3], e.forwarding, e.proto, e.backend.join('.')]),
    [
      [1, 'dr', 'tcp', '10.0.0.11'],
      [2, 'tunnel', 'tcp', '10.0.0.11'],
      [3, 'nat', 'udp', '10.0.0.11'],
    ],
  );
  // And back: what an IPVS backup would be sent for them.
  const back = ipvsOfEntries(entries);
  assert.deepEqual(
    back,
    conns.slice(0, 3).map((c) => (c.protocol === 6 ? c : { ...c, state: 0 })),
  );
});
