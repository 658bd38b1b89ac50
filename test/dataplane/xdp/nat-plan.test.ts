// The XDP plan for NAT backends (the NAT flag, the NAT fields written in the backend entry,
// one index per address and port) and the alert for a NAT backend whose replies bypass the
// director. Pure: no kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyModel, plan, type NatEgress } from '../../../src/dataplane/xdp/plan';
import { BE_FLAG } from '../../../src/dataplane/xdp/constants';
import { natAlert, NAT_ALERT_WINDOW_MS } from '../../../src/dataplane/xdp/nat';
import { addr16, natEntry } from '../../../src/dataplane/xdp/layout';
import { XdError } from '../../../src/errors';
import type { DesiredBackend, DesiredState } from '../../../src/state/types';

const EGRESS: NatEgress = { smac: '02:00:00:00:00:01', ifindex: 7, mtu: 1500 };
const LIMITS = { maxServices: 4, maxBackends: 8, ringMax: 7 };

function be(address: string, port: number, over: Partial<DesiredBackend> = {}): DesiredBackend {
  return {
    key: `${address}:${port}`,
    name: `${address}:${port}`,
    address,
    port,
    family: 4,
    weight: 1,
    state: 'active',
    mac: '02:00:00:00:00:11',
    forwarding: 'nat',
    ...over,
  };
}
function state(...backends: DesiredBackend[]): DesiredState {
  return {
    services: [
      {
        name: 's',
        vip: '10.93.0.100',
        port: 3307,
        proto: 'tcp',
        family: 4,
        scheduler: 'maglev',
        ring: { kind: 'maglev', size: 7 },
        onEmpty: 'pass',
        backends,
      },
    ],
  };
}

test('the XDP plan flags a NAT backend and writes its port, the egress MAC and ifindex and the path MTU with it', () => {
  const p = plan(emptyModel(), state(be('10.94.0.11', 3306, { natMtu: 1400 })), LIMITS, EGRESS);
  assert.equal(p.backendWrites.length, 1);
  const w = p.backendWrites[0]!;
  assert.equal(w.flags, BE_FLAG.ACTIVE | BE_FLAG.NAT);
  assert.deepEqual(w.nat, {
    address: '10.94.0.11',
    port: 3306,
    vip: '10.93.0.100',
    vport: 3307,
    smac: EGRESS.smac,
    ifindex: 7,
    mtu: 1400,
  });
  // Without a path MTU of its own, the egress interface's.
  assert.equal(plan(emptyModel(), state(be('10.94.0.11', 3306)), LIMITS, EGRESS).backendWrites[0]!.nat!.mtu, 1500);
});

test('one address serving a NAT service on two ports has two backend entries, kept across applies', () => {
  const s = state(be('10.94.0.11', 3306), be('10.94.0.11', 3308));
  const p = plan(emptyModel(), s, LIMITS, EGRESS);
  const idx = p.indexes.get('s')!;
  assert.notEqual(idx.get('10.94.0.11:3306'), idx.get('10.94.0.11:3308'));
  assert.deepEqual(p.backendWrites.map((w) => w.nat!.port).sort(), [3306, 3308]);
  const again = plan(p.next, s, LIMITS, EGRESS);
  assert.equal(again.backendWrites.length, 0, 'nothing changed, nothing written');
  assert.deepEqual([...again.indexes.get('s')!], [...idx]);
});

test('a changed egress (the server side MTU) rewrites the NAT entries; a NAT backend without an egress is a refusal', () => {
  const p = plan(emptyModel(), state(be('10.94.0.11', 3306)), LIMITS, EGRESS);
  const q = plan(p.next, state(be('10.94.0.11', 3306)), LIMITS, { ...EGRESS, mtu: 9000 });
  assert.equal(q.backendWrites.length, 1);
  assert.equal(q.backendWrites[0]!.nat!.mtu, 9000);
  assert.throws(
    () => plan(emptyModel(), state(be('10.94.0.11', 3306)), LIMITS),
    (e: XdError) => e.code === 'XD_ERR_CONFIG_INVALID' && /without a NAT egress interface/.test(e.message),
  );
});

test('the NAT alert names a backend that took connections while not one reply came back, and the fix; replies clear it', () => {
  const b = { name: 'db3', key: '10.94.0.13:3306', address: '10.94.0.13' };
  const t0 = { at: 0, newFlows: 10, outPackets: 50 };
  // Too soon to tell (SYN retries take seconds).
  assert.deepEqual(natAlert('mysql', b, t0, { at: NAT_ALERT_WINDOW_MS - 1, newFlows: 20, outPackets: 50 }, 'eth1'), {
    resample: false,
  });
  const r = natAlert('mysql', b, t0, { at: NAT_ALERT_WINDOW_MS, newFlows: 20, outPackets: 50 }, 'eth1');
  assert.match(
    r.alert ?? '',
    /^NAT backend db3 \(10\.94\.0\.13:3306\) of service mysql: 10 new connections .* not one reply came back through the director .*fix: .*xdirector realserver setup --nat --gateway/,
  );
  // Any reply back clears it; a quiet backend (no new connections) raises nothing.
  assert.deepEqual(natAlert('mysql', b, t0, { at: NAT_ALERT_WINDOW_MS, newFlows: 20, outPackets: 51 }, 'eth1'), {
    clear: true,
    resample: true,
  });
  assert.equal(
    natAlert('mysql', b, t0, { at: NAT_ALERT_WINDOW_MS, newFlows: 11, outPackets: 50 }, 'eth1').alert,
    undefined,
  );
});

/** RFC 1071 checksum of `b` (even length), computed in full. */
function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += b.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

test("the NAT entry's checksum differences turn a checksum over VIP:vport into the one over backend:port (IPv4 and IPv6)", () => {
  for (const [vip, address] of [
    ['10.93.0.100', '10.94.0.11'],
    ['fd00:93::100', 'fd00:94::11'],
  ] as const) {
    const v4 = !vip.includes(':');
    const n = { vip, vport: 3307, address, port: 3306 };
    const { nat_csum_l3: csum_l3 = 0, nat_csum_l4: csum_l4 = 0 } = natEntry({
      ...n,
      smac: EGRESS.smac,
      mtu: 1500,
      ifindex: 7,
    });
    // Some bytes around the address and the port, as a header and pseudo-header hold them.
    const bytes = (a: string, port: number): Buffer => {
      const ab = addr16(a).subarray(0, v4 ? 4 : 16);
      const pb = Buffer.alloc(2);
      pb.writeUInt16BE(port);
      return Buffer.concat([Buffer.from([0x45, 0, 0, 60, 0x12, 0x34]), ab, Buffer.from([0xbe, 0xef]), pb]);
    };
    const apply = (check: number, d: number): number => {
      let sum = (~check & 0xffff) + d;
      sum = (sum & 0xffff) + (sum >>> 16);
      return ~sum & 0xffff;
    };
    if (v4)
      assert.equal(apply(checksum(bytes(vip, 3306)), csum_l3), checksum(bytes(address, 3306)), `${vip}: address only`);
    assert.equal(
      apply(checksum(bytes(vip, 3307)), csum_l4),
      checksum(bytes(address, 3306)),
      `${vip}: address and port`,
    );
    if (!v4) assert.equal(csum_l3, 0, 'IPv6 has no header checksum');
  }
});
