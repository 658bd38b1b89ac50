// Byte-exact IPVS generic netlink messages, written by hand from the kernel's layout
// (include/uapi/linux/ip_vs.h, policies in net/netfilter/ipvs/ip_vs_ctl.c), and parsing of
// dump replies built the same way. Little-endian host (x86_64, the target).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AF_INET,
  AF_INET6,
  Cmd,
  FwdMethod,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SvcFlag,
  encodeMessage,
  parseDestReply,
  parseInfoReply,
  parseServiceReply,
  req,
  serviceLabel,
  versionString,
} from '../../../src/dataplane/ipvs/codec';

/** Hex with whitespace and `# comments` ignored. */
function hex(s: string): Buffer {
  return Buffer.from(s.replace(/#[^\n]*/g, '').replace(/\s+/g, ''), 'hex');
}

const FAMILY = 0x20;
const svc4 = { af: AF_INET, protocol: IPPROTO_TCP, addr: '10.77.0.100', port: 3306 } as const;
const mh = {
  ...svc4,
  schedName: 'mh',
  flags: SvcFlag.MH_PORT | SvcFlag.MH_FALLBACK,
  flagsMask: 0xffffffff,
  timeout: 0,
  netmask: 0xffffffff,
};

const SVC4_KEY_ATTRS = `
  06000100 0200 0000                      # AF u16 = AF_INET, padded
  06000200 0600 0000                      # PROTOCOL u16 = TCP
  14000300 0a4d0064 00000000 00000000 00000000  # ADDR 16 bytes (nf_inet_addr), IPv4 first
  06000400 0cea 0000                      # PORT __be16 3306
`;

test('NEW_SERVICE for a TCP IPv4 mh service with mh-port and mh-fallback is encoded byte for byte', () => {
  const got = encodeMessage(req.newService(mh), FAMILY, 1, 0);
  const want = hex(`
    68000000 2000 0500 01000000 00000000  # nlmsghdr: len 104, type family 0x20, REQUEST|ACK, seq 1, pid 0
    01 01 0000                            # genlmsghdr: cmd NEW_SERVICE, version 1
    54000180                              # IPVS_CMD_ATTR_SERVICE, NLA_F_NESTED, len 84
    ${SVC4_KEY_ATTRS}
    07000600 6d6800 00                    # SCHED_NAME "mh\\0", padded
    0c000700 18000000 ffffffff            # FLAGS struct ip_vs_flags {0x18, mask ~0}
    08000800 00000000                     # TIMEOUT u32 0
    08000900 ffffffff                     # NETMASK 255.255.255.255
  `);
  assert.equal(got.toString('hex'), want.toString('hex'));
});

test('NEW_DEST for a direct-routing destination carries the service key, fwd method 3, weight and thresholds', () => {
  const got = encodeMessage(
    req.newDest(svc4, {
      addr: '10.77.0.11',
      port: 3306,
      fwdMethod: FwdMethod.DROUTE,
      weight: 5,
      uThreshold: 0,
      lThreshold: 0,
    }),
    FAMILY,
    7,
    1234,
  );
  const want = hex(`
    8c000000 2000 0500 07000000 d2040000  # nlmsghdr: len 140 (16 + 4 + 48 + 72), seq 7, pid 1234
    05 01 0000                            # NEW_DEST v1
    30000180 ${SVC4_KEY_ATTRS}            # SERVICE nest, len 48
    48000280                              # DEST nest, len 72
    14000100 0a4d000b 00000000 00000000 00000000  # ADDR 10.77.0.11
    06000200 0cea 0000                    # PORT 3306 big-endian
    08000300 03000000                     # FWD_METHOD DROUTE
    08000400 05000000                     # WEIGHT 5
    08000500 00000000                     # U_THRESH
    08000600 00000000                     # L_THRESH
    06000b00 0200 0000                    # ADDR_FAMILY AF_INET
  `);
  assert.equal(got.toString('hex'), want.toString('hex'));
});

test('DEL_DEST carries only the destination address, port and family', () => {
  const got = encodeMessage(req.delDest(svc4, { addr: '10.77.0.11', port: 3306 }), FAMILY, 2, 0);
  const want = hex(`
    6c000000 2000 0500 02000000 00000000  # nlmsghdr: len 108 (16 + 4 + 48 + 40)
    07 01 0000                            # DEL_DEST v1
    30000180 ${SVC4_KEY_ATTRS}
    28000280                              # DEST nest, len 40
    14000100 0a4d000b 00000000 00000000 00000000
    06000200 0cea 0000
    06000b00 0200 0000
  `);
  assert.equal(got.toString('hex'), want.toString('hex'));
});

test('GET_SERVICE and GET_DEST dumps set NLM_F_DUMP and GET_DEST names its service', () => {
  const all = encodeMessage(req.dumpServices(), FAMILY, 3, 0);
  assert.equal(all.toString('hex'), hex('14000000 2000 0503 03000000 00000000  04 01 0000').toString('hex'));
  const dests = encodeMessage(req.dumpDests(svc4), FAMILY, 4, 0);
  assert.equal(
    dests.toString('hex'),
    hex(`44000000 2000 0503 04000000 00000000  08 01 0000  30000180 ${SVC4_KEY_ATTRS}`).toString('hex'),
  );
});

test('an IPv6 UDP service puts the 16 address bytes in ADDR and the prefix length 128 in NETMASK', () => {
  const got = encodeMessage(
    req.setService({
      af: AF_INET6,
      protocol: IPPROTO_UDP,
      addr: 'fd00:77::100',
      port: 53,
      schedName: 'wrr',
      flags: 0,
      timeout: 300,
      netmask: 128,
    }),
    FAMILY,
    9,
    0,
  );
  const want = hex(`
    68000000 2000 0500 09000000 00000000
    02 01 0000                            # SET_SERVICE
    54000180
    06000100 0a00 0000                    # AF_INET6 = 10
    06000200 1100 0000                    # UDP = 17
    14000300 fd000077 00000000 00000000 00000100  # fd00:77::100
    06000400 0035 0000                    # port 53
    08000600 77727200                     # "wrr\\0"
    0c000700 00000000 ffffffff            # flags 0, mask ~0
    08000800 2c010000                     # TIMEOUT 300
    08000900 80000000                     # NETMASK: prefix length 128, host order (compared numerically by the kernel)
  `);
  assert.equal(got.toString('hex'), want.toString('hex'));
});

test('FLUSH and GET_INFO are bare generic netlink headers', () => {
  assert.equal(
    encodeMessage(req.flush(), FAMILY, 5, 0).toString('hex'),
    hex('14000000 2000 0500 05000000 00000000 11 01 0000').toString('hex'),
  );
  assert.equal(
    encodeMessage(req.getInfo(), FAMILY, 6, 0).toString('hex'),
    hex('14000000 2000 0500 06000000 00000000 0f 01 0000').toString('hex'),
  );
});

test('a negative weight is sent as the u32 the kernel rejects with ERANGE rather than silently clamped', () => {
  const m = encodeMessage(
    req.setDest(svc4, { addr: '10.77.0.11', port: 3306, fwdMethod: 3, weight: -1, uThreshold: 0, lThreshold: 0 }),
    FAMILY,
    1,
    0,
  );
  assert.ok(m.includes(hex('08000400 ffffffff')));
});

test('a scheduler name of 16 or more characters is refused before it reaches the kernel', () => {
  assert.throws(
    () => req.newService({ ...mh, schedName: 'x'.repeat(16) }),
    /scheduler name must be 1\.\.15 characters/,
  );
});

test('a service dump reply is parsed with its scheduler, flags, netmask and 64-bit stats', () => {
  const reply = hex(`
    a4000180                              # SERVICE nest (kernel omits NLA_F_NESTED; we accept both)
    ${SVC4_KEY_ATTRS}
    07000600 6d6800 00
    0c000700 1a000000 ffffffff            # flags 0x1a = HASHED|MH_FALLBACK|MH_PORT
    08000800 00000000
    08000900 ffffffff
    1c000a00                              # STATS (legacy: u32 counters)
      08000100 63000000                   # CONNS 99 (superseded by STATS64)
      08000200 01000000
      08000600 00000000
    50000c00                              # STATS64, u64 values with PAD attributes
      04000b00                            # PAD
      0c000100 2a000000 00000000          # CONNS 42
      0c000200 e8030000 00000000          # INPKTS 1000
      0c000300 00000000 00000000          # OUTPKTS 0 (DR: replies bypass the director)
      0c000400 00000000 01000000          # INBYTES 2^32
      0c000500 00000000 00000000
      0c000600 03000000 00000000          # CPS 3
  `);
  // Fix the outer nest length to the real size (computed, so the hand-written payload stays readable).
  reply.writeUInt16LE(reply.length, 0);
  reply.writeUInt16LE(0x0001, 2);
  const s = parseServiceReply(reply);
  assert.deepEqual(
    { ...s, stats: undefined },
    {
      af: AF_INET,
      protocol: IPPROTO_TCP,
      addr: '10.77.0.100',
      port: 3306,
      schedName: 'mh',
      flags: 0x1a,
      timeout: 0,
      netmask: 0xffffffff,
      stats: undefined,
    },
  );
  assert.equal(s.stats?.conns, 42n);
  assert.equal(s.stats?.inpkts, 1000n);
  assert.equal(s.stats?.inbytes, 4294967296n);
  assert.equal(s.stats?.cps, 3n);
});

test('a destination dump reply is parsed with weight, forwarding method, connection counts and family', () => {
  const reply = hex(`
    00000200
    14000100 fd000077 00000000 00000000 00000011  # fd00:77::11
    06000200 0cea 0000
    08000300 03000000                     # DROUTE
    08000400 07000000                     # weight 7
    08000500 64000000                     # U_THRESH 100
    08000600 0a000000                     # L_THRESH 10
    08000700 02000000                     # ACTIVE_CONNS 2
    08000800 05000000                     # INACT_CONNS 5
    08000900 00000000
    06000b00 0a00 0000                    # ADDR_FAMILY AF_INET6
    05000d00 00 000000                    # TUN_TYPE u8 (ignored)
  `);
  reply.writeUInt16LE(reply.length, 0);
  const d = parseDestReply(reply, AF_INET6);
  assert.deepEqual(d, {
    addr: 'fd00:77::11',
    port: 3306,
    addrFamily: AF_INET6,
    fwdMethod: 3,
    weight: 7,
    uThreshold: 100,
    lThreshold: 10,
    activeConns: 2,
    inactConns: 5,
    persistConns: 0,
  });
});

test('a reply with a truncated attribute is rejected with the offset', () => {
  assert.throws(() => parseServiceReply(hex('08000100 0600')), /malformed netlink attribute at offset 0/);
});

test('the GET_INFO reply gives the IPVS version and connection table size', () => {
  const info = parseInfoReply(hex('08000100 01020100 08000200 00100000'));
  assert.deepEqual(info, { version: 0x010201, connTabSize: 4096 });
  assert.equal(versionString(info.version), '1.2.1');
});

test('services are labelled like ipvsadm', () => {
  assert.equal(serviceLabel(svc4), 'TCP 10.77.0.100:3306');
  assert.equal(serviceLabel({ af: AF_INET6, protocol: IPPROTO_UDP, addr: 'fd00::1', port: 53 }), 'UDP [fd00::1]:53');
  assert.equal(Cmd.GET_DEST, 8);
});
