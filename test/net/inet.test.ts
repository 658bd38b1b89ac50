// The internet-address module: parsing, RFC 5952 text, bytes, backend keys, the RFC 1071
// checksum with its pseudo-header, and MAC text. Pure, no kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addressFamily,
  addressFromBytes,
  addressToBytes,
  addressToBytes16,
  backendKey,
  hostPort,
  canonicalAddress,
  compareAddress,
  formatMac,
  inetChecksum,
  isMac,
  parseAddress,
  parseMac,
  pseudoHeader,
  unusableReason,
} from '../../src/net/inet';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('RFC 5952 4.1: leading zeros of each group are dropped', () => {
  assert.equal(canonicalAddress('2001:0db8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  assert.equal(canonicalAddress('fd00:0:0::0100'), 'fd00::100');
});

test('RFC 5952 4.2.1: the longest run of zero groups is the one compressed', () => {
  assert.equal(canonicalAddress('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1');
  assert.equal(canonicalAddress('fd00:0:0:0:0:0:0:10'), 'fd00::10');
});

test('RFC 5952 4.2.3: of equally long zero runs the first is compressed', () => {
  assert.equal(canonicalAddress('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
  assert.equal(canonicalAddress('fe80::1:0:0:1'), 'fe80::1:0:0:1');
});

test('RFC 5952 4.2.2: a single zero group is written 0, not ::', () => {
  assert.equal(canonicalAddress('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1');
  assert.equal(canonicalAddress('2001:db8::1:1:1:1:1'), '2001:db8:0:1:1:1:1:1');
});

test('RFC 5952 4.3: hex digits are lower case', () => {
  assert.equal(canonicalAddress('2001:DB8::AbCd'), '2001:db8::abcd');
});

test('RFC 5952 5: an IPv4-mapped address ends in its dotted quad', () => {
  assert.equal(canonicalAddress('::ffff:10.0.0.1'), '::ffff:10.0.0.1');
  assert.equal(canonicalAddress('0:0:0:0:0:FFFF:0A00:0001'), '::ffff:10.0.0.1');
  assert.equal(addressFromBytes(hex('00000000 00000000 0000ffff c0000201')), '::ffff:192.0.2.1');
});

test('the all-zero, loopback and all-ones-run IPv6 addresses have their short forms', () => {
  assert.equal(canonicalAddress('0:0:0:0:0:0:0:0'), '::');
  assert.equal(canonicalAddress('0:0:0:0:0:0:0:1'), '::1');
  assert.equal(canonicalAddress('1:0:0:0:0:0:0:0'), '1::');
  assert.equal(canonicalAddress('1:2:3:4:5:6:7:8'), '1:2:3:4:5:6:7:8');
});

test('malformed addresses, zone ids, prefixes and leading zeros in a dotted quad are refused', () => {
  for (const s of [
    '',
    '10.0.0',
    '10.0.0.256',
    '010.0.0.1',
    '10.0.0.1/24',
    'fe80::1%eth0',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    'db1',
    ' 10.0.0.1',
  ]) {
    assert.equal(parseAddress(s), undefined, s);
    assert.equal(addressFamily(s), undefined, s);
  }
  assert.throws(() => canonicalAddress('10.0.0'), /expected an IPv4 or IPv6 address.*"10.0.0"/);
  assert.throws(() => addressToBytes('fe80::1%eth0'), TypeError);
});

test('an address parses to its family, canonical text and network-order 32-bit words', () => {
  assert.deepEqual(parseAddress('10.1.2.3'), { family: 4, text: '10.1.2.3', words: [0x0a010203] });
  assert.deepEqual(parseAddress('FD00::1'), { family: 6, text: 'fd00::1', words: [0xfd000000, 0, 0, 1] });
});

test('addresses go to network-order bytes and back', () => {
  assert.deepEqual(addressToBytes('10.1.2.3'), hex('0a010203'));
  assert.deepEqual(addressToBytes('fd00::1:2'), hex('fd000000 00000000 00000000 00010002'));
  assert.equal(addressFromBytes(hex('0a010203')), '10.1.2.3');
  assert.equal(addressFromBytes(hex('fd000000 00000000 00000000 00010002')), 'fd00::1:2');
  assert.throws(() => addressFromBytes(hex('0a0102')), /4 or 16 bytes, received 3/);
});

test('the 16-byte form holds IPv4 in its first 4 bytes and reads back with the family', () => {
  const b = addressToBytes16('10.1.2.3');
  assert.deepEqual(b, hex('0a010203 00000000 00000000 00000000'));
  assert.equal(addressFromBytes(b, 4), '10.1.2.3');
  assert.equal(addressFromBytes(addressToBytes16('fd00::9'), 6), 'fd00::9');
});

test('addresses compare as big-endian numbers', () => {
  assert.ok(compareAddress('10.0.0.2', '10.0.0.10') < 0);
  assert.ok(compareAddress('fd00::a', 'fd00::9') > 0);
  assert.equal(compareAddress('fd00:0::1', 'FD00::1'), 0);
});

test('backend keys use the canonical address, IPv6 in brackets', () => {
  assert.equal(backendKey('10.0.0.1', 3306), '10.0.0.1:3306');
  assert.equal(backendKey('FD00:0:0::1', 3306), '[fd00::1]:3306');
  assert.equal(backendKey('fd00::1', 3306), backendKey('fd00:0000::0001', 3306));
});

test('an endpoint is shown one way: canonical address, IPv6 in brackets, a name as written', () => {
  assert.equal(hostPort('10.0.0.1', '8080'), '10.0.0.1:8080');
  assert.equal(hostPort('FD00::10', 3306), '[fd00::10]:3306');
  assert.equal(hostPort('localhost', 9090), 'localhost:9090');
  assert.equal(hostPort('not:an:address', 1), '[not:an:address]:1');
});

test('unspecified, broadcast and multicast addresses are named as unusable', () => {
  assert.equal(unusableReason(parseAddress('0.0.0.0')!), 'the unspecified address 0.0.0.0');
  assert.equal(unusableReason(parseAddress('255.255.255.255')!), 'the broadcast address');
  assert.equal(unusableReason(parseAddress('224.0.0.18')!), 'a multicast address');
  assert.equal(unusableReason(parseAddress('::')!), 'the unspecified address ::');
  assert.equal(unusableReason(parseAddress('ff02::1')!), 'a multicast address');
  assert.equal(unusableReason(parseAddress('10.0.0.1')!), undefined);
});

test('the RFC 1071 checksum matches the worked example of RFC 1071 section 3', () => {
  // RFC 1071 3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum (one's complement) to 0xddf2.
  assert.equal(inetChecksum(hex('0001f203f4f5f6f7')), ~0xddf2 & 0xffff);
});

test('the checksum across parts with odd lengths equals the checksum of their concatenation', () => {
  const a = hex('0102030405');
  const b = hex('060708');
  const c = hex('09');
  assert.equal(inetChecksum(a, b, c), inetChecksum(Buffer.concat([a, b, c])));
});

test('an IPv4 header with its checksum written sums to zero', () => {
  const h = hex('4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7');
  h.writeUInt16BE(inetChecksum(h), 10);
  assert.equal(h.readUInt16BE(10), 0xb861); // the well-known example header's checksum
  assert.equal(inetChecksum(h), 0);
});

test('the pseudo-header is 12 bytes for IPv4 and 40 for IPv6, protocol and length in place', () => {
  assert.deepEqual(
    pseudoHeader(addressToBytes('10.0.0.1'), addressToBytes('10.0.0.2'), 6, 20),
    hex('0a000001 0a000002 0006 0014'),
  );
  const p6 = pseudoHeader(addressToBytes('fd00::1'), addressToBytes('fd00::2'), 58, 32);
  assert.equal(p6.length, 40);
  assert.equal(p6.readUInt32BE(32), 32);
  assert.equal(p6[39], 58);
  assert.throws(
    () => pseudoHeader(addressToBytes('10.0.0.1'), addressToBytes('fd00::2'), 6, 20),
    /must both be 4 or both 16 bytes/,
  );
});

test('MAC text goes to 6 bytes and back in lower case', () => {
  assert.deepEqual(parseMac('02:00:0A:0b:00:11'), hex('02000a0b0011'));
  assert.equal(formatMac(hex('02000a0b0011')), '02:00:0a:0b:00:11');
  assert.ok(isMac('02:00:00:00:00:11'));
  for (const s of ['02:00:00:00:00', '02-00-00-00-00-11', '2:0:0:0:0:11', '02:00:00:00:00:1g']) {
    assert.equal(isMac(s), false, s);
    assert.throws(() => parseMac(s), /expected a MAC address like "02:00:00:00:00:11"/);
  }
  assert.throws(() => formatMac(hex('0200')), /6 bytes, received 2/);
});
