// Ethernet frames announcing a VIP after takeover. Pure.
//
// Gratuitous ARP as keepalived sends it (vrrp_arp.c): an ARP *request* with
// sender IP = target IP = VIP, target hardware address broadcast, Ethernet
// destination broadcast, source = the interface MAC (RFC 3768 §6.4.2, RFC 5798 §6.4.2).
//
// Unsolicited neighbour advertisement (RFC 4861 §7.2.6, RFC 5798 §6.4.2):
// to ff02::1 (Ethernet 33:33:00:00:00:01), source = the VIP, hop limit 255,
// Override set, Solicited clear, Router set only when the host forwards IPv6
// (keepalived vrrp_ndisc.c), target = VIP, with a target link-layer address option.

import { addressToBytes, inetChecksum, pseudoHeader } from '../net/inet';

const BROADCAST = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
const ETH_MIN = 60; // minimum Ethernet frame without FCS

function checkMac(mac: Uint8Array): void {
  if (mac.length !== 6) throw new TypeError(`a MAC address is 6 bytes, got ${mac.length}`);
}

export function gratuitousArp(mac: Uint8Array, vip: string): Buffer {
  checkMac(mac);
  const ip = addressToBytes(vip);
  if (ip.length !== 4) throw new TypeError(`gratuitous ARP is for IPv4 addresses, got ${vip}`);
  const f = Buffer.alloc(ETH_MIN);
  BROADCAST.copy(f, 0);
  Buffer.from(mac).copy(f, 6);
  f.writeUInt16BE(0x0806, 12);
  f.writeUInt16BE(1, 14); // hardware type Ethernet
  f.writeUInt16BE(0x0800, 16); // protocol IPv4
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(1, 20); // request
  Buffer.from(mac).copy(f, 22); // sender hardware address
  ip.copy(f, 28); // sender protocol address
  BROADCAST.copy(f, 32); // target hardware address
  ip.copy(f, 38); // target protocol address
  return f;
}

export function unsolicitedNa(mac: Uint8Array, vip: string, router = false): Buffer {
  checkMac(mac);
  const target = addressToBytes(vip);
  if (target.length !== 16) throw new TypeError(`neighbour advertisements are for IPv6 addresses, got ${vip}`);
  const dst = addressToBytes('ff02::1');
  const icmp = Buffer.alloc(32);
  icmp[0] = 136; // neighbour advertisement
  icmp[1] = 0;
  icmp[4] = (router ? 0x80 : 0) | 0x20; // R, S=0, O=1
  target.copy(icmp, 8);
  icmp[24] = 2; // option: target link-layer address
  icmp[25] = 1; // length in 8-octet units
  Buffer.from(mac).copy(icmp, 26);
  icmp.writeUInt16BE(inetChecksum(pseudoHeader(target, dst, 58, icmp.length), icmp), 2);
  const ip6 = Buffer.alloc(40);
  ip6.writeUInt32BE(0x60000000, 0);
  ip6.writeUInt16BE(icmp.length, 4);
  ip6[6] = 58;
  ip6[7] = 255;
  target.copy(ip6, 8);
  dst.copy(ip6, 24);
  const eth = Buffer.alloc(14);
  Buffer.from([0x33, 0x33, 0, 0, 0, 1]).copy(eth, 0);
  Buffer.from(mac).copy(eth, 6);
  eth.writeUInt16BE(0x86dd, 12);
  return Buffer.concat([eth, ip6, icmp]);
}
