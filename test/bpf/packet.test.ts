// The fixture packet builder (test/lib/packet.ts) checked against independent oracles: the
// RFC 1071 / textbook checksum example, and tcpdump's own checksum verification of every kind
// of packet the datapath fixtures use (written to a pcap in a per-run temp dir).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as pk from '../lib/packet';
import { pcap } from '../lib/pcap';

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), `xda-packet-${process.pid}-`));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** tcpdump -vvv lines, one block per frame. */
function tcpdump(frames: Buffer[]): string {
  const file = path.join(dir, 'frames.pcap');
  fs.writeFileSync(file, pcap(frames));
  return execFileSync('tcpdump', ['-nn', '-vvv', '-e', '-r', file], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

const A = '02:00:00:00:00:10';
const B = '02:00:00:00:00:02';

test('the IPv4 header checksum of the textbook example is 0xb861', () => {
  const h = Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex');
  assert.equal(pk.inetChecksum(h), 0xb861);
});

test('tcpdump finds every checksum of the builder correct', () => {
  const inner4 = pk.ipv4(
    { src: '10.200.0.100', dst: '10.200.0.10', df: true },
    pk.tcp({ sport: 3306, dport: 40000, payload: Buffer.alloc(100) }),
  );
  const inner6 = pk.ipv6(
    { src: '2001:db8::100', dst: '2001:db8::10' },
    pk.udp({ sport: 3306, dport: 40000, payload: Buffer.alloc(10) }),
  );
  const frames = [
    pk.ether(
      { src: A, dst: B },
      pk.ipv4(
        { src: '10.200.0.10', dst: '10.200.0.100', options: Buffer.from([0x94, 4, 0, 0]) },
        pk.tcp({ sport: 40000, dport: 3306, flags: 'S', payload: Buffer.from('odd') }),
      ),
    ),
    pk.ether(
      { src: A, dst: B, vlan: { id: 100, pcp: 5 } },
      pk.ipv4(
        { src: '10.200.0.10', dst: '10.200.0.100' },
        pk.udp({ sport: 40000, dport: 3306, payload: Buffer.from('abcde') }),
      ),
    ),
    pk.ether(
      { src: A, dst: B },
      pk.ipv6(
        { src: '2001:db8::10', dst: '2001:db8::100' },
        pk.tcp({ sport: 40000, dport: 3306, flags: 'PA', payload: Buffer.from('x') }),
      ),
    ),
    pk.ether(
      { src: A, dst: B },
      pk.ipv6(
        { src: '::ffff:10.0.0.1', dst: '2001:db8::100' },
        pk.udp({ sport: 40000, dport: 3306, payload: Buffer.from('xyz') }),
      ),
    ),
    pk.ether(
      { src: A, dst: B },
      pk.ipv4(
        { src: '10.200.0.1', dst: '10.200.0.100' },
        pk.icmp4({ type: 3, code: 4, mtu: 1400, quoted: inner4.subarray(0, 28) }),
      ),
    ),
    pk.ether(
      { src: A, dst: B },
      pk.ipv6({ src: '2001:db8::1', dst: '2001:db8::100' }, pk.icmp6({ type: 2, code: 0, mtu: 1280, quoted: inner6 })),
    ),
  ];
  const out = tcpdump(frames);
  assert.doesNotMatch(out, /bad|wrong|incorrect/i, out);
  assert.equal((out.match(/cksum 0x[0-9a-f]+ \(correct\)/g) ?? []).length, 2, `TCP checksums verified:\n${out}`);
  assert.equal((out.match(/udp sum ok/g) ?? []).length, 2, `UDP checksums verified:\n${out}`);
  assert.match(out, /need to frag \(mtu 1400\)/);
  assert.match(out, /icmp6 sum ok.*packet too big, mtu 1280/);
  assert.match(out, /vlan 100, p 5/);
  assert.match(out, /options \(RA\)/);
});

test('a corrupted checksum is reported by the same oracle', () => {
  const f = pk.ether(
    { src: A, dst: B },
    pk.ipv4(
      { src: '10.200.0.10', dst: '10.200.0.100' },
      pk.udp({ sport: 40000, dport: 3306, payload: Buffer.from('abc') }),
    ),
  );
  f[14 + 20 + 6] ^= 0xff;
  assert.match(tcpdump([f]), /bad udp cksum/);
});

test('fragment fields and the IPv6 fragment header are laid out as on the wire', () => {
  const v4 = pk.ipv4(
    { src: '10.0.0.1', dst: '10.0.0.2', mf: true, fragOffset: 185, id: 0xbeef },
    pk.raw(pk.IPPROTO_UDP, Buffer.alloc(8)),
  );
  assert.equal(v4.readUInt16BE(6), 0x2000 | 185);
  assert.equal(v4.readUInt16BE(4), 0xbeef);
  const v6 = pk.ipv6(
    { src: '2001:db8::1', dst: '2001:db8::2', fragment: { offset: 181, more: true, id: 7 } },
    pk.raw(pk.IPPROTO_UDP, Buffer.alloc(8)),
  );
  assert.equal(v6[6], pk.IPPROTO_FRAGMENT);
  assert.equal(v6[40], pk.IPPROTO_UDP);
  assert.equal(v6.readUInt16BE(42), (181 << 3) | 1);
  assert.equal(v6.readUInt16BE(4), 16, 'payload length counts the fragment header');
  const out = tcpdump([pk.ether({ src: A, dst: B }, v4), pk.ether({ src: A, dst: B }, v6)]);
  assert.match(out, /offset 1480, flags \[\+\]/);
  assert.match(out, /frag \(0x00000007:1448\|8\)/);
});

test('bad input to the builder is a TypeError naming what was expected', () => {
  assert.throws(() => pk.macBytes('02:00:00:00:00'), /expected a MAC address/);
  assert.throws(() => pk.ipBytes('10.0.0.256'), /expected an IPv4 or IPv6 address/);
  assert.throws(() => pk.tcpFlags('SX'), /unknown TCP flag "X"/);
  assert.throws(
    () => pk.ipv4({ src: '2001:db8::1', dst: '10.0.0.1' }, pk.udp({ sport: 1, dport: 2 })),
    /needs IPv4 addresses/,
  );
});
