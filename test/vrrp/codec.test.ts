// VRRP codec: exact bytes from the RFC field layouts (checksums worked out
// independently, by a separate one's-complement sum), round trips, and every
// rejection reason.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeAdvert,
  encodeAdvert,
  encodeIPv4,
  splitIPv4,
  type Advert,
  type Expect,
  type RxMeta,
} from '../../src/vrrp/codec';
import { gratuitousArp, unsolicitedNa } from '../../src/vrrp/frames';
import { inetChecksum } from '../../src/net/inet';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const v2: Advert = { version: 2, vrid: 51, priority: 100, intervalMs: 1000, addresses: ['192.168.1.10'] };
const v2meta: RxMeta = { family: 4, src: '192.168.1.2', dst: '224.0.0.18', ttl: 255 };
const v2expect: Expect = { vrid: 51, version: 2, addresses: ['192.168.1.10'], intervalMs: 1000 };

const v3: Advert = { version: 3, vrid: 51, priority: 100, intervalMs: 1000, addresses: ['10.0.0.10'] };
const v3meta: RxMeta = { family: 4, src: '10.0.0.1', dst: '224.0.0.18', ttl: 255 };
const v3expect: Expect = { vrid: 51, version: 3, addresses: ['10.0.0.10'] };

const v6: Advert = { version: 3, vrid: 51, priority: 200, intervalMs: 100, addresses: ['fd00::10', 'fd00::11'] };
const v6meta: RxMeta = { family: 6, src: 'fe80::1', dst: 'ff02::12', ttl: 255 };
const v6expect: Expect = { vrid: 51, version: 3, addresses: ['fd00::10', 'fd00::11'] };

describe('VRRP codec: exact bytes', () => {
  it('encodes a VRRPv2 advert as RFC 3768 §5.1 lays it out, checksum over the message and the 8 auth bytes', () => {
    // 2|1 VRID=51 prio=100 count=1 auth=0 adv=1s cksum=b917 192.168.1.10 auth=0×8
    assert.deepEqual(encodeAdvert(v2, { family: 4 }), hex('21 33 64 01 00 01 b917 c0a8010a 0000000000000000'));
  });

  it('encodes a VRRPv2 advert with a simple password in the authentication data', () => {
    assert.deepEqual(
      encodeAdvert(v2, { family: 4, password: 'secret' }),
      hex('21 33 64 01 01 01 7bcb c0a8010a 7365637265740000'),
    );
  });

  it('encodes a VRRPv3 IPv4 advert with the IPv4 pseudo-header in the checksum (keepalived default)', () => {
    // 3|1 VRID=51 prio=100 count=1 rsvd|maxadvint=100cs cksum 10.0.0.10
    assert.deepEqual(
      encodeAdvert(v3, { family: 4, src: '10.0.0.1', dst: '224.0.0.18' }),
      hex('31 33 64 01 0064 75cd 0a00000a'),
    );
  });

  it('encodes a VRRPv3 IPv4 advert without the pseudo-header when asked (RFC 9568)', () => {
    assert.deepEqual(encodeAdvert(v3, { family: 4, v4PseudoHeader: false }), hex('31 33 64 01 0064 605d 0a00000a'));
  });

  it('encodes a VRRPv3 IPv6 advert with the IPv6 pseudo-header (RFC 5798 §5.2.8)', () => {
    assert.deepEqual(
      encodeAdvert(v6, { family: 6, src: 'fe80::1', dst: 'ff02::12' }),
      hex('31 33 c8 02 000a 0e6e fd000000000000000000000000000010 fd000000000000000000000000000011'),
    );
  });

  it('builds a gratuitous ARP request with sender and target IP = VIP, target MAC broadcast, padded to 60 bytes', () => {
    assert.deepEqual(
      gratuitousArp(hex('020000000001'), '10.0.0.10'),
      hex(
        'ffffffffffff 020000000001 0806 0001 0800 06 04 0001 020000000001 0a00000a ffffffffffff 0a00000a' +
          '00'.repeat(18),
      ),
    );
  });

  it('builds an unsolicited neighbour advertisement to ff02::1 with Override set, hop limit 255 and a target link-layer option', () => {
    assert.deepEqual(
      unsolicitedNa(hex('020000000001'), 'fd00::10'),
      hex(
        '333300000001 020000000001 86dd' +
          '60000000 0020 3a ff fd000000000000000000000000000010 ff020000000000000000000000000001' +
          '88 00 5a7d 20000000 fd000000000000000000000000000010 02 01 020000000001',
      ),
    );
  });
});

describe('VRRP codec: round trips', () => {
  it('decodes a VRRPv2 advert it encoded', () => {
    const r = decodeAdvert(encodeAdvert(v2, { family: 4 }), v2meta, v2expect);
    assert.ok(r.ok);
    assert.deepEqual(r.advert, { ...v2, authType: 0 });
    assert.equal(r.checksum, 'v2');
  });

  it('decodes a VRRPv2 advert with the right password', () => {
    const r = decodeAdvert(encodeAdvert(v2, { family: 4, password: 'secret' }), v2meta, {
      ...v2expect,
      password: 'secret',
    });
    assert.ok(r.ok);
    assert.equal(r.advert.authType, 1);
  });

  it('decodes a VRRPv3 IPv4 advert checksummed with the pseudo-header and says so', () => {
    const r = decodeAdvert(encodeAdvert(v3, { family: 4, src: v3meta.src, dst: v3meta.dst }), v3meta, v3expect);
    assert.ok(r.ok);
    assert.equal(r.checksum, 'pseudo-header');
    assert.equal(r.advert.intervalMs, 1000);
  });

  it('accepts a VRRPv3 IPv4 advert checksummed without the pseudo-header (RFC 9568 / Cisco / Juniper peers)', () => {
    const r = decodeAdvert(encodeAdvert(v3, { family: 4, v4PseudoHeader: false }), v3meta, v3expect);
    assert.ok(r.ok);
    assert.equal(r.checksum, 'no-pseudo-header');
  });

  it('accepts a unicast VRRPv3 advert checksummed with the multicast group as destination (keepalived ≤ 1.3.6)', () => {
    const msg = encodeAdvert(v3, { family: 4, src: '10.0.0.1', dst: '224.0.0.18' });
    const r = decodeAdvert(msg, { ...v3meta, dst: '10.0.0.2' }, v3expect);
    assert.ok(r.ok);
    assert.equal(r.checksum, 'pseudo-header-mcast-dst');
  });

  it('decodes a VRRPv3 IPv6 advert with two addresses', () => {
    const r = decodeAdvert(encodeAdvert(v6, { family: 6, src: v6meta.src, dst: v6meta.dst }), v6meta, v6expect);
    assert.ok(r.ok);
    assert.deepEqual(r.advert.addresses, ['fd00::10', 'fd00::11']);
    assert.equal(r.advert.intervalMs, 100);
  });

  it('splits what an IPv4 raw socket delivers into header facts and the VRRP message', () => {
    const msg = encodeAdvert(v2, { family: 4 });
    const r = splitIPv4(encodeIPv4(msg, '192.168.1.2', '224.0.0.18', 254));
    assert.ok(r.ok);
    assert.deepEqual(r.meta, { family: 4, src: '192.168.1.2', dst: '224.0.0.18', ttl: 254 });
    assert.deepEqual(r.payload, msg);
  });
});

describe('VRRP codec: rejections', () => {
  const good = () => encodeAdvert(v2, { family: 4 });
  const withSum = (m: Buffer) => {
    m.writeUInt16BE(0, 6);
    m.writeUInt16BE(inetChecksum(m), 6);
    return m;
  };
  const cases: { name: string; msg: () => Buffer; meta?: Partial<RxMeta>; expect?: Partial<Expect>; reason: string }[] =
    [
      { name: 'a message shorter than the header', msg: () => good().subarray(0, 7), reason: 'truncated' },
      { name: 'TTL 254 (routed or forged)', msg: good, meta: { ttl: 254 }, reason: 'ttl' },
      {
        name: 'version 3 where 2 is configured',
        msg: () => encodeAdvert(v3, { family: 4, v4PseudoHeader: false }),
        reason: 'version',
      },
      {
        name: 'version 4',
        msg: () => withSum(Buffer.concat([Buffer.from([0x41]), good().subarray(1)])),
        reason: 'version',
      },
      {
        name: 'type 2 (not an advertisement)',
        msg: () => withSum(Buffer.concat([Buffer.from([0x22]), good().subarray(1)])),
        reason: 'type',
      },
      {
        name: 'an address count that does not fit the message',
        msg: () => withSum(Buffer.from(good().fill(5, 3, 4))),
        reason: 'address-count',
      },
      { name: 'an address count of 0', msg: () => withSum(Buffer.from(good().fill(0, 3, 4))), reason: 'address-count' },
      { name: 'a wrong checksum', msg: () => Buffer.from(good().fill(0xaa, 6, 7)), reason: 'checksum' },
      { name: 'another VRID', msg: () => encodeAdvert({ ...v2, vrid: 52 }, { family: 4 }), reason: 'vrid' },
      { name: 'a missing password', msg: good, expect: { password: 'secret' }, reason: 'auth' },
      {
        name: 'a wrong password',
        msg: () => encodeAdvert(v2, { family: 4, password: 'wrong' }),
        expect: { password: 'secret' },
        reason: 'auth',
      },
      {
        name: 'a password where none is configured',
        msg: () => encodeAdvert(v2, { family: 4, password: 'secret' }),
        reason: 'auth',
      },
      {
        name: 'fewer addresses than configured',
        msg: good,
        expect: { addresses: ['192.168.1.10', '192.168.1.11'] },
        reason: 'address-count',
      },
      {
        name: 'an address that is not one of ours',
        msg: () => encodeAdvert({ ...v2, addresses: ['192.168.1.99'] }, { family: 4 }),
        reason: 'address-list',
      },
      {
        name: 'a VRRPv2 advert interval that differs from ours',
        msg: () => encodeAdvert({ ...v2, intervalMs: 2000 }, { family: 4 }),
        reason: 'interval',
      },
    ];
  for (const c of cases) {
    it(`drops ${c.name} as ${c.reason}`, () => {
      const r = decodeAdvert(c.msg(), { ...v2meta, ...c.meta }, { ...v2expect, ...c.expect });
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.equal(r.reason, c.reason);
        assert.ok(r.message.length > 0);
      }
    });
  }

  it('drops a VRRPv3 IPv6 advert whose checksum was computed for another source', () => {
    const msg = encodeAdvert(v6, { family: 6, src: 'fe80::2', dst: v6meta.dst });
    const r = decodeAdvert(msg, v6meta, v6expect);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, 'checksum');
  });

  it('skips the TTL check when told to (unicast peers, as keepalived does)', () => {
    const r = decodeAdvert(good(), { ...v2meta, ttl: 60 }, { ...v2expect, checkTtl: false });
    assert.ok(r.ok);
  });

  it('drops an IPv4 datagram whose total length exceeds what was received as truncated', () => {
    const pkt = encodeIPv4(good(), '192.168.1.2', '224.0.0.18');
    const r = splitIPv4(pkt.subarray(0, pkt.length - 4));
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, 'truncated');
  });

  it('drops an IPv4 datagram of another protocol as not-vrrp', () => {
    const r = splitIPv4(encodeIPv4(good(), '192.168.1.2', '224.0.0.18', 255, 6));
    assert.equal(!r.ok && r.reason, 'not-vrrp');
  });
});
