// IPVS tunnel forwarding: the NEW_DEST bytes for IPIP and GUE destinations (IP_VS_CONN_F_TUNNEL
// = 2, IPVS_DEST_ATTR_TUN_TYPE/TUN_PORT/TUN_FLAGS of linux/ip_vs.h, policy in ip_vs_ctl.c:
// TUN_TYPE u8, TUN_PORT u16 big-endian, TUN_FLAGS u16), their parsing back from a dump, and the
// plan: tunnel backends become TUNNEL dests, may cross address families, and a changed tunnel
// is an edit. Written by hand from the header, little-endian host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DesiredBackend, DesiredService } from '../../../src/state/types';
import {
  AF_INET,
  AF_INET6,
  FwdMethod,
  IPPROTO_TCP,
  IpvsDestEntry,
  TunType,
  encodeMessage,
  parseDestReply,
  req,
} from '../../../src/dataplane/ipvs/codec';
import { KernelService, planIpvs, serviceKeyString, toIpvsTargets } from '../../../src/dataplane/ipvs/plan';

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/#[^\n]*/g, '').replace(/\s+/g, ''), 'hex');
}
const FAMILY = 0x20;
const svc4 = { af: AF_INET, protocol: IPPROTO_TCP, addr: '10.77.0.100', port: 3306 } as const;
const SVC4 = `30000180
  06000100 0200 0000  06000200 0600 0000
  14000300 0a4d0064 00000000 00000000 00000000
  06000400 0cea 0000`;

test("NEW_DEST for an IPIP tunnel carries fwd method 2 and TUN_TYPE 0, with the real server's own family (4in6)", () => {
  const got = encodeMessage(
    req.newDest(svc4, {
      addr: 'fd00:88::11',
      addrFamily: AF_INET6,
      port: 3306,
      fwdMethod: FwdMethod.TUNNEL,
      weight: 1,
      uThreshold: 0,
      lThreshold: 0,
      tunType: TunType.IPIP,
    }),
    FAMILY,
    1,
    0,
  );
  const want = hex(`
    94000000 2000 0500 01000000 00000000  # len 148 = 16 + 4 + 48 + 80
    05 01 0000
    ${SVC4}
    50000280                              # DEST nest, len 80
    14000100 fd000088 00000000 00000000 00000011  # ADDR fd00:88::11
    06000200 0cea 0000                    # PORT 3306
    08000300 02000000                     # FWD_METHOD TUNNEL
    08000400 01000000                     # WEIGHT 1
    08000500 00000000  08000600 00000000  # thresholds
    05000d00 00 000000                    # TUN_TYPE u8 IPIP
    06000b00 0a00 0000                    # ADDR_FAMILY AF_INET6
  `);
  assert.equal(got.toString('hex'), want.toString('hex'));
});

test('NEW_DEST for a GUE tunnel adds TUN_TYPE 1, TUN_PORT big-endian and TUN_FLAGS 0 (no UDP checksum)', () => {
  const got = encodeMessage(
    req.newDest(svc4, {
      addr: '10.88.1.11',
      port: 3306,
      fwdMethod: FwdMethod.TUNNEL,
      weight: 1,
      uThreshold: 0,
      lThreshold: 0,
      tunType: TunType.GUE,
      tunPort: 6080,
      tunFlags: 0,
    }),
    FAMILY,
    1,
    0,
  );
  const want = hex(`
    a4000000 2000 0500 01000000 00000000  # len 164 = 16 + 4 + 48 + 96
    05 01 0000
    ${SVC4}
    60000280                              # DEST nest, len 96
    14000100 0a58010b 00000000 00000000 00000000  # ADDR 10.88.1.11
    06000200 0cea 0000
    08000300 02000000                     # FWD_METHOD TUNNEL
    08000400 01000000
    08000500 00000000  08000600 00000000
    05000d00 01 000000                    # TUN_TYPE GUE
    06000e00 17c0 0000                    # TUN_PORT 6080 big-endian
    06000f00 0000 0000                    # TUN_FLAGS NOCSUM
    06000b00 0200 0000                    # ADDR_FAMILY AF_INET
  `);
  assert.equal(got.toString('hex'), want.toString('hex'));
});

test('a dumped GUE tunnel dest parses back to its type, port and flags', () => {
  const reply = hex(`
    00000200
    14000100 0a58010b 00000000 00000000 00000000
    06000200 0cea 0000
    08000300 02000000
    08000400 01000000
    08000500 00000000  08000600 00000000
    08000700 00000000  08000800 00000000  08000900 00000000
    06000b00 0200 0000
    05000d00 01 000000
    06000e00 17c0 0000
    06000f00 0100 0000                    # TUN_FLAGS CSUM
  `);
  reply.writeUInt16LE(reply.length, 0);
  const d = parseDestReply(reply, AF_INET);
  assert.deepEqual([d.fwdMethod, d.tunType, d.tunPort, d.tunFlags], [FwdMethod.TUNNEL, TunType.GUE, 6080, 1]);
});

function tunnelBackend(address: string, encap: 'ipip' | 'gue'): DesiredBackend {
  return {
    key: `${address.includes(':') ? `[${address}]` : address}:3306`,
    name: address,
    address,
    port: 3306,
    family: address.includes(':') ? 6 : 4,
    weight: 2,
    state: 'active',
    forwarding: 'tunnel',
    tunnel: { encap, guePort: 6080, source: address.includes(':') ? 'fd00:77::2' : '10.77.0.2' },
  };
}
function service(backends: DesiredBackend[]): DesiredService {
  return {
    name: 'mysql',
    vip: '10.77.0.100',
    port: 3306,
    proto: 'tcp',
    family: 4,
    scheduler: 'maglev',
    ring: { kind: 'ipvs-mh', size: 4093 },
    onEmpty: 'pass',
    backends,
  };
}

test('tunnel backends become TUNNEL dests (IPIP, or GUE with its port and no checksum), DR backends stay DROUTE', () => {
  const dr: DesiredBackend = {
    key: '10.77.0.11:3306',
    name: 'dr',
    address: '10.77.0.11',
    port: 3306,
    family: 4,
    weight: 1,
    state: 'active',
  };
  const [t] = toIpvsTargets({
    services: [service([tunnelBackend('10.88.1.11', 'gue'), tunnelBackend('fd00:88::11', 'ipip'), dr])],
  });
  assert.deepEqual(
    t!.dests.map((d) => [d.addr, d.addrFamily, d.fwdMethod, d.tunType, d.tunPort, d.tunFlags]),
    [
      ['10.88.1.11', AF_INET, FwdMethod.TUNNEL, TunType.GUE, 6080, 0],
      ['fd00:88::11', AF_INET6, FwdMethod.TUNNEL, TunType.IPIP, undefined, undefined],
      ['10.77.0.11', AF_INET, FwdMethod.DROUTE, undefined, undefined, undefined],
    ],
  );
});

test('a DR backend of the other family is still refused, naming the tunnel as the way across families', () => {
  const b: DesiredBackend = {
    key: '[fd00:88::11]:3306',
    name: 'x',
    address: 'fd00:88::11',
    port: 3306,
    family: 6,
    weight: 1,
    state: 'active',
  };
  assert.throws(() => toIpvsTargets({ services: [service([b])] }), {
    code: 'XD_ERR_IPVS',
    message: /direct routing needs one address family \(a tunnel may cross families\)/,
  });
});

test('a kernel dest with DR or another tunnel type is edited in place to the desired tunnel', () => {
  const svc = service([tunnelBackend('10.88.1.11', 'gue')]);
  const s = {
    af: AF_INET,
    protocol: IPPROTO_TCP,
    addr: svc.vip,
    port: 3306,
    schedName: 'mh',
    flags: 0x18,
    timeout: 0,
    netmask: 0xffffffff,
  } as const;
  const dest = (over: Partial<IpvsDestEntry>): IpvsDestEntry => ({
    addr: '10.88.1.11',
    port: 3306,
    addrFamily: AF_INET,
    fwdMethod: FwdMethod.TUNNEL,
    weight: 2,
    uThreshold: 0,
    lThreshold: 0,
    activeConns: 0,
    inactConns: 0,
    persistConns: 0,
    tunType: TunType.GUE,
    tunPort: 6080,
    tunFlags: 0,
    ...over,
  });
  const kernel = (d: IpvsDestEntry): Map<string, KernelService> =>
    new Map([[serviceKeyString(s), { service: { ...s }, dests: [d] }]]);
  const targets = toIpvsTargets({ services: [svc] });
  assert.deepEqual(
    planIpvs(targets, kernel(dest({})), () => true),
    [],
    'matching tunnel: nothing to do',
  );
  const fromDr = planIpvs(
    targets,
    kernel(dest({ fwdMethod: FwdMethod.DROUTE, tunType: undefined, tunPort: undefined, tunFlags: undefined })),
    () => true,
  );
  assert.equal(fromDr.length, 1);
  assert.equal(fromDr[0]!.op, 'edit-dest');
  assert.match((fromDr[0] as { reason: string }).reason, /forwarding method 3 -> 2/);
  const fromIpip = planIpvs(
    targets,
    kernel(dest({ tunType: TunType.IPIP, tunPort: undefined, tunFlags: undefined })),
    () => true,
  );
  assert.match((fromIpip[0] as { reason: string }).reason, /tunnel ipip -> gue:6080/);
});
